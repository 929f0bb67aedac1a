#!/usr/bin/env bash
# On a lent GPU machine (no network), after benchmarks/gpu/prepare.sh filled .gpu/ here, in ONE
# call (a machine stays warm only briefly, and a fresh start costs minutes of the budget):
#   run(command="bash benchmarks/gpu/run.sh", carry=[".gpu"], timeout_s=600)
# Installs the carried wheels into /tmp/layerft_site (first on PYTHONPATH), measures the bf16
# matmul rate the GPU reaches (benchmarks/gpu/matmul_peak.py, into machine.txt), then runs the steps:
# - tests: the GPU tests (tests/test_gpu.py: the loss guard, the token counter, a phase learning in
#   bf16 with non-blocking copies and the same numbers as blocking ones), about a minute;
# - bert_base: layerft, a plain Trainer and a raw loop, layerft and the raw loop also compiled,
#   at batch 32 and 256, RUN_STEPS (48) optimizer steps per run at both, layerft eager and
#   compiled with blocking copies of its batches to the GPU (the default before 2026-12-04), bf16,
#   128 tokens, plus the VARIANTS (none; call 3 measured CUDA graphs with
#   VARIANTS="--variant cuda_graphs=trainer.compile=true,trainer.compile_mode=reduce_overhead",
#   about 100 s of compiling), on a random BERT-base-shaped model (the
#   issue's targets); the JSON is written after every run and no run starts after the step's
#   time is up. Then, while its batch size's time lasts, one more run of each pipeline under
#   torch.profiler (the minilm step too; PROFILE=0 turns it off): step time, GPU busy time and
#   the calls that wait for the GPU per step in bert_base.txt and .json, the op tables in
#   profile.txt (where layerft's steps are slower than the raw loop's). Measured on 2026-12-04
#   (BENCHMARKS.md) with one epoch of 3,072 examples per run
#   and a workers4 variant, now the default: 12 steps at batch 256 counted the Trainer's fixed
#   start-up against too few steps, hence equal steps per run;
# - adapter_study (measured on 2026-12-04, not in the default): the adapter study (5 tuning modes, benchmarks/adapter_study.py) on MiniLM
#   (pre-trained; bf16 weights trained in fp32 masters), demo_sentiment, 1 epoch: accuracy, speed,
#   memory; its results.md and results.csv come back (what finished, if the step is cut);
# - minilm: the bert_base measurement on MiniLM (not in the default: $OUT returns 8 files);
# - workers: at batch 32, eager, 2 x RUN_STEPS steps per run, layerft's default data-loader workers
#   (4 on this machine) against 0 and 2, the plain Trainer and the raw loop (not in the default).
# The adapter study gets STUDY_SECONDS (170), the other steps share the rest of BUDGET seconds
# (570); a step left with under 60 s is skipped. Knobs: STEPS ("tests bert_base"), VARIANTS,
# PROFILE (1), REPEATS (2), RUN_STEPS (48), TRAIN (examples generated: RUN_STEPS whole batches of 256, so no compiled run
# recompiles for a short last batch), STUDY_TRAIN (the adapter study's examples, 3072 as measured).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/layerft_gpu}  # the device tool sets OUT: what is written there comes back
STEPS=${STEPS:-"tests bert_base"}
REPEATS=${REPEATS:-2}
RUN_STEPS=${RUN_STEPS:-48}
TRAIN=${TRAIN:-$(( RUN_STEPS * 256 ))}
STUDY_TRAIN=${STUDY_TRAIN:-3072}
BUDGET=${BUDGET:-570}
STUDY_SECONDS=${STUDY_SECONDS:-170}
mkdir -p "$OUT"
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    nproc
    python -c "import sys, torch, transformers; print(sys.version.split()[0], torch.__version__, transformers.__version__)"
} 2>&1 | tee "$OUT/machine.txt"

# Into a folder of its own, as the device notes advise: the machine's packages stay as they are.
python -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/layerft_site --find-links .gpu/wheels -r .gpu/requirements.txt \
    > "$OUT/pip.txt" 2>&1 || echo "pip failed: see pip.txt" | tee -a "$OUT/machine.txt"
