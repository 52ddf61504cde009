"""Putting a prepared dataset folder in place under the data root, shared by fetch and
import: the folder is built in a hidden staging folder on the same file system, then
renamed, so a dataset name never points at a half-written folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from rlmrec.errors import DataError


def staging_dir(root: Path, purpose: str) -> Path:
    """A fresh hidden folder under ``root`` (``.fetch-*``, ``.import-*``): same file
    system as the target, so the final rename is atomic; the loader never lists it."""
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{purpose}-", dir=root))


def occupied(target: Path) -> bool:
    """A folder, file or link (even a broken one) already has this name."""
    return target.exists() or target.is_symlink()


def remove(path: Path) -> None:
    """Delete a dataset entry; a linked dataset loses its link, never the linked data."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def place(staged: Path, target: Path, *, force: bool) -> None:
    """Rename ``staged`` (a folder or a link) to ``target``. An existing ``target`` is
    refused unless ``force``; then it is moved aside first and deleted only once the new
    one is in place, so a failure leaves the old dataset readable."""
    if not occupied(target):
        os.rename(staged, target)
        return
    if not force:
        raise DataError(f"{target}: a dataset with this name already exists; pass --force to replace it")
    aside = staged.parent / f"{staged.name}.old"
    os.rename(target, aside)
    try:
        os.rename(staged, target)
    except OSError:
        os.rename(aside, target)
        raise
    remove(aside)
