"""The answer cache: every answer stored as it arrives, keyed by the request and the
model; a run killed mid-way (SIGKILL, in a real process) and run again asks only for
what was not answered; --force asks again; a dry run never writes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from profile_fakes import N_ITEMS, N_USERS, write_dataset

from rlmrec.profile.cache import CACHE_FILE, Answer, Cache, request_key


def test_the_key_is_the_whole_request() -> None:
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2}
    assert request_key(request) == request_key(dict(reversed(list(request.items()))))
    assert request_key(request) != request_key({**request, "model": "n"})
    assert request_key(request) != request_key({**request, "temperature": 0.3})
    assert request_key(request) != request_key({**request, "messages": [{"role": "user", "content": "hi!"}]})


def test_answers_are_stored_replaced_and_counted(tmp_path: Path) -> None:
    path = tmp_path / CACHE_FILE
    with Cache(path) as cache:
        assert cache.get("k", "m") is None
        cache.put("k", "m", "item", 3, {"x": 1}, Answer("failed", None, None, "oops", 10, 2, 4, "not JSON"))
        assert cache.get("k", "m") == Answer("failed", None, None, "oops", 10, 2, 4, "not JSON")
        assert cache.get("k", "other-model") is None
        cache.put("k", "m", "item", 3, {"x": 1}, Answer("ok", "P", "R", "{}", 11, 3, 1))
        assert cache.counts() == {"ok": 1}
    with Cache(path, readonly=True) as cache:  # reopened, read-only
        found = cache.get("k", "m")
        assert found is not None and found.ok and found.profile == "P"
    missing = tmp_path / "none.sqlite"
    with Cache(missing, readonly=True) as cache:
        assert cache.counts() == {}
    assert not missing.exists()


def test_a_corrupt_cache_is_a_one_line_error(cli, llm, dataset: Path, one_line_error) -> None:
    (dataset / CACHE_FILE).write_bytes(b"this is not a database" * 100)
    result = cli("profile", "shop", "--base-url", llm.url, "--model", "fake-model")
    one_line_error(result, "llm_cache.sqlite: not a usable answer cache", "move it away")


def test_the_same_prompt_is_asked_once(cli, llm, root: Path) -> None:
    folder = write_dataset(root)
    meta = [json.loads(line) for line in (folder / "items_meta.jsonl").read_text().splitlines()]
    for row in meta:  # items 6 and 7 have no training review: same metadata, same prompt
        if row["iid"] in (6, 7):
            row.update(title="Twin", description="Same.", categories=["Fiction"])
    (folder / "items_meta.jsonl").write_text("\n".join(json.dumps(r) for r in meta) + "\n")
    result = cli("profile", "shop", "--base-url", llm.url, "--model", "fake-model", "--items")
    assert result.exit_code == 0, result.output
    assert len(llm.chat_requests()) == N_ITEMS - 1 and "8 of 8 profiled" in result.output
    other = cli("profile", "shop", "--base-url", llm.url, "--model", "fake-embed", "--items")
    assert other.exit_code == 0 and len(llm.chat_requests()) == 2 * (N_ITEMS - 1)  # another model: asked


def test_a_dry_run_counts_what_the_cache_holds(cli, llm, dataset: Path) -> None:
    assert cli("profile", "shop", "--base-url", llm.url, "--model", "fake-model", "--items").exit_code == 0
    result = cli("profile", "shop", "--model", "fake-model", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"would ask: 0 items, {N_USERS} users ({N_ITEMS} answered already in the cache)" in result.stdout
    assert '"profile": "A book profile about Title0."' in result.stdout  # user prompts show cached profiles
    forced = cli("profile", "shop", "--model", "fake-model", "--dry-run", "--force")
    assert f"would ask: {N_ITEMS} items" in forced.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_killed_run_resumes_without_asking_again(cli, llm, root: Path) -> None:
    folder = write_dataset(root)
    llm.hold_after = 5  # the sixth request never gets its answer: the process dies waiting
    command = [sys.executable, "-m", "rlmrec", "profile", "shop", "--base-url", llm.url, "--model", "fake-model"]
    env = {**os.environ, "RLMREC_DATA": str(root)}
    process = subprocess.Popen(
        [*command, "--concurrency", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while len(llm.chat_requests()) < 6 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert len(llm.chat_requests()) == 6, process.poll()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    llm.hold_after = None
    llm.release.set()
    with Cache(folder / CACHE_FILE, readonly=True) as cache:
        assert cache.counts() == {"ok": 5}  # every answer that arrived, and only those
    assert not (folder / "itm_prf.pkl").exists()

    result = cli("profile", "shop", "--base-url", llm.url, "--model", "fake-model")
    assert result.exit_code == 0, result.output
    assert len(llm.chat_requests()) == 6 + (N_ITEMS + N_USERS - 5)  # the 5 answered are not asked again
    assert "5 from the cache" in result.output
