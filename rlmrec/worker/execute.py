"""Execute one claimed run against the store: the body of a worker's child process,
and of ``rlmrec run``.

The run's config is re-resolved from its stored form (the same layers give the
same config), the dataset loaded, a checkpoint resumed if an earlier attempt left
one, and the trainer runs with a :class:`Recorder`. A heartbeat thread keeps the
run alive in the store and notices cancel requests; the trainer checks between
batches, so a cancel stops the run within one batch.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rlmrec import checkpoint
from rlmrec.config import RunConfig, resolve_config
from rlmrec.errors import RLMRecError
from rlmrec.events import Listener
from rlmrec.store import CANCELLED, FAILED, LOST, SUCCEEDED, RunInfo, Store, Superseded
from rlmrec.store.recorder import Recorder

if TYPE_CHECKING:
    from rlmrec.data.dataset import Dataset
    from rlmrec.trainer import TrainResult

HEARTBEAT_S = float(os.environ.get("RLMREC_HEARTBEAT_S", "5"))
CHECKPOINT = checkpoint.FILENAME  # in the run's folder
_IDENTITY = ("model", "variant", "dataset")


def visible_device(wanted: str, slot: str | None, visible: str | None) -> str:
    """The device a child uses for a run that asks for ``wanted``: the worker shows it
    only its slot's GPU (``CUDA_VISIBLE_DEVICES=N``), where that GPU is ``cuda:0``, so a
    run pinned to ``cuda:N`` (or asking for any GPU) runs on plain ``cuda``."""
    if slot is None or visible is None or not slot.startswith("cuda:") or slot.split(":", 1)[1] != visible:
        return wanted
    return "cuda" if wanted.startswith("cuda") else wanted


def config_of(run: RunInfo) -> RunConfig:
    """The stored flat config back as a :class:`RunConfig` (validated again)."""
    assert run.config is not None
    settings = {k: v for k, v in run.config.items() if k not in _IDENTITY}
    return resolve_config(run.model, run.variant, run.dataset, settings)


@functools.cache
def code_version() -> str:
    """``git:<rev>[+dirty]`` of the rlmrec source when it is a git checkout, else the version."""
    from rlmrec import __version__

    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            raise OSError
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return f"git:{rev.stdout.strip()}" + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return f"rlmrec {__version__}"


class Heartbeat(threading.Thread):
    """Refreshes the run's heartbeat; sets ``stop`` on a cancel request, a SIGTERM
    relayed by the worker, or when the run was taken from this attempt. ``parent``:
    the worker's pid; should it die, this process is killed (where Linux's
    parent-death signal did not already do it), leaving the run to be reaped as lost."""

    def __init__(
        self, store: Store, run_id: int, attempt: int, interval: float = HEARTBEAT_S, *, parent: int | None = None
    ) -> None:
        super().__init__(name=f"heartbeat-{run_id}", daemon=True)
        self.store, self.run_id, self.attempt, self.interval = store, run_id, attempt, interval
        self.parent = parent
        self.stop = threading.Event()
        self.reason = "cancelled"
        self.hand_back = False  # stop to give the run back to the queue, not to cancel it
        self.superseded = False
        self._done = threading.Event()

    def request_stop(self, reason: str, *, hand_back: bool = False) -> None:
        """``hand_back``: the run goes back to the queue; a cancel request wins over it."""
        if hand_back and self.stop.is_set() and not self.hand_back:
            return
        self.reason, self.hand_back = reason, hand_back
        self.stop.set()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            if self.parent is not None and os.getppid() != self.parent:  # orphaned: the worker died
                os.kill(os.getpid(), signal.SIGKILL)
            try:
                if self.store.heartbeat(self.run_id, self.attempt):
                    self.request_stop("cancelled by request (rlmrec cancel)")
            except Superseded:
                self.superseded = True
                self.request_stop("superseded")
            except RLMRecError:
                pass  # store briefly unreachable: try again next beat

    def close(self) -> None:
        self._done.set()


@dataclass
class Outcome:
    status: str  # succeeded | failed | cancelled | lost (handed back to the queue) | superseded
    result: TrainResult | None = None


def execute(
    store: Store,
    run: RunInfo,
    *,
    listeners: Iterable[Listener] = (),
    beat: Heartbeat | None = None,
    dataset: Dataset | None = None,
    out_dir: Path | None = None,
    warnings: Iterable[str] = (),
) -> Outcome:
    """Train ``run`` (claimed by this process, ``run.attempt`` current) to its end and
    record the outcome. ``dataset``: already loaded (``rlmrec run``); ``out_dir``:
    artifacts somewhere other than the store's run folder; ``warnings``: lines for the
    run's log before it starts (a crowded CPU: :mod:`rlmrec.contention`)."""
    from rlmrec.data.dataset import load_dataset
    from rlmrec.trainer import RunStopped, Trainer

    beat = beat or Heartbeat(store, run.id, run.attempt)
    recorder = Recorder(store, run.id, run.attempt, prior_seconds=run.seconds or 0.0)
    out_dir = out_dir or store.run_dir(run.id)
    state_file = out_dir / CHECKPOINT
    beat.start()
    try:
        cfg = config_of(run)
        cfg.train.device = visible_device(cfg.train.device, run.device, os.environ.get("CUDA_VISIBLE_DEVICES"))
        if dataset is None:
            dataset = load_dataset(run.dataset, os.environ.get("RLMREC_DATA") or run.data_root)
        out_dir.mkdir(parents=True, exist_ok=True)
        resume = checkpoint.load(state_file)
        resume_epoch = resume["progress"]["next_epoch"] - 1 if resume else None
        store.begin_attempt(
            run.id, run.attempt, pid=os.getpid(), code_version=code_version(), resume_epoch=resume_epoch
        )
        for message in warnings:
            recorder.log(message, "warning")
        trainer = Trainer(cfg, dataset, [recorder, *listeners], out_dir, should_stop=beat.stop.is_set)
        result = trainer.fit(resume, on_checkpoint=lambda state: checkpoint.save(state, state_file))
        selection = f"recall@{cfg.train.topk[-1]}"
        per_user = {"users": result.test.users, **result.test.per_user}
        store.finish(
            run.id,
            run.attempt,
            SUCCEEDED,
            test_metrics=result.test_metrics,
            test_value=result.test_metrics[selection],
            seconds=recorder.total_seconds(),
            per_user=per_user,
        )
        state_file.unlink(missing_ok=True)  # best.pt holds the result; the resume state is spent
        return Outcome(SUCCEEDED, result)
    except Superseded:
        return Outcome("superseded")
    except RunStopped:
        if beat.superseded:
            return Outcome("superseded")
        return _end(store, run, LOST if beat.hand_back else CANCELLED, beat.reason, recorder)
    except KeyboardInterrupt:
        _end(store, run, CANCELLED, "interrupted (Ctrl-C)", recorder)
        raise
    except RLMRecError as error:
        return _end(store, run, FAILED, str(error), recorder)
    except Exception as error:
        recorder.log(traceback.format_exc().rstrip(), "error")
        return _end(store, run, FAILED, f"{type(error).__name__}: {error}", recorder)
    finally:
        beat.close()


def _end(store: Store, run: RunInfo, status: str, reason: str, recorder: Recorder) -> Outcome:
    try:
        if status == LOST:  # handed back: resumable, not final
            store.release(run.id, run.attempt, reason)
            return Outcome(status)
        recorder.log(f"{status}: {reason}", "error" if status == FAILED else "warning")
        store.finish(run.id, run.attempt, status, error=reason, seconds=recorder.total_seconds())
    except Superseded:
        return Outcome("superseded")
    return Outcome(status)
