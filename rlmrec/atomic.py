"""Writing a file so that readers see the old one or the new one, never half of it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; when the block succeeds it
    is renamed over ``path`` in one step, and when it fails it is removed.

    The temporary name keeps the suffix (writers such as ``np.savez`` or Matplotlib
    go by it) and carries the pid, so two processes writing the same file never
    share a temporary one. It is an ordinary file, created with the usual
    permissions, in the same folder, so the rename never crosses filesystems.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
