"""Reading answers: the requested JSON object, wherever a model put it, or an error that
says plainly what is wrong (it goes back to the model)."""

from __future__ import annotations

import pytest

from rlmrec.profile.answers import AnswerError, Profile, parse_answer

GOOD = '{"summarization": "Likes slow, quiet novels.", "reasoning": "Every book is literary fiction."}'


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        f"  {GOOD}\n",
        f"```json\n{GOOD}\n```",
        f"```\n{GOOD}```",
        f"Here is the profile:\n{GOOD}\nHope this helps!",
    ],
)
def test_the_object_is_found_wherever_it_is(text: str) -> None:
    assert parse_answer(text) == Profile("Likes slow, quiet novels.", "Every book is literary fiction.")


def test_raw_newlines_inside_strings_and_extra_keys_are_accepted() -> None:
    text = '{"summarization": " Line one\nline two ", "reasoning": "", "confidence": 0.9}'
    assert parse_answer(text) == Profile("Line one\nline two", "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the answer is empty"),
        (None, "the answer is empty"),
        ("   \n", "the answer is empty"),
        ("I think this user likes books.", "it is not valid JSON (Expecting value at line 1 column 1)"),
        ('{"summarization": "x", "reasoning": "y"', "it is not valid JSON"),
        ('["summarization", "reasoning"]', "expected a JSON object, got a list"),
        ('"just a string"', "expected a JSON object, got a string"),
        ('{"summary": "x", "reasoning": "y"}', "the object has no 'summarization' key (keys: 'summary', 'reasoning')"),
        ('{"summarization": "x"}', "the object has no 'reasoning' key"),
        ("{}", "the object has no 'summarization' key (keys: none)"),
        ('{"summarization": ["a", "b"], "reasoning": "y"}', "'summarization' must be a string, got a list"),
        ('{"summarization": "x", "reasoning": null}', "'reasoning' must be a string, got null"),
        ('{"summarization": {"a": 1}, "reasoning": "y"}', "'summarization' must be a string, got an object"),
        ('{"summarization": "  ", "reasoning": "y"}', "'summarization' is empty"),
    ],
)
def test_what_is_wrong_is_said_plainly(text: str | None, message: str) -> None:
    with pytest.raises(AnswerError) as caught:
        parse_answer(text)
    assert message in str(caught.value)


def test_an_answer_cut_at_the_token_limit_says_so() -> None:
    with pytest.raises(AnswerError, match="cut off at the token limit"):
        parse_answer('{"summarization": "A long answer that never', cut_off=True)
