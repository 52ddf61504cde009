#!/usr/bin/env bash
# A short CUDA check of the training path, for a machine with an NVIDIA GPU and a
# Python that already has torch, numpy, scipy, typer and rich (no install step).
# Usage: RLMREC_AMAZON=/path/to/amazon bash bench/cuda_check.sh [OUTDIR]
set -uo pipefail
out=${1:-/tmp/rlmrec-cuda}
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python3 - <<'PY' 2>&1 | tee "$out/env.txt"
import torch; print(torch.__version__, torch.cuda.get_device_name(), "cuda", torch.version.cuda)
PY
python3 -m pip install -q --no-deps --no-build-isolation -e . > "$out/install.txt" 2>&1 || cat "$out/install.txt"
# 1. The test suite with device auto = cuda (CPU-only assertions are skipped there).
timeout 300 python3 -m pytest -q -x -p no:cacheprovider --import-mode=importlib tests 2>&1 | tail -25 | tee "$out/tests.txt"
# 2. Speed of every model x variant on Amazon-book, on the GPU.
timeout 240 python3 bench/bench_train.py --device cuda --epochs 3 --evals 5 --no-write 2>&1 | tee "$out/bench.txt"
# 3. A full default-protocol LightGCN base run: same protocol, other device.
timeout 240 python3 bench/fidelity.py --only lightgcn:base --device cuda --no-write 2>&1 | tee "$out/fidelity.txt"
