"""Is another process competing for the cores a CPU training run is about to use?

Two runs that each start a thread per core on the same cores slow each other far
more than two-fold (see :mod:`rlmrec.threads`), and nothing in the run says why.
At the start of a CPU run, :func:`check` watches the machine for a moment and
returns one warning line when it is crowded.

What it measures: for a quarter of a second, how busy the CPUs of this process's
affinity mask are (``/proc/stat``), less this process's own CPU time; and where a
cgroup quota is tighter than the mask, how much of the quota the cgroup's other
processes use. A sample, not the 1-minute load average: that one still counts a
process that ended a minute ago and barely counts one that started ten seconds
ago. Elsewhere (no ``/proc``) the load average it is, less one core for this
process's own start-up.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from rlmrec.threads import CGROUP_ROOT, SELF_CGROUP, cgroup_quota, cgroup_usage

PROC_STAT = Path("/proc/stat")
WINDOW_S = 0.25
# Room for what always runs beside a training run (a shell, the run's heartbeat, a
# text editor): below half a core of others, the run's threads barely wait.
SLACK = 0.5


@dataclass(frozen=True)
class Busy:
    others: float  # cores (or CPUs of quota) other processes kept busy during the sample
    capacity: float  # out of this many
    what: str  # "cores" or "CPUs of its cgroup quota": what capacity counts


def oversubscribed(others: float, capacity: float, own_threads: int, slack: float = SLACK) -> bool:
    """The rule: this run's threads each want a core of ``capacity``, where other
    processes already keep ``others`` busy. When together they want more than there
    is (beyond ``slack``), some thread waits for a core at every parallel step and
    the whole run with it.

    A worker's sibling runs count like any other process, and that is right: the
    pool gives each of its n slots 1/n of the cores, so siblings plus this run fit
    and nothing fires (2 slots on 2 cores: 1 + 1 <= 2.5); a run that was given all
    the cores beside a busy sibling does not fit, and is warned about."""
    return others + own_threads > capacity + slack


def warning(busy: Busy, own_threads: int, advice: str | None = None) -> str | None:
    """The warning line for ``busy`` (None when the run fits). ``advice``: what to do,
    with ``{threads}`` for the suggested count; the default suits ``rlmrec run``."""
    if not oversubscribed(busy.others, busy.capacity, own_threads):
        return None
    share = max(1, round(busy.capacity - busy.others))  # the cores left to this run
    advice = (advice or "use --threads {threads} (two concurrent runs: half the cores each)").format(threads=share)
    return (
        f"other processes keep {busy.others:.1f} of the {busy.capacity:g} {busy.what} this run may use busy, and it "
        f"runs {own_threads} thread{'s' * (own_threads != 1)}: it competes for the CPU, and epochs may run several "
        f"times slower; {advice}"
    )


def check(own_threads: int, advice: str | None = None, window_s: float = WINDOW_S) -> str | None:
    """Sample the machine (``window_s`` seconds) and return the first warning, if any."""
    for busy in measure(window_s):
        message = warning(busy, own_threads, advice)
        if message:
            return message
    return None


def measure(
    window_s: float = WINDOW_S, *, stat: Path = PROC_STAT, root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP
) -> list[Busy]:
    """What other processes use of this process's cores, and of its cgroup quota."""
    cpus = _mask()
    ticks, used = parse_stat(_read(stat)), cgroup_usage(root, self_cgroup)
    own, start = time.process_time(), time.monotonic()  # every thread of this process
    time.sleep(window_s)
    ticks_after, used_after = parse_stat(_read(stat)), cgroup_usage(root, self_cgroup)
    wall = max(time.monotonic() - start, 1e-3)
    own_cores = (time.process_time() - own) / wall
    found = []
    if cpus and ticks and ticks_after:
        busy = busy_cores(ticks, ticks_after, cpus)
        found.append(Busy(max(0.0, busy - own_cores), len(cpus), "cores"))
    quota = cgroup_quota(root, self_cgroup)
    if quota is not None and quota < len(cpus or ()) and used is not None and used_after is not None:
        # The cgroup at the quota's level may hold more processes than ours: counting
        # ours alone can miss competitors, never invent them. Rounded up as the thread
        # count is (rlmrec.threads), so that a run alone under a 1.2-CPU quota fits.
        others = (used_after - used) / wall - own_cores
        found.append(Busy(max(0.0, others), math.ceil(quota), "CPUs its cgroup quota allows"))
    if not found and hasattr(os, "getloadavg"):
        found.append(Busy(max(0.0, os.getloadavg()[0] - 1.0), os.cpu_count() or 1, "cores"))
    return found


def parse_stat(text: str) -> dict[int, tuple[int, int]]:
    """``/proc/stat``'s per-CPU lines as {cpu: (busy ticks, all ticks)}. Busy: user,
    nice, system, irq, softirq; idle: idle and iowait; steal (the hypervisor gave the
    core to another machine) counts in all ticks but not as busy: fewer threads
    would not help it."""
    found = {}
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        fields = rest.split()
        if not (name.startswith("cpu") and name[3:].isdigit()) or len(fields) < 4:
            continue
        try:
            values = [int(v) for v in fields[:8]] + [0] * (8 - min(8, len(fields)))
        except ValueError:
            continue
        user, nice, system, idle, iowait, irq, softirq, steal = values
        busy = user + nice + system + irq + softirq
        found[int(name[3:])] = (busy, busy + idle + iowait + steal)
    return found


def busy_cores(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]], cpus: set[int]) -> float:
    """How many of ``cpus`` were busy between two :func:`parse_stat` samples (each
    CPU's busy share of its own ticks, summed)."""
    total = 0.0
    for cpu in cpus & before.keys() & after.keys():
        busy, ticks = after[cpu][0] - before[cpu][0], after[cpu][1] - before[cpu][1]
        if ticks > 0:
            total += min(1.0, max(0.0, busy / ticks))
    return total


def _mask() -> set[int] | None:
    getter = getattr(os, "sched_getaffinity", None)
    try:
        return set(getter(0)) if getter else None
    except OSError:
        return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return ""
