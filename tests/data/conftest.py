"""Fixtures for the data tooling tests: small dataset folders written by hand, the CLI,
and the one-line error contract."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

SHAPE = (4, 5)

# 4 users x 5 items: every user and item has a training interaction, splits disjoint.
TRAIN = ([0, 1, 2, 3, 0], [0, 1, 2, 3, 4])
VALID = ([0, 1], [1, 4])
TEST = ([2, 3], [0, 1])


def split(pairs: tuple[list[int], list[int]], shape: tuple[int, int] = SHAPE, values: list[float] | None = None) -> Any:
    rows, cols = pairs
    data = values if values is not None else [1.0] * len(rows)
    return sp.coo_matrix((np.array(data), (rows, cols)), shape=shape)


def profiles(n: int, what: str) -> dict[int, dict[str, str]]:
    return {
        i: {"profile": f"{what} {i} likes topic {i % 3}", "reasoning": f"because of {what} {i}'s history"}
        for i in range(n)
    }


def write_folder(root: Path, name: str = "toy", **files: object) -> Path:
    """A valid dataset folder with profiles; ``files`` (stem -> object, None removes)
    override the defaults."""
    folder = root / name
    folder.mkdir(parents=True)
    defaults: dict[str, object] = {
        "trn_mat": split(TRAIN),
        "val_mat": split(VALID),
        "tst_mat": split(TEST),
        "usr_prf": profiles(SHAPE[0], "user"),
        "itm_prf": profiles(SHAPE[1], "item"),
    }
    for stem, obj in {**defaults, **files}.items():
        if obj is not None:
            (folder / f"{stem}.pkl").write_bytes(pickle.dumps(obj))
    return folder


class Toy:
    """Builders for test files (a fixture, since test modules cannot import conftest)."""

    shape = SHAPE
    train, valid, test = TRAIN, VALID, TEST

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, name: str = "toy", *, root: Path | None = None, **files: object) -> Path:
        return write_folder(root or self.root, name, **files)

    split = staticmethod(split)
    profiles = staticmethod(profiles)


@pytest.fixture
def toy(root: Path) -> Toy:
    return Toy(root)
