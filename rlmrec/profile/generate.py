"""``rlmrec profile``: ask an LLM for every item's and then every user's profile, as the
paper does (a user's prompt shows the profiles of the items they chose, so items come
first), and write ``itm_prf.pkl`` / ``usr_prf.pkl`` in the published format.

Every answer is stored in the dataset's cache as it arrives (:mod:`rlmrec.profile.cache`),
so a rerun asks only for what is missing or failed. An answer that is not the requested
JSON is asked again with the parse error; what still fails is recorded as failed, never
written. A profile file is written (atomically, the old one kept as ``.prev``) only once
every entity of its kind has a profile, unless ``allow_missing``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from rlmrec.data.dataset import load_profiles
from rlmrec.data.embed import write_embeddings
from rlmrec.data.layout import PROFILE_FILES
from rlmrec.errors import DataError, LLMError
from rlmrec.profile.answers import ANSWER_SCHEMA, ECHO_CHARS, AnswerError, parse_answer
from rlmrec.profile.cache import CACHE_FILE, Answer, Cache, request_key
from rlmrec.profile.client import DEFAULT_KEY_ENV, Counters, GaveUp, Server
from rlmrec.profile.costs import Price, estimate_messages, find_price
from rlmrec.profile.inputs import Inputs, load_inputs
from rlmrec.profile.prompts import Message, Prompts, item_messages, load_prompts, user_messages

Kind = Literal["item", "user"]
# A guess for --dry-run's output estimate: a 100-word profile and a few sentences of reasoning.
TYPICAL_ANSWER_TOKENS = 200
_PLACEHOLDER = "(the profile that the item pass writes for this item)"


@dataclass(frozen=True)
class Settings:
    """Everything a run depends on; the CLI's options, one to one."""

    model: str
    base_url: str | None = None
    api_key_env: str = DEFAULT_KEY_ENV
    items: bool = True
    users: bool = True
    domain: str | None = None  # None: build.json's, else generic
    prompts_dir: Path | None = None
    reviews_per_item: int = 5
    items_per_user: int = 10
    seed: int = 2023
    concurrency: int = 4
    retries: int = 3  # asking again after an answer that is not the requested JSON
    http_retries: int = 6
    timeout_s: float = 120.0
    temperature: float = 0.2  # low: profiles should follow the data, not vary run to run
    max_tokens: int = 512
    max_prompt_tokens: int = 3000  # estimated; fits a 4k-context model with max_tokens to spare
    price_in: float | None = None
    price_out: float | None = None
    limit: int | None = None
    dry_run: bool = False
    force: bool = False
    allow_missing: bool = False
    backoff_s: float = 1.0  # first wait before a retry, doubled each time (tests shorten it)


@dataclass(frozen=True)
class Job:
    kind: Kind
    index: int
    messages: list[Message]
    request: dict[str, Any]
    key: str
    cut: str | None  # what was cut to fit --max-prompt-tokens

    @property
    def tokens(self) -> int:
        return estimate_messages(self.messages)


@dataclass(frozen=True)
class Snapshot:
    """Progress of one pass, for the progress display."""

    phase: Kind
    total: int
    done: int
    failed: int
    counters: Counters
    cost: float | None
    elapsed: float


@dataclass
class Pass:
    """What one pass (items or users) did."""

    kind: Kind
    total: int = 0
    cached: int = 0
    asked: int = 0
    first_try: int = 0  # answered with valid JSON at the first attempt
    after_retry: int = 0  # valid only after asking again
    failures: dict[int, str] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)  # nothing to describe / waiting for item profiles
    cut: dict[int, str] = field(default_factory=dict)
    profiles: dict[int, Answer] = field(default_factory=dict)
    written: Path | None = None
    not_written: str | None = None
    estimate_in: int = 0  # --dry-run: estimated input tokens of the requests to make
    to_ask: int = 0  # --dry-run: requests to make


