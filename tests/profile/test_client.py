"""Faults, against the loopback server: 429 with Retry-After (the wait is measured at the
server), 5xx, timeouts, cut and garbled bodies, retries running out; and the bad-input
one-liners: no server, a refused key, an unknown model, a prompt over the context. The
key never shows up in any output, log or the cache."""

from __future__ import annotations

import logging
import time
from email.utils import formatdate
from pathlib import Path

import pytest
from profile_fakes import N_ITEMS, N_USERS, SECRET

from rlmrec.profile.cache import CACHE_FILE, Cache
from rlmrec.profile.client import retry_after


def _one_item(llm, *extra: str) -> list[str]:
    return ["profile", "shop", "--base-url", llm.url, "--model", "fake-model", "--items", "--limit", "1", *extra]


def _item0_ok(dataset: Path) -> bool:
    with Cache(dataset / CACHE_FILE) as cache:
        return cache.counts() == {"ok": 1}


def test_429_waits_as_long_as_retry_after_says(cli, llm, dataset: Path) -> None:
    llm.script = [("status", 429, {"error": {"message": "rate limited"}}, {"Retry-After": "1"})]
    result = cli(*_one_item(llm))
    assert result.exit_code == 0, result.output
    first, second = llm.chat_requests()
    assert second["at"] - first["at"] >= 1.0  # backoff alone would be 10 ms here
    assert "2 requests (1 retried)" in result.output and _item0_ok(dataset)


def test_a_server_error_is_retried(cli, llm, dataset: Path) -> None:
    llm.script = [("status", 500, {"error": {"message": "boom"}}), ("status", 502, "bad gateway")]
    result = cli(*_one_item(llm))
    assert result.exit_code == 0, result.output
    assert len(llm.chat_requests()) == 3 and _item0_ok(dataset)


def test_a_request_that_times_out_is_sent_again(cli, llm, dataset: Path) -> None:
    llm.script = [("sleep", 3.0)]
    started = time.perf_counter()
    result = cli(*_one_item(llm, "--timeout", "0.5"))
    assert result.exit_code == 0, result.output
    assert len(llm.chat_requests()) == 2 and _item0_ok(dataset)
    assert time.perf_counter() - started < 3.0  # did not wait for the slow answer


def test_cut_and_garbled_bodies_are_retried(cli, llm, dataset: Path) -> None:
    llm.script = [("truncate",), ("garbled",)]
    result = cli(*_one_item(llm))
    assert result.exit_code == 0, result.output
    assert len(llm.chat_requests()) == 3 and _item0_ok(dataset)


def test_when_retries_run_out_the_entity_fails_and_the_run_goes_on(cli, llm, dataset: Path) -> None:
    llm.status_all = (503, {"error": {"message": "overloaded"}})
    result = cli("profile", "shop", "--base-url", llm.url, "--model", "fake-model", "--items", "--http-retries", "2")
    assert result.exit_code == 1
    assert len(llm.chat_requests()) == 3 * N_ITEMS
    assert "item 0: HTTP 503 (overloaded), after 2 retries" in result.stdout
    with Cache(dataset / CACHE_FILE) as cache:
        assert cache.counts() == {"failed": N_ITEMS}


def test_retry_after_headers() -> None:
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    at = time.time() + 10
    assert 8 < (retry_after({"retry-after": formatdate(at, usegmt=True)}) or 0) <= 10
    assert retry_after({"retry-after": formatdate(time.time() - 60, usegmt=True)}) == 0.0
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None and retry_after(None) is None


# ---------------------------------------------------------------------- one-liners


def test_no_server(cli, closed_port: str, dataset: Path, one_line_error) -> None:
    result = cli("profile", "shop", "--base-url", closed_port, "--model", "fake-model")
    one_line_error(result, f"cannot reach {closed_port}")


def test_no_base_url(cli, dataset: Path, one_line_error) -> None:
    one_line_error(cli("profile", "shop", "--model", "fake-model"), "--base-url")


