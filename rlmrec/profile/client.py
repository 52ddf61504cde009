"""One OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp's server, a gateway)
through the official ``openai`` client, with our own retries.

The client is built with ``max_retries=0`` so that retrying is decided here, in one place
that the tests drive: 408, 409, 429 and 5xx answers, timeouts, dropped connections and
unreadable bodies are retried with exponential backoff (jittered, doubled each time); a
``Retry-After`` header (seconds, an HTTP date, or ``retry-after-ms``) is honoured and
pauses every request of the run, not just the one that got it. A refused key, an unknown
model or an over-long prompt stops the run with one line (:class:`LLMError`).

JSON mode: servers differ in what they accept, so the strongest form is tried first and
each one the server refuses (a 400/422 that names the response format) is dropped for
the rest of the run: a JSON schema (OpenAI's structured outputs, vLLM, Ollama, llama.cpp's
server), then ``json_object`` with a ``schema`` (llama-cpp-python), then plain
``json_object`` (gpt-3.5-turbo), then none. The answer is parsed and checked either way.

The key comes from an environment variable and is only ever handed to the client: it is
blanked out of every message this module produces, in case a server echoes it.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import openai

from rlmrec.errors import LLMError
from rlmrec.profile.costs import estimate_messages

T = TypeVar("T")
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
_RETRIED = {408, 409, 429}
_CONTEXT_WORDS = ("context", "too long", "maximum", "exceed", "too many tokens")
_FORMAT_WORDS = ("response_format", "json", "schema")
# The JSON modes, strongest first (see the module docstring).
JSON_MODES = ("json_schema", "json_object+schema", "json_object", "none")


def response_format(mode: str, schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if mode == "json_schema" and schema is not None:
        return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
    if mode == "json_object+schema" and schema is not None:
        return {"type": "json_object", "schema": schema}
    if mode in JSON_MODES[:3]:
        return {"type": "json_object"}
    return None


_MAX_BACKOFF_S = 60.0


@dataclass
class Counters:
    """What a run has sent and received so far (read by the progress display)."""

    requests: int = 0
    retried: int = 0  # requests sent again after a 429/5xx/timeout/dropped connection
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass(frozen=True)
class Reply:
    text: str | None
    cut_off: bool  # stopped at max_tokens
    tokens_in: int
    tokens_out: int


class GaveUp(Exception):
    """A request still failed after every retry; ``unreachable`` when the server never
    answered at all (then the run stops: every other request would fail the same way)."""

    def __init__(self, message: str, *, unreachable: bool) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def retry_after(headers: Any, now: float | None = None) -> float | None:
    """Seconds to wait from a response's ``retry-after-ms`` / ``retry-after`` headers."""
    if headers is None:
        return None
    try:
        if headers.get("retry-after-ms") is not None:
            return max(float(headers["retry-after-ms"]) / 1000, 0.0)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(float(value), 0.0)
        except ValueError:
            at = parsedate_to_datetime(value).timestamp()
            return max(at - (time.time() if now is None else now), 0.0)
    except (TypeError, ValueError, OverflowError):
        return None


def _detail(error: openai.APIStatusError) -> str:
    body = error.body
    message = body.get("message") if isinstance(body, dict) else body
    text = str(message if message else error.message).strip()
    line = text.splitlines()[0] if text else ""
    return line[:200] + ("..." if len(line) > 200 else "")


def _format_refused(error: openai.APIStatusError) -> bool:
    """The server refuses the requested JSON mode: a 400/422 naming it, or the 500 that
    some servers (llama-cpp-python) answer a request they cannot validate with."""
    text = f"{error.message} {error.body}".lower()
    if error.status_code in (400, 422):
        return any(word in text for word in _FORMAT_WORDS)
    return error.status_code == 500 and "response_format" in text


def _wants_completion_tokens(error: openai.APIStatusError) -> bool:
    """The server refuses ``max_tokens`` and names its successor (OpenAI's reasoning
    models: "Unsupported parameter: 'max_tokens' ... Use 'max_completion_tokens'")."""
    return error.status_code in (400, 422) and "max_completion_tokens" in f"{error.message} {error.body}"


def _cause(error: BaseException) -> str:
    cause = error.__cause__ or error.__context__
    return str(cause).splitlines()[0][:200] if cause is not None and str(cause) else type(error).__name__


