"""A worker claims only runs its slots can execute: a run that asks for a GPU waits for
a GPU slot (and one pinned to ``cuda:N`` for that GPU) instead of failing on a CPU
worker; ``--until-empty`` does not wait forever for runs it cannot take; ``ls`` says
why a run waits, including that no worker is running at all."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_checks import Invoke

from rlmrec.config import resolve_config
from rlmrec.store import RunSpec, Store
from rlmrec.worker.pool import Worker, WorkerOptions

DEVICES = ["cuda", "auto", "cpu", "cuda:1", "cuda:0"]  # runs 1-5, in claim order (equal priority)


def _spec(device: str) -> RunSpec:
    config = resolve_config("lightgcn", "base", "demo", device=device).to_dict()
    return RunSpec("lightgcn", "base", "demo", 2023, config)


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    s = Store(store_url, tmp_path / "runs")
    s.add_runs([_spec(d) for d in DEVICES])
    yield s
    s.close()


def _claims(store: Store, slot: str) -> list[int]:
    ids = []
    while (run := store.claim("w", "h", 1, slot)) is not None:
        ids.append(run.id)
    return ids


def test_a_cpu_slot_claims_no_run_that_asks_for_a_gpu(store: Store) -> None:
    assert _claims(store, "cpu") == [2, 3]  # auto and cpu
    assert store.waiting(["cpu"]) == 0 and store.waiting(["cuda:0"]) == 2


def test_a_gpu_slot_claims_any_run_but_one_pinned_to_another_gpu(store: Store) -> None:
    assert _claims(store, "cuda:0") == [1, 2, 3, 5]
    assert store.waiting(["cuda:0"]) == 0 and store.waiting(["cpu", "cuda:1"]) == 1
    assert _claims(store, "cuda:1") == [4]


class _Child:
    pid = 1

    def poll(self) -> None:
        return None


def test_an_until_empty_cpu_worker_exits_though_gpu_runs_wait(store: Store, monkeypatch: Any) -> None:
    for run_id in (2, 3):
        store.cancel([run_id])
    said: list[str] = []
    worker = Worker(store, WorkerOptions(slots=["cpu"], until_empty=True, poll_s=0.01), say=said.append)
    monkeypatch.setattr(worker, "_spawn", lambda run, device: pytest.fail(f"claimed run {run.id}"))

    def hung(*_: Any) -> None:
        raise TimeoutError("the worker waited for runs it cannot take")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        assert worker.run() == 0
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert [r.status for r in store.runs()] == ["queued", "cancelled", "cancelled", "queued", "queued"]
    assert any("3 queued run(s) need a device this worker lacks" in line for line in said), said


def test_ls_says_why_a_run_waits(cli: Invoke, store: Store) -> None:
    store.register_worker("h:1:0", "h", 1, ["cpu", "cpu"])
    rows = {line.split()[0]: line for line in cli("ls", "--db", store.url).stdout.splitlines()[1:6]}
    assert "queued (needs a GPU worker)" in rows["1"] and "queued (needs a worker on cuda:1)" in rows["4"]
    assert rows["2"].split()[5:] == ["queued"], rows["2"]
    listing = {r["id"]: r for r in json.loads(cli("ls", "--db", store.url, "--json").stdout)}
    assert listing[1]["waits_for"] == "a GPU worker" and listing[2]["waits_for"] is None
    store.register_worker("h:2:0", "h", 2, ["cuda:0"])
    rows = {line.split()[0]: line for line in cli("ls", "--db", store.url).stdout.splitlines()[1:6]}
    assert "needs" not in rows["1"] and "queued (needs a worker on cuda:1)" in rows["4"]


def test_ls_says_when_no_worker_is_running(cli: Invoke, store: Store) -> None:
    store.cancel([3])  # a queued run cancelled: it waits for nothing
    out = cli("ls", "--db", store.url).stdout
    rows = {line.split()[0]: line for line in out.splitlines()[1:6]}
    assert all("(needs a worker)" in rows[str(i)] for i in (1, 2, 4, 5)), out
    assert rows["3"].split()[5:] == ["cancelled"], rows["3"]
    assert "no worker is running: start one with `rlmrec worker`" in out
    listing = {r["id"]: r["waits_for"] for r in json.loads(cli("ls", "--db", store.url, "--json").stdout)}
    assert listing == {1: "a worker", 2: "a worker", 3: None, 4: "a worker", 5: "a worker"}
    store.register_worker("h:1:0", "h", 1, ["cpu"])
    out = cli("ls", "--db", store.url).stdout
    assert "no worker is running" not in out and "(needs a worker)" not in out
    assert "queued (needs a GPU worker)" in out


def test_queue_cuda_then_a_cpu_worker_leaves_it_queued(cli: Invoke) -> None:
    assert cli("queue", "lightgcn", "base", "demo", "--device", "cuda").exit_code == 0
    result = cli("worker", "--gpus", "none", "--until-empty")
    assert result.exit_code == 0, result.output
    run = Store().get(1)
    assert (run.status, run.attempt) == ("queued", 0)


@pytest.mark.parametrize(
    ("wanted", "slot", "visible", "expected"),
    [("cuda:1", "cuda:1", "1", "cuda"), ("cuda", "cuda:1", "1", "cuda"), ("auto", "cuda:1", "1", "auto"),
     ("cpu", "cuda:0", "0", "cpu"), ("cuda:1", "cuda:1", None, "cuda:1")],
)  # fmt: skip
def test_a_run_pinned_to_a_gpu_runs_on_it_as_the_child_sees_it(
    wanted: str, slot: str, visible: str | None, expected: str
) -> None:
    """The worker shows a child only its slot's GPU, as cuda:0."""
    from rlmrec.worker.execute import visible_device

    assert visible_device(wanted, slot, visible) == expected
