"""The prompts: a system instruction per domain and the item, user and retry templates,
text files in ``rlmrec/profile/prompts/`` (``--prompts DIR`` replaces any of them), and
the messages built from them for one entity, cut to fit ``--max-prompt-tokens``.

Templates are ``string.Template`` text: ``$input`` is the entity's data as JSON (so the
model reads reviews and titles as data, and nothing in them is ever interpreted here),
``$item_noun``/``$item_nouns``/``$user_noun``/``$user_nouns`` name the domain's things,
and the retry template gets ``$error``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from rlmrec.errors import ConfigError, LLMError
from rlmrec.profile.costs import estimate_messages
from rlmrec.profile.inputs import ItemInput, UserInput

Message = dict[str, str]
NOUNS: dict[str, dict[str, str]] = {
    "books": {"item_noun": "book", "item_nouns": "books", "user_noun": "reader", "user_nouns": "readers"},
    "businesses": {
        "item_noun": "business",
        "item_nouns": "businesses",
        "user_noun": "customer",
        "user_nouns": "customers",
    },
    "games": {"item_noun": "game", "item_nouns": "games", "user_noun": "player", "user_nouns": "players"},
    "generic": {"item_noun": "item", "item_nouns": "items", "user_noun": "user", "user_nouns": "users"},
}
_TEMPLATES = {"item.txt": {"input"}, "user.txt": {"input"}, "retry.txt": {"error"}}
_ELLIPSIS = "…"
# How far reviews, descriptions and item profiles are cut, step by step, until a prompt fits.
_REVIEW_STEPS = (1000, 500, 250, 120, 60)
_FIELD_STEPS = (1000, 500, 250, 120)
_PROFILE_STEPS = (400, 200, 100)


@dataclass(frozen=True)
class Prompts:
    domain: str
    system: str
    item: Template
    user: Template
    retry: Template
    nouns: dict[str, str]
    replaced: tuple[str, ...]  # files that came from --prompts

    def retry_message(self, error: str) -> str:
        return self.retry.substitute(self.nouns, error=error)


def _read(name: str, directory: Path | None, replaced: list[str]) -> str:
    if directory is not None and (directory / name).is_file():
        replaced.append(name)
        try:
            return (directory / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"{directory / name}: cannot read ({error})") from None
    packaged = resources.files("rlmrec.profile") / "prompts" / name
    if not packaged.is_file():
        raise ConfigError(f"no prompt file {name} (in {directory} or the package)")
    return packaged.read_text(encoding="utf-8")


def _template(name: str, text: str, allowed: set[str]) -> Template:
    template = Template(text)
    if not template.is_valid():
        raise ConfigError(f"{name}: a '$' that starts no placeholder (write $$ for a dollar sign)")
    unknown = set(template.get_identifiers()) - allowed - set(NOUNS["generic"])
    if unknown:
        raise ConfigError(f"{name}: unknown placeholder ${sorted(unknown)[0]} (known: {', '.join(sorted(allowed))})")
    missing = allowed - set(template.get_identifiers())
    if missing:
        raise ConfigError(f"{name}: the template must contain ${sorted(missing)[0]}")
    return template


def domains(directory: Path | None = None) -> list[str]:
    extra = [p.name[len("system-") : -4] for p in directory.glob("system-*.txt")] if directory else []
    return sorted(set(NOUNS) | set(extra))


def load_prompts(domain: str, directory: Path | None = None) -> Prompts:
    """The prompt set for ``domain``; files in ``directory`` replace the packaged ones."""
    if directory is not None and not directory.is_dir():
        raise ConfigError(f"--prompts {directory}: not a folder")
    if domain not in domains(directory):
        raise ConfigError(f"unknown domain {domain!r} (known: {', '.join(domains(directory))})")
    replaced: list[str] = []
    nouns = NOUNS.get(domain, NOUNS["generic"])
    system_name = f"system-{domain}.txt"
    system = _template(system_name, _read(system_name, directory, replaced), set()).substitute(nouns)
    item, user, retry = (_template(n, _read(n, directory, replaced), a) for n, a in _TEMPLATES.items())
    return Prompts(domain, system, item, user, retry, nouns, tuple(replaced))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + _ELLIPSIS


def _shorten(value: Any, limit: int) -> Any:
    """A metadata value with its texts cut to ``limit`` characters and its lists to their
    first 10 entries (descriptions often come as lists of paragraphs)."""
    if isinstance(value, str):
        return _cut(value, limit)
    if isinstance(value, list):
        return [_shorten(v, limit) for v in value[:10]]
    if isinstance(value, dict):
        return {k: _shorten(v, limit) for k, v in value.items()}
    return value


def _as_json(data: dict[str, Any]) -> str:
    """JSON with each top-level key, and each entry of a top-level list, on a line of its
    own: readable in --dry-run, without the tokens that full indentation costs."""

    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    lines = ["{"]
    for n, (key, value) in enumerate(data.items()):
        end = "," if n < len(data) - 1 else ""
        if isinstance(value, list) and value:
            lines.append(f" {dump(key)}: [")
            lines += [f"  {dump(v)}{',' if k < len(value) - 1 else ''}" for k, v in enumerate(value)]
            lines.append(f" ]{end}")
        else:
            lines.append(f" {dump(key)}: {dump(value)}{end}")
    return "\n".join([*lines, "}"])


def _messages(prompts: Prompts, template: Template, data: dict[str, Any]) -> list[Message]:
    user = template.substitute(prompts.nouns, input=_as_json(data))
    return [{"role": "system", "content": prompts.system}, {"role": "user", "content": user}]


def _fit(
    prompts: Prompts, template: Template, variants: Iterator[tuple[dict[str, Any], str | None]], budget: int, what: str
) -> tuple[list[Message], str | None]:
    """The first variant whose messages fit ``budget`` estimated tokens."""
    tokens = 0
    for data, note in variants:
        messages = _messages(prompts, template, data)
        tokens = estimate_messages(messages)
        if tokens <= budget:
            return messages, note
    raise LLMError(
        f"the prompt for {what} needs about {tokens:,} tokens even with its reviews and texts cut "
        f"(--max-prompt-tokens {budget:,}); raise it or shorten the prompt files"
    )


# ---------------------------------------------------------------------- items


def _item_data(meta: dict[str, Any], reviews: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": meta, "reviews": reviews}


def _review(text: str, rating: float | None, limit: int | None) -> dict[str, Any]:
    entry: dict[str, Any] = {} if rating is None else {"rating": rating}
    entry["text"] = text if limit is None else _cut(text, limit)
    return entry


def _item_variants(item: ItemInput) -> Iterator[tuple[dict[str, Any], str | None]]:
    """The full item, then ever shorter: reviews cut, reviews dropped, the description
    cut, every other text field cut."""
    reviews = [_review(r.text, r.rating, None) for r in item.reviews]
    yield _item_data(item.meta, reviews), None
    for limit in _REVIEW_STEPS:
        yield (
            _item_data(item.meta, [_review(r.text, r.rating, limit) for r in item.reviews]),
            (f"reviews cut to {limit} characters"),
        )
    short = [_review(r.text, r.rating, _REVIEW_STEPS[-1]) for r in item.reviews]
    for keep in range(len(short) - 1, -1, -1):
        yield _item_data(item.meta, short[:keep]), f"{len(short) - keep} of {len(short)} reviews dropped"
    dropped = f"all {len(short)} reviews dropped" if short else None
    for fields in (("description",), tuple(item.meta)):
        for limit in _FIELD_STEPS:
            meta = {k: _shorten(v, limit) if k in fields else v for k, v in item.meta.items()}
            cut = "description" if fields == ("description",) else "metadata texts"
            yield _item_data(meta, []), ", ".join(filter(None, [dropped, f"{cut} cut to {limit} characters"]))


def item_messages(prompts: Prompts, item: ItemInput, budget: int) -> tuple[list[Message], str | None]:
    """The messages for one item, and what was cut to fit (None: nothing)."""
    return _fit(prompts, prompts.item, _item_variants(item), budget, f"item {item.iid}")


# ---------------------------------------------------------------------- users


@dataclass(frozen=True)
class _Entry:
    name: str | None
    profile: str | None
    review: str | None
    rating: float | None

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in (("title", self.name), ("profile", self.profile), ("review", self.review)):
            if value is not None:
                out[key] = value
        if self.rating is not None and self.review is not None:
            out["rating"] = self.rating
        return out


def _user_variants(prompts: Prompts, entries: list[_Entry]) -> Iterator[tuple[dict[str, Any], str | None]]:
    """The full history, then: the user's reviews cut and dropped, item profiles cut,
    items dropped from the end."""
    key = prompts.nouns["item_nouns"]

    def data(es: list[_Entry]) -> dict[str, Any]:
        return {key: [e.data() for e in es]}

    yield data(entries), None
    for limit in _REVIEW_STEPS[1:]:
        cut = [replace(e, review=_cut(e.review, limit) if e.review else None) for e in entries]
        yield data(cut), f"reviews cut to {limit} characters"
    bare = [replace(e, review=None) for e in entries]
    yield data(bare), "reviews dropped"
    for limit in _PROFILE_STEPS:
        bare = [replace(e, profile=_cut(e.profile, limit) if e.profile else None) for e in bare]
        yield data(bare), f"reviews dropped, {prompts.nouns['item_noun']} profiles cut to {limit} characters"
    for keep in range(len(bare) - 1, 0, -1):
        yield (
            data(bare[:keep]),
            (
                f"reviews dropped, profiles cut to {_PROFILE_STEPS[-1]} characters, "
                f"{len(bare) - keep} of {len(bare)} {key} dropped"
            ),
        )


def user_messages(
    prompts: Prompts,
    user: UserInput,
    names: Mapping[int, str | None],
    profiles: Mapping[int, str],
    budget: int,
) -> tuple[list[Message], str | None]:
    """The messages for one user: each sampled training item with its name, its
    generated profile (when there is one) and the user's own review."""
    entries = [_Entry(names.get(e.iid), profiles.get(e.iid), e.review, e.rating) for e in user.items]
    return _fit(prompts, prompts.user, _user_variants(prompts, entries), budget, f"user {user.uid}")
