"""Fixtures for the ``rlmrec profile`` tests: the loopback server, a dataset folder, the
CLI, and the real LLM named by ``RLMREC_TEST_LLM``."""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from profile_fakes import SECRET, FakeLLM, write_dataset


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    server = FakeLLM()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def closed_port() -> str:
    """A base URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff waits capped at 10 ms (a Retry-After header is still honoured in full)."""
    monkeypatch.setattr("rlmrec.profile.client._MAX_BACKOFF_S", 0.01)


@pytest.fixture
def dataset(root: Path) -> Path:
    return write_dataset(root)


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with a recognizable key, so any test can look for it in output."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


# ---------------------------------------------------------------------- the real model


def _reachable(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/models", timeout=5) as response:
            response.read()
        return None
    except Exception as error:  # any failure to answer
        return str(error)


@pytest.fixture(scope="session")
def real_llm() -> str:
    """The base URL of the real model (``RLMREC_TEST_LLM``, started by .ci/llm-server.sh).
    Locally the tests skip without it; in CI (``CI`` set) that is a failure."""
    url = os.environ.get("RLMREC_TEST_LLM")
    problem = "RLMREC_TEST_LLM is not set" if not url else _reachable(url)
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the real LLM must run in CI: {problem} (.ci/llm-server.sh starts it)")
        pytest.skip(f"no real LLM: {problem} (start one with .ci/llm-server.sh, set RLMREC_TEST_LLM)")
    assert url is not None
    return url
