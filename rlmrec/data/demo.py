"""The built-in ``demo`` dataset: a small synthetic bookshop in the RLMRec format.

Generative story: a catalogue of reading topics (space opera, cozy mystery, baking,
...) grouped into families of related topics. Each book has 1-2 topics, a long-tail
popularity and a hidden "taste" vector; each reader has a sparse mixture over 1-3
topics plus a hidden taste vector. Readers pick books without replacement with
probability ~ exp(sharpness * topic affinity + popularity + taste match), and their
history is split 3:1:1 into train/valid/test. Profiles are written from the *latent
interests* (never from the interactions) with varied templates and some deliberate
mistakes, then embedded with the deterministic hashing encoder, so they carry real
but noisy signal, while the taste vectors leave work that only collaborative
filtering can do.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from rlmrec.data.dataset import Dataset
from rlmrec.data.encoder import encode_texts
from rlmrec.errors import ConfigError

__all__ = ["TOPICS", "Demo", "Topic", "make_demo", "write_demo"]


@dataclass(frozen=True)
class Topic:
    """One latent interest: its display name, family and descriptive vocabulary."""

    name: str
    family: str
    words: tuple[str, ...]
    title_nouns: tuple[str, ...]


def _t(name: str, family: str, words: str, nouns: str) -> Topic:
    return Topic(name, family, tuple(words.split(";")), tuple(nouns.split()))


TOPICS: tuple[Topic, ...] = (
    _t(
        "space opera",
        "speculative",
        "starships;galactic empires;interstellar fleets;alien diplomacy;wormholes;"
        "rebel admirals;distant colonies;space battles",
        "Starfall Nebula Fleet Void",
    ),
    _t(
        "epic fantasy",
        "speculative",
        "dragons;warring kingdoms;ancient prophecy;sorcery;sword fights;hidden heirs;elven cities;long quests",
        "Crown Dragon Throne Sword",
    ),
    _t(
        "horror",
        "speculative",
        "haunted houses;creeping dread;ghosts;cursed objects;small-town monsters;nightmares;isolation",
        "Hollow Whisper Dark Cellar",
    ),
    _t(
        "thriller",
        "crime",
        "spies;global conspiracy;espionage;assassins;betrayal;ticking clocks;car chases;double agents",
        "Protocol Cipher Target Agent",
    ),
    _t(
        "cozy mystery",
        "crime",
        "village gossip;amateur sleuths;tea shops;whodunits;clever cats;quaint inns;harmless poisonings",
        "Teacup Parish Cottage Murder",
    ),
    _t(
        "true crime",
        "crime",
        "real murders;police investigations;forensic evidence;courtroom trials;cold cases;serial killers;interviews",
        "Verdict Evidence Case Killer",
    ),
    _t(
        "romance",
        "fiction",
        "love stories;slow-burn courtship;heartbreak;second chances;weddings;enemies to lovers;swoon-worthy chemistry",
        "Heart Kiss Summer Promise",
    ),
    _t(
        "classic literature",
        "fiction",
        "victorian society;moral dilemmas;sweeping family sagas;austen-style manners;social satire;timeless prose",
        "Estate Pride Letters Manor",
    ),
    _t(
        "poetry",
        "fiction",
        "verse;sonnets;lyrical imagery;free verse;rhythm;quiet reflection",
        "Songs Verses Elegy Hymns",
    ),
    _t(
        "cooking",
        "food",
        "weeknight recipes;seasonal vegetables;spices;slow braises;pantry staples;family dinners;regional cuisine",
        "Kitchen Table Skillet Feast",
    ),
    _t(
        "baking",
        "food",
        "sourdough bread;pastry;layer cakes;cookies;laminated dough;flour;frosting techniques;croissants",
        "Oven Crumb Loaf Butter",
    ),
    _t(
        "gardening",
        "outdoors",
        "vegetable beds;perennials;compost;seedlings;pruning;healthy soil;cottage gardens;pollinators",
        "Garden Seed Bloom Harvest",
    ),
    _t(
        "nature writing",
        "outdoors",
        "wilderness;birdwatching;old forests;mountain walks;changing seasons;rivers;wild animals",
        "River Wild Forest Birdsong",
    ),
    _t(
        "travel writing",
        "outdoors",
        "long journeys;train rides;backroads;foreign cities;street food;wanderlust;local customs",
        "Road Journey Passage Atlas",
    ),
    _t(
        "popular science",
        "ideas",
        "physics;evolution;the cosmos;the human brain;experiments;discoveries;genetics;climate",
        "Universe Origins Gene Quantum",
    ),
    _t(
        "philosophy",
        "ideas",
        "ethics;stoicism;the meaning of life;free will;consciousness;virtue;logic and reason",
        "Meditations Reason Virtue Mind",
    ),
    _t(
        "self-help",
        "practical",
        "habits;productivity;mindset;motivation;goal setting;resilience;mindfulness;confidence",
        "Habits Focus Mindset Reset",
    ),
    _t(
        "business",
        "practical",
        "startups;leadership;markets;investing;negotiation;strategy;management;entrepreneurs",
        "Leader Capital Market Startup",
    ),
    _t(
        "wwii history",
        "history",
        "wartime britain;the blitz;codebreakers;resistance fighters;normandy landings;"
        "generals;battle campaigns;the home front",
        "War Blitz Front Battle",
    ),
    _t(
        "music biography",
        "history",
        "rock bands;jazz legends;world tours;recording studios;album stories;fame and excess;musicians' lives",
        "Encore Riff Record Tour",
    ),
    _t(
        "graphic novels",
        "visual",
        "comics;superheroes;striking artwork;manga;panel layouts;antiheroes;visual storytelling",
        "Panel Ink Hero Saga",
    ),
    _t(
        "children's picture books",
        "visual",
        "bedtime stories;talking animals;colorful illustrations;gentle rhymes;friendship;first words",
        "Bunny Moon Bear Little",
    ),
)

_ADJECTIVES = (  # noqa: SIM905
    "Silent Last Hidden Golden Broken Secret Long Bright Lost Quiet Crimson Wild "
    "Distant Little Final Winter Burning Second Forgotten Iron Gentle Northern"
).split()


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


def _join(names: Sequence[str]) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _relatedness(topics: Sequence[Topic], related: float) -> np.ndarray:
    fam = np.array([t.family for t in topics])
    s = np.where(fam[:, None] == fam[None, :], related, 0.0)
    np.fill_diagonal(s, 1.0)
    return s


def _wrong_topic(rng: np.random.Generator, true: int, rel: np.ndarray) -> int:
    """A mistaken topic: half the time a related one (if any), else any other."""
    related = np.flatnonzero((rel[true] > 0) & (np.arange(len(rel)) != true))
    if related.size and rng.random() < 0.5:
        return int(rng.choice(related))
    others = np.flatnonzero(np.arange(len(rel)) != true)
    return int(rng.choice(others))


_USER_OPENERS = (
    "This reader gravitates to {t}, enjoying {w}.",
    "This user mostly reads {t} and keeps coming back to {w}.",
    "A reader with a clear taste for {t}; they look for {w}.",
    "Their shelf is dominated by {t}, especially books about {w}.",
    "This reader is drawn to {t} and seems to love {w}.",
)
_USER_MINOR = (
    "They also dip into {t} now and then.",
    "Occasionally they pick up {t}, for example books on {w}.",
    "A smaller share of their reading is {t}.",
)
_USER_NEGATIVE = (
    "They are unlikely to enjoy {t}.",
    "{T} does not seem to appeal to them.",
    "They rarely touch {t}.",
)
_ITEM_TEMPLATES = (
    '"{title}" is a {t} book about {w}. Readers who like {r} will enjoy it.',
    "A {t} title about {w}. It suits readers who enjoy {r}.",
    'This {t} book, "{title}", explores {w}. Fans of {r} will find it appealing.',
    'The {t} book "{title}" centres on {w}; a good pick for readers of {r}.',
)


class _Themes:
    """Flat index over every topic's descriptive words ("themes")."""

    def __init__(self, topics: Sequence[Topic]) -> None:
        self.names = [w for t in topics for w in t.words]
        self.topic = np.array([k for k, t in enumerate(topics) for _ in t.words])
        sizes = [len(t.words) for t in topics]
        self.start = np.concatenate([[0], np.cumsum(sizes)]).astype(int)

    def sample(self, rng: np.random.Generator, k: int, n: int) -> list[int]:
        """``n`` distinct theme ids of topic ``k``."""
        lo, hi = int(self.start[k]), int(self.start[k + 1])
        return [int(j) for j in rng.choice(np.arange(lo, hi), size=min(n, hi - lo), replace=False)]

    def describe(self, rng: np.random.Generator, ids: Sequence[int], noise: float) -> list[str]:
        """Theme names; each is swapped for another theme of its topic with prob ``noise``."""
        out = []
        for j in ids:
            if rng.random() < noise:
                j = self.sample(rng, int(self.topic[j]), 1)[0]
            out.append(self.names[j])
        return list(dict.fromkeys(out))


