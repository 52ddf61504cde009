"""``python -m rlmrec.worker.child --artifacts DIR RUN_ID ATTEMPT``, the store URL in
``RLMREC_DB``: one claimed run in its own process (own CUDA context, own crash
domain). The worker relays its shutdown as SIGTERM, which stops the run at the
next batch."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from rlmrec.store import Store, Superseded
from rlmrec.worker.execute import Heartbeat, execute

EXIT_RECORDED, EXIT_SUPERSEDED, EXIT_ERROR = 0, 3, 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rlmrec.worker.child")
    parser.add_argument("--db", default=None, help="store URL [default: RLMREC_DB]")
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("run_id", type=int)
    parser.add_argument("attempt", type=int)
    args = parser.parse_args(argv)
    threads = os.environ.get("RLMREC_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    store = Store(args.db, args.artifacts)
    run = store.get(args.run_id)
    if run.attempt != args.attempt:
        return EXIT_SUPERSEDED
    beat = Heartbeat(store, run.id, run.attempt)
    signal.signal(signal.SIGTERM, lambda *_: beat.request_stop("stopped: the worker shut down"))
    try:
        status = execute(store, run, beat=beat).status
    except Superseded:
        return EXIT_SUPERSEDED
    print(f"run {run.id} attempt {run.attempt}: {status}", flush=True)
    return EXIT_SUPERSEDED if status == "superseded" else EXIT_RECORDED


if __name__ == "__main__":
    sys.exit(main())
