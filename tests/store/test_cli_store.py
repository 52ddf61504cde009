"""The store commands through the CLI: ``queue``, ``ls``, ``show``, ``logs``, ``cancel``,
``retry``, ``rm``, ``priority``. The store is filled through the ``Store`` API, so
nothing trains and every test takes milliseconds."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rlmrec.cli.main import app
from typer.testing import CliRunner, Result

from rlmrec.store import FAILED, SUCCEEDED, RunInfo, RunSpec, Store

VALID = {"recall@20": 0.25, "ndcg@20": 0.125}
TEST = {"recall@20": 0.2, "ndcg@20": 0.1}


def cli(*args: Any) -> Result:
    """``rlmrec ARGS``; a hung command (``logs -f``) fails after 20 s instead of hanging."""

    def hung(*_: Any) -> None:
        raise TimeoutError(f"rlmrec {' '.join(map(str, args))} did not return")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        return CliRunner().invoke(app, [str(a) for a in args])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def ok(*args: Any) -> Result:
    result = cli(*args)
    assert result.exit_code == 0, result.output
    return result


def error_line(result: Result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an escaped exception
    assert result.stdout == "" and "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def spec(**values: Any) -> RunSpec:
    base: dict[str, Any] = {"model": "lightgcn", "variant": "base", "dataset": "demo", "seed": 2023}
    base["config"] = {"model": "lightgcn", "epochs": 10, "lr": 0.001}
    return RunSpec(**(base | values))


def start(store: Store, expect: int) -> RunInfo:
    """Claim the next run (which must be ``expect``) as a worker's child would."""
    run = store.claim("w1", "hostA", 4242, "cpu")
    assert run is not None and run.id == expect
    store.begin_attempt(run.id, run.attempt, pid=4242, code_version="abc123", resume_epoch=None)
    return run


def train(store: Store, run: RunInfo, epochs: int = 2) -> None:
    for e in range(1, epochs + 1):
        losses = {"bpr": 0.5 / e, "reg": 0.01}
        store.record_epoch(run.id, run.attempt, e, losses, 1.5, 1.5 * e, message=f"epoch {e} done")
    store.record_eval(run.id, run.attempt, epochs, VALID, 0.3, (epochs, VALID["recall@20"], VALID), "validated")


def finish(store: Store, run: RunInfo, status: str) -> None:
    train(store, run)
    ok_ = {"test_metrics": TEST, "test_value": TEST["recall@20"], "seconds": 3.0}
    store.finish(run.id, run.attempt, status, **(ok_ if status == SUCCEEDED else {"error": "boom: out of memory"}))


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    """A store of each backend (for commands whose effect depends on it)."""
    s = Store(store_url, tmp_path / "art")
    yield s
    s.close()


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Store]:
    """A SQLite store, for commands that only read."""
    s = Store(f"sqlite:///{tmp_path / 'runs.db'}", tmp_path / "art")
    yield s
    s.close()


# -- queue ------------------------------------------------------------------------


def queue(store: Store, tmp_path: Path, *args: Any) -> dict[str, Any]:
    result = ok("queue", *args, "--db", store.url, "--data-root", tmp_path / "data", "--json")
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def test_queue_cross_product_of_lists_all_and_seeds(lite: Store, tmp_path: Path) -> None:
    out = queue(lite, tmp_path, "lightgcn,gccf", "all", "demo", "--seeds", "3")
    runs = lite.runs(with_config=True)
    assert [r.id for r in runs] == out["ids"] and len(out["ids"]) == 2 * 3 * 3
    combos = {(r.model, r.variant, r.dataset, r.seed) for r in runs}
    assert combos == {(m, v, "demo", s) for m in ("lightgcn", "gccf") for v in ("base", "con", "gen")
                      for s in (2023, 2024, 2025)}  # fmt: skip
    assert all(r.group == out["group"] and r.status == "queued" for r in runs)
    assert all(r.config is not None and r.config["seed"] == r.seed for r in runs)
    assert all(r.config is not None and (r.config["model"], r.config["variant"]) == (r.model, r.variant) for r in runs)


