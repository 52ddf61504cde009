"""The built-in demo dataset and the deterministic profile-text encoder."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from rlmrec.data.demo import Demo, make_demo, write_demo
from rlmrec.data.encoder import encode_texts
from rlmrec.errors import ConfigError

SMALL = {"n_users": 200, "n_items": 150}


@pytest.fixture(scope="module")
def demo() -> Demo:
    return make_demo()


def _splits(demo: Demo) -> list[sp.csr_matrix]:
    ds = demo.dataset
    return [ds.train, ds.valid, ds.test]


def _same_demo(a: Demo, b: Demo) -> bool:
    mats = all((x != y).nnz == 0 for x, y in zip(_splits(a), _splits(b), strict=True))
    assert a.dataset.user_emb is not None and b.dataset.user_emb is not None
    assert a.dataset.item_emb is not None and b.dataset.item_emb is not None
    return (
        mats
        and np.array_equal(a.dataset.user_emb, b.dataset.user_emb)
        and np.array_equal(a.dataset.item_emb, b.dataset.item_emb)
        and a.user_profiles == b.user_profiles
        and a.item_profiles == b.item_profiles
    )


def test_default_demo_is_deterministic_and_cached(demo: Demo) -> None:
    assert make_demo() is demo  # lru_cache: the CLI and tests share one instance
    fresh = make_demo.__wrapped__()  # bypass the cache: regenerate from scratch
    assert fresh is not demo
    assert _same_demo(fresh, demo)


def test_seed_controls_the_world() -> None:
    a = make_demo.__wrapped__(seed=1, **SMALL)
    b = make_demo.__wrapped__(seed=1, **SMALL)
    c = make_demo.__wrapped__(seed=2, **SMALL)
    assert _same_demo(a, b)
    assert (a.dataset.train != c.dataset.train).nnz > 0
    assert a.user_profiles != c.user_profiles


def test_metadata_and_sizes(demo: Demo) -> None:
    ds = demo.dataset
    assert ds.name == "demo" and ds.path is None and ds.has_embeddings
    assert 1500 <= ds.n_users <= 3000 and 1000 <= ds.n_items <= 2000
    total = sum(m.nnz for m in _splits(demo))
    assert 25_000 <= total <= 50_000
    per_user = sum(_splits(demo)).getnnz(axis=1)
    assert 8 <= per_user.mean() <= 25


def test_splits_are_disjoint_binary_and_3_1_1(demo: Demo) -> None:
    train, valid, test = _splits(demo)
    for m in (train, valid, test):
        assert isinstance(m, sp.csr_matrix) and m.dtype == np.float32
        assert m.shape == train.shape and m.has_sorted_indices
        assert np.all(m.data == 1.0)
    assert (train.multiply(valid)).nnz == 0
    assert (train.multiply(test)).nnz == 0
    assert (valid.multiply(test)).nnz == 0
    n_tr, n_va, n_te = (m.getnnz(axis=1) for m in (train, valid, test))
    n = n_tr + n_va + n_te
    assert np.all(n_tr >= 1)
    assert np.all(n_va[n >= 5] >= 1) and np.all(n_te[n >= 5] >= 1)
    assert np.all(np.abs(n_va - n / 5) <= 1) and np.all(np.abs(n_te - n / 5) <= 1)
    total = n.sum()
    assert abs(n_tr.sum() / total - 0.6) < 0.03
    assert abs(n_va.sum() / total - 0.2) < 0.02 and abs(n_te.sum() / total - 0.2) < 0.02


def test_embeddings_are_unit_rows(demo: Demo) -> None:
    ds = demo.dataset
    for emb, n in ((ds.user_emb, ds.n_users), (ds.item_emb, ds.n_items)):
        assert emb is not None
        assert emb.shape == (n, 256) and emb.dtype == np.float32
        assert np.isfinite(emb).all()
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_profiles_are_indexed_texts(demo: Demo) -> None:
    ds = demo.dataset
    for profiles, n in (
        (demo.user_profiles, ds.n_users),
        (demo.item_profiles, ds.n_items),
    ):
        assert list(profiles) == list(range(n))
        assert all(type(k) is int for k in profiles)
        for entry in profiles.values():
            assert set(entry) == {"profile", "reasoning"}
            assert entry["profile"] and entry["reasoning"]
    assert ds.user_emb is not None
    np.testing.assert_array_equal(encode_texts([demo.user_profiles[7]["profile"]])[0], ds.user_emb[7])


def test_profiles_carry_signal(demo: Demo) -> None:
    """A user's profile is closer to the profiles of their held-out test items than to random ones."""
    ds = demo.dataset
    assert ds.user_emb is not None and ds.item_emb is not None
    test = ds.test.tocoo()
    pos = np.einsum("ij,ij->i", ds.user_emb[test.row], ds.item_emb[test.col])
    rand = np.random.default_rng(0).integers(0, ds.n_items, size=test.nnz)
    neg = np.einsum("ij,ij->i", ds.user_emb[test.row], ds.item_emb[rand])
    assert pos.mean() > neg.mean() + 0.04
    # ...and the test item beats a random item for most (user, item) pairs.
    assert (pos > neg).mean() > 0.6


