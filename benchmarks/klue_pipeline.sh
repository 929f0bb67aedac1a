#!/usr/bin/env bash
# The paper's pipeline offline on MiniLM with the shared KLUE samples: DP injection, then NLI / STS,
# against no injection. One process at a time.
cd "$(dirname "$0")/.."
S=../shared/data/klue
mkdir -p "${OUT:-/tmp/klue_pipeline}"
for target in klue_nli klue_sts; do
  for injection in klue_dp none; do
    name=${injection}_${target}
    /usr/bin/time -f "%e s wall" python train.py tracker=none cache_dir=${CACHE:-/tmp/klue_pipeline/cache} \
      injection_task=$injection injection_task.data_dir=$S/klue-dp-v1.1 \
      target_task=$target target_task.data_dir=$S/${target/_/-}-v1.1 \
      hydra.run.dir=${OUT:-/tmp/klue_pipeline}/$name > ${OUT:-/tmp/klue_pipeline}/$name.log 2>&1
    echo "$name rc=$? $(tail -n 1 ${OUT:-/tmp/klue_pipeline}/$name.log)"
  done
done
