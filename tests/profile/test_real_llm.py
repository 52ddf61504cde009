"""Against a real model: SmolLM2-135M-Instruct behind llama-cpp-python's OpenAI-compatible
server (``RLMREC_TEST_LLM``, started by .ci/llm-server.sh; skipped locally without it,
a failure in CI). That server refuses JSON schemas in the OpenAI form (with a 500) and
takes them as ``json_object`` + ``schema``, which constrains decoding; the model still
runs out of tokens or writes empty fields, so the retry path runs for real. Whatever it
does, every entity ends with a profile or on the failure list, and a rerun asks only for
what is missing."""

from __future__ import annotations

import pickle
import re
import sqlite3
from pathlib import Path

import pytest
from profile_fakes import N_ITEMS, N_USERS, write_dataset

from rlmrec.data import load_folder
from rlmrec.data.dataset import load_profiles
from rlmrec.profile.cache import CACHE_FILE

# Small enough for two shared cores: user 0 shows two items, so three prompts (plus retries).
# One pytest-xdist worker for the real-LLM tests: the local server answers one request
# at a time, and tests sharing it would each wait for the other's answers.
pytestmark = pytest.mark.xdist_group("llm")
SMALL = ["--limit", "1", "--items-per-user", "2", "--reviews-per-item", "2", "--concurrency", "2"]
SHORT = ["--max-tokens", "200", "--max-prompt-tokens", "1200", "--temperature", "0", "--timeout", "300"]


def _rows(folder: Path) -> list[tuple[str, str, int, str | None, str | None]]:
    with sqlite3.connect(folder / CACHE_FILE) as db:
        return db.execute("SELECT kind, status, attempts, profile, error FROM answers").fetchall()


def test_a_few_profiles_from_a_real_model(cli, real_llm: str, root: Path) -> None:
    folder = write_dataset(root)
    args = ["profile", "shop", "--base-url", real_llm, "--model", "smollm2", *SMALL, *SHORT]
    result = cli(*args)
    assert result.exit_code in (0, 1), result.output
    rows = _rows(folder)
    assert {kind for kind, *_ in rows} <= {"item", "user"} and len([r for r in rows if r[0] == "item"]) == 2
    for _kind, status, attempts, profile, error in rows:
        assert 1 <= attempts <= 4
        if status == "ok":
            assert profile and profile.strip() == profile
        else:
            assert error and ("not the requested JSON" in error or "HTTP" in error), error
    listed = re.findall(r"^  (item|user) (\d+): ", result.stdout, re.M)
    assert len(listed) == len([r for r in rows if r[1] == "failed"]) + result.stdout.count("waiting for")
    if result.exit_code == 1:
        assert result.stderr.startswith("error: ") and "profiles missing" in result.stderr

    # A rerun asks only for what has no profile yet.
    answered = len([r for r in rows if r[1] == "ok"])
    again = cli(*args)
    assert again.exit_code in (0, 1), again.output
    assert sum(int(n) for n in re.findall(r"(\d+) from the cache", again.stdout)) == answered
    if not listed:
        assert "0 requests" in again.stdout


def test_answers_cut_at_the_token_limit_are_asked_again_then_fail(cli, real_llm: str, root: Path) -> None:
    folder = write_dataset(root)
    result = cli(
        "profile", "shop", "--base-url", real_llm, "--model", "smollm2", "--items", "--limit", "2",
        "--max-tokens", "6", "--retries", "1", "--temperature", "0", "--timeout", "300",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    rows = _rows(folder)
    assert len(rows) == 2 and all(status == "failed" and attempts == 2 for _, status, attempts, *_ in rows)
    assert all("cut off at the token limit" in (error or "") for *_, error in rows)
    assert "item 0: not the requested JSON: the answer was cut off" in result.stdout
    assert "JSON mode: json_object+schema" in result.stdout
    assert not (folder / "itm_prf.pkl").exists()


def test_write_show_and_embed_with_the_real_server(cli, real_llm: str, root: Path) -> None:
    folder = write_dataset(root)
    result = cli(
        "profile", "shop", "--base-url", real_llm, "--model", "smollm2", "--items", *SMALL, *SHORT,
        "--allow-missing", "--retries", "4",
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    if (folder / "itm_prf.pkl").exists():
        profiles = load_profiles(folder / "itm_prf.pkl")
        assert profiles and all(p["profile"] for p in profiles.values())
        shown = cli("data", "show", "shop", "--item", str(next(iter(profiles))))
        assert shown.exit_code == 0 and "PROFILE:" in shown.output

    # Embeddings through the same server (alias smollm2-embed), written next to the splits.
    for fname, n in (("usr_prf.pkl", N_USERS), ("itm_prf.pkl", N_ITEMS)):
        texts = {i: {"profile": f"Enjoys books about topic {i % 3}.", "reasoning": ""} for i in range(n)}
        (folder / fname).write_bytes(pickle.dumps(texts))
    embedded = cli("embed", "shop", "--base-url", real_llm, "--model", "smollm2-embed", "--batch-size", "8")
    assert embedded.exit_code == 0, embedded.output
    ds = load_folder(folder)
    assert ds.user_emb is not None and ds.item_emb is not None
    assert ds.user_emb.shape[0] == N_USERS and ds.item_emb.shape == (N_ITEMS, ds.user_emb.shape[1])
    assert (ds.user_emb[0] == ds.user_emb[3]).all()  # the same text, the same (cached) vector
