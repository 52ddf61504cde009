"""A small deterministic text encoder standing in for ``text-embedding-ada-002``.

RLMRec embeds each LLM-written profile with a commercial embedding model. For the
built-in demo we need something that runs offline, instantly and identically on
every machine, so :func:`encode_texts` uses the hashing trick: lowercase word
unigrams and bigrams (stop words dropped) are mapped to ``dim`` buckets with a
stable hash (BLAKE2b, never Python's per-process salted ``hash()``), each with a
hash-derived sign, weighted by sublinear term frequency ``1 + log(tf)``, and every
row is L2-normalized. Texts that share words therefore get a higher cosine
similarity; there is no semantics beyond word overlap.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

__all__ = ["encode_texts", "tokenize"]

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

_STOP_WORDS = frozenset(
    re.findall(
        r"\S+",
        """
        a an and are as at be but by for from has have he her his i in into is it its
        of on or our she so that the their them then there these they this those to
        was we were which who will with you your also than very can may
        """,
    )
)

# Feature used for texts with no usable tokens, so every row is unit-norm.
_EMPTY_FEATURE = "<empty>"


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens of ``text`` with stop words removed."""
    return [tok for tok in _TOKEN.findall(text.lower()) if tok not in _STOP_WORDS]


def _features(text: str) -> list[str]:
    tokens = tokenize(text)
    if not tokens:
        return [_EMPTY_FEATURE]
    return tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]


@lru_cache(maxsize=1 << 18)
def _feature_hash(feature: str) -> int:
    """A stable 64-bit hash of one feature string (same on every run/machine)."""
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def encode_texts(texts: Sequence[str], dim: int = 256) -> np.ndarray:
    """Embed ``texts`` as ``float32`` rows of length ``dim`` with unit L2 norm.

    Deterministic: the same text always maps to the same vector. Empty texts (or
    texts made only of stop words) map to one fixed unit vector.
    """
    if isinstance(texts, str):
        raise TypeError("encode_texts expects a sequence of strings, not a single string")
    if dim < 1:
        raise ValueError(f"dim must be positive, got {dim}")
    n = len(texts)
    rows: list[int] = []
    hashes: list[int] = []
    counts: list[int] = []
    for row, text in enumerate(texts):
        for feature, count in Counter(_features(text)).items():
            rows.append(row)
            hashes.append(_feature_hash(feature))
            counts.append(count)
    if not rows:
        return np.zeros((n, dim), dtype=np.float32)
    h = np.array(hashes, dtype=np.uint64)
    bucket = ((h >> np.uint64(1)) % np.uint64(dim)).astype(np.int64)
    sign = np.where((h & np.uint64(1)) == 1, 1.0, -1.0)
    weight = sign * (1.0 + np.log(np.array(counts, dtype=np.float64)))
    flat = np.array(rows, dtype=np.int64) * dim + bucket
    out = np.bincount(flat, weights=weight, minlength=n * dim).reshape(n, dim)
    norms = np.linalg.norm(out, axis=1)
    degenerate = norms == 0.0  # every feature cancelled out in its bucket
    if degenerate.any():
        out[degenerate] = encode_texts([""], dim=dim)[0]
        norms[degenerate] = 1.0
    return (out / norms[:, None]).astype(np.float32)
