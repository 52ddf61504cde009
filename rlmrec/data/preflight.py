"""What a run needs of its dataset, checked before the run is recorded: by ``rlmrec
queue`` (so nothing fails hours later on a worker) and ``rlmrec run`` (so no failed
run is left behind).

A dataset folder is read as training reads it (every check of the loader), once, and
remembered by its files' sizes and modification times: queueing 1,000 runs reads each
dataset once, a long-lived process (the dashboard) reads it again only when it changed.
What a config asks of the dataset (``topk`` within the items, validation and test
interactions, embeddings for Con/Gen) is then checked per run from the few numbers kept.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rlmrec.data.layout import EMB_FILES, SPLIT_FILES
from rlmrec.errors import ConfigError, DataError
from rlmrec.registry import embeddings_reason

if TYPE_CHECKING:
    from rlmrec.config import RunConfig
    from rlmrec.data.dataset import Dataset


@dataclass(frozen=True)
class DatasetFacts:
    """The numbers of a dataset a config is checked against."""

    name: str
    users: int
    items: int
    valid: int  # interactions
    test: int
    embeddings: bool

    @classmethod
    def of(cls, dataset: Dataset) -> DatasetFacts:
        return cls(
            dataset.name, dataset.n_users, dataset.n_items,
            int(dataset.valid.nnz), int(dataset.test.nnz), dataset.has_embeddings,
        )  # fmt: skip


# Folders that loaded: (folder, its files' names, sizes and mtimes) -> their facts.
_CHECKED: dict[tuple[str, tuple[tuple[str, int, int], ...]], DatasetFacts] = {}


def _signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    files = [(name, folder / name) for name in (*SPLIT_FILES, *EMB_FILES)]
    return tuple((name, st.st_size, st.st_mtime_ns) for name, path in files if (st := _stat(path)) is not None)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def folder_facts(folder: Path, name: str) -> DatasetFacts:
    """Load ``folder`` as training will (a :class:`DataError` is what training would
    have failed with), or recall it when its files have not changed since."""
    key = (str(folder.resolve()), _signature(folder))
    known = _CHECKED.get(key)
    if known is None:
        from rlmrec.data import dataset  # NumPy and SciPy: only once a folder is queued

        train, valid, test = dataset.load_splits(folder)
        embeddings = dataset.load_embeddings(folder, train.shape)
        users, items = train.shape
        known = DatasetFacts(name, int(users), int(items), int(valid.nnz), int(test.nnz), embeddings is not None)
        _CHECKED[key] = known
    return dataclasses.replace(known, name=name)


def check_fit(facts: DatasetFacts, cfg: RunConfig) -> None:
    """What training checks of ``cfg`` against its dataset before its first epoch."""
    for split, count in (("validation", facts.valid), ("test", facts.test)):
        if count == 0:
            raise DataError(f"{facts.name}: the {split} split is empty; the protocol needs it")
    if max(cfg.train.topk) > facts.items:
        raise ConfigError(f"topk {max(cfg.train.topk)} exceeds the {facts.items} items of {facts.name}")
    what = embeddings_reason(cfg.model, cfg.variant)
    if what and not facts.embeddings:
        raise ConfigError(
            f"{what} profile embeddings, but dataset '{facts.name}' has no usr_emb_np.pkl/itm_emb_np.pkl; "
            "run the 'base' variant or add the embeddings (rlmrec embed)"
        )