export PYTHONPATH=/tmp/layerft_site:$PWD HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled
python -c "import layerft.run" 2>&1 | tail -3 | tee -a "$OUT/machine.txt"
timeout 60 python benchmarks/gpu/matmul_peak.py 2>&1 | tee -a "$OUT/machine.txt"  # about 10 s

common=(--batch-sizes 32 256 --repeats "$REPEATS" --steps "$RUN_STEPS" --pad-to 128
        --precision bf16 --compile --blocking-copies ${VARIANTS:-})
[ "${PROFILE:-1}" = 1 ] && common+=(--profile "$OUT/profile.txt")
# The tokenized cache stays off $OUT: only results come back.
data=(target_task=demo_sentiment "target_task.generator_sizes.train=$TRAIN"
      target_task.max_length=128 cache_dir=/tmp/layerft_gpu_cache)
minilm=(model=minilm model.package=null "model.hub_id=$PWD/.gpu/minilm")  # the bf16 copy
steps=($STEPS)
for i in "${!steps[@]}"; do
    step=${steps[$i]}
    others=0
    for later in "${steps[@]:i+1}"; do [ "$later" = adapter_study ] && others=$STUDY_SECONDS; done
    if [ "$step" = adapter_study ]; then
        left=$(( BUDGET - SECONDS ))
    else
        left=$(( (BUDGET - SECONDS - others) / (${#steps[@]} - i - (others > 0 ? 1 : 0)) ))
    fi
    if [ "$left" -lt 60 ]; then
        echo "== $step: skipped, ${left} s left"
        continue
    fi
    echo "== $step (at most ${left} s)"
    case $step in
        bert_base) model=(model=tiny model.tiny.hidden_size=768 model.tiny.num_layers=12
                          model.tiny.num_heads=12 model.tiny.intermediate_size=3072) ;;
        workers) model=(model=tiny model.tiny.hidden_size=768 model.tiny.num_layers=12
                        model.tiny.num_heads=12 model.tiny.intermediate_size=3072) ;;
        minilm | adapter_study) model=("${minilm[@]}") ;;
        tests) ;;
        *) echo "unknown step $step"; exit 2 ;;
    esac
    if [ "$step" = tests ]; then  # the device has no pytest-xdist: the project's addopts cleared
        timeout "$left" python -m pytest -o addopts="" -q -p no:cacheprovider -m gpu \
            tests/test_gpu.py > "$OUT/tests.txt" 2>&1
        echo "pytest exit status $?" >> "$OUT/tests.txt"
        tail -30 "$OUT/tests.txt"
        continue
    fi
    if [ "$step" = adapter_study ]; then
        study=/tmp/layerft_gpu_study
        timeout "$left" python -u benchmarks/adapter_study.py --sweep-dir "$study" -- \
            "${minilm[@]}" "${data[@]}" "target_task.generator_sizes.train=$STUDY_TRAIN" seed=42 \
            target_task.lr=5e-5 \
            target_task.generator_sizes.validation=1000 \
            target_task.epochs=1 target_task.evals_per_epoch=1 trainer.precision=bf16 \
            2>&1 | grep --line-buffered -v "it/s\]" | tail -40
        [ -f "$study/results.md" ] || python benchmarks/adapter_study.py --sweep-dir "$study" --table-only
        cp "$study/results.md" "$study/results.csv" "$OUT/" 2>/dev/null
        continue
    fi
    args=("${common[@]}")
    if [ "$step" = workers ]; then  # the data-loader workers' default at batch 32, eager, longer runs
        args=(--batch-sizes 32 --repeats "$REPEATS" --steps $(( 2 * RUN_STEPS )) --pad-to 128
              --precision bf16 --variant workers0=trainer.dataloader_workers=0
              --variant workers2=trainer.dataloader_workers=2)
    fi
    # Loading and tokenizing take about 20 s of the step; the measuring gets the rest.
    timeout "$left" python -u benchmarks/throughput.py "${args[@]}" --json "$OUT/$step.json" \
        --budget $(( left - 40 )) -- "${model[@]}" "${data[@]}" \
        target_task.generator_sizes.validation=256 2>&1 | grep --line-buffered -v "it/s\]" | tee "$OUT/$step.txt"
done
