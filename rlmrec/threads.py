"""How many CPU threads a training process uses: the one place that decides.

A process may use fewer cores than the machine has: its affinity mask (``taskset``,
Slurm's task binding) and its cgroup's CPU quota (``docker --cpus``, Kubernetes
limits, Slurm's cgroup plugin) both cap it. Torch's default thread count ignores
the quota, and two processes that each start a thread per core on the same cores
slow each other far more than two-fold (OpenMP threads wait at every barrier for
the one that was preempted): a 2-minute LightGCN run took 10.9 minutes beside
another PyTorch process. So every training process sets its count explicitly:
``--threads`` if given, else ``RLMREC_THREADS`` (the worker pool's share per slot,
the Slurm script's share of the job), else the cores it may use (at most torch's
own default, which counts physical cores and honours ``OMP_NUM_THREADS``).

Nothing here imports torch at module level: the worker pool (which never trains)
imports :func:`usable_cores`.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from rlmrec.errors import ConfigError

CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")
ENV = "RLMREC_THREADS"
# cgroup v1 mounts each controller under its name, or co-mounted as "cpu,cpuacct".
_V1_MOUNTS = {"cpu": ("cpu", "cpu,cpuacct", "cpuacct,cpu"), "cpuacct": ("cpuacct", "cpu,cpuacct", "cpuacct,cpu")}


def affinity_cores() -> int | None:
    """The CPUs this process may run on (its affinity mask); None where the platform
    has no such call (macOS)."""
    getter = getattr(os, "sched_getaffinity", None)
    if getter is None:
        return None
    try:
        return len(getter(0)) or None
    except OSError:
        return None


def cgroup_quota(root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (``1.5``: 150 ms per 100 ms),
    the tightest along its path to the root; None when unlimited or unreadable.
    cgroup v2 (``cpu.max``) and v1 (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``)."""
    found = [q for folder in _v2_folders(root, self_cgroup) if (q := _v2_quota(folder)) is not None]
    found += [q for folder in _v1_folders(root, self_cgroup, "cpu") if (q := _v1_quota(folder)) is not None]
    return min(found, default=None)


def cgroup_usage(root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> float | None:
    """CPU seconds used so far by every process of this process's cgroup (v2
    ``cpu.stat`` usage_usec, v1 ``cpuacct.usage``); None where unreadable."""
    for folder in _v2_folders(root, self_cgroup)[:1]:
        for line in _read(folder / "cpu.stat").splitlines():
            name, _, value = line.partition(" ")
            if name == "usage_usec" and value.strip().isdigit():
                return int(value) / 1e6
    for folder in _v1_folders(root, self_cgroup, "cpuacct")[:1]:
        value = _read(folder / "cpuacct.usage")
        if value.isdigit():
            return int(value) / 1e9
    return None


def usable_cores(root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> int:
    """The cores this process may keep busy: min(affinity mask, quota rounded up);
    ``os.cpu_count()`` where neither is known. At least 1."""
    cores = affinity_cores() or os.cpu_count() or 1
    quota = cgroup_quota(root, self_cgroup)
    if quota is not None:
        cores = min(cores, math.ceil(quota))  # 1.5 CPUs: 2 threads, each busy 3/4 of the time
    return max(1, cores)


def requested_threads(explicit: int | None = None, env: Mapping[str, str] | None = None) -> int | None:
    """``explicit`` (``--threads``), else ``RLMREC_THREADS``; None when neither says."""
    if explicit is not None:
        if explicit < 1:
            raise ConfigError(f"--threads {explicit}: expected a positive number of threads")
        return explicit
    value = (os.environ if env is None else env).get(ENV, "").strip()
    if not value:
        return None
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ConfigError(f"{ENV}={value!r}: expected a positive number of threads")
    return threads


@functools.cache
def torch_default() -> int:
    """Torch's own count, read once before this module changes it: the physical cores
    (a hyper-thread adds little to dense kernels), or ``OMP_NUM_THREADS``."""
    import torch

    return int(torch.get_num_threads())


def apply_threads(explicit: int | None = None, env: Mapping[str, str] | None = None) -> int:
    """Set torch's thread pools and return the count: :func:`requested_threads`, else
    the usable cores (never more than torch's own default)."""
    import torch

    threads = requested_threads(explicit, env)
    if threads is None:
        threads = min(usable_cores(), torch_default())
    torch.set_num_threads(threads)
    # The inter-op pool (torch.jit.fork, some autograd work) can be sized only once per
    # process and only before it started: a second call, or one after parallel work,
    # raises. Training barely uses it, so where it is too late it stays as it is.
    if torch.get_num_interop_threads() != threads:
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(threads)
    return threads


# -- cgroup files ---------------------------------------------------------------


def _cgroup_paths(self_cgroup: Path) -> Iterator[tuple[str, str]]:
    """(controllers, path) of each line of ``/proc/self/cgroup``: ``("", "/x")`` for v2."""
    for line in _read(self_cgroup).splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            yield parts[1], parts[2]


def _up_to(root: Path, path: str) -> list[Path]:
    """``root/a/b``, ``root/a``, ``root``: every level's quota applies. Inside a
    container whose cgroup namespace hides the path, only ``root`` exists."""
    folders = [root]
    parts = Path(path.strip()).parts
    if parts[:1] == ("/",):
        for part in parts[1:]:
            folders.append(folders[-1] / part)
    return [f for f in reversed(folders) if f.is_dir()]


def _v2_folders(root: Path, self_cgroup: Path) -> list[Path]:
    paths = [path for controllers, path in _cgroup_paths(self_cgroup) if controllers == ""]
    return _up_to(root, paths[0] if paths else "/") if (root / "cgroup.controllers").exists() else []


def _v1_folders(root: Path, self_cgroup: Path, controller: str) -> list[Path]:
    paths = [path for controllers, path in _cgroup_paths(self_cgroup) if controller in controllers.split(",")]
    for name in _V1_MOUNTS[controller]:
        if (root / name).is_dir():
            return _up_to(root / name, paths[0] if paths else "/")
    return []


def _v2_quota(folder: Path) -> float | None:
    """``cpu.max``: "max 100000" (unlimited) or "150000 100000" (1.5 CPUs)."""
    fields = _read(folder / "cpu.max").split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _ratio(fields[0], fields[1])


def _v1_quota(folder: Path) -> float | None:
    """``cpu.cfs_quota_us`` (-1: unlimited) over ``cpu.cfs_period_us``."""
    return _ratio(_read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us"))


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return ""
