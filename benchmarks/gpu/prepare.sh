#!/usr/bin/env bash
# Run on the development machine (it reaches the package registry; the GPU machine does not).
# Fills .gpu/ (git-ignored) with what `benchmarks/gpu/run.sh` needs on a lent GPU machine, which has
# torch and transformers but nothing else of layerft's: wheels of the other dependencies, at the
# versions installed here, and MiniLM as bf16 safetensors. A device call carries at most 64 MiB;
# pyarrow and pandas (about 70 MB) are left out and must be on the device already.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .gpu && mkdir -p .gpu/wheels

# pytest and its own: run.sh's tests step. requests and its own: datasets imports requests, and
# transformers 5 (what the device has) no longer brings it.
pure="hydra-core omegaconf datasets evaluate peft accelerate dill fsspec cloudpickle
      pytest pluggy iniconfig pygments requests urllib3 idna certifi"
binary="psutil xxhash multiprocess charset-normalizer"  # one wheel per Python version the device might run
pinned() { for p in "$@"; do echo "$p==$(python -c "import importlib.metadata as m; print(m.version('$p'))")"; done; }

pip download --quiet --no-deps --only-binary=:all: -d .gpu/wheels $(pinned $pure)
pip wheel --quiet --no-deps -w .gpu/wheels "$(pinned antlr4-python3-runtime)"  # an sdist only
for version in 3.10 3.11 3.12 3.13; do
    pip download --quiet --no-deps --only-binary=:all: --python-version "$version" \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
        -d .gpu/wheels $(pinned $binary)
done
pinned $pure $binary antlr4-python3-runtime > .gpu/requirements.txt

python benchmarks/gpu/bf16_model.py .gpu/minilm
du -sh .gpu/wheels .gpu/minilm .gpu
