"""The demo as an ordinary dataset folder: generated once into the cache
(``<cache>/demo-v<GENERATOR_VERSION>/``, see :mod:`rlmrec.cache_dir`) and from then on
read like any other folder.

The folder appears in one rename, after every file is written in a hidden staging
folder beside it, so no process ever sees half of it. Workers start several at once:
each may generate its own copy, the first rename wins and the others throw theirs
away. A new generator version writes a new folder; older ones are left alone (another
installed rlmrec may still read them) and can be deleted by hand.

Path logic only: NumPy, SciPy and the generator load only when the folder is written.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from rlmrec.cache_dir import CACHE_ENV, cache_root
from rlmrec.data.layout import EMB_FILES, PROFILE_FILES, SPLIT_FILES
from rlmrec.errors import DataError

# Bump whenever make_demo's output changes (tests/data/test_demo_cache.py pins a
# fingerprint of it per version), so every cached copy is regenerated.
GENERATOR_VERSION = 1
FILES = (*SPLIT_FILES, *EMB_FILES, *PROFILE_FILES)


def demo_path() -> Path:
    """Where this generator version's demo folder lives (it may not exist yet)."""
    return cache_root() / f"demo-v{GENERATOR_VERSION}"


def complete(folder: Path) -> bool:
    """Every file the demo writes is there. A folder the rename put in place always is;
    this catches one damaged by hand (or unreadable: then writing a new one says why)."""
    try:
        return all((folder / name).is_file() for name in FILES)
    except OSError:
        return False


def demo_folder() -> Path:
    """The demo's folder, generated first when it is missing or incomplete."""
    folder = demo_path()
    if not complete(folder):
        _generate(folder)
    return folder


def _generate(folder: Path) -> None:
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        # A unique hidden sibling: same file system, so the rename is atomic.
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    except OSError as error:
        raise DataError(
            f"{folder.parent}: cannot write the demo there ({error.strerror}); set {CACHE_ENV} to a writable folder"
        ) from None
    try:
        staging.chmod(0o755)  # mkdtemp's is private; others sharing a cache read the demo too
        from rlmrec.data.demo import write_demo  # lazy: NumPy, SciPy and a second of generation

        write_demo(staging)
        _place(staging, folder)
    except OSError as error:
        raise DataError(f"{folder}: writing the demo failed ({error}); free space or set {CACHE_ENV}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when the rename won


def _place(staging: Path, folder: Path) -> None:
    """Rename ``staging`` to ``folder``, unless another process got there first."""
    if folder.exists() or folder.is_symlink():
        if complete(folder):
            return  # another process won while we generated
        # Damaged by hand: move it aside (a unique name, as another process may do the same).
        aside = folder.with_name(f".{folder.name}-damaged-{secrets.token_hex(4)}")
        try:
            os.rename(folder, aside)
        except FileNotFoundError:
            pass  # another process moved it first
        else:
            shutil.rmtree(aside, ignore_errors=True)
    try:
        os.rename(staging, folder)
    except OSError as error:
        # A folder that is not empty cannot be renamed over: someone else's copy is in place.
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not complete(folder):
            raise
