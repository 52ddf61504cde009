"""How many threads a training process uses (affinity mask, cgroup quota, --threads,
RLMREC_THREADS) and the warning when other processes crowd its cores."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from rlmrec import contention, threads
from rlmrec.errors import ConfigError
from rlmrec.worker.pool import threads_per_slot


@pytest.fixture(autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cores(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Eight CPUs in the affinity mask."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(8)), raising=False)
    yield


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def _v2(tmp_path: Path, files: dict[str, str], path: str = "/") -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    _write(root, {"cgroup.controllers": "cpu memory\n", **files})
    (self_cgroup := tmp_path / "self-cgroup").write_text(f"0::{path}\n")
    return root, self_cgroup


def _v1(tmp_path: Path, mount: str, quota: str, period: str = "100000") -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    _write(root, {f"{mount}/cpu.cfs_quota_us": quota, f"{mount}/cpu.cfs_period_us": period})
    (self_cgroup := tmp_path / "self-cgroup").write_text("5:memory:/\n4:cpu,cpuacct:/\n3:cpuset:/\n")
    return root, self_cgroup


# -- usable cores ------------------------------------------------------------------


def test_cgroup_v2_quota_caps_the_affinity_mask(tmp_path: Path, cores: None) -> None:
    root, me = _v2(tmp_path, {"cpu.max": "150000 100000\n"})
    assert threads.cgroup_quota(root, me) == 1.5
    assert threads.usable_cores(root, me) == 2  # 1.5 CPUs: two threads, each busy 3/4 of the time
    root, me = _v2(tmp_path, {"cpu.max": "max 100000\n"})
    assert threads.cgroup_quota(root, me) is None and threads.usable_cores(root, me) == 8
    root, me = _v2(tmp_path, {"cpu.max": "1600000 100000\n"})  # 16 CPUs of quota, 8 in the mask
    assert threads.usable_cores(root, me) == 8


def test_cgroup_v2_nested_quota_is_the_tightest_on_the_path(tmp_path: Path, cores: None) -> None:
    files = {"cpu.max": "max 100000", "jobs/cpu.max": "300000 100000", "jobs/run7/cpu.max": "max 100000"}
    root, me = _v2(tmp_path, files, path="/jobs/run7")
    assert threads.cgroup_quota(root, me) == 3.0 and threads.usable_cores(root, me) == 3
    # A cgroup namespace that hides the path: the folder is the container's root.
    root, me = _v2(tmp_path, {"cpu.max": "200000 100000"}, path="/elsewhere/not/mounted")
    assert threads.usable_cores(root, me) == 2


def test_cgroup_v1_quota(tmp_path: Path, cores: None) -> None:
    root, me = _v1(tmp_path, "cpu,cpuacct", "250000")
    assert threads.cgroup_quota(root, me) == 2.5 and threads.usable_cores(root, me) == 3
    root, me = _v1(tmp_path, "cpu", "-1")  # unlimited
    assert threads.cgroup_quota(root, me) is None and threads.usable_cores(root, me) == 8


@pytest.mark.parametrize(
    "cpu_max", [b"", b"garbage", b"150000", b"0 100000", b"-5 100000", b"abc 100000", b"150000 0", b"\xff\xfe 1"]
)
def test_garbled_or_empty_cgroup_files_mean_no_limit(tmp_path: Path, cores: None, cpu_max: bytes) -> None:
    root, me = _v2(tmp_path, {})
    (root / "cpu.max").write_bytes(cpu_max)
    assert threads.cgroup_quota(root, me) is None and threads.usable_cores(root, me) == 8
    me.write_bytes(b"\xff garbage")  # an unreadable /proc/self/cgroup: the root's files only
    assert threads.usable_cores(root, me) == 8


def test_no_cgroup_and_no_affinity_fall_back_to_the_cpu_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    missing = tmp_path / "none"
    assert threads.cgroup_quota(missing, missing / "cgroup") is None
    assert threads.usable_cores(missing, missing / "cgroup") == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert threads.usable_cores(missing, missing / "cgroup") == 1


def test_this_machine_has_at_least_one_usable_core() -> None:
    assert 1 <= threads.usable_cores() <= (os.cpu_count() or 1)


def test_cgroup_usage_v2_and_v1(tmp_path: Path) -> None:
    root, me = _v2(tmp_path, {"cpu.stat": "usage_usec 2500000\nuser_usec 2000000\n"})
    assert threads.cgroup_usage(root, me) == 2.5
    root = tmp_path / "v1"
    _write(root, {"cpuacct/cpuacct.usage": "3000000000\n"})
    (me := tmp_path / "v1-self").write_text("2:cpuacct:/\n1:cpu:/\n")
    assert threads.cgroup_usage(root, me) == 3.0
    assert threads.cgroup_usage(tmp_path / "nothing", me) is None


# -- the count and torch -----------------------------------------------------------


def test_explicit_beats_the_environment_beats_the_usable_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    assert threads.requested_threads(3, {"RLMREC_THREADS": "5"}) == 3
    assert threads.requested_threads(None, {"RLMREC_THREADS": " 5 "}) == 5
    assert threads.requested_threads(None, {}) is None
    monkeypatch.setattr(threads, "usable_cores", lambda: 1)
    assert threads.apply_threads(None, {}) == 1 and torch.get_num_threads() == 1
    assert threads.apply_threads(None, {"RLMREC_THREADS": "2"}) == 2 and torch.get_num_threads() == 2
    assert threads.apply_threads(1, {"RLMREC_THREADS": "2"}) == 1 and torch.get_num_threads() == 1
    threads.apply_threads(1)  # the inter-op pool can be sized once only: a second call must not fail
    assert torch.get_num_threads() == 1


def test_the_default_never_exceeds_torchs_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Torch counts physical cores (and honours OMP_NUM_THREADS); the mask counts
    hyper-threads: the default is the smaller."""
    monkeypatch.setattr(threads, "usable_cores", lambda: 64)
    assert threads.apply_threads(None, {}) == threads.torch_default()


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_thread_counts_are_config_errors(value: str) -> None:
    with pytest.raises(ConfigError, match="RLMREC_THREADS"):
        threads.requested_threads(None, {"RLMREC_THREADS": value})
    with pytest.raises(ConfigError, match="--threads"):
        threads.requested_threads(0)


