"""The demo as a cached dataset folder: the same numbers as make_demo(), written once and
atomically, regenerated for a new generator version, never read half-written."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from rlmrec.cache_dir import cache_root
from rlmrec.data import demo_cache
from rlmrec.data.dataset import load_dataset, load_profiles
from rlmrec.data.demo import Demo, make_demo
from rlmrec.data.layout import DEMO, check_dataset, dataset_folder, find_dataset
from rlmrec.errors import DataError

# make_demo()'s interactions and profiles per GENERATOR_VERSION. When the generator's
# output changes on purpose, bump demo_cache.GENERATOR_VERSION and add its fingerprint:
# that is what makes every cached copy regenerate.
FINGERPRINTS = {1: "fe57478ce4e4a3e00b55fe012b078c5d7cf5f788f4299f7074fd6ea5a556dcde"}


def _fingerprint(demo: Demo) -> str:
    # Embeddings left out: they follow from the profiles (test_demo pins the encoder),
    # and float sums may differ in the last bit between CPUs.
    digest = hashlib.sha256()
    for mat in (demo.dataset.train, demo.dataset.valid, demo.dataset.test):
        digest.update(repr(mat.shape).encode())
        for part in (mat.indptr, mat.indices):
            digest.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
    digest.update(json.dumps([demo.user_profiles, demo.item_profiles], sort_keys=True).encode())
    return digest.hexdigest()


def _same_csr(a: sp.csr_matrix, b: sp.csr_matrix) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype and a.has_sorted_indices == b.has_sorted_indices
    for part in ("indptr", "indices", "data"):
        x, y = getattr(a, part), getattr(b, part)
        assert x.dtype == y.dtype and np.array_equal(x, y)


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of this test's own (the session's stays untouched)."""
    monkeypatch.setenv("RLMREC_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_generator_output_is_pinned_per_version() -> None:
    got = _fingerprint(make_demo())
    assert got == FINGERPRINTS.get(demo_cache.GENERATOR_VERSION), (
        f"make_demo()'s output changed (fingerprint {got}): bump GENERATOR_VERSION in "
        "rlmrec/data/demo_cache.py and add the fingerprint here, so cached demos are regenerated"
    )


def test_the_cached_folder_loads_bit_for_bit_as_make_demo(tmp_path: Path) -> None:
    want = make_demo()
    got = load_dataset(DEMO, data_root=tmp_path)  # an empty data root: the cached demo
    assert got.path == cache_root() / f"demo-v{demo_cache.GENERATOR_VERSION}" and got.name == DEMO
    for split in ("train", "valid", "test"):
        _same_csr(getattr(got, split), getattr(want.dataset, split))
    for emb in ("user_emb", "item_emb"):
        a, b = getattr(got, emb), getattr(want.dataset, emb)
        assert a.dtype == b.dtype and a.flags.c_contiguous and np.array_equal(a, b)
    assert load_profiles(got.path / "usr_prf.pkl") == want.user_profiles
    assert load_profiles(got.path / "itm_prf.pkl") == want.item_profiles
    # Every resolver gives the same plain folder.
    assert check_dataset(DEMO, tmp_path, embeddings=True) == got.path
    assert find_dataset(DEMO, tmp_path) == (DEMO, got.path)


def test_a_demo_folder_under_the_data_root_wins(tmp_path: Path, toy) -> None:
    own = toy.folder(DEMO, root=tmp_path)
    assert dataset_folder(DEMO, tmp_path) == own
    assert load_dataset(DEMO, data_root=tmp_path).n_users == toy.shape[0]


def test_a_version_bump_regenerates(own_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = demo_cache.demo_folder()
    assert first == own_cache / f"demo-v{demo_cache.GENERATOR_VERSION}"
    assert sorted(p.name for p in own_cache.iterdir()) == [first.name]  # no staging folder left
    monkeypatch.setattr(demo_cache, "GENERATOR_VERSION", demo_cache.GENERATOR_VERSION + 1)
    second = dataset_folder(DEMO, tmp_path / "data")
    assert second == own_cache / f"demo-v{demo_cache.GENERATOR_VERSION}" != first
    assert demo_cache.complete(second) and demo_cache.complete(first)  # the old one is left alone


def test_a_partial_or_stale_cache_is_not_used(own_cache: Path) -> None:
    folder = demo_cache.demo_path()
    # A crashed writer's staging folder and an older version: neither is the demo.
    for leftover in (own_cache / f".{folder.name}-crashed", own_cache / "demo-v0"):
        leftover.mkdir(parents=True)
        (leftover / "trn_mat.pkl").write_bytes(b"half")
    assert demo_cache.demo_folder() == folder and demo_cache.complete(folder)
    # A folder damaged by hand is replaced, not read.
    (folder / "tst_mat.pkl").unlink()
    (folder / "val_mat.pkl").write_bytes(b"not a pickle")
    load_dataset(DEMO, data_root=own_cache / "data")
    assert demo_cache.complete(folder)
    names = {p.name for p in own_cache.iterdir()}
    assert names == {folder.name, f".{folder.name}-crashed", "demo-v0"}  # the damaged copy is gone


def test_losing_the_rename_to_another_process_is_fine(own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers start together: while this process writes, another puts its copy in place."""
    from rlmrec.data import demo as generator

    folder = demo_cache.demo_path()
    write = generator.write_demo

    def racing(staging: Path) -> Path:
        write(staging)
        shutil.copytree(staging, folder)  # the other process's rename lands first
        (folder / "winner").touch()
        return staging

    monkeypatch.setattr(generator, "write_demo", racing)
    assert demo_cache.demo_folder() == folder
    assert (folder / "winner").exists()  # the winner's copy was kept, not replaced
    assert {p.name for p in own_cache.iterdir()} == {folder.name}  # ours was thrown away


def test_an_unwritable_cache_is_one_line(own_cache: Path) -> None:
    own_cache.parent.mkdir(parents=True, exist_ok=True)
    own_cache.write_text("a file where the cache folder should be")
    with pytest.raises(DataError) as info:
        dataset_folder(DEMO, own_cache.parent / "data")
    message = str(info.value)
    assert str(own_cache) in message and "RLMREC_CACHE" in message and "\n" not in message


def test_cache_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RLMREC_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.delenv("RLMREC_CACHE")
    assert cache_root() == tmp_path / "xdg" / "rlmrec"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/xdg")  # the XDG spec: ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "rlmrec"
