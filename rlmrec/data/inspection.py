"""What ``rlmrec data ls`` and ``rlmrec data show`` print: per-dataset counts, and one
user's or item's profile beside its training interactions."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import scipy.sparse as sp

from rlmrec.data.dataset import load_embeddings, load_profiles, load_splits
from rlmrec.data.layout import EMB_FILES, PROFILE_FILES, dataset_folder, dataset_names, in_cache
from rlmrec.errors import DataError

Kind = Literal["user", "item"]
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Summary:
    """One dataset folder at a glance; ``error`` is set (and counts may be missing)
    when a file does not load."""

    name: str
    path: Path
    users: int | None = None
    items: int | None = None
    interactions: dict[str, int] = field(default_factory=dict)
    user_profiles: bool = False
    item_profiles: bool = False
    embedding_dim: int | None = None
    error: str | None = None
    builtin: bool = False  # the demo generated into the cache

    @property
    def density(self) -> float | None:
        """Share of the users x items matrix with an interaction, all splits together."""
        if not self.users or not self.items or not self.interactions:
            return None
        return sum(self.interactions.values()) / (self.users * self.items)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "users": self.users,
            "items": self.items,
            "interactions": self.interactions,
            "density": self.density,
            "profiles": {"users": self.user_profiles, "items": self.item_profiles},
            "embeddings": {"present": all((self.path / f).is_file() for f in EMB_FILES), "dim": self.embedding_dim},
            "error": self.error,
            "builtin": self.builtin,
        }


def summarize(folder: Path, name: str | None = None) -> Summary:
    """Counts of one folder. Splits and embeddings go through the loader's checks, so a
    dataset that ``rlmrec run`` would refuse shows its error here."""
    folder = Path(folder)
    usr_prf, itm_prf = ((folder / f).is_file() for f in PROFILE_FILES)
    base = Summary(name or folder.name, folder, user_profiles=usr_prf, item_profiles=itm_prf, builtin=in_cache(folder))
    try:
        splits = load_splits(folder)
    except DataError as error:
        return replace(base, error=str(error))
    users, items = splits[0].shape
    counts = {split: int(mat.nnz) for split, mat in zip(SPLITS, splits, strict=True)}
    base = replace(base, users=int(users), items=int(items), interactions=counts)
    try:
        embeddings = load_embeddings(folder, splits[0].shape)
    except DataError as error:
        return replace(base, error=str(error))
    return replace(base, embedding_dim=int(embeddings[0].shape[1]) if embeddings else None)


def summarize_root(root: Path) -> list[Summary]:
    """Every dataset folder under ``root`` (those with a ``trn_mat.pkl``), by name, then
    the demo unless ``root`` has its own (generated into the cache on first use)."""
    summaries = []
    for name in dataset_names(root):
        try:
            folder = dataset_folder(name, root)
        except DataError as error:  # the demo cannot be generated (an unwritable cache)
            from rlmrec.data.demo_cache import demo_path

            summaries.append(Summary(name, demo_path(), error=str(error), builtin=True))
            continue
        summaries.append(summarize(folder, name))
    return summaries


@dataclass(frozen=True)
class EntityView:
    """One user's (or item's) profile and interactions, as ``rlmrec data show`` prints it.

    ``train``/``valid``/``test`` hold the other side's indices (items of a user, users of
    an item); ``neighbours`` maps each training index to its own profile text when the
    other side has profiles.
    """

    dataset: str
    kind: Kind
    index: int
    count: int
    profile: str | None
    reasoning: str | None
    train: list[int]
    valid: list[int]
    test: list[int]
    neighbours: dict[int, str]
    has_profiles: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "kind": self.kind,
            "index": self.index,
            "profile": self.profile,
            "reasoning": self.reasoning,
            "train": self.train,
            "valid": self.valid,
            "test": self.test,
            "train_profiles": {str(k): v for k, v in self.neighbours.items()},
        }


def _row(mat: sp.csr_matrix, index: int, kind: Kind) -> list[int]:
    if kind == "user":
        return [int(i) for i in mat.indices[mat.indptr[index] : mat.indptr[index + 1]]]
    return [int(u) for u in mat[:, index].nonzero()[0]]


def show_entity(name: str, folder: Path, kind: Kind, index: int) -> EntityView:
    """The profile, reasoning and interactions of user/item ``index`` of a dataset folder."""
    splits = load_splits(folder)
    profiles: dict[Kind, dict[int, dict[str, str]] | None] = {}
    for k, fname in zip(("user", "item"), PROFILE_FILES, strict=True):
        file = folder / fname
        profiles[k] = load_profiles(file) if file.is_file() else None  # type: ignore[index]
    count = int(splits[0].shape[0 if kind == "user" else 1])
    if not 0 <= index < count:
        raise DataError(f"{kind} {index} out of range: {name} has {count:,} {kind}s (0..{count - 1})")
    own = profiles[kind]
    other = profiles["item" if kind == "user" else "user"]
    entry = own.get(index) if own is not None else None
    train, valid, test = (_row(mat, index, kind) for mat in splits)
    neighbours = {j: other[j]["profile"] for j in train if j in other} if other is not None else {}
    return EntityView(
        dataset=name,
        kind=kind,
        index=index,
        count=count,
        profile=entry["profile"] if entry else None,
        reasoning=entry["reasoning"] if entry else None,
        train=train,
        valid=valid,
        test=test,
        neighbours=neighbours,
        has_profiles=own is not None,
    )