def test_the_pool_splits_the_cores_between_its_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rlmrec.worker.pool.usable_cores", lambda: 8)
    assert threads_per_slot(None, 2, {}) == 4
    assert threads_per_slot(None, 3, {}) == 2
    assert threads_per_slot(None, 16, {}) == 1
    assert threads_per_slot(6, 2, {}) == 3  # --threads: the total the slots share
    assert threads_per_slot(None, 2, {"RLMREC_THREADS": "3"}) == 3  # the Slurm script's share, as it stands
    assert threads_per_slot(2, 2, {"RLMREC_THREADS": "3"}) == 1  # --threads wins
    with pytest.raises(ConfigError, match="RLMREC_THREADS"):
        threads_per_slot(None, 2, {"RLMREC_THREADS": "lots"})


# -- contention --------------------------------------------------------------------


def test_the_rule() -> None:
    # Two cores, another process with two busy threads: a second two-thread run does not fit.
    assert contention.oversubscribed(others=1.9, capacity=2, own_threads=2)
    # The fix: each of two runs on two cores takes one thread; the sibling's load fits beside it.
    assert not contention.oversubscribed(others=1.0, capacity=2, own_threads=1)
    assert not contention.oversubscribed(others=0.3, capacity=2, own_threads=2)  # a shell's worth of others
    assert contention.oversubscribed(others=0.6, capacity=2, own_threads=2)
    assert not contention.oversubscribed(others=10.0, capacity=16, own_threads=4)
    assert contention.oversubscribed(others=2.0, capacity=2.0, own_threads=1)  # a quota of two, used up