def test_queue_repeated_seed_and_a_grid_but_list_values_do_not_expand(lite: Store, tmp_path: Path) -> None:
    args = ["lightgcn", "base", "demo", "--seed", "7", "--seed", "9", "--set", "topk=5,20"]
    text = ok("queue", *args, "--group", "g7", "--db", lite.url, "--data-root", tmp_path).stdout
    assert "queued 2 run(s): ids 1-2, group g7" in text  # topk is a list setting: one value, not a grid axis
    assert "watch: rlmrec ls, rlmrec logs ID -f" in text  # one line to copy, even past 80 columns
    two = queue(lite, tmp_path, *args, "--set", "lr=1e-3,2e-3")
    assert len(two["ids"]) == 4  # the lr grid doubles the runs
    runs = lite.runs(ids=two["ids"], with_config=True)
    got = sorted((r.seed, r.config["lr"]) for r in runs if r.config)
    assert got == [(7, 0.001), (7, 0.002), (9, 0.001), (9, 0.002)]
    assert all(r.config and r.config["topk"] == [5, 20] and r.config["seed"] == r.seed for r in runs)
    assert two["group"] != "g7" and [r.group for r in lite.runs(ids=[1, 2])] == ["g7", "g7"]


def test_queue_stores_priority_tags_note_group_and_epochs(lite: Store, tmp_path: Path) -> None:
    args = ["gccf", "plus", "demo", "--priority", "3", "--tag", "ablation", "--tag", "v2", "--note", "first try",
            "--group", "mine", "--max-epochs", "5"]  # fmt: skip
    out = queue(lite, tmp_path, *args)
    assert out["group"] == "mine" and len(out["ids"]) == 1
    run = lite.get(out["ids"][0])
    assert (run.model, run.variant, run.seed, run.status) == ("gccf", "con", 2023, "queued")  # alias resolved
    assert (run.priority, run.tags, run.note, run.group) == (3, ["ablation", "v2"], "first try", "mine")
    assert run.config is not None and run.config["epochs"] == 5 and run.epochs_planned == 5
    assert run.data_root == str((tmp_path / "data").absolute())


def _dataset_without_embeddings(root: Path) -> None:
    (root / "mine").mkdir(parents=True)
    for name in ("trn_mat.pkl", "val_mat.pkl", "tst_mat.pkl"):
        (root / "mine" / name).write_bytes(b"")


QUEUE_ERRORS = {
    "unknown model": (["lightgcm", "base", "demo"], ["unknown model 'lightgcm'", "did you mean 'lightgcn'"]),
    "one unknown in a list": (["lightgcn,gcfc", "base", "demo"], ["unknown model 'gcfc'", "did you mean 'gccf'"]),
    "unknown variant": (["lightgcn", "contra", "demo"], ["unknown variant 'contra'"]),
    "malformed --set": (["lightgcn", "base", "demo", "--set", "lr"], ["malformed --set 'lr'", "key=value"]),
    "unknown key": (["lightgcn", "base", "demo", "--set", "learning_rate=0.1"], ["unknown --set key 'learning_rate'"]),
    "key unknown to one model": (["lightgcn,gccf", "base", "demo", "--set", "keep_rate=0.5"], ["'keep_rate' for gccf"]),
    "empty grid value": (["lightgcn", "base", "demo", "--set", "lr=1e-3,"], ["empty value in the comma list"]),
    "bad value": (["lightgcn", "base", "demo", "--set", "layer_num=two"], ["bad value for 'layer_num'"]),
    "unknown dataset": (["lightgcn", "base", "nosuch"], ["unknown dataset 'nosuch'", "available: mine"]),
    "no embeddings": (["lightgcn", "base,gen", "mine"], ["mine/usr_emb_np.pkl: missing", "need profile embeddings"]),
    "zero seeds": (["lightgcn", "base", "demo", "--seeds", "0"], ["--seeds must be >= 1"]),
    "seeds and seed": (["lightgcn", "base", "demo", "--seeds", "2", "--seed", "1"], ["not both"]),
    "markup in a name": (["[/x]", "base", "demo"], ["unknown model '[/x]'"]),
}


