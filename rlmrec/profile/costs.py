"""Token estimates and prices: what ``--dry-run`` and the progress bar say a run costs.

Without the model's tokenizer every count before a request is an estimate: UTF-8 bytes / 4,
which is close to OpenAI's tokenizers on English and errs high on other scripts (a CJK
character is 3 bytes and about one token). After a request, the server's own counts are used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# USD per million tokens (input, output), from OpenAI's price list as of 2024-07;
# --price-in / --price-out override them, and any other model has no price unless given.
PRICES_AS_OF = "2024-07"
PRICES: dict[str, tuple[float, float]] = {
    "gpt-3.5-turbo": (0.50, 1.50),
    "gpt-4o-mini": (0.15, 0.60),
    "text-embedding-ada-002": (0.10, 0.0),
}
# Each chat message costs a few tokens of framing (role, separators) on top of its text.
_PER_MESSAGE = 4


def estimate_tokens(text: str) -> int:
    """An estimate (UTF-8 bytes / 4, rounded up), never a count."""
    return math.ceil(len(text.encode("utf-8")) / 4)


def estimate_messages(messages: Sequence[dict[str, str]]) -> int:
    return sum(estimate_tokens(m["content"]) + _PER_MESSAGE for m in messages)


@dataclass(frozen=True)
class Price:
    """USD per million tokens; ``source`` says where the numbers come from."""

    input: float
    output: float
    source: str

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input + tokens_out * self.output) / 1e6


def find_price(model: str, price_in: float | None = None, price_out: float | None = None) -> Price | None:
    """The given prices, else the table's for ``model`` (dated snapshots such as
    ``gpt-4o-mini-2024-07-18`` match their family), else None: no cost is shown."""
    families = sorted(PRICES, key=len, reverse=True)
    known = next((PRICES[n] for n in families if model == n or model.startswith(n + "-")), None)
    if price_in is None and price_out is None:
        return Price(*known, f"{model} list price as of {PRICES_AS_OF}") if known else None
    base = known or (0.0, 0.0)
    return Price(
        price_in if price_in is not None else base[0], price_out if price_out is not None else base[1], "given"
    )