def test_the_warning_says_what_competes_and_what_to_do() -> None:
    message = contention.warning(contention.Busy(1.9, 2, "cores"), own_threads=2)
    assert message is not None
    assert "1.9 of the 2 cores" in message and "2 threads" in message and "several times slower" in message
    assert "--threads 1" in message
    assert contention.warning(contention.Busy(0.1, 2, "cores"), own_threads=2) is None
    crowded = contention.warning(contention.Busy(12.0, 16, "cores"), 16, advice="try {threads}")
    assert crowded is not None and crowded.endswith("try 4")


PROC_STAT = """cpu  300 0 60 400 10 0 5 0 0 0
cpu0 100 0 20 200 5 0 0 0 0 0
cpu1 200 0 40 200 5 0 5 7 0 0
intr 1 2 3
procs_running 3
"""


def test_proc_stat_busy_cores() -> None:
    before = contention.parse_stat(PROC_STAT)
    assert before == {0: (120, 325), 1: (245, 457)}  # steal (7) counts in all ticks, not as busy
    after = {0: (120 + 50, 325 + 100), 1: (245 + 100, 457 + 100)}
    assert contention.busy_cores(before, after, {0, 1}) == pytest.approx(1.5)
    assert contention.busy_cores(before, after, {1}) == pytest.approx(1.0)
    assert contention.busy_cores(before, after, {5}) == 0.0  # a CPU the file does not list
    assert contention.parse_stat("garbage\n\ncpu0 x y z w\n") == {}


def test_a_real_sample_is_within_bounds() -> None:
    found = contention.measure(0.05)
    assert found, "Linux and macOS both have something to sample"
    for busy in found:
        assert 0.0 <= busy.others <= busy.capacity + 0.5 and busy.capacity >= 1


def test_check_returns_the_first_crowded_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = [contention.Busy(0.0, 8, "cores"), contention.Busy(2.0, 2, "CPUs its cgroup quota allows")]
    monkeypatch.setattr(contention, "measure", lambda _window: samples)
    message = contention.check(2)
    assert message is not None and "2.0 of the 2 CPUs its cgroup quota allows" in message
    monkeypatch.setattr(contention, "measure", lambda _window: samples[:1])
    assert contention.check(2) is None


def test_a_worker_childs_warning_points_at_the_workers_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from rlmrec.worker.child import crowded

    monkeypatch.setattr(contention, "measure", lambda _window: [contention.Busy(1.0, 2, "cores")])
    assert crowded(1) == []  # a sibling slot's one thread beside this run's one: the pool's split fits
    [message] = crowded(2)
    assert "rlmrec worker --threads TOTAL" in message and "(1 per slot fits)" in message


def test_measure_counts_the_cgroups_other_processes_against_its_quota(
    tmp_path: Path, cores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight CPUs in the mask, a quota of two, and the cgroup's other processes using
    two CPUs during the sample: the quota is full, whatever the machine's other CPUs do."""
    root, me = _v2(tmp_path, {"cpu.max": "200000 100000"})
    usage = iter([10.0, 10.0 + 2 * 0.2])  # CPU seconds before and after a 0.2 s window
    monkeypatch.setattr(contention, "cgroup_usage", lambda _root, _me: next(usage))
    (stat := tmp_path / "stat").write_text(PROC_STAT)  # unchanged: the CPUs look idle
    cores_scope, busy = contention.measure(0.2, stat=stat, root=root, self_cgroup=me)
    assert cores_scope == contention.Busy(0.0, 8, "cores")
    assert busy.capacity == 2 and busy.what == "CPUs its cgroup quota allows"
    assert 0.6 < busy.others <= 2.0  # less this process's own (small) CPU time; a sleep may overshoot
    assert contention.warning(busy, own_threads=2) is not None