def _user_profile(
    rng: np.random.Generator,
    weights: np.ndarray,
    favorites: dict[int, list[int]],
    rel: np.ndarray,
    topics: Sequence[Topic],
    themes: _Themes,
    noise: float,
) -> dict[str, str]:
    held = [int(k) for k in np.argsort(-weights) if weights[k] > 0]
    # The "LLM" summarizes the main interests; each may be misread as a wrong topic,
    # in which case it describes that topic with arbitrary themes.
    said: dict[int, tuple[float, list[int]]] = {}
    for k in held:
        if rng.random() < noise:
            m = _wrong_topic(rng, k, rel)
            said.setdefault(m, (float(weights[k]), themes.sample(rng, m, 2)))
        else:
            said.setdefault(k, (float(weights[k]), favorites[k]))
    mentioned = list(said)
    major = [k for k in mentioned if said[k][0] >= 0.3] or mentioned[:1]
    minor = [k for k in mentioned if k not in major]
    words: list[str] = []
    for k in major:
        words += themes.describe(rng, said[k][1], noise)
    parts = [_pick(rng, _USER_OPENERS).format(t=_join([topics[k].name for k in major]), w=_join(words))]
    for k in minor:
        w = themes.describe(rng, said[k][1][: int(rng.integers(1, 3))], noise)
        parts.append(_pick(rng, _USER_MINOR).format(t=topics[k].name, w=_join(w)))
    unrelated = np.flatnonzero(rel[held].max(axis=0) == 0)
    n_neg = int(rng.integers(0, 3))
    negatives = [int(k) for k in rng.choice(unrelated, size=min(n_neg, unrelated.size), replace=False)]
    if negatives:
        neg = _join([topics[k].name for k in negatives])
        parts.append(_pick(rng, _USER_NEGATIVE).format(t=neg, T=neg[0].upper() + neg[1:]))
    shares = [f"{topics[k].name} (about {max(5, round(20 * said[k][0]) * 5)}%)" for k in mentioned]
    reasoning = f"Judging from the books they interacted with, their reading splits into {_join(shares)}."
    if negatives:
        reasoning += f" No {_join([topics[k].name for k in negatives])} titles appear in their history."
    return {"profile": " ".join(parts), "reasoning": reasoning}


