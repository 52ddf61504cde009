"""``rlmrec profile``: LLM-written item and user profiles from any OpenAI-compatible server.

The library (``rlmrec.profile``, and the ``openai`` client) loads inside the command.
Every text that comes from a dataset or a model is printed escaped (Rich markup) or
raw with control characters removed: never interpreted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from rlmrec.data.layout import find_dataset, writable_folder
from rlmrec.errors import LLMError

from .common import LogThrottle, duration

if TYPE_CHECKING:
    from rlmrec.profile.generate import Outcome, Pass, Snapshot

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_LISTED = 20  # failures listed one by one; the rest are counted


def _printable(text: str) -> str:
    """Untrusted text for a terminal: no escape sequences or other control characters."""
    return _CONTROL.sub("?", text)


def _stats(s: Snapshot) -> str:
    rate = s.counters.requests / s.elapsed if s.elapsed > 0 else 0.0
    cost = f"  {_usd(s.cost)}" if s.cost is not None else ""
    return (
        f"{s.failed} failed  {rate:.1f} req/s  {s.counters.tokens_in:,} in / {s.counters.tokens_out:,} out tokens{cost}"
    )


@contextmanager
def _progress(log_every: float) -> Iterator[Callable[[Snapshot], None]]:
    """One bar per pass on stderr: done/total, failed, requests per second, tokens
    in/out and the cost so far. Without a terminal (nohup, a Slurm job, a pipe): a
    plain line per pass every ``log_every`` seconds (:func:`_log_lines`)."""
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        yield _log_lines(console, log_every)
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        console=console,
    )
    tasks: dict[str, TaskID] = {}

    def update(s: Snapshot) -> None:
        if s.phase not in tasks:
            tasks[s.phase] = bar.add_task(f"{s.phase}s", total=s.total, stats="")
        bar.update(tasks[s.phase], completed=s.done + s.failed, total=s.total, stats=_stats(s))

    with bar:
        yield update


def _log_lines(console: Console, every_s: float) -> Callable[[Snapshot], None]:
    throttles: dict[str, LogThrottle] = {}  # one per pass, from its first snapshot

    def update(s: Snapshot) -> None:
        if not throttles.setdefault(s.phase, LogThrottle(every_s)).due(s.done + s.failed >= s.total):
            return
        share = f"{(s.done + s.failed) / s.total:.0%}" if s.total else "100%"
        console.print(
            f"{time.strftime('%H:%M:%S')} {s.phase}s: {s.done + s.failed:,} of {s.total:,} ({share})  {_stats(s)}"
            f"  {duration(s.elapsed)}",
            markup=False,
        )

    return update


def _pass_line(p: Pass) -> str:
    answered = len(p.profiles)
    parts = [f"{p.cached:,} from the cache"]
    if p.asked:
        parts.append(
            f"{p.asked:,} asked: {p.first_try:,} valid at the first answer, {p.after_retry:,} after a retry, "
            f"{len(p.failures):,} failed"
        )
    if p.skipped:
        parts.append(f"{len(p.skipped):,} skipped")
    return f"{p.kind}s: {answered:,} of {p.total + len(p.skipped):,} profiled ({'; '.join(parts)})"


def _usd(amount: float) -> str:
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.5f}"


def _print_cuts(outcome: Outcome, out: Console) -> None:
    for p in outcome.passes:
        if p.cut:
            shown = "; ".join(f"{p.kind} {i}: {note}" for i, note in list(p.cut.items())[:3])
            more = ", ..." if len(p.cut) > 3 else ""
            out.print(
                f"[yellow]{len(p.cut):,} {p.kind} prompts cut to fit --max-prompt-tokens[/yellow] "
                f"({escape(shown)}{more})"
            )


def _print_dry_run(outcome: Outcome, out: Console) -> None:
    typer.echo(f"system prompt ({outcome.domain}):\n{_printable(outcome.prompts.system.strip())}\n")
    for job in outcome.shown:
        cut = f"; cut to fit: {job.cut}" if job.cut else ""
        typer.echo(f"--- {job.kind} {job.index} (about {job.tokens:,} tokens, estimated{cut}) ---")
        typer.echo(_printable(job.messages[-1]["content"].strip()) + "\n")
    e = outcome.estimate()
    counts = ", ".join(f"{p.to_ask:,} {p.kind}s" for p in outcome.passes)
    out.print(f"would ask: {counts} ({e.cached:,} answered already in the cache)")
    _print_cuts(outcome, out)
    out.print(
        f"about {e.tokens_in:,} input tokens (estimated: UTF-8 bytes / 4; user prompts count a placeholder "
        f"for item profiles not written yet); output about {e.typical_out:,} "
        f"({e.per_answer:,} an answer), at most {e.most_out:,}; retries add to this"
    )
    if outcome.price is not None:
        low, high = e.costs(outcome.price)
        out.print(
            f"cost about {_usd(low)}, at most {_usd(high)} ({escape(outcome.price.source)}: "
            f"USD {outcome.price.input:g} in, {outcome.price.output:g} out per million tokens)"
        )
    else:
        out.print("[dim]no price known for this model: --price-in/--price-out (USD per million tokens)[/dim]")
    out.print("[dim]nothing was sent (--dry-run)[/dim]")


def _print_outcome(outcome: Outcome, out: Console, limited: bool) -> bool:
    """The summary; True when the run is incomplete in a way that must fail the command."""
    for p in outcome.passes:
        out.print(escape(_pass_line(p)))
    _print_cuts(outcome, out)
    for note in outcome.notes:
        out.print(f"[dim]{escape(note)}[/dim]")
    if outcome.json_mode == "none":
        out.print("[dim]the server has no JSON mode (it refused response_format): asked in plain text[/dim]")
    elif outcome.json_mode is not None:
        out.print(f"[dim]JSON mode: {outcome.json_mode}[/dim]")
    c = outcome.counters
    cost = ""
    if outcome.cost is not None and outcome.price is not None:
        cost = f", {_usd(outcome.cost)} ({escape(outcome.price.source)})"
    out.print(
        f"{c.requests:,} requests ({c.retried:,} retried), {c.tokens_in:,} tokens in / {c.tokens_out:,} out"
        f"{cost}; {duration(outcome.seconds)}"
    )
    incomplete = False
    for p in outcome.passes:
        if p.written is not None:
            out.print(f"[green]wrote {escape(p.written.name)}[/green] ({len(p.profiles):,} {p.kind}s)")
        elif p.not_written:
            incomplete = incomplete or not limited
            out.print(f"[yellow]{escape(p.not_written)}[/yellow]")
    listed = [(p.kind, i, why) for p in outcome.passes for i, why in (*p.failures.items(), *p.skipped.items())]
    if listed:
        out.print("[bold]without a profile:[/bold]")
        for kind, index, why in listed[:_LISTED]:
            out.print(f"  {kind} {index}: {escape(_printable(why))}")
        if len(listed) > _LISTED:
            out.print(f"  ... {len(listed) - _LISTED:,} more")
        out.print(
            "[dim]run the same command again to ask only for these (every answer so far is stored), "
            "or add --allow-missing to write what there is[/dim]"
        )
    return incomplete or outcome.failed


def profile(
    dataset: Annotated[str, typer.Argument(help="A folder name under the data root, or a path (./x)")],
    *,
    items: Annotated[bool, typer.Option("--items", help="Profile the items (default: items, then users)")] = False,
    users: Annotated[bool, typer.Option("--users", help="Profile the users (needs item profiles)")] = False,
    base_url: Annotated[
        str | None,
        typer.Option(envvar="OPENAI_BASE_URL", help="OpenAI-compatible server, e.g. http://localhost:8000/v1"),
    ] = None,
    model: Annotated[str, typer.Option(help="Model name on that server (the paper: gpt-3.5-turbo)")],
    api_key_env: Annotated[str, typer.Option(help="Environment variable that holds the API key")] = "OPENAI_API_KEY",
    domain: Annotated[
        str | None, typer.Option(help="books, businesses, games or generic (default: build.json's, else generic)")
    ] = None,
    prompts: Annotated[
        Path | None, typer.Option(help="Folder of prompt files that replace the packaged ones (same names)")
    ] = None,
    reviews_per_item: Annotated[int, typer.Option(help="Training reviews in an item's prompt")] = 5,
    items_per_user: Annotated[int, typer.Option(help="Training items in a user's prompt (seeded sample)")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the review and item samples")] = 2023,
    concurrency: Annotated[int, typer.Option(help="Requests in flight")] = 4,
    retries: Annotated[int, typer.Option(help="Times to ask again after an answer that is not the JSON")] = 3,
    http_retries: Annotated[int, typer.Option(help="Retries of a request after 429, 5xx, a timeout")] = 6,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for one answer")] = 120.0,
    temperature: Annotated[float, typer.Option(help="Sampling temperature")] = 0.2,
    max_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens")] = 512,
    log_every: Annotated[
        float, typer.Option(help="Without a terminal (a log file): seconds between progress lines", min=0)
    ] = 30.0,
    max_prompt_tokens: Annotated[
        int, typer.Option(help="Longest prompt (estimated tokens); reviews are cut first, then descriptions")
    ] = 3000,
    price_in: Annotated[float | None, typer.Option(help="USD per million input tokens")] = None,
    price_out: Annotated[float | None, typer.Option(help="USD per million output tokens")] = None,
    limit: Annotated[
        int | None, typer.Option(help="Only the first N users and the items they show (--items alone: N items)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print prompts and a token/cost estimate; send nothing")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Ask again even for answers in the cache")] = False,
    allow_missing: Annotated[
        bool, typer.Option("--allow-missing", help="Write the profile files even with entities missing")
    ] = False,
    data_root: Annotated[
        Path | None, typer.Option("--data-root", help="Folder holding dataset folders (env RLMREC_DATA)")
    ] = None,
) -> None:
    """Ask an LLM for item profiles, then user profiles, and write itm_prf.pkl / usr_prf.pkl.

    Prompts use training interactions only. Every answer is stored in the dataset's
    llm_cache.sqlite as it arrives: a rerun asks only for what is missing or failed.
    The key comes from $OPENAI_API_KEY (or --api-key-env), never from a flag.
    """
    from rlmrec.profile.generate import Settings, profile_folder

    settings = Settings(
        model=model, base_url=base_url, api_key_env=api_key_env, items=items or not users, users=users or not items,
        domain=domain, prompts_dir=prompts, reviews_per_item=reviews_per_item, items_per_user=items_per_user,
        seed=seed, concurrency=concurrency, retries=retries, http_retries=http_retries, timeout_s=timeout,
        temperature=temperature, max_tokens=max_tokens, max_prompt_tokens=max_prompt_tokens, price_in=price_in,
        price_out=price_out, limit=limit, dry_run=dry_run, force=force, allow_missing=allow_missing,
    )  # fmt: skip
    out = Console(highlight=False, soft_wrap=True)
    try:
        _name, folder = find_dataset(dataset, data_root)
        writable_folder(folder)
        with _progress(log_every) as update:
            outcome = profile_folder(folder, settings, progress=update)
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted: every answer received so far is stored; run again to continue")
        raise typer.Exit(130) from None
    if dry_run:
        _print_dry_run(outcome, out)
        return
    if _print_outcome(outcome, out, limited=limit is not None):
        missing = sum(len(p.failures) + len(p.skipped) for p in outcome.passes)
        raise LLMError(f"{missing:,} profiles missing; the list is above")
