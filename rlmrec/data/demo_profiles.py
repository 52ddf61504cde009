"""The demo's profile texts, written the way an LLM might summarize a reader or a book:
from the *latent interests* (never from the interactions), with varied templates and
some deliberate mistakes (a misread topic, a swapped or stray theme) at rate ``noise``.

Every random draw here is part of the demo's generative story: changing the order of
draws changes the demo (bump ``GENERATOR_VERSION`` in :mod:`rlmrec.data.demo_cache`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rlmrec.data.demo_catalogue import ITEM_TEMPLATES, USER_MINOR, USER_NEGATIVE, USER_OPENERS, Topic

__all__ = ["Themes", "item_profile", "join", "pick", "user_profile", "wrong_topic"]


def join(names: Sequence[str]) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def wrong_topic(rng: np.random.Generator, true: int, rel: np.ndarray) -> int:
    """A mistaken topic: half the time a related one (if any), else any other."""
    related = np.flatnonzero((rel[true] > 0) & (np.arange(len(rel)) != true))
    if related.size and rng.random() < 0.5:
        return int(rng.choice(related))
    others = np.flatnonzero(np.arange(len(rel)) != true)
    return int(rng.choice(others))


class Themes:
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


def user_profile(
    rng: np.random.Generator,
    weights: np.ndarray,
    favorites: dict[int, list[int]],
    rel: np.ndarray,
    topics: Sequence[Topic],
    themes: Themes,
    noise: float,
) -> dict[str, str]:
    held = [int(k) for k in np.argsort(-weights) if weights[k] > 0]
    # The "LLM" summarizes the main interests; each may be misread as a wrong topic,
    # in which case it describes that topic with arbitrary themes.
    said: dict[int, tuple[float, list[int]]] = {}
    for k in held:
        if rng.random() < noise:
            m = wrong_topic(rng, k, rel)
            said.setdefault(m, (float(weights[k]), themes.sample(rng, m, 2)))
        else:
            said.setdefault(k, (float(weights[k]), favorites[k]))
    mentioned = list(said)
    major = [k for k in mentioned if said[k][0] >= 0.3] or mentioned[:1]
    minor = [k for k in mentioned if k not in major]
    words: list[str] = []
    for k in major:
        words += themes.describe(rng, said[k][1], noise)
    parts = [pick(rng, USER_OPENERS).format(t=join([topics[k].name for k in major]), w=join(words))]
    for k in minor:
        w = themes.describe(rng, said[k][1][: int(rng.integers(1, 3))], noise)
        parts.append(pick(rng, USER_MINOR).format(t=topics[k].name, w=join(w)))
    unrelated = np.flatnonzero(rel[held].max(axis=0) == 0)
    n_neg = int(rng.integers(0, 3))
    negatives = [int(k) for k in rng.choice(unrelated, size=min(n_neg, unrelated.size), replace=False)]
    if negatives:
        neg = join([topics[k].name for k in negatives])
        parts.append(pick(rng, USER_NEGATIVE).format(t=neg, T=neg[0].upper() + neg[1:]))
    shares = [f"{topics[k].name} (about {max(5, round(20 * said[k][0]) * 5)}%)" for k in mentioned]
    reasoning = f"Judging from the books they interacted with, their reading splits into {join(shares)}."
    if negatives:
        reasoning += f" No {join([topics[k].name for k in negatives])} titles appear in their history."
    return {"profile": " ".join(parts), "reasoning": reasoning}


def item_profile(
    rng: np.random.Generator,
    item_topics: Sequence[int],
    item_themes: Sequence[int],
    title: str,
    popular: bool,
    rel: np.ndarray,
    topics: Sequence[Topic],
    themes: Themes,
    noise: float,
) -> dict[str, str]:
    main = item_topics[0]
    label = wrong_topic(rng, main, rel) if rng.random() < noise else main
    words = themes.describe(rng, item_themes, noise)
    if rng.random() < noise:  # a stray detail from an arbitrary shelf
        words.append(themes.names[int(rng.integers(len(themes.names)))])
        words = list(dict.fromkeys(words))
    readers = list(dict.fromkeys([label, *item_topics[1:]]))
    profile = pick(rng, ITEM_TEMPLATES).format(
        title=title,
        t=topics[label].name,
        w=join(words),
        r=join([topics[k].name for k in readers]),
    )
    reasoning = f'The title and blurb of "{title}" point to {topics[label].name}'
    if len(item_topics) > 1:
        reasoning += f", with elements of {topics[item_topics[1]].name}"
    reasoning += f"; {join(words[:2])} {'are' if len(words) > 1 else 'is'} central."
    if popular:
        reasoning += " Its wide readership suggests broad appeal."
    return {"profile": profile, "reasoning": reasoning}
