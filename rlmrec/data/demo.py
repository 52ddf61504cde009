"""The ``demo`` dataset's generator: a small synthetic bookshop in the RLMRec format.

Generative story: a catalogue of reading topics (space opera, cozy mystery, baking,
...; :mod:`rlmrec.data.demo_catalogue`) grouped into families of related topics. Each
book has 1-2 topics, a long-tail popularity and a hidden "taste" vector; each reader
has a sparse mixture over 1-3 topics plus a hidden taste vector. Readers pick books
without replacement with probability ~ exp(sharpness * topic affinity + popularity +
taste match), and their history is split 3:1:1 into train/valid/test. Profiles are
written from the *latent interests* (:mod:`rlmrec.data.demo_profiles`), then embedded
with the deterministic hashing encoder, so they carry real but noisy signal, while the
taste vectors leave work that only collaborative filtering can do.

Commands read the demo as a folder that :mod:`rlmrec.data.demo_cache` writes once with
:func:`write_demo`; this module never imports the loader. Any change to what it
generates must bump ``demo_cache.GENERATOR_VERSION``.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from rlmrec.data.container import Dataset
from rlmrec.data.demo_catalogue import ADJECTIVES, TOPICS, Topic
from rlmrec.data.demo_profiles import Themes, item_profile, pick, user_profile, wrong_topic
from rlmrec.data.encoder import encode_texts
from rlmrec.errors import ConfigError

__all__ = ["TOPICS", "Demo", "Topic", "make_demo", "write_demo"]


@dataclass(frozen=True)
class Demo:
    """The demo dataset plus its profile texts (``{"profile", "reasoning"}`` by index).

    ``make_demo`` caches its result: treat every field as read-only.
    """

    dataset: Dataset
    user_profiles: dict[int, dict[str, str]]
    item_profiles: dict[int, dict[str, str]]
    # Raw catalogue facts for ``demo_raw`` (titles; topic names per item, main first).
    item_titles: tuple[str, ...] = ()
    item_topics: tuple[tuple[str, ...], ...] = ()


def _relatedness(topics: Sequence[Topic], related: float) -> np.ndarray:
    fam = np.array([t.family for t in topics])
    s = np.where(fam[:, None] == fam[None, :], related, 0.0)
    np.fill_diagonal(s, 1.0)
    return s


def _split(
    rng: np.random.Generator, chosen: list[np.ndarray], n_items: int
) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """Split each user's items 3:1:1 at random (>= 1 train; >= 1 valid/test from 5 up)."""
    rows: list[list[int]] = [[], [], []]
    cols: list[list[int]] = [[], [], []]
    for u, user_items in enumerate(chosen):
        items = rng.permutation(user_items)
        n = len(items)
        n_hold = int(np.floor(n / 5 + 0.5))
        if n - 2 * n_hold < 1:
            n_hold = (n - 1) // 2
        n_train = n - 2 * n_hold
        parts = (
            items[:n_train],
            items[n_train : n_train + n_hold],
            items[n_train + n_hold :],
        )
        for s, part in enumerate(parts):
            rows[s] += [u] * len(part)
            cols[s] += part.tolist()
    n_users = len(chosen)
    out = []
    for s in range(3):
        m = sp.csr_matrix(
            (np.ones(len(rows[s]), dtype=np.float32), (rows[s], cols[s])),
            shape=(n_users, n_items),
            dtype=np.float32,
        )
        m.sort_indices()
        out.append(m)
    return out[0], out[1], out[2]