def _item_profile(
    rng: np.random.Generator,
    item_topics: Sequence[int],
    item_themes: Sequence[int],
    title: str,
    popular: bool,
    rel: np.ndarray,
    topics: Sequence[Topic],
    themes: _Themes,
    noise: float,
) -> dict[str, str]:
    main = item_topics[0]
    label = _wrong_topic(rng, main, rel) if rng.random() < noise else main
    words = themes.describe(rng, item_themes, noise)
    if rng.random() < noise:  # a stray detail from an arbitrary shelf
        words.append(themes.names[int(rng.integers(len(themes.names)))])
        words = list(dict.fromkeys(words))
    readers = list(dict.fromkeys([label, *item_topics[1:]]))
    profile = _pick(rng, _ITEM_TEMPLATES).format(
        title=title,
        t=topics[label].name,
        w=_join(words),
        r=_join([topics[k].name for k in readers]),
    )
    reasoning = f'The title and blurb of "{title}" point to {topics[label].name}'
    if len(item_topics) > 1:
        reasoning += f", with elements of {topics[item_topics[1]].name}"
    reasoning += f"; {_join(words[:2])} {'are' if len(words) > 1 else 'is'} central."
    if popular:
        reasoning += " Its wide readership suggests broad appeal."
    return {"profile": profile, "reasoning": reasoning}


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
    themes = _Themes(topics)
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
            ks.append(_wrong_topic(rng, int(k), rel))
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
        title = f"The {_pick(rng, _ADJECTIVES)} {_pick(rng, topics[k].title_nouns)}"
        titles.append(title)
        popular = bool(log_pop[i] >= pop_cut)
        item_profiles[i] = _item_profile(
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
        u: _user_profile(rng, theta[u], favorites[u], rel, topics, themes, profile_noise) for u in range(n_users)
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


def write_demo(folder: Path, seed: int = 2023) -> Path:
    """Write the demo (default sizes) as an RLMRec dataset folder; returns ``folder``.

    Files: ``trn_mat.pkl``/``val_mat.pkl``/``tst_mat.pkl`` (``scipy.sparse.coo_matrix``),
    ``usr_prf.pkl``/``itm_prf.pkl`` (dict index -> ``{"profile", "reasoning"}``) and
    ``usr_emb_np.pkl``/``itm_emb_np.pkl`` (``float32`` arrays), all stdlib pickles.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    demo = make_demo(seed)
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
