"""``rlmrec worker``: claim runs and execute each in a child process, one per slot.

Shutdown: the first SIGINT/SIGTERM stops claiming and lets running runs finish;
the second relays SIGTERM to the children, which stop at the next batch and
record themselves cancelled. Children run in their own session, so a Ctrl-C in
the worker's terminal reaches the worker only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from rlmrec.store import RUNNING, RunInfo, Store


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class WorkerOptions:
    slots: list[str] = field(default_factory=lambda: ["cpu"])
    max_runs: int | None = None  # claim at most this many, then drain
    until_empty: bool = False  # exit once nothing is queued and nothing runs
    poll_s: float = 1.0
    stale_after_s: float = 60.0  # a heartbeat older than this marks a run lost
    max_attempts: int = 3
    heartbeat_s: float = 5.0


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

    # -- signals ---------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals += 1
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
        self.store.register_worker(self.id, self.host, os.getpid(), self.options.slots)
        self.say(f"worker {self.id}: {len(self.options.slots)} slot(s) on {', '.join(sorted(set(self.options.slots)))}")
        try:
            while True:
                self._collect()
                self._reap()
                if not self.draining:
                    self._fill()
                if not self.children and (self.draining or (self.options.until_empty and not self._queued())):
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

    def _queued(self) -> bool:
        counts = self.store.counts()
        return bool(counts.get("queued") or counts.get("lost"))

    def _fill(self) -> None:
        for slot, device in enumerate(self.options.slots):
            if slot in self.children or self.draining:
                continue
            run = self.store.claim(self.id, self.host, os.getpid(), device)
            if run is None:
                return
            self.claimed += 1
            self.children[slot] = _Child(run, slot, self._spawn(run, device))
            resumed = " (resuming)" if run.attempt > 1 else ""
            self.say(
                f"run {run.id}: {run.model}/{run.variant} on {run.dataset}, seed {run.seed}, "
                f"attempt {run.attempt}{resumed} -> {device}"
            )

    def _spawn(self, run: RunInfo, device: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["RLMREC_HEARTBEAT_S"] = str(self.options.heartbeat_s)
        if device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU slot never touches a GPU
            cpu_slots = self.options.slots.count("cpu")
            env.setdefault("RLMREC_THREADS", str(max(1, (os.cpu_count() or 1) // cpu_slots)))
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
        now = time.time()
        if now - self._last_reap < max(self.options.poll_s, 5.0):
            return
        self._last_reap = now
        mine = {child.process.pid for child in self.children.values()}
        for run_id in self.store.reap(
            stale_after=self.options.stale_after_s,
            host=self.host,
            alive=lambda pid: pid in mine or pid_alive(pid),
            max_attempts=self.options.max_attempts,
        ):
            self.say(f"run {run_id}: its process is gone; marked lost, will resume")
