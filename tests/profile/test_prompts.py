"""The prompt files: one system instruction per domain, the item/user/retry templates,
replacing them with --prompts, cutting prompts to --max-prompt-tokens (reviews first),
and the token and price estimates of --dry-run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlmrec.errors import ConfigError, LLMError
from rlmrec.profile.costs import estimate_messages, estimate_tokens, find_price
from rlmrec.profile.inputs import ItemInput, Review, UserInput, UserItem
from rlmrec.profile.prompts import domains, item_messages, load_prompts, user_messages


@pytest.mark.parametrize(
    ("domain", "system", "item_line"),
    [
        ("books", "a book recommender system", "which readers would enjoy it"),
        ("businesses", "recommender system of local businesses", "which customers would enjoy it"),
        ("games", "a video game recommender system", "which players would enjoy it"),
        ("generic", "one item or one user", "which users would enjoy it"),
    ],
)
def test_each_domain_has_its_instruction(domain: str, system: str, item_line: str) -> None:
    prompts = load_prompts(domain)
    assert system in prompts.system and '{"summarization": "...", "reasoning": "..."}' in prompts.system
    assert "$" not in prompts.system
    messages, cut = item_messages(prompts, ItemInput(0, {"title": "T"}, []), 3000)
    assert messages[0] == {"role": "system", "content": prompts.system} and cut is None
    assert item_line in messages[1]["content"]
    assert "bad answer" in prompts.retry_message("bad answer")


def test_the_domain_comes_from_build_json_unless_given(cli, dataset: Path, one_line_error) -> None:
    base = ["profile", "shop", "--model", "m", "--dry-run", "--limit", "1"]
    assert "system prompt (books):" in cli(*base).stdout
    assert "system prompt (games):" in cli(*base, "--domain", "games").stdout
    (dataset / "build.json").unlink()
    assert "system prompt (generic):" in cli(*base).stdout
    one_line_error(cli(*base, "--domain", "movies"), "unknown domain 'movies'", "books, businesses, games, generic")


def test_prompt_files_can_be_replaced(cli, llm, dataset: Path, tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "item.txt").write_text("OUR ITEM PROMPT for a $item_noun, costs $$5:\n$input\n")
    (folder / "system-movies.txt").write_text("You profile films and viewers. Answer in JSON.")
    result = cli(
        "profile", "shop", "--base-url", llm.url, "--model", "fake-model", "--prompts", str(folder),
        "--domain", "movies", "--limit", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    first = llm.chat_requests()[0]["body"]["messages"]
    assert first[0]["content"] == "You profile films and viewers. Answer in JSON."
    assert first[1]["content"].startswith("OUR ITEM PROMPT for a item, costs $5:\n{")
    users = [r["body"]["messages"][1]["content"] for r in llm.chat_requests()[3:]]
    assert users and users[0].startswith("Write the profile of this user")  # the packaged user.txt
    assert domains(folder) == ["books", "businesses", "games", "generic", "movies"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Profile: $inptu", "unknown placeholder $inptu"),
        ("No data here.", "must contain $input"),
        ("Costs $5 $input", "a '$' that starts no placeholder"),
    ],
)
def test_a_bad_template_is_a_one_line_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "item.txt").write_text(text)
    with pytest.raises(ConfigError, match=r"item\.txt: ") as caught:
        load_prompts("books", tmp_path)
    assert message in str(caught.value)


def test_long_reviews_are_cut_first_then_the_description() -> None:
    prompts = load_prompts("books")
    reviews = [Review(u, f"R{u} " + "word " * 400, 5.0) for u in range(5)]
    item = ItemInput(0, {"title": "T", "description": "D " * 2000, "categories": ["a"] * 40}, reviews)
    full, cut = item_messages(prompts, item, 10_000)
    assert cut is None and "R4 " in full[1]["content"]
    fitted, cut = item_messages(prompts, item, 2000)
    assert cut == "reviews cut to 250 characters" and estimate_messages(fitted) <= 2000
    assert "R4 " in fitted[1]["content"] and "D D" in fitted[1]["content"]
    smaller, cut = item_messages(prompts, item, 800)
    assert cut is not None and "reviews dropped" in cut and "description cut to" in cut
    assert estimate_messages(smaller) <= 800
    with pytest.raises(LLMError, match="the prompt for item 0 needs about"):
        item_messages(prompts, item, 200)
    # Descriptions given as lists of paragraphs (Amazon's metadata) are cut too.
    listed = ItemInput(1, {"title": "T", "description": ["long " * 300] * 3, "also_buy": ["B0" * 5] * 200}, [])
    messages, cut = item_messages(prompts, listed, 800)
    assert cut is not None and "cut to" in cut and estimate_messages(messages) <= 800


def test_a_long_history_loses_reviews_then_profiles_then_items() -> None:
    prompts = load_prompts("books")
    user = UserInput(3, [UserItem(i, "loved it " * 60, 5.0) for i in range(10)])
    names = {i: f"Book {i}" for i in range(10)}
    profiles = {i: "P " * 300 for i in range(10)}
    _, cut = user_messages(prompts, user, names, profiles, 100_000)
    assert cut is None
    messages, cut = user_messages(prompts, user, names, profiles, 1500)
    assert cut is not None and cut.startswith("reviews dropped, book profiles cut to")
    data = json.loads(messages[1]["content"].split("\n", 2)[2])
    assert len(data["books"]) == 10 and "review" not in data["books"][0]
    messages, cut = user_messages(prompts, user, names, profiles, 450)
    assert cut is not None and "of 10 books dropped" in cut and estimate_messages(messages) <= 450


def test_token_estimates_and_prices() -> None:
    assert estimate_tokens("abcd" * 10) == 10 and estimate_tokens("é") == 1 and estimate_tokens("") == 0
    assert estimate_messages([{"role": "user", "content": "abcd"}]) == 1 + 4
    price = find_price("gpt-4o-mini-2024-07-18")
    assert price is not None and (price.input, price.output) == (0.15, 0.60) and "2024-07" in price.source
    assert price.cost(1_000_000, 1_000_000) == pytest.approx(0.75)
    assert find_price("gpt-3.5-turbo") is not None and find_price("gpt-3.5-turbo-instruct-x") is not None
    assert find_price("llama3") is None
    given = find_price("llama3", price_in=2.0)
    assert given is not None and (given.input, given.output, given.source) == (2.0, 0.0, "given")
    overridden = find_price("gpt-4o-mini", price_out=1.0)
    assert overridden is not None and (overridden.input, overridden.output) == (0.15, 1.0)