@pytest.mark.parametrize("case", list(QUEUE_ERRORS))
def test_queue_validates_everything_before_writing(lite: Store, tmp_path: Path, case: str) -> None:
    args, fragments = QUEUE_ERRORS[case]
    lite.add_runs([spec(), spec(seed=1)])
    root = tmp_path / "data"
    _dataset_without_embeddings(root)
    error_line(cli("queue", *args, "--db", lite.url, "--data-root", root), *fragments)
    assert [r.id for r in lite.runs()] == [1, 2]  # nothing queued, not even the valid part
    assert not (root / "mine" / "usr_emb_np.pkl").exists()


# -- ls ---------------------------------------------------------------------------


def _three_runs(store: Store) -> None:
    """1: lightgcn running (g1), 2: lightgcn queued (g1), 3: gccf/gen cancelled (g2)."""
    store.add_runs([spec(group="g1"), spec(group="g1", seed=2024)])
    store.add_runs([spec(model="gccf", variant="gen", group="g2")])
    start(store, 1)
    store.cancel([3])


def ls(store: Store, *args: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(ok("ls", "--db", store.url, "--json", *args).stdout)
    return out


def test_ls_table_lists_ids_and_statuses(lite: Store) -> None:
    _three_runs(lite)
    rows = [line.split() for line in ok("ls", "--db", lite.url).stdout.splitlines()]
    assert rows[0][:6] == ["id", "model", "variant", "dataset", "seed", "status"]
    assert {r[0]: r[5] for r in rows[1:4]} == {"1": "running", "2": "queued", "3": "cancelled"}
    assert rows[3][1:5] == ["gccf", "gen", "demo", "2023"]
    assert rows[4] == ["1", "running", "1", "queued", "1", "cancelled"]


LS_FILTERS = [
    ([], [1, 2, 3]), (["--status", "running"], [1]), (["--status", "queued,cancelled"], [2, 3]),
    (["--status", "queued", "--status", "running"], [1, 2]), (["--model", "gccf"], [3]),
    (["--variant", "base"], [1, 2]), (["--group", "g1"], [1, 2]), (["--last", "2"], [2, 3]),
    (["-n", "1", "--model", "lightgcn"], [2]), (["--status", "failed"], []),
]  # fmt: skip


@pytest.mark.parametrize(("args", "ids"), LS_FILTERS)
def test_ls_filters(lite: Store, args: list[str], ids: list[int]) -> None:
    _three_runs(lite)
    assert [r["id"] for r in ls(lite, *args)] == ids


def test_ls_json_has_listing_fields_but_no_config(lite: Store) -> None:
    _three_runs(lite)
    first = ls(lite)[0]
    expected = {"id": 1, "model": "lightgcn", "variant": "base", "dataset": "demo", "seed": 2023, "group": "g1",
                "status": "running", "priority": 0, "attempt": 1, "host": "hostA", "pid": 4242, "tags": []}  # fmt: skip
    assert expected.items() <= first.items()
    assert {"epoch", "best_valid", "test_value", "created_at", "started_at", "cancel_requested"} <= set(first)
    assert "config" not in first


def test_ls_empty_and_unmatched_and_unknown_status(lite: Store) -> None:
    assert ok("ls", "--db", lite.url).stdout.strip() == "no runs yet"
    lite.add_runs([spec()])
    assert ok("ls", "--db", lite.url, "--status", "failed").stdout.strip() == "no runs match"
    error_line(cli("ls", "--db", lite.url, "--status", "done"), "unknown status 'done'", "queued", "lost")


# -- show and logs ------------------------------------------------------------------


def test_show_json_and_text(lite: Store) -> None:
    lite.add_runs([spec(note="n1", tags=("t",))])
    finish(lite, start(lite, 1), SUCCEEDED)
    payload = json.loads(ok("show", "1", "--db", lite.url, "--artifacts", lite.artifacts, "--json").stdout)
    assert payload["config"] == spec().config and payload["status"] == "succeeded"
    assert payload["test_metrics"] == TEST and payload["test_value"] == TEST["recall@20"]
    assert (payload["best_epoch"], payload["valid_metrics"], payload["code_version"]) == (2, VALID, "abc123")
    assert [e["epoch"] for e in payload["epochs"]] == [1, 2]
    assert payload["epochs"][0]["losses"] == {"bpr": 0.5, "reg": 0.01} and payload["epochs"][0]["valid"] is None
    assert payload["epochs"][1]["valid"] == VALID
    assert payload["files"] == str(lite.run_dir(1))
    text = ok("show", "1", "--db", lite.url, "--artifacts", lite.artifacts).stdout
    for fragment in ("1: lightgcn/base on demo, seed 2023", "succeeded", "hostA pid 4242 cpu", "n1",
                     "metrics (best epoch 2)", "recall@20", "0.2000", "0.2500", "epochs (2", "lr=0.001"):  # fmt: skip
        assert fragment in text, fragment


def _log_lines(result: Result) -> list[str]:
    return [line.split(" ", 1)[1] for line in result.stdout.splitlines()]  # drop the time stamp


def test_logs_prints_lines_in_order_and_follow_returns_once_ended(lite: Store) -> None:
    lite.add_runs([spec(), spec()])
    run = start(lite, 1)
    lite.log(run.id, run.attempt, "starting")
    train(lite, run)
    lite.log(run.id, run.attempt, "stopping", "error")
    lite.log(2, 0, "another run")  # not shown
    expected = [f"[1] {m}" for m in ("starting", "epoch 1 done", "epoch 2 done", "validated", "stopping")]
    assert _log_lines(ok("logs", "1", "--db", lite.url)) == expected
    lite.finish(run.id, run.attempt, FAILED, error="boom")
    assert _log_lines(ok("logs", "1", "-f", "--db", lite.url)) == expected  # returns: the run ended


def test_logs_follow_prints_lines_written_while_following(lite: Store) -> None:
    lite.add_runs([spec()])
    run = start(lite, 1)
    lite.log(run.id, run.attempt, "before")

    def later() -> None:
        time.sleep(0.8)
        lite.log(run.id, run.attempt, "during")
        lite.log(run.id, run.attempt, "last words")
        lite.finish(run.id, run.attempt, SUCCEEDED, test_metrics=TEST, test_value=0.2)

    thread = threading.Thread(target=later)
    thread.start()
    result = ok("logs", "1", "--follow", "--db", lite.url)
    thread.join()
    assert _log_lines(result) == ["[1] before", "[1] during", "[1] last words"]


# -- steering: cancel, retry, rm, priority (each backend) ----------------------------------


def test_cancel_queued_runs_are_never_claimed(store: Store) -> None:
    store.add_runs([spec(), spec(), spec()])
    result = ok("cancel", "1", "3", "--db", store.url)
    assert result.stdout.splitlines() == ["run 1: cancelled", "run 3: cancelled"]
    assert [r.status for r in store.runs()] == ["cancelled", "queued", "cancelled"]
    assert store.get(1).finished_at is not None
    start(store, 2)
    assert store.claim("w2", "hostB", 1, "cpu") is None


def test_cancel_running_asks_it_to_stop(store: Store) -> None:
    store.add_runs([spec(), spec()])
    run = start(store, 1)
    finish(store, start(store, 2), SUCCEEDED)
    assert ok("cancel", "1-2", "--db", store.url).stdout.splitlines() == ["run 1: stopping", "run 2: already succeeded"]
    info = store.get(1)
    assert (info.status, info.cancel_requested) == ("running", True)
    assert store.heartbeat(run.id, run.attempt) is True  # what the running child sees
    assert store.get(2).status == "succeeded"
    assert "running (stopping)" in ok("ls", "--db", store.url).stdout


def test_retry_requeues_failed_and_cancelled_afresh_but_not_succeeded(store: Store) -> None:
    store.add_runs([spec(), spec(), spec()])
    finish(store, start(store, 1), FAILED)
    store.cancel([2])
    finish(store, start(store, 3), SUCCEEDED)
    store.run_dir(1).mkdir(parents=True)
    (store.run_dir(1) / "state.pt").write_bytes(b"checkpoint")
    art = ["--db", store.url, "--artifacts", store.artifacts]
    assert ok("retry", "1-2", *art).stdout.splitlines() == ["run 1: queued", "run 2: queued"]
    fresh = {"status": "queued", "error": None, "epoch": None, "best_epoch": None, "best_valid": None,
             "valid_metrics": None, "test_metrics": None, "started_at": None, "finished_at": None}  # fmt: skip
    for run_id in (1, 2):
        assert {k: getattr(store.get(run_id), k) for k in fresh} == fresh
        assert store.epochs(run_id) == []
    assert not (store.run_dir(1) / "state.pt").exists()  # starts afresh, does not resume
    assert ok("retry", "3", *art).stdout.strip() == "run 3: not retried: succeeded"
    done = store.get(3)
    assert (done.status, done.test_metrics, len(store.epochs(3))) == ("succeeded", TEST, 2)
    again = store.claim("w2", "hostB", 7, "cpu")
    assert again is not None and (again.id, again.attempt) == (1, 2)


def test_rm_deletes_rows_and_files(store: Store) -> None:
    store.add_runs([spec(), spec()])
    finish(store, start(store, 1), FAILED)
    for run_id in (1, 2):
        store.run_dir(run_id).mkdir(parents=True)
        (store.run_dir(run_id) / "best.pt").write_bytes(b"weights")
    result = ok("rm", "1", "--yes", "--db", store.url, "--artifacts", store.artifacts)
    assert result.stdout.strip() == "removed 1 run(s)"
    assert [r.id for r in store.runs()] == [2]
    assert store.epochs(1) == [] and store.logs(1) == []
    assert not store.run_dir(1).exists() and (store.run_dir(2) / "best.pt").is_file()
    error_line(cli("rm", "1", "--yes", "--db", store.url, "--artifacts", store.artifacts), "no run with id 1")


def test_rm_refuses_a_running_run_and_deletes_nothing(store: Store) -> None:
    store.add_runs([spec(), spec()])
    start(store, 1)
    store.run_dir(2).mkdir(parents=True)
    (store.run_dir(2) / "out.txt").write_text("keep")
    args = ["rm", "1-2", "-y", "--db", store.url, "--artifacts", store.artifacts]
    error_line(cli(*args), "run 1 is running", "rlmrec cancel 1")
    assert [(r.id, r.status) for r in store.runs()] == [(1, "running"), (2, "queued")]
    assert (store.run_dir(2) / "out.txt").read_text() == "keep"


def test_priority_changes_claim_order(store: Store) -> None:
    store.add_runs([spec() for _ in range(5)])
    assert ok("priority", "5", "3-4", "--db", store.url).stdout.strip() == "priority 5 for 2 run(s)"
    assert [r.priority for r in store.runs()] == [0, 0, 5, 5, 0]
    start(store, 3)
    start(store, 4)
    start(store, 1)


@pytest.mark.parametrize(("ids", "cancelled"), [(["2-4"], [2, 3, 4]), (["1,5", "3"], [1, 3, 5]), (["4-4"], [4])])
def test_id_ranges(lite: Store, ids: list[str], cancelled: list[int]) -> None:
    lite.add_runs([spec() for _ in range(5)])
    ok("cancel", *ids, "--db", lite.url)
    assert [r.id for r in lite.runs(status=["cancelled"])] == cancelled


BAD_IDS = [
    (["show", "999"], "no run with id 999"), (["logs", "999"], "no run with id 999"),
    (["cancel", "1-x"], "bad run id '1-x'"), (["cancel", "1", "7"], "no run with id 7"),
    (["retry", "7"], "no run with id 7"), (["priority", "3", "1", "99"], "no run with id 99"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "fragment"), BAD_IDS)
def test_unknown_or_bad_ids_are_one_line_and_change_nothing(lite: Store, args: list[str], fragment: str) -> None:
    lite.add_runs([spec()])
    error_line(cli(*args, "--db", lite.url), fragment)
    assert (lite.get(1).status, lite.get(1).priority) == ("queued", 0)