@lru_cache(maxsize=8)
def make_demo(
    seed: int = 2023,
    n_users: int = 2000,
    n_items: int = 1600,
    *,
    n_topics: int = len(TOPICS),
    interactions_per_user: float = 15.0,
    min_interactions: int = 5,
    max_interactions: int = 50,
    affinity_sharpness: float = 5.0,
    related_affinity: float = 0.25,
    popularity_weight: float = 1.0,
    popularity_spread: float = 1.0,
    theme_weight: float = 2.0,
    taste_weight: float = 1.5,
    profile_noise: float = 0.15,
    emb_dim: int = 256,
) -> Demo:
    """Generate the demo bookshop deterministically from ``seed``.

    Difficulty knobs: ``interactions_per_user`` (mean history length, log-normal,
    clipped to ``[min_interactions, max_interactions]``); ``affinity_sharpness``
    (how strongly readers stick to their topics); ``related_affinity`` (pull of
    topics in the same family); ``popularity_weight``/``popularity_spread`` (how
    long-tailed item popularity is); ``theme_weight`` (pull of a reader's favourite
    themes within their topics, which the profiles describe); ``taste_weight``
    (hidden, profile-invisible preferences only collaborative filtering can learn);
    ``profile_noise`` (rate of mistakes in the written profiles). The result is
    cached: do not mutate it.
    """
    if n_users < 1 or n_items < 1:
        raise ConfigError(f"demo needs n_users and n_items >= 1, got {n_users}, {n_items}")
    if not 1 <= n_topics <= len(TOPICS):
        raise ConfigError(f"demo n_topics must be in 1..{len(TOPICS)}, got {n_topics}")
    if not 1 <= min_interactions <= max_interactions <= n_items:
        raise ConfigError(
            "demo needs 1 <= min_interactions <= max_interactions <= n_items, got "
            f"{min_interactions}, {max_interactions}, {n_items}"
        )
    if interactions_per_user <= 0 or not 0.0 <= profile_noise <= 1.0 or emb_dim < 1:
        raise ConfigError("demo needs interactions_per_user > 0, 0 <= profile_noise <= 1, emb_dim >= 1")

    rng = np.random.default_rng(seed)
    topics = TOPICS[:n_topics]
    rel = _relatedness(topics, related_affinity)
    themes = Themes(topics)
    n_themes = len(themes.names)
    genre_share = rng.dirichlet(np.full(n_topics, 4.0))
    taste_dim = 16

    # Items: a main topic (by genre share), sometimes a second (often related) one,
    # and 2-3 themes of the main topic (+1 of the second).
    item_main = rng.choice(n_topics, size=n_items, p=genre_share)
    phi = np.zeros((n_items, n_topics))
    psi = np.zeros((n_items, n_themes))
    item_topics: list[list[int]] = []
    item_themes: list[list[int]] = []
    for i, k in enumerate(item_main):
        ks = [int(k)]
        if rng.random() < 0.35 and n_topics > 1:
            ks.append(wrong_topic(rng, int(k), rel))
        js = themes.sample(rng, ks[0], int(rng.integers(2, 4)))
        if len(ks) > 1:
            js += themes.sample(rng, ks[1], 1)
        item_topics.append(ks)
        item_themes.append(js)
        phi[i, ks] = [1.0] if len(ks) == 1 else [0.7, 0.3]
        psi[i, js] = 1.0 / len(js)
    log_pop = rng.normal(0.0, popularity_spread, size=n_items)
    item_taste = rng.normal(0.0, 1.0 / np.sqrt(taste_dim), size=(n_items, taste_dim))

    # Users: a sparse mixture over 1-3 topics (first one by genre share), with two
    # favourite themes in each.
    theta = np.zeros((n_users, n_topics))
    omega = np.zeros((n_users, n_themes))
    favorites: list[dict[int, list[int]]] = []
    for u in range(n_users):
        n_k = min(int(rng.choice(3, p=[0.3, 0.45, 0.25])) + 1, n_topics)
        first = int(rng.choice(n_topics, p=genre_share))
        pull = genre_share * (1.0 + 8.0 * rel[first])
        pull[first] = 0.0
        rest = (
            rng.choice(n_topics, size=n_k - 1, replace=False, p=pull / pull.sum())
            if n_k > 1
            else np.array([], dtype=int)
        )
        user_ks = np.concatenate([[first], rest]).astype(int)
        theta[u, user_ks] = np.sort(rng.dirichlet(np.full(n_k, 2.0)))[::-1]
        favorites.append({int(k): themes.sample(rng, int(k), 2) for k in user_ks})
        for js in favorites[-1].values():
            omega[u, js] = 1.0
    user_taste = rng.normal(0.0, 1.0 / np.sqrt(taste_dim), size=(n_users, taste_dim))

    # Interactions: Gumbel top-k = sampling without replacement from softmax(logits).
    sigma = 0.5
    mu = np.log(interactions_per_user) - sigma**2 / 2
    n_inter = np.clip(
        np.rint(rng.lognormal(mu, sigma, size=n_users)),
        min_interactions,
        max_interactions,
    ).astype(int)
    logits = (
        affinity_sharpness * ((theta @ rel) @ phi.T)
        + theme_weight * (omega @ psi.T)
        + popularity_weight * log_pop[None, :]
        + taste_weight * np.sqrt(taste_dim) * (user_taste @ item_taste.T)
    )
    logits += rng.gumbel(size=logits.shape)
    order = np.argpartition(-logits, max_interactions - 1, axis=1)[:, :max_interactions]
    top = np.take_along_axis(logits, order, axis=1)
    order = np.take_along_axis(order, np.argsort(-top, axis=1), axis=1)
    chosen = [order[u, : n_inter[u]] for u in range(n_users)]
    train, valid, test = _split(rng, chosen, n_items)

    # Profiles, written from the latent interests with templates and mistakes.
    pop_cut = np.quantile(log_pop, 0.95)
    item_profiles: dict[int, dict[str, str]] = {}
    titles: list[str] = []
    for i in range(n_items):
        k = item_topics[i][0]
        title = f"The {pick(rng, ADJECTIVES)} {pick(rng, topics[k].title_nouns)}"
        titles.append(title)
        popular = bool(log_pop[i] >= pop_cut)
        item_profiles[i] = item_profile(
            rng,
            item_topics[i],
            item_themes[i],
            title,
            popular,
            rel,
            topics,
            themes,
            profile_noise,
        )
    user_profiles = {
        u: user_profile(rng, theta[u], favorites[u], rel, topics, themes, profile_noise) for u in range(n_users)
    }
    user_emb = encode_texts([user_profiles[u]["profile"] for u in range(n_users)], emb_dim)
    item_emb = encode_texts([item_profiles[i]["profile"] for i in range(n_items)], emb_dim)

    dataset = Dataset(
        name="demo",
        train=train,
        valid=valid,
        test=test,
        user_emb=user_emb,
        item_emb=item_emb,
        path=None,
    )
    return Demo(
        dataset=dataset,
        user_profiles=user_profiles,
        item_profiles=item_profiles,
        item_titles=tuple(titles),
        item_topics=tuple(tuple(topics[k].name for k in ks) for ks in item_topics),
    )


