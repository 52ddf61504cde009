"""Test doubles for ``rlmrec profile`` and ``rlmrec embed --base-url`` (importable; the
fixtures are in tests/profile/conftest.py): a small dataset folder in the format
``rlmrec data build`` writes, with held-out data marked so that a leak shows, and a
scriptable OpenAI-compatible server on 127.0.0.1 (stdlib http.server in a thread) that
records what it is asked."""

from __future__ import annotations

import json
import pickle
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

SECRET = "sk-test-SECRET-MARKER-4242"
N_USERS, N_ITEMS = 6, 8
# (user, item) pairs. Item 6 is only ever held out; item 7 has no training review (and,
# with bare_item, no metadata either: nothing to describe). Every user has training items.
TRAIN = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 3), (2, 2), (2, 4), (3, 0), (3, 5), (4, 3), (4, 4), (5, 5), (5, 7), (1, 0)]
VALID = [(0, 3), (1, 6), (2, 5), (3, 1), (4, 0), (5, 2)]
TEST = [(0, 4), (1, 2), (2, 6), (3, 3), (4, 5), (5, 0)]


def title(i: int) -> str:
    return f"HELDOUT-ONLY-{i}" if i == 6 else f"Title{i}"


def _matrix(pairs: list[tuple[int, int]]) -> sp.csr_matrix:
    rows, cols = zip(*pairs, strict=True)
    return sp.csr_matrix((np.ones(len(pairs)), (rows, cols)), shape=(N_USERS, N_ITEMS))


