"""``python -m rlmrec.worker.child --artifacts DIR RUN_ID ATTEMPT``, the store URL in
``RLMREC_DB``: one claimed run in its own process (own CUDA context, own crash
domain). The worker relays its shutdown as SIGTERM, which stops the run at the
next batch: cancelled, or with the worker's ``--grace`` (``RLMREC_HAND_BACK``), back
in the queue to resume from its checkpoint. If the worker dies (kill -9, out of memory), the child dies too,
instead of training on unsupervised: the run is then lost like any crash, and the
next worker resumes it from its checkpoint."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys

from rlmrec.slurm.env import current_job
from rlmrec.store import Store, Superseded
from rlmrec.store.records import slurm_label
from rlmrec.threads import apply_threads
from rlmrec.worker.execute import Heartbeat, execute

EXIT_RECORDED, EXIT_SUPERSEDED, EXIT_ERROR = 0, 3, 1
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with(parent: int) -> None:
    """SIGKILL this process when ``parent`` (the worker) dies: Linux's parent-death
    signal. Elsewhere, the heartbeat's watch on the parent pid does it within a beat."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the worker died before the signal was armed
        os.kill(os.getpid(), signal.SIGKILL)


def hand_back_reason() -> str:
    job, task = current_job()
    who = f"its Slurm job {slurm_label(job, task)} is ending" if job else "its worker shut down"
    return f"handed back to the queue: {who}; resumes from its last checkpoint"


def crowded(threads: int) -> list[str]:
    """The contention warning for a CPU run. The worker's siblings count as competitors
    only when they do not fit beside this run (see :func:`rlmrec.contention.oversubscribed`)."""
    from rlmrec.contention import check

    advice = "rlmrec worker --threads TOTAL splits TOTAL among its slots ({threads} per slot fits)"
    message = check(threads, advice=advice)
    return [message] if message else []


def main(argv: list[str] | None = None) -> int:
    worker = int(os.environ.get("RLMREC_WORKER_PID") or 0) or None
    if worker is not None:  # first: before seconds of imports the worker might not outlive
        die_with(worker)
    parser = argparse.ArgumentParser(prog="rlmrec.worker.child")
    parser.add_argument("--db", default=None, help="store URL [default: RLMREC_DB]")
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("run_id", type=int)
    parser.add_argument("attempt", type=int)
    args = parser.parse_args(argv)
    threads = apply_threads()  # the worker's share for this slot (RLMREC_THREADS), else the usable cores
    store = Store(args.db, args.artifacts)
    run = store.get(args.run_id)
    if run.attempt != args.attempt:
        return EXIT_SUPERSEDED
    beat = Heartbeat(store, run.id, run.attempt, parent=worker)
    if os.environ.get("RLMREC_HAND_BACK") == "1":  # the worker's --grace: the run goes back to the queue
        signal.signal(signal.SIGTERM, lambda *_: beat.request_stop(hand_back_reason(), hand_back=True))
    else:
        signal.signal(signal.SIGTERM, lambda *_: beat.request_stop("stopped: the worker shut down"))
    # After the handlers: a SIGTERM during the quarter-second sample still stops the run cleanly.
    warnings = crowded(threads) if run.device == "cpu" else []
    for message in warnings:
        print(f"warning: {message}", flush=True)  # output.log; the run's log gets it too
    try:
        status = execute(store, run, beat=beat, warnings=warnings).status
    except Superseded:
        return EXIT_SUPERSEDED
    print(f"run {run.id} attempt {run.attempt}: {status}", flush=True)
    return EXIT_SUPERSEDED if status == "superseded" else EXIT_RECORDED


if __name__ == "__main__":
    sys.exit(main())
