#!/usr/bin/env bash
# The CUDA check of the training path, for a machine with an NVIDIA GPU and a Python
# that already has torch, numpy, scipy, typer and rich (no install step).
#
# Usage: RLMREC_AMAZON=/path/to/amazon bash bench/cuda_check.sh [OUTDIR] [STEP ...]
#
# Steps (default: kernels table worker-base), with their rough cost on an H100:
#   kernels      the model, graph and loss tests on CUDA (DCCF's and AutoCF's sparse
#                kernels, the bounded log-sum-exp): ~2 min
#   tests        the whole test suite with device auto = cuda: ~5 min
#   table        bench_train.py on CUDA, all 18 model x variant pairs: ~5-7 min
#   fidelity     a full default-protocol LightGCN base run: ~1 min
#   worker-base  bench_worker.py, LightGCN base, K = 1, 2, 4 runs sharing the GPU: ~2 min
#   worker-con   the same for LightGCN Con: ~5 min
# A lent device gives 15 minutes in all and 10 per command: run the defaults in one
# call and worker-con in a second.
set -uo pipefail
out=${1:-/tmp/rlmrec-cuda}
shift || true
steps=${*:-kernels table worker-base}
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
export RLMREC_DATA=${RLMREC_DATA:-$(dirname "${RLMREC_AMAZON:-$PWD/../shared/data/amazon}")}
python3 - <<'PY' 2>&1 | tee "$out/env.txt"
import torch; print(torch.__version__, torch.cuda.get_device_name(), "cuda", torch.version.cuda)
PY
python3 -m pip install -q --no-deps --no-build-isolation -e . > "$out/install.txt" 2>&1 || cat "$out/install.txt"
for step in $steps; do
    echo "== $step $(date +%T)"
    case $step in
        kernels) timeout 240 python3 -m pytest -q -x -p no:cacheprovider --import-mode=importlib \
                     tests/models tests/test_graph.py tests/test_losses.py tests/align 2>&1 | tail -15 | tee "$out/kernels.txt" ;;
        tests) timeout 420 python3 -m pytest -q -x -p no:cacheprovider --import-mode=importlib tests 2>&1 \
                   | tail -25 | tee "$out/tests.txt" ;;
        table) timeout 480 python3 bench/bench_train.py --device cuda --epochs 3 --evals 5 --no-write 2>&1 \
                   | tee "$out/bench.txt" ;;
        fidelity) timeout 240 python3 bench/fidelity.py --only lightgcn:base --device cuda --no-write 2>&1 \
                      | tee "$out/fidelity.txt" ;;
        worker-base) timeout 300 python3 bench/bench_worker.py --device cuda --variant base --no-write 2>&1 \
                         | tee "$out/worker-base.txt" ;;
        worker-con) timeout 540 python3 bench/bench_worker.py --device cuda --variant con --no-write 2>&1 \
                        | tee "$out/worker-con.txt" ;;
        *) echo "unknown step $step" ;;
    esac
done