def test_write_demo_round_trips(demo: Demo, tmp_path: Path) -> None:
    folder = write_demo(tmp_path / "nested" / "demo")
    assert folder == tmp_path / "nested" / "demo"
    names = {
        "trn_mat.pkl", "val_mat.pkl", "tst_mat.pkl",
        "usr_prf.pkl", "itm_prf.pkl", "usr_emb_np.pkl", "itm_emb_np.pkl",
    }  # fmt: skip
    assert {p.name for p in folder.iterdir()} == names

    def load(name: str) -> object:
        with open(folder / name, "rb") as fh:
            return pickle.load(fh)

    for name, want in zip(("trn_mat.pkl", "val_mat.pkl", "tst_mat.pkl"), _splits(demo), strict=True):
        got = load(name)
        assert isinstance(got, sp.coo_matrix) and got.shape == want.shape
        assert (got.tocsr() != want).nnz == 0
    assert load("usr_prf.pkl") == demo.user_profiles
    assert load("itm_prf.pkl") == demo.item_profiles
    for name, want in (
        ("usr_emb_np.pkl", demo.dataset.user_emb),
        ("itm_emb_np.pkl", demo.dataset.item_emb),
    ):
        got = load(name)
        assert isinstance(got, np.ndarray) and got.dtype == np.float32
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_users": 0},
        {"n_topics": 0},
        {"min_interactions": 0},
        {"min_interactions": 10, "max_interactions": 5},
        {"profile_noise": 1.5},
    ],
)
def test_bad_knobs_raise_config_error(kwargs: dict[str, int | float]) -> None:
    with pytest.raises(ConfigError):
        make_demo.__wrapped__(**kwargs)


def test_encoder_is_deterministic_and_stable() -> None:
    texts = ["A cozy mystery about village gossip.", "", "Space opera with starships!"]
    a, b = encode_texts(texts), encode_texts(list(texts))
    assert a.dtype == np.float32 and a.shape == (3, 256)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-6)
    # Pinned: BLAKE2b hashing, not Python's salted hash(), so this holds on every machine/run.
    v = encode_texts(["Cozy mystery"], dim=16)[0]
    np.testing.assert_allclose(v * np.sqrt(3), [0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, -1, 0, 0, 0, 0], atol=1e-6)
    # Case and stop words do not matter.
    np.testing.assert_array_equal(encode_texts(["The COZY mystery"]), encode_texts(["cozy mystery"]))


def test_encoder_similarity_follows_shared_words() -> None:
    a, b, c = encode_texts(
        [
            "This reader loves cozy mystery novels with village gossip and clever cats.",
            "A cozy mystery about village gossip, tea shops and an amateur sleuth.",
            "A practical guide to startup leadership, investing and negotiation.",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.2
    assert float(a @ b) > float(b @ c) + 0.2