_FILES = {
    "trn_mat.pkl": "train",
    "val_mat.pkl": "valid",
    "tst_mat.pkl": "test",
}


def write_demo(folder: Path, seed: int | None = None) -> Path:
    """Write the demo (default sizes) as an RLMRec dataset folder; returns ``folder``.

    Files: ``trn_mat.pkl``/``val_mat.pkl``/``tst_mat.pkl`` (``scipy.sparse.coo_matrix``),
    ``usr_prf.pkl``/``itm_prf.pkl`` (dict index -> ``{"profile", "reasoning"}``) and
    ``usr_emb_np.pkl``/``itm_emb_np.pkl`` (``float32`` arrays), all stdlib pickles.
    ``seed`` defaults to ``make_demo``'s.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # make_demo() rather than make_demo(2023): the lru_cache keys on the arguments as
    # given, and the default call is the one the tests and the cache share.
    demo = make_demo() if seed is None else make_demo(seed)
    ds = demo.dataset
    payloads: dict[str, object] = {fname: sp.coo_matrix(getattr(ds, attr)) for fname, attr in _FILES.items()}
    payloads["usr_prf.pkl"] = demo.user_profiles
    payloads["itm_prf.pkl"] = demo.item_profiles
    payloads["usr_emb_np.pkl"] = ds.user_emb
    payloads["itm_emb_np.pkl"] = ds.item_emb
    for fname, obj in payloads.items():
        with open(folder / fname, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return folder
