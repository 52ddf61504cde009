#!/usr/bin/env bash
# Install the [pyg] extra (torch-scatter, torch-sparse) into the environment of PYTHON.
#
# Neither has wheels on PyPI, and building them in pip's isolated build environment
# would fetch a second, unpinned torch. So they are built once against the torch
# already installed (--no-build-isolation) and kept in a wheel cache keyed by the
# torch version and Python ABI; later runs, CI runs included, install from the cache
# in seconds instead of compiling for about 18 minutes on two cores (7 + 11, measured).
set -euo pipefail
PYTHON="${1:-python3}"
SCATTER="torch-scatter==2.1.2"
SPARSE="torch-sparse==0.6.18"
key="$("$PYTHON" -c 'import sys, torch; print(f"torch-{torch.__version__}-cp{sys.version_info[0]}{sys.version_info[1]}")')"
# The cache folder rlmrec.cache_dir.cache_root() names, so RLMREC_CACHE moves it all.
WHEELHOUSE="${RLMREC_WHEELHOUSE:-${RLMREC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rlmrec}/wheels}/$key"
mkdir -p "$WHEELHOUSE"
for spec in "$SCATTER" "$SPARSE"; do
    name="${spec%%==*}"; version="${spec##*==}"
    if ! ls "$WHEELHOUSE"/"${name//-/_}"-"$version"-*.whl >/dev/null 2>&1; then
        echo "building $spec against $key (several minutes; cached in $WHEELHOUSE)" >&2
        # Build tools in the target environment (a fresh venv lacks wheel; torch's
        # extension builder prefers ninja and honours MAX_JOBS with it).
        "$PYTHON" -m pip install --quiet "setuptools>=69" wheel ninja
        MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$PYTHON" -m pip wheel --quiet --no-build-isolation --no-deps \
            -w "$WHEELHOUSE" "$spec"
    fi
done
"$PYTHON" -m pip install --quiet --no-index --find-links "$WHEELHOUSE" "$SCATTER" "$SPARSE"
"$PYTHON" -c 'import torch_scatter, torch_sparse; print("pyg backend ready:", torch_scatter.__version__, torch_sparse.__version__)'
