"""Your own data, end to end, with a real LLM: raw logs -> ``data build`` -> ``profile``
-> ``embed`` (the same server's embeddings) -> ``queue lightgcn con,gen`` -> ``worker
--until-empty`` -> ``report``. The README's "Your own data, end to end" in one test."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from rlmrec.data.demo_raw import write_demo_raw

# A shop small enough that SmolLM2 on two CPU cores profiles it in about a minute.
# With the real-LLM tests on one pytest-xdist worker (test_real_llm.py says why).
pytestmark = pytest.mark.xdist_group("llm")
TINY = {"n_users": 12, "n_items": 10, "min_interactions": 4, "max_interactions": 8, "interactions_per_user": 6}


def test_raw_logs_to_report(cli, root: Path, tmp_path: Path, real_llm: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RLMREC_DB", str(tmp_path / "runs.db"))
    raw = write_demo_raw(tmp_path / "raw", **TINY)

    built = cli("data", "build", str(raw["interactions"]), "--name", "shop", "--items", str(raw["items"]),
                "--reviews", str(raw["reviews"]), "--k-core", "2", "--domain", "books")  # fmt: skip
    assert built.exit_code == 0, built.output
    folder = root / "shop"
    n_users, n_items = (sum(1 for _ in (folder / f).open()) for f in ("users.jsonl", "items.jsonl"))

    ask = ("profile", "shop", "--base-url", real_llm, "--model", "smollm2", "--concurrency", "2", "--max-tokens", "256")
    profiled = cli(*ask)
    assert profiled.exit_code == 0, profiled.output
    users = pickle.loads((folder / "usr_prf.pkl").read_bytes())
    items = pickle.loads((folder / "itm_prf.pkl").read_bytes())
    assert sorted(users) == list(range(n_users)) and sorted(items) == list(range(n_items))
    assert all(isinstance(p["profile"], str) and p["profile"].strip() for p in [*users.values(), *items.values()])
    # Run again: every answer comes from the cache, nothing is asked.
    again = cli(*ask)
    assert again.exit_code == 0, again.output
    print(again.output)
    assert pickle.loads((folder / "usr_prf.pkl").read_bytes()) == users

    embedded = cli("embed", "shop", "--base-url", real_llm, "--model", "smollm2-embed")
    assert embedded.exit_code == 0, embedded.output
    user_emb = pickle.loads((folder / "usr_emb_np.pkl").read_bytes())
    assert user_emb.shape[0] == n_users and np.isfinite(user_emb).all()
    assert cli("data", "validate", "shop", "--strict").exit_code == 0

    # Nine items: rank the top 5 (the default top-20 would exceed the catalogue).
    queued = cli("queue", "lightgcn", "con,gen", "shop", "--max-epochs", "3", "--set", "topk=5", "--json")
    assert queued.exit_code == 0, queued.output
    worked = cli("worker", "--gpus", "none", "--until-empty")
    assert worked.exit_code == 0, worked.output
    listing = json.loads(cli("ls", "--json").stdout)
    assert sorted((r["variant"], r["status"]) for r in listing) == [("con", "succeeded"), ("gen", "succeeded")]

    report = cli("report", "--dataset", "shop", "--format", "json", "--metric", "recall@5")
    assert report.exit_code == 0, report.output
    rows = json.loads(report.stdout)
    variants = {(r["model"], r["variant"]) for r in (rows if isinstance(rows, list) else rows["rows"])}
    assert {("lightgcn", "con"), ("lightgcn", "gen")} <= variants
