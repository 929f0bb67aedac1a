#!/usr/bin/env bash
# On a lent GPU machine (no network), after benchmarks/gpu/prepare.sh filled .gpu/ here:
#   run(command="STEPS=bert_base bash benchmarks/gpu/run.sh", carry=[".gpu"], timeout_s=600)
# then STEPS=minilm in a second call: one step takes up to 9 minutes, a call at most 10.
# Installs what the machine lacks from .gpu/wheels, then measures side by side (throughput.py):
# layerft, a plain Trainer and a raw loop, each also compiled, at batch 32 and 256, bf16, 128
# tokens, on a random BERT-base-shaped model (the issue's targets) and on MiniLM (pre-trained).
# Writes the tables and JSON under $OUT. STEPS picks what to run (default: all).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/layerft_gpu}  # the device tool sets OUT: what is written there comes back
STEPS=${STEPS:-"bert_base minilm"}
REPEATS=${REPEATS:-3}
TRAIN=${TRAIN:-6400}
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
python -c "import layerft.run" || { echo "layerft does not import: see $OUT/pip.txt"; exit 1; }

export PYTHONPATH=$PWD HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled
common=(--batch-sizes 32 256 --repeats "$REPEATS" --pad-to 128 --precision bf16 --compile)
data=(target_task=demo_sentiment "target_task.generator_sizes.train=$TRAIN" target_task.max_length=128
      "cache_dir=$OUT/cache")
for step in $STEPS; do
    case $step in
        bert_base) model=(model=tiny model.tiny.hidden_size=768 model.tiny.num_layers=12
                          model.tiny.num_heads=12 model.tiny.intermediate_size=3072) ;;
        minilm) model=(model=bert_base_uncased model.name=minilm_bf16 "model.hub_id=$PWD/.gpu/minilm") ;;
        *) echo "unknown step $step"; exit 2 ;;
    esac
    echo "== $step"
    timeout 540 python benchmarks/throughput.py "${common[@]}" --json "$OUT/$step.json" \
        -- "${model[@]}" "${data[@]}" 2>&1 | grep -v "it/s\]" | tee "$OUT/$step.txt"
done
