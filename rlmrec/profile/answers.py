"""Reading a model's answer: the JSON object ``{"summarization": ..., "reasoning": ...}``
the prompts ask for, or an :class:`AnswerError` whose message goes back to the model
with the retry prompt (so it says plainly what was wrong)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_FENCE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.S)
# The part of a bad answer repeated back to the model when asking again: enough to see
# the mistake, bounded so that retries cannot grow the prompt without limit.
ECHO_CHARS = 2000


# What the prompts ask for, as a JSON schema: servers that take one constrain decoding to it.
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"summarization": {"type": "string"}, "reasoning": {"type": "string"}},
    "required": ["summarization", "reasoning"],
    "additionalProperties": False,
}


class AnswerError(ValueError):
    """The answer is not the requested JSON object; the message says why."""


@dataclass(frozen=True)
class Profile:
    profile: str
    reasoning: str


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _candidates(text: str) -> list[str]:
    """Where the object may be: the whole answer, a fenced block, or the span from the
    first ``{`` to the last ``}`` (small models wrap JSON in prose)."""
    found = [text]
    found += [m.group(1).strip() for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        found.append(text[start : end + 1])
    return list(dict.fromkeys(found))


def parse_answer(text: str | None, *, cut_off: bool = False) -> Profile:
    """The profile in ``text``. ``cut_off``: the server stopped at the token limit."""
    body = (text or "").strip()
    if not body:
        raise AnswerError("the answer is empty")
    first_error: json.JSONDecodeError | None = None
    obj: Any = None
    for candidate in _candidates(body):
        try:
            # strict=False: raw newlines inside strings are a common, harmless slip.
            obj = json.loads(candidate, strict=False)
            break
        except json.JSONDecodeError as error:
            first_error = first_error or error
    else:
        assert first_error is not None
        if cut_off:
            raise AnswerError("the answer was cut off at the token limit before the JSON object ended; be shorter")
        raise AnswerError(
            f"it is not valid JSON ({first_error.msg} at line {first_error.lineno} column {first_error.colno})"
        )
    if not isinstance(obj, dict):
        raise AnswerError(f"expected a JSON object, got {_kind(obj)}")
    for key in ("summarization", "reasoning"):
        if key not in obj:
            raise AnswerError(f"the object has no {key!r} key (keys: {', '.join(map(repr, list(obj)[:6])) or 'none'})")
        if not isinstance(obj[key], str):
            raise AnswerError(f"{key!r} must be a string, got {_kind(obj[key])}")
    summary, reasoning = obj["summarization"].strip(), obj["reasoning"].strip()
    if not summary:
        raise AnswerError("'summarization' is empty")
    return Profile(summary, reasoning)
