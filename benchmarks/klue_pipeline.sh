#!/usr/bin/env bash
# The paper's pipeline offline with the shared KLUE samples: DP injection, then NLI / STS, against
# no injection. One process at a time. MODEL (default minilm) picks the backbone; any arguments are
# extra overrides for every run (e.g. injection_task.evals_per_epoch=1).
#   [MODEL=e5_small_offline] [OUT=/tmp/klue_pipeline] [CACHE=...] bash benchmarks/klue_pipeline.sh [overrides...]
cd "$(dirname "$0")/.."
S=../shared/data/klue
OUT=${OUT:-/tmp/klue_pipeline}
mkdir -p "$OUT"
for target in klue_nli klue_sts; do
  for injection in klue_dp none; do
    name=${injection}_${target}
    /usr/bin/time -f "%e s wall" python train.py tracker=none cache_dir=${CACHE:-$OUT/cache} \
      model=${MODEL:-minilm} \
      injection_task=$injection injection_task.data_dir=$S/klue-dp-v1.1 \
      target_task=$target target_task.data_dir=$S/${target/_/-}-v1.1 \
      hydra.run.dir=$OUT/$name "$@" > $OUT/$name.log 2>&1
    echo "$name rc=$? $(tail -n 1 $OUT/$name.log)"
  done
done
