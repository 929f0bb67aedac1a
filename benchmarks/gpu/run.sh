#!/usr/bin/env bash
# On a lent GPU machine (no network), after benchmarks/gpu/prepare.sh filled .gpu/ here, in ONE
# call (a machine stays warm only briefly, and a fresh start costs minutes of the budget):
#   run(command="bash benchmarks/gpu/run.sh", carry=[".gpu"], timeout_s=600)
# Installs what the machine lacks from .gpu/wheels, then measures side by side (throughput.py):
# layerft, a plain Trainer and a raw loop, each also compiled, at batch 32 and 256, bf16, 128
# tokens, first on a random BERT-base-shaped model (the issue's targets), then on MiniLM
# (pre-trained, bf16 weights trained in fp32 masters). Each step gets at most half of what is left
# of 560 s; tables and JSON are written to $OUT after every batch size, so a cut run keeps them.
# Knobs: STEPS (default "bert_base minilm"), REPEATS (2), TRAIN (examples, 3200).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/layerft_gpu}  # the device tool sets OUT: what is written there comes back
STEPS=${STEPS:-"bert_base minilm"}
REPEATS=${REPEATS:-2}
TRAIN=${TRAIN:-3200}
mkdir -p "$OUT"
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    nproc
    python -c "import sys, torch, transformers; print(sys.version.split()[0], torch.__version__, transformers.__version__)"
} 2>&1 | tee "$OUT/machine.txt"

if ! python -m pip install --quiet --no-index --find-links .gpu/wheels -r .gpu/requirements.txt \
    > "$OUT/pip.txt" 2>&1; then
    echo "pip with dependencies failed (see pip.txt); installing the carried wheels alone" | tee -a "$OUT/machine.txt"
    python -m pip install --quiet --no-index --no-deps --find-links .gpu/wheels \
        -r .gpu/requirements.txt >> "$OUT/pip.txt" 2>&1
fi
export PYTHONPATH=$PWD HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled
python -c "import layerft.run" 2>&1 | tail -3 | tee -a "$OUT/machine.txt"

common=(--batch-sizes 32 256 --repeats "$REPEATS" --pad-to 128 --precision bf16 --compile)
# The tokenized cache stays off $OUT: only results come back.
data=(target_task=demo_sentiment "target_task.generator_sizes.train=$TRAIN"
      target_task.max_length=128 cache_dir=/tmp/layerft_gpu_cache)
steps=($STEPS)
for i in "${!steps[@]}"; do
    step=${steps[$i]}
    case $step in
        bert_base) model=(model=tiny model.tiny.hidden_size=768 model.tiny.num_layers=12
                          model.tiny.num_heads=12 model.tiny.intermediate_size=3072) ;;
        minilm) model=(model=bert_base_uncased model.name=minilm_bf16 "model.hub_id=$PWD/.gpu/minilm") ;;
        *) echo "unknown step $step"; exit 2 ;;
    esac
    left=$(( (560 - SECONDS) / (${#steps[@]} - i) ))
    echo "== $step (at most ${left} s)"
    timeout "$left" python -u benchmarks/throughput.py "${common[@]}" --json "$OUT/$step.json" \
        -- "${model[@]}" "${data[@]}" 2>&1 | grep --line-buffered -v "it/s\]" | tee "$OUT/$step.txt"
done