@dataclass(frozen=True)
class Estimate:
    """What a --dry-run expects the real run to send (estimated tokens, see costs)."""

    asks: int
    cached: int
    tokens_in: int
    typical_out: int  # TYPICAL_ANSWER_TOKENS an answer
    most_out: int  # every answer at --max-tokens
    per_answer: int = TYPICAL_ANSWER_TOKENS

    def costs(self, price: Price) -> tuple[float, float]:
        return price.cost(self.tokens_in, self.typical_out), price.cost(self.tokens_in, self.most_out)


@dataclass
class Outcome:
    settings: Settings
    folder: Path
    domain: str
    prompts: Prompts
    price: Price | None
    passes: list[Pass]
    counters: Counters
    seconds: float
    json_mode: str | None  # the JSON mode the server accepted (client.JSON_MODES); None: nothing sent
    shown: list[Job] = field(default_factory=list)  # --dry-run's prompts
    notes: list[str] = field(default_factory=list)

    @property
    def cost(self) -> float | None:
        return self.price.cost(self.counters.tokens_in, self.counters.tokens_out) if self.price else None

    @property
    def failed(self) -> bool:
        return any(p.failures for p in self.passes)

    def estimate(self) -> Estimate:
        asks = sum(p.to_ask for p in self.passes)
        return Estimate(
            asks,
            sum(p.cached for p in self.passes),
            sum(p.estimate_in for p in self.passes),
            asks * TYPICAL_ANSWER_TOKENS,
            asks * self.settings.max_tokens,
        )


def _job(kind: Kind, index: int, messages: list[Message], cut: str | None, s: Settings) -> Job:
    request = {
        "model": s.model,
        "messages": messages,
        "temperature": s.temperature,
        "max_tokens": s.max_tokens,
        # The intent, not the server's mode: the JSON mode a server ends up with changes no key.
        "response_format": "json",
    }
    return Job(kind, index, messages, request, request_key(request), cut)


def _select(inputs: Inputs, s: Settings) -> tuple[list[int], list[int]]:
    """Items and users to profile. With ``limit``: the first N users, and the items their
    prompts show (or the first N items when only items are asked for)."""
    users = list(range(inputs.n_users)) if s.users else []
    items = list(range(inputs.n_items)) if s.items else []
    if s.limit is None:
        return items, users
    users = [u for u in users if inputs.users[u].items][: s.limit]
    if s.items and s.users:
        items = sorted({e.iid for u in users for e in inputs.users[u].items})
    elif s.items:
        items = [i for i in items if not inputs.items[i].empty][: s.limit]
    return items, users