class Server:
    """Chat completions and embeddings from one endpoint, for one model."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = DEFAULT_KEY_ENV,
        timeout_s: float = 120.0,
        http_retries: int = 6,
        backoff_s: float = 1.0,
        max_wait_s: float = 300.0,
    ) -> None:
        if http_retries < 0 or timeout_s <= 0:
            raise LLMError("--http-retries must be 0 or more and --timeout positive")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self._key = os.environ.get(api_key_env) or ""
        # Local servers take any key; the client insists on one, so a placeholder stands in.
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=self._key or "no-key", max_retries=0, timeout=timeout_s
        )
        self.timeout_s = timeout_s
        self.http_retries = http_retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.json_mode = JSON_MODES[0]  # stepped down each time the server refuses one
        # The answer cap's name: max_tokens is what every compatible server takes; OpenAI's
        # newer models take only max_completion_tokens, and say so (then it switches).
        self.token_param = "max_tokens"
        self.counters = Counters()
        self._paused_until = 0.0

    async def close(self) -> None:
        await self._client.close()

    def redact(self, text: str) -> str:
        return text.replace(self._key, "***") if len(self._key) >= 4 else text

    def _fatal(self, error: openai.APIStatusError, what: str) -> LLMError:
        detail = self.redact(_detail(error))
        where = f"{self.base_url} ({what})"
        if error.status_code == 401:
            how = f"set ${self.api_key_env}" if not self._key else f"check ${self.api_key_env}"
            return LLMError(f"{where}: the server refused the API key (401: {detail}); {how}")
        if error.status_code == 403:
            return LLMError(f"{where}: forbidden (403: {detail}); the key may not use model {self.model!r}")
        if error.status_code == 404:
            return LLMError(
                f"{where}: 404 ({detail}): unknown model {self.model!r}, or the base URL lacks its /v1 part"
            )
        return LLMError(f"{where}: the server refused the request ({error.status_code}: {detail})")

    # ------------------------------------------------------------------ retries

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_s * 2**attempt, _MAX_BACKOFF_S) * random.uniform(0.5, 1.0)

    async def _after_pause(self) -> None:
        while (left := self._paused_until - time.monotonic()) > 0:
            await asyncio.sleep(left)

    async def _call(
        self, send: Callable[[], Awaitable[T]], *, final: Callable[[openai.APIStatusError], bool] | None = None
    ) -> T:
        """``send()`` with retries; other status errors, and those ``final`` picks out,
        go to the caller unchanged."""
        last = ""
        for attempt in range(self.http_retries + 1):
            await self._after_pause()
            self.counters.requests += 1
            wait: float | None = None
            unreachable = False
            try:
                return await send()
            except openai.APIStatusError as error:
                if (error.status_code not in _RETRIED and error.status_code < 500) or (final and final(error)):
                    raise
                last = f"HTTP {error.status_code} ({self.redact(_detail(error))})"
                wait = retry_after(error.response.headers)
                if wait is not None:  # the server says when: everyone waits, up to max_wait_s
                    wait = min(wait, self.max_wait_s)
                    self._paused_until = max(self._paused_until, time.monotonic() + wait)
            except openai.APITimeoutError:
                last = f"no answer within {self.timeout_s:g} s"
            except openai.APIConnectionError as error:
                last, unreachable = f"connection failed ({self.redact(_cause(error))})", True
            except (openai.APIResponseValidationError, ValueError) as error:  # a cut or garbled body
                last = f"unreadable response ({self.redact(str(error).splitlines()[0][:200] if str(error) else '')})"
            if attempt == self.http_retries:
                break
            self.counters.retried += 1
            await asyncio.sleep(wait if wait is not None else self._backoff(attempt))
        raise GaveUp(f"{last}, after {self.http_retries} retries", unreachable=unreachable)

    # ------------------------------------------------------------------ endpoints

    async def check(self) -> None:
        """Before any work: the server answers, takes the key, and (when it lists its
        models) serves ``model``. Servers without a model list are let through."""
        try:
            page = await self._client.models.list()
            served = [m.id for m in page.data]
        except openai.APIConnectionError as error:
            raise LLMError(f"cannot reach {self.base_url}: {self.redact(_cause(error))}") from None
        except openai.APIStatusError as error:
            if error.status_code in (401, 403):
                raise self._fatal(error, "models") from None
            return  # no model list here: the first request will tell
        except Exception:  # an odd model list is no reason to stop
            return
        if served and not any(m == self.model or m.startswith(self.model + ":") for m in served):
            shown = ", ".join(served[:8]) + (", ..." if len(served) > 8 else "")
            raise LLMError(f"unknown model {self.model!r} at {self.base_url} (it serves: {shown})")

    async def chat(
        self,
        messages: Sequence[dict[str, str]],
        *,
        temperature: float,
        max_tokens: int,
        schema: dict[str, Any] | None = None,
    ) -> Reply:
        """One completion, in the strongest JSON mode the server accepts (``schema``:
        the JSON schema of the answer, for the modes that take one)."""
        mode = self.json_mode
        if schema is None and mode in JSON_MODES[:2]:
            mode = "json_object"
        param = self.token_param

        async def send() -> Any:
            fmt = response_format(mode, schema)
            request: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": temperature}
            request[param] = max_tokens
            if fmt is not None:
                request["response_format"] = fmt
            # Any: the client's overloads are typed per model family; these are plain dicts.
            create: Any = self._client.chat.completions.create
            return await create(**request)

        def final(error: openai.APIStatusError) -> bool:
            return (mode != "none" and _format_refused(error)) or _wants_completion_tokens(error)

        try:
            response = await self._call(send, final=final)
        except openai.APIStatusError as error:
            detail = f"{_detail(error)} {error.message}".lower()
            if param == "max_tokens" and _wants_completion_tokens(error):
                self.token_param = "max_completion_tokens"  # for every request from now on
                return await self.chat(messages, temperature=temperature, max_tokens=max_tokens, schema=schema)
            if mode != "none" and _format_refused(error):
                # This server refuses that JSON mode: the next one down, from now on (other
                # requests in flight may have stepped down already).
                if JSON_MODES.index(self.json_mode) <= JSON_MODES.index(mode):
                    self.json_mode = JSON_MODES[JSON_MODES.index(mode) + 1]
                return await self.chat(messages, temperature=temperature, max_tokens=max_tokens, schema=schema)
            if error.status_code in (400, 422) and "temperature" in detail and "unsupported" in detail:
                raise LLMError(
                    f"{self.base_url}: the model refuses temperature {temperature:g} ({self.redact(_detail(error))}); "
                    "pass the value it names with --temperature"
                ) from None
            if error.status_code in (400, 413, 422) and any(word in detail for word in _CONTEXT_WORDS):
                raise LLMError(
                    f"{self.base_url}: the prompt is over the model's context ({self.redact(_detail(error))}); "
                    "lower --max-prompt-tokens or --max-tokens"
                ) from None
            raise self._fatal(error, "chat") from None
        choice = response.choices[0] if response.choices else None
        text = choice.message.content if choice is not None else None
        usage = response.usage
        tokens_in = usage.prompt_tokens if usage and usage.prompt_tokens else estimate_messages(messages)
        tokens_out = usage.completion_tokens if usage and usage.completion_tokens else len(text or "") // 4
        self.counters.tokens_in += tokens_in
        self.counters.tokens_out += tokens_out
        cut_off = choice is not None and choice.finish_reason == "length"
        return Reply(text, cut_off, tokens_in, tokens_out)

    async def embed(self, texts: list[str], dimensions: int | None = None) -> list[list[float]]:
        """Embeddings of ``texts``, in order; ``dimensions``: the size to ask for (OpenAI's
        text-embedding-3 models shorten theirs), sent only when given."""
        extra: dict[str, Any] = {} if dimensions is None else {"dimensions": dimensions}

        async def send() -> Any:
            # Floats, not the client's base64 default: not every compatible server has base64.
            return await self._client.embeddings.create(model=self.model, input=texts, encoding_format="float", **extra)

        try:
            response = await self._call(send)
        except openai.APIStatusError as error:
            raise self._fatal(error, "embeddings") from None
        rows = sorted(response.data, key=lambda d: d.index)
        if len(rows) != len(texts):
            raise GaveUp(f"asked for {len(texts)} embeddings, got {len(rows)}", unreachable=False)
        usage = response.usage
        self.counters.tokens_in += usage.prompt_tokens if usage and usage.prompt_tokens else 0
        return [list(r.embedding) for r in rows]