def test_a_refused_key_and_the_key_is_never_shown(
    cli, llm, dataset: Path, one_line_error, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    llm.script = [("ok",)] * 3 + [("status", 401, {"error": {"message": f"Incorrect API key provided: {SECRET}"}})]
    result = cli("profile", "shop", "--base-url", llm.url, "--model", "fake-model", "--concurrency", "1")
    line = one_line_error(result, "the server refused the API key (401: Incorrect API key provided: ***)")
    assert "check $OPENAI_API_KEY" in line
    assert llm.chat_requests()[0]["auth"] == f"Bearer {SECRET}"  # the key was used...
    assert SECRET not in result.output and SECRET not in caplog.text  # ...and shown nowhere
    cache_bytes = b"".join(p.read_bytes() for p in dataset.glob(CACHE_FILE + "*"))
    assert b"Title0" in cache_bytes and SECRET.encode() not in cache_bytes
    # The answers that came before the refusal are kept: the rerun asks for the rest only.
    llm.script = []
    again = cli("profile", "shop", "--base-url", llm.url, "--model", "fake-model")
    assert again.exit_code == 0, again.output
    assert len(llm.chat_requests()) == 4 + (N_ITEMS + N_USERS - 3)


def test_no_key_at_all_says_which_variable(cli, llm, dataset: Path, one_line_error, monkeypatch) -> None:
    monkeypatch.delenv("MY_KEY", raising=False)
    llm.status_all = (401, {"error": {"message": "no key"}})
    result = cli(*_one_item(llm, "--api-key-env", "MY_KEY"))
    one_line_error(result, "401", "set $MY_KEY")


def test_an_unknown_model_from_the_model_list(cli, llm, dataset: Path, one_line_error) -> None:
    result = cli("profile", "shop", "--base-url", llm.url, "--model", "gpt-9")
    one_line_error(result, "unknown model 'gpt-9'", "it serves: fake-model, fake-embed")
    assert llm.chat_requests() == []


def test_an_unknown_model_from_a_404(cli, llm, dataset: Path, one_line_error) -> None:
    llm.models = None  # no model list: the chat request finds out
    llm.status_all = (404, {"error": {"message": "The model `gpt-9` does not exist"}})
    result = cli("profile", "shop", "--base-url", llm.url, "--model", "gpt-9", "--concurrency", "1")
    one_line_error(result, "404 (The model `gpt-9` does not exist): unknown model 'gpt-9'")
    assert len(llm.chat_requests()) == 1  # not retried


def test_a_prompt_over_the_servers_context(cli, llm, dataset: Path, one_line_error) -> None:
    llm.status_all = (400, {"error": {"message": "This model's maximum context length is 2048 tokens"}})
    result = cli(*_one_item(llm))
    one_line_error(result, "over the model's context", "lower --max-prompt-tokens")


def test_a_server_that_takes_only_max_completion_tokens(cli, llm, dataset: Path) -> None:
    llm.only_completion_tokens = True
    result = cli("profile", "shop", "--base-url", llm.url, "--model", "fake-model", "--max-tokens", "300")
    assert result.exit_code == 0, result.output
    sent = [r["body"] for r in llm.chat_requests()]
    refused = [b for b in sent if "max_tokens" in b]
    assert 1 <= len(refused) <= 4  # those already in flight when the first refusal came back
    answered = [b for b in sent if "max_tokens" not in b]
    assert len(answered) == N_USERS + N_ITEMS and all(b["max_completion_tokens"] == 300 for b in answered)


def test_a_model_that_takes_only_its_default_temperature(cli, llm, dataset: Path, one_line_error) -> None:
    message = (
        "Unsupported value: 'temperature' does not support 0.2 with this model."
        " Only the default (1) value is supported."
    )
    llm.status_all = (400, {"error": {"message": message, "param": "temperature", "code": "unsupported_value"}})
    result = cli(*_one_item(llm))
    one_line_error(result, "the model refuses temperature 0.2", "pass the value it names with --temperature")
    assert len(llm.chat_requests()) == 1  # not retried


def test_a_prompt_that_cannot_fit_max_prompt_tokens(cli, llm, dataset: Path, one_line_error) -> None:
    result = cli(*_one_item(llm, "--max-prompt-tokens", "100"))
    one_line_error(result, "the prompt for item 0 needs about", "--max-prompt-tokens 100")
    assert llm.chat_requests() == []