class _Runner:
    def __init__(self, s: Settings, prompts: Prompts, cache: Cache, server: Server | None, price: Price | None) -> None:
        self.s, self.prompts, self.cache, self.server, self.price = s, prompts, cache, server, price
        self.counters = server.counters if server else Counters()
        self.started = time.perf_counter()

    async def ask(self, job: Job) -> Answer:
        """One entity: ask, parse, and ask again with the parse error until it is valid."""
        assert self.server is not None
        conversation, tokens_in, tokens_out, raw, error = job.messages, 0, 0, None, ""
        for attempt in range(1, self.s.retries + 2):
            try:
                reply = await self.server.chat(
                    conversation, temperature=self.s.temperature, max_tokens=self.s.max_tokens, schema=ANSWER_SCHEMA
                )
            except GaveUp as gave_up:
                if gave_up.unreachable:
                    raise LLMError(f"cannot reach {self.server.base_url}: {gave_up}") from None
                return Answer("failed", None, None, raw, tokens_in, tokens_out, attempt, str(gave_up))
            tokens_in, tokens_out, raw = tokens_in + reply.tokens_in, tokens_out + reply.tokens_out, reply.text
            try:
                parsed = parse_answer(reply.text, cut_off=reply.cut_off)
            except AnswerError as bad:
                error = f"not the requested JSON: {bad}"
                echo = (reply.text or "").strip()[:ECHO_CHARS] or "(an empty answer)"
                conversation = [
                    *job.messages,
                    {"role": "assistant", "content": echo},
                    {"role": "user", "content": self.prompts.retry_message(str(bad))},
                ]
                continue
            return Answer("ok", parsed.profile, parsed.reasoning, raw, tokens_in, tokens_out, attempt)
        return Answer("failed", None, None, raw, tokens_in, tokens_out, self.s.retries + 1, error)

    async def run(self, jobs: list[Job], result: Pass, progress: Callable[[Snapshot], None] | None) -> None:
        """Answers from the cache, then the rest asked ``concurrency`` at a time, each
        stored the moment it arrives."""
        result.total = len(jobs)
        todo = []
        for job in jobs:
            cached = None if self.s.force else self.cache.get(job.key, self.s.model)
            if cached is not None and cached.ok:
                result.cached += 1
                result.profiles[job.index] = cached
            else:
                todo.append(job)
        if self.s.dry_run:
            distinct = {j.key: j for j in todo}.values()
            result.to_ask, result.estimate_in = len(distinct), sum(j.tokens for j in distinct)
            return

        def report() -> None:
            if progress:
                cost = self.price.cost(self.counters.tokens_in, self.counters.tokens_out) if self.price else None
                done = len(result.profiles)
                elapsed = time.perf_counter() - self.started
                counters = replace(self.counters)  # a copy: the snapshot must not change afterwards
                progress(Snapshot(result.kind, result.total, done, len(result.failures), counters, cost, elapsed))

        # Entities with the same prompt (two items with the same bare title, say) share one request.
        same: dict[str, list[Job]] = {}
        for job in todo:
            same.setdefault(job.key, []).append(job)

        async def work(queue: Iterable[list[Job]]) -> None:
            for group in queue:  # one iterator shared by every worker: each request is made once
                head = group[0]
                answer = await self.ask(head)
                self.cache.put(head.key, self.s.model, head.kind, head.index, head.request, answer)
                result.asked += len(group)
                for job in group:
                    if answer.ok:
                        result.profiles[job.index] = answer
                        if answer.attempts == 1:
                            result.first_try += 1
                        else:
                            result.after_retry += 1
                    else:
                        result.failures[job.index] = answer.error or "failed"
                report()

        report()
        shared = iter(same.values())
        workers = [asyncio.create_task(work(shared)) for _ in range(min(self.s.concurrency, len(same)))]
        try:
            await asyncio.gather(*workers)
        finally:  # a fatal error in one worker stops the others; what they stored stays
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)


def _write(folder: Path, result: Pass, count: int, fname: str, allow_missing: bool) -> None:
    missing = count - len(result.profiles)
    if missing and not allow_missing:
        result.not_written = f"{fname} not written: {missing:,} of {count:,} {result.kind}s have no profile"
        return
    if not result.profiles:
        result.not_written = f"{fname} not written: no {result.kind} profiles"
        return
    data = {i: {"profile": a.profile or "", "reasoning": a.reasoning or ""} for i, a in sorted(result.profiles.items())}
    write_embeddings(folder, {fname: data})  # atomic, keeps the old file as .prev
    result.written = folder / fname


def _item_profiles(folder: Path, items: Pass | None) -> dict[int, str]:
    if items is not None:
        return {i: a.profile or "" for i, a in items.profiles.items()}
    path = folder / PROFILE_FILES[1]
    if not path.is_file():
        raise DataError(
            f"{path}: missing; user prompts show each item's profile: run rlmrec profile {folder.name} --items first"
        )
    return {i: p["profile"] for i, p in load_profiles(path).items()}


