"""Where commands write their results: folders proven writable before any work is
recorded, and files replaced in one rename. Each failure is one line naming the option.

Permission bits prove little (as root every mode bit is ignored, yet a path under a
regular file or in /proc still cannot be written), so writability is tested by
creating a file.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rlmrec.atomic import atomic_write
from rlmrec.errors import RLMRecError


def _why(error: OSError) -> str:
    return error.strerror or str(error)


def writable_folder(path: Path, option: str = "--out") -> Path:
    """``path``, created if needed, in which a file has just been created and removed."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RLMRecError(f"{option} {path}: cannot write there (a file, not a folder)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise RLMRecError(f"{option} {path}: cannot write there ({_why(error)})") from None
    return path


@contextlib.contextmanager
def replacing(path: Path, option: str = "--out") -> Iterator[Path]:
    """A temporary name beside ``path`` to write to (same suffix, so writers that go by
    it still can), renamed over ``path`` once the block succeeds: never half a file.
    An OS error becomes one line naming the option and the path."""
    path = Path(path)
    try:
        with atomic_write(path) as tmp:
            yield tmp
    except OSError as error:
        raise RLMRecError(f"{option} {path}: cannot write it ({_why(error)})") from None
