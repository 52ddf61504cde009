"""Field names of the public raw dumps the paper's datasets came from, and the column
names ``rlmrec data build`` guesses for other files."""

from __future__ import annotations

from dataclasses import dataclass

from rlmrec.errors import DataError

DOMAINS = ("books", "businesses", "games", "generic")


@dataclass(frozen=True)
class Preset:
    """Where each field lives in one public dump."""

    domain: str  # chooses the profile prompts
    user: str
    item: str
    rating: str | None  # None: the dump has no rating, so no rating filter
    time: str
    text: str | None  # review text inside the interactions file
    item_id: str  # the item id field of the metadata file
    meta: tuple[str, ...]  # metadata fields worth showing an LLM


PRESETS: dict[str, Preset] = {
    # Amazon 2014 (and 2018) reviews_<Category>.json.gz + meta_<Category>.json.gz; the
    # 2014 metadata is Python dict literals, the reviews strict JSON.
    "amazon": Preset(
        domain="books",
        user="reviewerID",
        item="asin",
        rating="overall",
        time="unixReviewTime",
        text="reviewText",
        item_id="asin",
        meta=("title", "brand", "categories", "category", "description"),
    ),
    # Yelp Open Dataset: yelp_academic_dataset_review.json + ..._business.json.
    "yelp": Preset(
        domain="businesses",
        user="user_id",
        item="business_id",
        rating="stars",
        time="date",
        text="text",
        item_id="business_id",
        meta=("name", "categories", "city", "state", "attributes"),
    ),
    # Steam as used by SASRec: steam_reviews.json.gz + steam_games.json.gz (both Python
    # dict literals). Reviews carry no rating.
    "steam": Preset(
        domain="games",
        user="username",
        item="product_id",
        rating=None,
        time="date",
        text="text",
        item_id="id",
        meta=("app_name", "title", "genres", "tags", "specs", "developer", "publisher"),
    ),
}

# Guesses for files without a preset, in order of preference.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "user": ("user", "user_id", "userId", "userid", "uid", "reviewerID", "username", "customer_id"),
    "item": ("item", "item_id", "itemId", "itemid", "iid", "asin", "business_id", "product_id", "movieId", "id"),
    "rating": ("rating", "ratings", "stars", "overall", "score"),
    "time": ("timestamp", "time", "unixReviewTime", "date", "datetime", "ts"),
    "text": ("text", "review", "reviewText", "review_text", "comment", "body"),
}


def get_preset(name: str | None) -> Preset | None:
    if name is None:
        return None
    try:
        return PRESETS[name]
    except KeyError:
        raise DataError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}") from None


def pick(present: list[str], role: str, given: str | None, preferred: str | None, *, file: str) -> str | None:
    """The column playing ``role``: the one the user named (which must exist), else the
    preset's, else the first known name present. None when nothing matches."""
    if given is not None:
        if given not in present:
            raise DataError(
                f"{file}: no column {given!r} (--{role}-col); columns present: {', '.join(present) or 'none'}"
            )
        return given
    if preferred is not None and preferred in present:
        return preferred
    return next((c for c in CANDIDATES[role] if c in present), None)