async def _profile(folder: Path, s: Settings, progress: Callable[[Snapshot], None] | None) -> Outcome:
    if not (s.items or s.users):
        raise DataError("nothing to do: give --items, --users or neither (both)")
    if s.concurrency < 1 or s.retries < 0 or s.max_tokens < 1 or (s.limit is not None and s.limit < 1):
        raise DataError("--concurrency, --max-tokens and --limit must be positive, --retries 0 or more")
    inputs = load_inputs(
        folder, reviews_per_item=s.reviews_per_item, items_per_user=s.items_per_user, seed=s.seed, need_meta=s.items
    )
    domain = s.domain or inputs.domain or "generic"
    prompts = load_prompts(domain, s.prompts_dir)
    price = find_price(s.model, s.price_in, s.price_out)
    item_ids, user_ids = _select(inputs, s)
    names = {i.iid: i.name for i in inputs.items}
    server = None
    if not s.dry_run:
        if not s.base_url:
            raise LLMError(
                "give the server: --base-url URL (e.g. https://api.openai.com/v1 or http://localhost:8000/v1)"
            )
        server = Server(
            s.base_url, s.model, api_key_env=s.api_key_env, timeout_s=s.timeout_s,
            http_retries=s.http_retries, backoff_s=s.backoff_s,
        )  # fmt: skip
    outcome = Outcome(s, folder, domain, prompts, price, [], Counters(), 0.0, None)
    if s.items and not inputs.has_reviews:
        outcome.notes.append("no reviews.jsonl: item prompts carry metadata only")
    show = s.limit or 2
    with Cache(folder / CACHE_FILE, readonly=s.dry_run) as cache:
        runner = _Runner(s, prompts, cache, server, price)
        outcome.counters = runner.counters
        try:
            if server is not None:
                await server.check()
            items = None
            if s.items:
                items = Pass("item")
                jobs = []
                for i in item_ids:
                    if inputs.items[i].empty:
                        items.skipped[i] = "nothing to describe: no metadata and no training reviews"
                        continue
                    messages, cut = item_messages(prompts, inputs.items[i], s.max_prompt_tokens)
                    jobs.append(_job("item", i, messages, cut, s))
                    if cut:
                        items.cut[i] = cut
                outcome.shown += jobs[:show]
                outcome.passes.append(items)
                await runner.run(jobs, items, progress)
                if not s.dry_run:
                    _write(folder, items, inputs.n_items, PROFILE_FILES[1], s.allow_missing)
            if s.users:
                users = Pass("user")
                profiles = _item_profiles(folder, items)
                jobs = []
                for u in user_ids:
                    user = inputs.users[u]
                    if not user.items:
                        users.skipped[u] = "nothing to describe: no training interactions"
                        continue
                    waiting = [e.iid for e in user.items if e.iid not in profiles]
                    if waiting and s.dry_run:
                        profiles = {**profiles, **dict.fromkeys(waiting, _PLACEHOLDER)}
                    elif waiting and not s.allow_missing:
                        users.skipped[u] = f"waiting for the profiles of items {', '.join(map(str, waiting[:5]))}"
                        continue
                    messages, cut = user_messages(prompts, user, names, profiles, s.max_prompt_tokens)
                    jobs.append(_job("user", u, messages, cut, s))
                    if cut:
                        users.cut[u] = cut
                outcome.shown += jobs[:show]
                outcome.passes.append(users)
                await runner.run(jobs, users, progress)
                if not s.dry_run:
                    _write(folder, users, inputs.n_users, PROFILE_FILES[0], s.allow_missing)
        finally:
            outcome.seconds = time.perf_counter() - runner.started
            if server is not None:
                outcome.json_mode = server.json_mode if server.counters.requests else None
                await server.close()
    return outcome


def profile_folder(folder: Path, settings: Settings, *, progress: Callable[[Snapshot], None] | None = None) -> Outcome:
    """Profile the items, then the users, of ``folder`` (see the module docstring)."""
    return asyncio.run(_profile(Path(folder), settings, progress))