def write_dataset(
    root: Path, name: str = "shop", *, domain: str | None = "books", meta: bool = True, bare_item: bool = False
) -> Path:
    """A dataset folder as ``rlmrec data build`` writes it. Reviews of validation and test
    pairs, and a review labelled train whose pair is not in trn_mat, carry LEAK markers."""
    folder = root / name
    folder.mkdir(parents=True)
    for fname, pairs in (("trn_mat.pkl", TRAIN), ("val_mat.pkl", VALID), ("tst_mat.pkl", TEST)):
        (folder / fname).write_bytes(pickle.dumps(_matrix(pairs)))
    lines = [json.dumps({"uid": u, "user_id": f"U{u}"}) for u in range(N_USERS)]
    (folder / "users.jsonl").write_text("\n".join(lines) + "\n")
    lines = [json.dumps({"iid": i, "asin": f"A{i}"}) for i in range(N_ITEMS)]
    (folder / "items.jsonl").write_text("\n".join(lines) + "\n")
    if meta:
        rows = [
            {"iid": i, "title": title(i), "description": f"About item {i}.", "categories": ["Fiction", f"C{i}"]}
            for i in range(N_ITEMS - 1 if bare_item else N_ITEMS)
        ]
        rows[1]["price"] = None  # nulls are dropped
        (folder / "items_meta.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    reviews: list[dict[str, Any]] = []
    for split, pairs in (("train", TRAIN), ("valid", VALID), ("test", TEST)):
        for u, i in pairs:
            if (u, i) == (5, 7):
                continue  # item 7 keeps no training review
            text = f"review by u{u} of i{i}" if split == "train" else f"LEAK-{split}-u{u}-i{i}"
            reviews.append({"uid": u, "iid": i, "split": split, "text": text, "rating": 4.0})
    # A file that disagrees with the matrices: labelled train, but the pair is validation data.
    reviews.append({"uid": 0, "iid": 3, "split": "train", "text": "LEAK-mislabelled-u0-i3"})
    (folder / "reviews.jsonl").write_text("\n".join(json.dumps(r) for r in reviews) + "\n")
    if domain is not None:
        (folder / "build.json").write_text(json.dumps({"domain": domain, "recipe": "test"}))
    return folder


def held_out_titles(user: int) -> set[str]:
    return {title(i) for u, i in VALID + TEST if u == user}


# ---------------------------------------------------------------------- the server


def default_answer(prompt: str) -> str:
    """A valid answer that quotes what it profiles: an item's title, or the titles a
    user's prompt lists."""
    titles = re.findall(r'"title": "([^"]+)"', prompt)
    kind = "reader" if "profile of this reader" in prompt else "book"
    return json.dumps({"summarization": f"A {kind} profile about {', '.join(titles)}.", "reasoning": "From the data."})


class FakeLLM:
    """An OpenAI-compatible server. ``script`` holds what the next chat requests get, in
    order (then ``default_answer``): ``("json", text)`` an answer with that content,
    ``("status", code, body, headers)``, ``("sleep", s)`` a slow good answer,
    ``("truncate",)`` a body cut short, ``("garbled",)`` a body that is not JSON."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[tuple[Any, ...]] = []
        self.models: list[str] | None = ["fake-model", "fake-embed"]
        self.status_all: tuple[int, dict[str, Any]] | None = None  # every chat request gets this
        self.hold_after: int | None = None  # chat requests past this count wait for `release`
        self.release = threading.Event()
        self.lock = threading.Lock()
        # JSON modes accepted ("json_schema", "json_object+schema", "json_object"); None: all.
        self.formats: set[str] | None = None
        self.refusal_status = 400  # llama-cpp-python answers 500
        self.only_completion_tokens = False  # refuse max_tokens, as OpenAI's reasoning models do
        self.honours_dimensions = True  # embeddings of the asked size, as text-embedding-3 models give
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, obj: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.endswith("/models") and fake.models is not None:
                    self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with fake.lock:
                    fake.requests.append(
                        {"path": self.path, "body": body, "auth": self.headers.get("Authorization"), "at": time.time()}
                    )
                    count = sum(1 for r in fake.requests if r["path"].endswith("/chat/completions"))
                    step = fake.script.pop(0) if fake.script and self.path.endswith("/chat/completions") else None
                if self.path.endswith("/embeddings"):
                    return self._embeddings(body)
                if fake.hold_after is not None and count > fake.hold_after:
                    fake.release.wait(20)
                if fake.status_all is not None:
                    return self._send(*fake.status_all)
                if fake.only_completion_tokens and "max_tokens" in body:
                    message = (
                        "Unsupported parameter: 'max_tokens' is not supported with this model."
                        " Use 'max_completion_tokens' instead."
                    )
                    error = {"message": message, "param": "max_tokens", "code": "unsupported_parameter"}
                    return self._send(400, {"error": error})
                fmt = body.get("response_format")
                if fmt is not None and fake.formats is not None:
                    mode = fmt["type"] + ("+schema" if "schema" in fmt else "")
                    if mode not in fake.formats:
                        message = f"1 validation error:\n response_format {mode} is not supported"
                        return self._send(fake.refusal_status, {"error": {"message": message}})
                self._chat(body, step)

            def _chat(self, body: dict[str, Any], step: tuple[Any, ...] | None) -> None:
                content = default_answer(body["messages"][1]["content"])
                if step is not None and step[0] == "status":
                    return self._send(step[1], step[2], step[3] if len(step) > 3 else None)
                if step is not None and step[0] == "sleep":
                    time.sleep(step[1])
                if step is not None and step[0] == "json":  # ("ok",) keeps the default answer
                    content = step[1]
                reply = {
                    "id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                }  # fmt: skip
                if step is not None and step[0] in ("truncate", "garbled"):
                    data = json.dumps(reply).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    if step[0] == "truncate":  # promise the whole body, send a third, hang up
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data[: len(data) // 3])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    garbled = data[: len(data) // 2]
                    self.send_header("Content-Length", str(len(garbled)))
                    self.end_headers()
                    self.wfile.write(garbled)
                    return
                self._send(200, reply)

            def _embeddings(self, body: dict[str, Any]) -> None:
                texts = body["input"]
                data = []
                for n, text in enumerate(texts):
                    rng = np.random.default_rng(sum(text.encode()) + len(text))
                    size = body.get("dimensions", 8) if fake.honours_dimensions else 8
                    data.append({"object": "embedding", "index": n, "embedding": rng.standard_normal(size).tolist()})
                self._send(200, {"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 5}})

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hung up (timeouts, the killed process): expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def chat_requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
