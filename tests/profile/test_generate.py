"""``rlmrec profile`` end to end against the loopback server: items then users, the
published output format, retries with the parse error, failures, --limit, --dry-run,
--allow-missing, JSON-mode fallback."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from profile_fakes import N_ITEMS, N_USERS, write_dataset

from rlmrec.data.dataset import load_profiles
from rlmrec.profile.answers import ANSWER_SCHEMA
from rlmrec.profile.cache import CACHE_FILE, Cache


def _args(llm, *extra: str) -> list[str]:
    return ["profile", "shop", "--base-url", llm.url, "--model", "fake-model", *extra]


def _is_user_prompt(request: dict) -> bool:
    return "profile of this reader" in request["body"]["messages"][1]["content"]


def test_items_then_users_in_the_published_format(cli, llm, dataset: Path) -> None:
    result = cli(*_args(llm))
    assert result.exit_code == 0, result.output
    chats = llm.chat_requests()
    assert len(chats) == N_ITEMS + N_USERS
    kinds = [_is_user_prompt(r) for r in chats]
    assert kinds == [False] * N_ITEMS + [True] * N_USERS  # every item before any user
    assert all(r["body"]["response_format"]["type"] == "json_schema" for r in chats)  # the strongest JSON mode
    schema = chats[0]["body"]["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["summarization", "reasoning"]
    items = pickle.loads((dataset / "itm_prf.pkl").read_bytes())
    users = load_profiles(dataset / "usr_prf.pkl")
    assert sorted(items) == list(range(N_ITEMS)) and sorted(users) == list(range(N_USERS))
    assert items[3] == {"profile": "A book profile about Title3.", "reasoning": "From the data."}
    # A user's prompt shows the profiles written for their items in the item pass.
    user0 = next(r for r in chats if _is_user_prompt(r) and "Title2" in r["body"]["messages"][1]["content"])
    assert "A book profile about Title2." in user0["body"]["messages"][1]["content"]
    assert "wrote itm_prf.pkl (8 items)" in result.output and "wrote usr_prf.pkl (6 users)" in result.output
    assert "8 asked: 8 valid at the first answer" in result.output

    shown = cli("data", "show", "shop", "--user", "0")
    assert shown.exit_code == 0 and "PROFILE: A reader profile about" in shown.output
    checked = cli("data", "validate", "shop", "--json")
    findings = json.loads(checked.stdout)["findings"]
    assert [f["level"] for f in findings if f["check"] == "profiles"] == ["ok", "ok"]


def test_without_a_terminal_progress_comes_as_log_lines(cli, llm, dataset: Path) -> None:
    def said(output: str, kind: str) -> list[str]:
        return [line.split(f" {kind}s: ")[1].split("  ")[0] for line in output.splitlines() if f" {kind}s: " in line]

    result = cli(*_args(llm, "--concurrency", "1", "--log-every", "0"))  # a line for every answer
    assert result.exit_code == 0, result.output
    assert said(result.stderr, "item") == [f"{n} of {N_ITEMS} ({n / N_ITEMS:.0%})" for n in range(N_ITEMS + 1)]
    assert said(result.stderr, "user") == [f"{n} of {N_USERS} ({n / N_USERS:.0%})" for n in range(N_USERS + 1)]
    assert "0 failed" in result.stderr and "req/s" in result.stderr
    again = cli(*_args(llm, "--force"))  # the default, every 30 s: a pass this short says nothing
    assert again.exit_code == 0 and " items: " not in again.stderr and " users: " not in again.stderr


def test_a_rerun_asks_nothing_and_force_asks_again(cli, llm, dataset: Path) -> None:
    assert cli(*_args(llm)).exit_code == 0
    before = (dataset / "usr_prf.pkl").read_bytes()
    result = cli(*_args(llm))
    assert result.exit_code == 0 and len(llm.chat_requests()) == N_ITEMS + N_USERS  # nothing new
    assert "0 requests" in result.output and "8 from the cache" in result.output
    assert (dataset / "usr_prf.pkl").read_bytes() == before
    assert cli(*_args(llm, "--force")).exit_code == 0
    assert len(llm.chat_requests()) == 2 * (N_ITEMS + N_USERS)


def test_an_unusable_answer_is_asked_again_with_the_parse_error(cli, llm, dataset: Path) -> None:
    llm.script = [("json", "Sure! Here is the profile: great book")]
    result = cli(*_args(llm, "--concurrency", "1"))
    assert result.exit_code == 0, result.output
    first, second = llm.chat_requests()[:2]
    messages = second["body"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[:2] == first["body"]["messages"]
    assert messages[2]["content"] == "Sure! Here is the profile: great book"
    assert "not valid JSON" in messages[3]["content"] and '"summarization"' in messages[3]["content"]
    assert "7 valid at the first answer, 1 after a retry, 0 failed" in result.output
    with Cache(dataset / CACHE_FILE) as cache:
        assert cache.counts() == {"ok": N_ITEMS + N_USERS}


def test_failures_are_listed_not_written_and_a_rerun_asks_only_for_them(cli, llm, dataset: Path) -> None:
    bad = ("json", '{"summarization": 42, "reasoning": "x"}')
    llm.script = [bad] * 3  # item 0: first answer and both retries unusable
    result = cli(*_args(llm, "--concurrency", "1", "--retries", "2"))
    assert result.exit_code == 1
    assert "item 0: not the requested JSON: 'summarization' must be a string, got a number" in result.stdout
    # Users whose prompts would show item 0 wait for it rather than being asked without it.
    for user in (0, 1, 3):
        assert f"user {user}: waiting for the profiles of items 0" in result.stdout
    assert "itm_prf.pkl not written: 1 of 8 items have no profile" in result.stdout
    assert not (dataset / "itm_prf.pkl").exists() and not (dataset / "usr_prf.pkl").exists()
    assert result.stderr.strip() == "error: 4 profiles missing; the list is above"
    asked = len(llm.chat_requests())
    assert asked == 3 + 7 + 3  # item 0 three times, the other items, users 2, 4, 5

    again = cli(*_args(llm, "--concurrency", "1"))
    assert again.exit_code == 0, again.output
    assert len(llm.chat_requests()) - asked == 1 + 3  # item 0, then users 0, 1, 3
    assert sorted(load_profiles(dataset / "usr_prf.pkl")) == list(range(N_USERS))


def test_allow_missing_writes_what_there_is_and_validate_reports_the_gap(cli, llm, root: Path) -> None:
    folder = write_dataset(root, bare_item=True)  # item 7: no metadata, no training review
    strict = cli(*_args(llm))
    assert strict.exit_code == 1
    assert "item 7: nothing to describe: no metadata and no training reviews" in strict.stdout
    assert "user 5: waiting for the profiles of items 7" in strict.stdout
    result = cli(*_args(llm, "--allow-missing"))
    assert result.exit_code == 0, result.output
    assert sorted(load_profiles(folder / "itm_prf.pkl")) == list(range(7))
    assert sorted(load_profiles(folder / "usr_prf.pkl")) == list(range(N_USERS))
    report = cli("data", "validate", "shop")
    assert "itm_prf.pkl: no profile for 1 of 8 items (e.g. 7)" in report.output


def test_limit_asks_a_few_and_a_full_run_reuses_them(cli, llm, dataset: Path) -> None:
    result = cli(*_args(llm, "--limit", "1"))
    assert result.exit_code == 0, result.output
    assert len(llm.chat_requests()) == 3 + 1  # user 0's three items, then user 0
    assert "itm_prf.pkl not written: 5 of 8 items have no profile" in result.output
    assert cli(*_args(llm)).exit_code == 0
    assert len(llm.chat_requests()) == N_ITEMS + N_USERS  # nothing paid twice


def test_dry_run_prints_prompts_and_an_estimate_and_sends_nothing(cli, llm, dataset: Path) -> None:
    result = cli("profile", "shop", "--model", "gpt-4o-mini", "--dry-run", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert llm.requests == []
    assert "system prompt (books):" in result.stdout and "--- item 0 (about" in result.stdout
    assert "--- user 0 (about" in result.stdout and "(the profile that the item pass writes" in result.stdout
    assert "would ask: 3 items, 1 users (0 answered already in the cache)" in result.stdout
    assert "gpt-4o-mini list price as of 2024-07" in result.stdout and "cost about $0.00" in result.stdout
    assert not (dataset / CACHE_FILE).exists()  # a dry run writes nothing, not even the cache
    unknown = cli("profile", "shop", "--model", "local-thing", "--dry-run")
    assert "no price known" in unknown.stdout and "would ask: 8 items, 6 users" in unknown.stdout
    priced = cli("profile", "shop", "--model", "local-thing", "--dry-run", "--price-in", "1000", "--price-out", "0")
    assert "cost about $" in priced.stdout and "(given:" in priced.stdout


def test_a_server_without_json_mode_is_asked_in_plain_text(cli, llm, dataset: Path) -> None:
    llm.formats = set()
    result = cli(*_args(llm, "--concurrency", "1"))
    assert result.exit_code == 0, result.output
    chats = [r["body"] for r in llm.chat_requests()]
    refused = [c["response_format"] for c in chats[:3]]
    assert refused == [
        {"type": "json_schema", "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA, "strict": True}},
        {"type": "json_object", "schema": ANSWER_SCHEMA},
        {"type": "json_object"},
    ]
    assert all("response_format" not in c for c in chats[3:]) and len(chats) == 3 + N_ITEMS + N_USERS
    assert "the server has no JSON mode" in result.output


def test_a_refusal_as_a_500_steps_down_without_retrying(cli, llm, dataset: Path) -> None:
    llm.formats, llm.refusal_status = {"json_object", "json_object+schema"}, 500  # as llama-cpp-python
    result = cli(*_args(llm, "--concurrency", "1"))
    assert result.exit_code == 0, result.output
    modes = [r["body"]["response_format"] for r in llm.chat_requests()]
    assert modes[0]["type"] == "json_schema" and len(modes) == 1 + N_ITEMS + N_USERS
    assert all(m == {"type": "json_object", "schema": ANSWER_SCHEMA} for m in modes[1:])
    assert "JSON mode: json_object+schema" in result.output and "0 retried" in result.output


def test_the_strongest_json_mode_the_server_has_is_kept(cli, llm, dataset: Path) -> None:
    llm.formats = {"json_object"}  # as gpt-3.5-turbo: no schemas
    result = cli(*_args(llm))
    assert result.exit_code == 0, result.output
    modes = [r["body"]["response_format"] for r in llm.chat_requests()]
    assert modes[-(N_ITEMS + N_USERS) :] == [{"type": "json_object"}] * (N_ITEMS + N_USERS)
    assert len(modes) <= 2 * 4 + N_ITEMS + N_USERS  # each of the 4 first requests may meet a refusal
    assert "JSON mode: json_object" in result.output
    # The mode a server ends up with is no part of the cache key: nothing is asked twice.
    llm.formats = None
    assert cli(*_args(llm)).exit_code == 0 and len(llm.chat_requests()) == len(modes)


def test_progress_reports_done_failed_requests_tokens_and_cost(llm, dataset: Path) -> None:
    from rlmrec.profile.generate import Settings, profile_folder

    seen = []
    llm.script = [("json", "[]")] * 2  # item 0 fails (one retry allowed)
    settings = Settings(
        model="fake-model", base_url=llm.url, concurrency=1, retries=1, price_in=1.0, price_out=2.0, backoff_s=0.0
    )
    outcome = profile_folder(dataset, settings, progress=seen.append)
    items = [s for s in seen if s.phase == "item"]
    assert (items[0].done, items[0].failed, items[0].total) == (0, 0, N_ITEMS)
    last = items[-1]
    assert (last.done, last.failed) == (N_ITEMS - 1, 1) and last.counters.requests >= N_ITEMS + 1
    assert last.cost == pytest.approx((last.counters.tokens_in * 1.0 + last.counters.tokens_out * 2.0) / 1e6)
    assert seen[-1].phase == "user" and outcome.cost is not None and outcome.cost > 0
    assert outcome.counters.tokens_in == 100 * outcome.counters.requests  # the server's own counts


def test_items_then_users_in_two_commands(cli, llm, dataset: Path) -> None:
    assert cli(*_args(llm, "--items")).exit_code == 0
    assert (dataset / "itm_prf.pkl").exists() and not (dataset / "usr_prf.pkl").exists()
    result = cli(*_args(llm, "--users"))
    assert result.exit_code == 0, result.output
    assert len(llm.chat_requests()) == N_ITEMS + N_USERS and sorted(load_profiles(dataset / "usr_prf.pkl")) == list(
        range(N_USERS)
    )
