"""``rlmrec worker``: claim runs and execute each in a child process, one per slot.

Shutdown: the first SIGINT/SIGTERM stops claiming and lets running runs finish;
the second relays SIGTERM to the children, which stop at the next batch and
record themselves cancelled. With a grace (``--grace``, as ``rlmrec slurm submit``
sets it), the first signal gives running runs that long to finish, then stops them
and hands them back to the queue (lost, resumed from their checkpoint by the next
worker): a batch job ending must neither lose nor cancel its runs. A SIGTERM sent
to the children themselves (Slurm's ``scancel`` signals every process of the job)
then hands their runs back too. Children run in their own session, so a Ctrl-C in
the worker's terminal reaches the worker only; a worker that dies (kill -9) takes
its children with it (see ``child.py``), and the next worker on the host marks it
died and its runs lost at once, then resumes them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from rlmrec.slurm.env import current_job
from rlmrec.store import RUNNING, RunInfo, Store
from rlmrec.threads import requested_threads, usable_cores
from rlmrec.worker.execute import CHECKPOINT


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs. A zombie does not: an orphan
    that exited stays one where PID 1 never reaps (many containers), and signal 0
    still reaches it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux), or it just went away
        return True
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])  # the state follows "(comm)"


def threads_per_slot(total: int | None, slots: int, env: Mapping[str, str] | None = None) -> int:
    """Each child's CPU threads: ``--threads`` (``total``) or the cores this process may
    use, split evenly between the slots, so that concurrent runs never want more
    threads than there are cores (each run would otherwise take them all). GPU slots
    get their share too: their runs do some of their work on the CPU. Without
    ``--threads``, an ``RLMREC_THREADS`` already set (the Slurm script's share of the
    job's CPUs) is each child's count as it stands."""
    if total is None and (given := requested_threads(None, env)) is not None:
        return given  # validated here, once, rather than failing in every child
    return max(1, (requested_threads(total, {}) or usable_cores()) // max(1, slots))


@dataclass
class WorkerOptions:
    slots: list[str] = field(default_factory=lambda: ["cpu"])
    max_runs: int | None = None  # claim at most this many, then drain
    until_empty: bool = False  # exit once nothing is queued and nothing runs
    poll_s: float = 1.0
    stale_after_s: float = 60.0  # a heartbeat older than this marks a run lost
    max_attempts: int = 3
    heartbeat_s: float = 5.0
    # After the first signal, running runs get this long to finish; then they stop and
    # go back to the queue. None: they finish, however long (a second signal cancels them).
    grace_s: float | None = None
    # CPU threads all slots share (--threads); None: the cores this process may use.
    threads: int | None = None


@dataclass
class _Child:
    run: RunInfo
    slot: int
    process: subprocess.Popen[bytes]


class Worker:
    def __init__(self, store: Store, options: WorkerOptions, say: Callable[[str], None] = print) -> None:
        self.store, self.options, self.say = store, options, say
        self.host = socket.gethostname()
        self.id = f"{self.host}:{os.getpid()}:{int(time.time())}"
        self.children: dict[int, _Child] = {}  # by slot
        self.claimed = 0
        self.signals = 0
        self._last_reap = 0.0
        self._orphans_seen: set[int] = set()
        self.slurm = current_job()
        self._hand_back_at: float | None = None  # monotonic time: grace over, runs go back
        self._handed_back = False
        self.threads_per_slot = threads_per_slot(options.threads, len(options.slots))

    # -- signals ---------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals += 1
        grace = self.options.grace_s
        if grace is not None:  # the main loop hands the runs back when this time comes
            self._hand_back_at = time.monotonic() + grace if self.signals == 1 else 0.0
            if self.signals == 1:
                wait = f"running runs get {grace:g}s to finish, then go back to the queue"
                self.say(f"shutting down: no new runs; {wait}")
            return
        if self.signals == 1:
            self.say("shutting down: no new runs; waiting for running ones (signal again to stop them)")
        elif self.signals == 2:
            self.say("stopping running runs at their next batch")
            for child in self.children.values():
                child.process.send_signal(signal.SIGTERM)

    @property
    def draining(self) -> bool:
        return self.signals > 0 or (self.options.max_runs is not None and self.claimed >= self.options.max_runs)

    # -- main loop -------------------------------------------------------------

    def run(self) -> int:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        self.store.register_worker(self.id, self.host, os.getpid(), self.options.slots, slurm=self.slurm)
        where = ", ".join(sorted(set(self.options.slots)))
        threads = f"{self.threads_per_slot} CPU thread{'s' * (self.threads_per_slot != 1)} each"
        self.say(f"worker {self.id}: {len(self.options.slots)} slot(s) on {where}, {threads}")
        try:
            while True:
                self._hand_back()
                self._collect()
                self._reap()
                if not self.draining:
                    self._fill()
                if not self.children and (self.draining or (self.options.until_empty and self._nothing_left())):
                    self._say_unrunnable()
                    break
                self.store.worker_beat(self.id, "draining" if self.draining else "running")
                time.sleep(self.options.poll_s)
        finally:
            for child in self.children.values():  # only on an unexpected error: leave nothing running
                child.process.terminate()
            self.store.worker_beat(self.id, "stopped")
            for s, handler in previous.items():
                signal.signal(s, handler)
        return 0

    def _hand_back(self) -> None:
        """Grace over (or a second signal): every running run stops at its next batch
        and goes back to the queue; its child records that (see ``child.py``)."""
        if self._hand_back_at is None or self._handed_back or time.monotonic() < self._hand_back_at:
            return
        self._handed_back = True
        if self.children:
            self.say(f"handing {len(self.children)} running run(s) back to the queue (they resume from a checkpoint)")
        for child in self.children.values():
            child.process.send_signal(signal.SIGTERM)

    def _nothing_left(self) -> bool:
        """Nothing this worker can run waits, and no run is running without its worker
        (a process that outlived a dead worker: it ends, or is reaped and resumed here)."""
        if self._queued():
            return False
        orphans = self.store.orphans(stale_after=self.options.stale_after_s)
        for run_id in sorted(set(orphans) - self._orphans_seen):
            self.say(f"run {run_id} runs without its worker (it died); waiting for it to end or to resume it")
        self._orphans_seen |= set(orphans)
        return not orphans

    def _queued(self) -> bool:
        """Runs wait that this worker's slots can run (not those that need another device)."""
        return self.store.waiting(self.options.slots) > 0

    def _say_unrunnable(self) -> None:
        counts = self.store.counts()
        left = (counts.get("queued") or 0) + (counts.get("lost") or 0) - self.store.waiting(self.options.slots)
        if left > 0:
            self.say(f"{left} queued run(s) need a device this worker lacks (rlmrec ls says which)")

    def _fill(self) -> None:
        for slot, device in enumerate(self.options.slots):
            if slot in self.children or self.draining:
                continue
            run = self.store.claim(self.id, self.host, os.getpid(), device, slurm=self.slurm)
            if run is None:
                return
            self.claimed += 1
            self.children[slot] = _Child(run, slot, self._spawn(run, device))
            # A retry starts afresh (its checkpoint was removed); only a checkpoint means resuming.
            resumed = " (resuming from its checkpoint)" if (self.store.run_dir(run.id) / CHECKPOINT).exists() else ""
            self.say(
                f"run {run.id}: {run.model}/{run.variant} on {run.dataset}, seed {run.seed}, "
                f"attempt {run.attempt}{resumed} -> {device}"
            )

    def _spawn(self, run: RunInfo, device: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["RLMREC_HEARTBEAT_S"] = str(self.options.heartbeat_s)
        env["RLMREC_WORKER_PID"] = str(os.getpid())  # the child dies with this process
        if self.options.grace_s is not None:
            env["RLMREC_HAND_BACK"] = "1"  # a SIGTERM gives the run back instead of cancelling it
        env["RLMREC_THREADS"] = str(self.threads_per_slot)
        if device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU slot never touches a GPU
        else:
            env["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]
        run_dir = self.store.run_dir(run.id)
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(run_dir / "output.log", "ab") as output:
            # The store URL travels in the environment, not argv: it may hold a password,
            # and argv is visible to every user of the host (ps).
            env["RLMREC_DB"] = self.store.url
            cmd = [sys.executable, "-m", "rlmrec.worker.child"]
            cmd += ["--artifacts", str(self.store.artifacts.resolve()), str(run.id), str(run.attempt)]
            return subprocess.Popen(cmd, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)

    def _collect(self) -> None:
        """Children that ended: normally they recorded their outcome; if not
        (killed, out of memory, crashed interpreter), the run is lost and requeued."""
        for slot, child in list(self.children.items()):
            code = child.process.poll()
            if code is None:
                continue
            del self.children[slot]
            run = self.store.get(child.run.id, with_config=False)
            if run.status == RUNNING and run.attempt == child.run.attempt:
                why = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
                status = self.store.mark_lost(
                    run.id, run.attempt, f"child process {why}", max_attempts=self.options.max_attempts
                )
                self.say(f"run {run.id}: child {why}; marked {status}")
                continue
            result = f"test recall {run.test_value:.4f}" if run.test_value is not None else (run.error or "")
            self.say(f"run {run.id}: {run.status}" + (f" ({result})" if result else ""))

    def _reap(self) -> None:
        """Every poll (two small queries): workers of this host whose process is gone
        are marked died, and runs whose process is gone or whose heartbeat stopped, lost."""
        now = time.time()
        if now - self._last_reap < self.options.poll_s:
            return
        self._last_reap = now
        for worker_id in self.store.reap_workers(host=self.host, alive=pid_alive):
            self.say(f"worker {worker_id} is gone (its process died); marked died")
        mine = {child.process.pid for child in self.children.values()}
        for run_id in self.store.reap(
            stale_after=self.options.stale_after_s,
            host=self.host,
            alive=lambda pid: pid in mine or pid_alive(pid),
            max_attempts=self.options.max_attempts,
            watched=[child.run.id for child in self.children.values()],
        ):
            self.say(f"run {run_id}: its process is gone; marked lost, will resume")
