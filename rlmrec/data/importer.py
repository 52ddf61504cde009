"""``rlmrec data import``: bring a folder in the RLMRec format under the data root, as a
copy or a link, after it passes validation."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from rlmrec.data.layout import _check_name
from rlmrec.data.place import place, staging_dir
from rlmrec.data.validate import Report, validate_folder
from rlmrec.errors import DataError


@dataclass(frozen=True)
class Imported:
    name: str
    path: Path
    source: Path
    linked: bool
    report: Report


def import_folder(source: Path, name: str, root: Path, *, link: bool = False, force: bool = False) -> Imported:
    """Validate ``source``, then copy it (or link to it) as ``root/name``. Nothing is
    written when validation finds an error or ``name`` is taken (unless ``force``)."""
    _check_name(name)
    source = Path(source).expanduser().absolute()
    if not source.is_dir():
        raise DataError(f"{source}: not a folder")
    target = root / name
    real_source = source.resolve()
    if target.resolve() == real_source:
        raise DataError(f"{source} is already the dataset {name!r} under {root}")
    if root.resolve().is_relative_to(real_source):
        # Copying a folder into one of its own sub-folders would never end.
        raise DataError(f"{source} contains the data root {root}; import a dataset folder, not a parent of the root")
    report = validate_folder(source, name)
    if not report.ok:
        extra = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        raise DataError(f"not imported: {report.errors[0].message}{extra}; rlmrec data validate {source} shows all")
    if (target.exists() or target.is_symlink()) and not force:
        raise DataError(f"{target}: a dataset with this name already exists; pass --force to replace it")
    stage = staging_dir(root, "import")
    try:
        staged = stage / name
        if link:
            # An absolute link: the data root may move independently of the source.
            os.symlink(real_source, staged, target_is_directory=True)
        else:
            shutil.copytree(source, staged, symlinks=False)
        place(staged, target, force=force)
    except OSError as error:
        raise DataError(
            f"cannot {'link' if link else 'copy'} {source} to {target}: {error.strerror or error}"
        ) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    report.path = target
    return Imported(name, target, source, link, report)
