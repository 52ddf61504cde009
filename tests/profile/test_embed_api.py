"""``rlmrec embed --base-url``: profiles -> embeddings through an OpenAI-compatible
server, batched, retried, and cached (a rerun sends nothing)."""

from __future__ import annotations

import pickle
import threading
import time
from pathlib import Path

import numpy as np
from profile_fakes import N_ITEMS, N_USERS, SECRET

from rlmrec.data import load_folder
from rlmrec.profile.cache import CACHE_FILE


def _profiles(folder: Path, n: int, what: str, same: bool = False) -> None:
    data = {i: {"profile": f"{what} {0 if same else i} profile", "reasoning": "r"} for i in range(n)}
    (folder / f"{'usr' if what == 'user' else 'itm'}_prf.pkl").write_bytes(pickle.dumps(data))


def _embeddings(llm) -> list[dict]:
    return [r for r in llm.requests if r["path"].endswith("/embeddings")]


def test_embed_through_a_server_batched_and_cached(cli, llm, dataset: Path) -> None:
    _profiles(dataset, N_USERS, "user")
    _profiles(dataset, N_ITEMS, "item")
    args = ["embed", "shop", "--base-url", llm.url, "--model", "fake-embed", "--batch-size", "4"]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    sent = _embeddings(llm)
    assert sorted(len(r["body"]["input"]) for r in sent) == [2, 4, 4, 4]  # 14 distinct texts, 4 a request
    assert all(r["body"]["model"] == "fake-embed" and r["body"]["encoding_format"] == "float" for r in sent)
    ds = load_folder(dataset)
    assert ds.user_emb is not None and ds.item_emb is not None and ds.user_emb.shape == (N_USERS, 8)
    np.testing.assert_allclose(np.linalg.norm(ds.item_emb, axis=1), 1.0, rtol=1e-5)
    assert "with fake-embed on http://127.0.0.1" in result.output

    again = cli(*args, "--no-normalize")
    assert again.exit_code == 0 and len(_embeddings(llm)) == 4  # all from the cache
    raw = load_folder(dataset).user_emb
    assert raw is not None and not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in dataset.glob(CACHE_FILE + "*"))


def test_identical_texts_are_sent_once_and_errors_are_retried(cli, llm, dataset: Path, monkeypatch) -> None:
    _profiles(dataset, N_USERS, "user", same=True)
    _profiles(dataset, N_ITEMS, "item", same=True)
    calls = {"n": 0}
    real = llm.server.RequestHandlerClass.do_POST

    def flaky(handler) -> None:  # the first embeddings request gets a 503
        if handler.path.endswith("/embeddings") and calls["n"] == 0:
            calls["n"] += 1
            handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
            handler._send(503, {"error": {"message": "busy"}})
            return
        real(handler)

    monkeypatch.setattr(llm.server.RequestHandlerClass, "do_POST", flaky)
    result = cli("embed", "shop", "--base-url", llm.url, "--model", "fake-embed")
    assert result.exit_code == 0, result.output
    (sent,) = _embeddings(llm)
    assert calls["n"] == 1  # the 503 came first, then this retry
    assert sorted(sent["body"]["input"]) == ["item 0 profile", "user 0 profile"]
    ds = load_folder(dataset)
    assert ds.user_emb is not None and np.allclose(ds.user_emb, ds.user_emb[0])


def test_embed_api_errors_are_one_line(cli, llm, dataset: Path, closed_port: str, one_line_error) -> None:
    _profiles(dataset, N_USERS, "user")
    _profiles(dataset, N_ITEMS, "item")
    one_line_error(cli("embed", "shop", "--base-url", closed_port), f"cannot reach {closed_port}")
    # The paper's model is the default; this server does not list it.
    one_line_error(cli("embed", "shop", "--base-url", llm.url), "unknown model 'text-embedding-ada-002'")
    assert not (dataset / "usr_emb_np.pkl").exists()


def test_concurrency_bounds_the_requests_in_flight(cli, llm, dataset: Path, monkeypatch, one_line_error) -> None:
    _profiles(dataset, N_USERS, "user")
    _profiles(dataset, N_ITEMS, "item")
    real = llm.server.RequestHandlerClass._embeddings
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def slow(handler, body) -> None:  # each request takes a while, so overlaps show
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.2)
        with lock:
            state["now"] -= 1
        real(handler, body)

    monkeypatch.setattr(llm.server.RequestHandlerClass, "_embeddings", slow)
    args = ["embed", "shop", "--base-url", llm.url, "--model", "fake-embed", "--batch-size", "2"]
    assert cli(*args, "--concurrency", "3").exit_code == 0  # 7 requests of 2 texts
    assert state["peak"] == 3
    state["peak"] = 0
    (dataset / CACHE_FILE).unlink()
    assert cli(*args, "--concurrency", "1").exit_code == 0
    assert state["peak"] == 1
    one_line_error(cli("embed", "shop", "--concurrency", "2"), "--concurrency applies to a server (--base-url)")


def test_without_a_terminal_progress_comes_as_log_lines(cli, llm, dataset: Path, monkeypatch) -> None:
    from rlmrec.cli import data as data_cli

    _profiles(dataset, N_USERS, "user")
    _profiles(dataset, N_ITEMS, "item")
    args = ["embed", "shop", "--base-url", llm.url, "--model", "fake-embed", "--batch-size", "4", "--concurrency", "1"]
    result = cli(*args)  # the default interval: a run this short leaves it to its result line
    assert result.exit_code == 0, result.output
    assert "embedding shop" not in result.stderr and "wrote usr_emb_np.pkl" in result.stdout
    monkeypatch.setattr(data_cli, "LOG_EVERY_S", 0.0)
    (dataset / CACHE_FILE).unlink()
    result = cli(*args)
    counts = [line.split(" embedding shop: ")[1].split(" of ")[0] for line in result.stderr.splitlines()]
    assert counts == ["0", "4", "8", "12", "14"]  # the cache's empty start, then each batch of 4
    assert "14 of 14 (100%) texts" in result.stderr


def test_dimensions_are_asked_for_and_checked(cli, llm, dataset: Path, one_line_error) -> None:
    _profiles(dataset, N_USERS, "user")
    _profiles(dataset, N_ITEMS, "item")
    args = ["embed", "shop", "--base-url", llm.url, "--model", "fake-embed"]
    assert cli(*args, "--dimensions", "4").exit_code == 0
    assert {r["body"]["dimensions"] for r in _embeddings(llm)} == {4}
    ds = load_folder(dataset)
    assert ds.user_emb is not None and ds.user_emb.shape == (N_USERS, 4)
    sent = len(_embeddings(llm))
    assert cli(*args).exit_code == 0  # the full size is another question: asked, not taken from the cache
    assert len(_embeddings(llm)) > sent and "dimensions" not in _embeddings(llm)[-1]["body"]
    assert load_folder(dataset).user_emb.shape == (N_USERS, 8)
    llm.honours_dimensions = False
    one_line_error(cli(*args, "--dimensions", "2"), "asked for 2 dimensions, got 8", "ignores --dimensions")
    assert load_folder(dataset).user_emb.shape == (N_USERS, 8)  # the files from before are untouched
    one_line_error(cli("embed", "shop", "--dimensions", "2"), "--dimensions applies to a server (--base-url)")
