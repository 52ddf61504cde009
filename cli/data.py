"""``rlmrec data fetch | import | ls | show | validate`` and ``rlmrec embed``.

Imported when the CLI starts: NumPy, SciPy, torch and sentence-transformers load
inside the commands that need them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from rlmrec.data.layout import (
    DEFAULT_EMBED_MODEL,
    PUBLISHED_DATASETS,
    PUBLISHED_SIZE,
    PUBLISHED_URL,
    URL_ENV,
    find_dataset,
    resolve_data_root,
    writable_folder,
)
from rlmrec.errors import ConfigError, DataError, RLMRecError

from .common import HelpGroup, JsonOption, LogThrottle, duration, table_console

if TYPE_CHECKING:
    from rlmrec.data.inspection import EntityView, Kind, Summary
    from rlmrec.data.validate import Report

data_app = typer.Typer(
    name="data",
    cls=HelpGroup,  # reflowed help texts
    help="Datasets: fetch the published ones, import your own, list, inspect and validate them.",
    no_args_is_help=True,
)

DataRootOption = Annotated[
    Path | None, typer.Option("--data-root", help="Folder holding dataset folders (env RLMREC_DATA, default ./data)")
]
DatasetArg = Annotated[str, typer.Argument(help="A folder name under the data root, a path (./x), or demo")]

_MARK = {
    "ok": "[green]ok[/green]  ",
    "info": "[dim]info[/dim]",
    "warning": "[yellow]warn[/yellow]",
    "error": "[bold red]FAIL[/bold red]",
}


def _err() -> Console:
    return Console(stderr=True, highlight=False)


LOG_EVERY_S = 30.0  # without a terminal: seconds between progress lines


@contextmanager
def _progress(description: str, *, bytes_: bool) -> Iterator[Callable[[int, int | None], None]]:
    """A progress bar on stderr when it is a terminal; in a log or a pipe, plain lines
    (:func:`_log_lines`). Yields the callback the library reports to."""
    console = _err()
    if not console.is_terminal:
        yield _log_lines(console, description, bytes_)
        return
    columns = [DownloadColumn(), TransferSpeedColumn()] if bytes_ else [MofNCompleteColumn(), TextColumn("texts")]
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), *columns, TimeRemainingColumn(), console=console, transient=True
    )
    task = bar.add_task(description, total=None)

    def update(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


def _log_lines(console: Console, description: str, bytes_: bool) -> Callable[[int, int | None], None]:
    started = time.monotonic()
    throttle = LogThrottle(LOG_EVERY_S)

    def amount(n: int) -> str:
        return f"{n / 1e6:,.1f} MB" if bytes_ else f"{n:,}"

    def update(done: int, total: int | None) -> None:
        if not throttle.due(total is not None and done >= total):
            return
        of = f" of {amount(total)} ({done / total:.0%})" if total else ""
        what = "" if bytes_ else " texts"
        took = duration(time.monotonic() - started)
        console.print(
            f"{time.strftime('%H:%M:%S')} {description}: {amount(done)}{of}{what}, {took}",
            markup=False,
            soft_wrap=True,
        )

    return update


# ---------------------------------------------------------------------- ls


def _count(value: int | None) -> str:
    return f"{value:,}" if value is not None else ""


def _name(s: Summary) -> str:
    return escape(s.name) + (" [dim](built in)[/dim]" if s.builtin else "")


def _summary_row(s: Summary) -> list[str]:
    if s.users is None:
        return [_name(s), "", "", "", "", "", "", "", f"[red]{escape(s.error or '')}[/red]"]
    density = f"{s.density:.3%}" if s.density is not None else ""
    profiles = {(True, True): "users, items", (True, False): "users", (False, True): "items"}.get(
        (s.user_profiles, s.item_profiles), "-"
    )
    embeddings = f"{s.embedding_dim}-d" if s.embedding_dim else "-"
    if s.error:  # the splits load but the embeddings do not
        embeddings = f"[red]{escape(s.error)}[/red]"
    counts = [_count(s.interactions.get(k)) for k in ("train", "valid", "test")]
    return [_name(s), _count(s.users), _count(s.items), *counts, density, profiles, embeddings]


@data_app.command("ls")
def ls(data_root: DataRootOption = None, json_: JsonOption = False) -> None:
    """List the datasets under the data root and the demo: users, items, interactions, density, profiles, embeddings."""
    from rlmrec.data.inspection import summarize_root

    root = resolve_data_root(data_root)
    summaries = summarize_root(root)
    if json_:
        typer.echo(json.dumps([s.to_json() for s in summaries]))
        return
    console = table_console()
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("dataset", "users", "items", "train", "valid", "test", "density", "profiles", "embeddings"):
        table.add_column(column, justify="right" if column in {"users", "items", "train", "valid", "test"} else "left")
    for summary in summaries:
        table.add_row(*_summary_row(summary))
    console.print(table)
    if not any(not s.builtin for s in summaries):
        console.print(
            f"no datasets under {escape(str(root))}: rlmrec data fetch downloads amazon, yelp and steam; "
            "rlmrec data import PATH brings your own.",
            highlight=False,
        )
    else:
        console.print(f"[dim]data root {escape(str(root))}[/dim]", highlight=False)
    for s in summaries:
        if s.builtin:
            where = escape(str(s.path))
            console.print(f"[dim]{escape(s.name)}: built in, generated into {where}[/dim]", highlight=False)


# ---------------------------------------------------------------------- show


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _print_entity(view: EntityView, limit: int) -> None:
    console = Console(highlight=False)
    other = "item" if view.kind == "user" else "user"
    console.print(
        f"[bold]{view.kind.title()} {view.index}'s Profile[/bold] ({escape(view.dataset)}, "
        f"{view.count:,} {view.kind}s)\n"
    )
    if view.profile is not None:
        console.print(f"[bold]PROFILE:[/bold] {escape(view.profile)}\n")
        console.print(f"[bold]REASONING:[/bold] {escape(view.reasoning or '(none)')}\n")
    elif view.has_profiles:
        console.print(f"[yellow]no profile for {view.kind} {view.index}[/yellow]\n")
    else:
        console.print(f"[dim]no {view.kind} profiles in this dataset[/dim]\n")
    held = f" (plus {len(view.valid):,} validation, {len(view.test):,} test)"
    console.print(f"[bold]Training interactions:[/bold] {len(view.train):,} {other}s{held}")
    shown = view.train[:limit]
    if not view.neighbours:  # no profiles on the other side: just the indices
        if shown:
            console.print("  " + ", ".join(map(str, shown)))
    else:
        width = max(40, (console.width or 100) - 12)
        for j in shown:
            text = view.neighbours.get(j)
            console.print(f"  {j:>7}  " + (escape(_one_line(text, width)) if text else "[dim](no profile)[/dim]"))
    if len(view.train) > limit:
        console.print(f"  [dim]... {len(view.train) - limit:,} more (--limit)[/dim]")


@data_app.command("show")
def show(
    dataset: DatasetArg,
    user: Annotated[int | None, typer.Option("--user", help="User index")] = None,
    item: Annotated[int | None, typer.Option("--item", help="Item index")] = None,
    limit: Annotated[int, typer.Option(help="Training interactions to list")] = 20,
    data_root: DataRootOption = None,
    json_: JsonOption = False,
) -> None:
    """Show a user's or item's profile and reasoning, and its training interactions.

    Each interaction is listed with the other side's profile when the dataset has them.
    """
    from rlmrec.data.inspection import show_entity

    if (user is None) == (item is None):
        raise RLMRecError("give exactly one of --user N or --item N")
    name, folder = find_dataset(dataset, data_root)
    kind: Kind = "user" if user is not None else "item"
    index = user if user is not None else item
    assert index is not None
    view = show_entity(name, folder, kind, index)
    if json_:
        typer.echo(json.dumps(view.to_json()))
        return
    _print_entity(view, max(limit, 0))


# ---------------------------------------------------------------------- validate


def _print_report(report: Report, console: Console) -> None:
    for finding in report.findings:
        console.print(f"{_MARK[finding.level]}  {finding.check:<11} {escape(finding.message)}", soft_wrap=True)


@data_app.command("validate")
def validate(
    dataset: DatasetArg,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too")] = False,
    data_root: DataRootOption = None,
    json_: JsonOption = False,
) -> None:
    """Check a dataset: the loader's checks, split overlap, cold users and items, duplicates, profile gaps.

    Prints one line per check; the exit status is 1 when there is an error (with --strict, a warning too).
    """
    from rlmrec.data.validate import validate_folder

    name, folder = find_dataset(dataset, data_root)
    report = validate_folder(folder, name)
    if json_:
        typer.echo(json.dumps(report.to_json()))
    else:
        console = Console(highlight=False, soft_wrap=True)
        _print_report(report, console)
        console.print(f"[bold]{escape(report.verdict())}[/bold]")
    if not report.ok or (strict and report.warnings):
        problems = report.verdict() if not report.ok else f"{report.name}: {len(report.warnings)} warning(s) (--strict)"
        raise DataError(problems)


# ---------------------------------------------------------------------- fetch


@data_app.command("fetch")
def fetch(
    datasets: Annotated[
        list[str] | None, typer.Argument(help=f"{', '.join(PUBLISHED_DATASETS)} or all (default: all)")
    ] = None,
    url: Annotated[
        str, typer.Option(envvar=URL_ENV, help="Archive address (a mirror, a local server)")
    ] = PUBLISHED_URL,
    size: Annotated[
        int | None,
        typer.Option(
            help=f"Expected archive size in bytes (default: {PUBLISHED_SIZE:,} for the published URL, "
            "else the server's]"
        ),
    ] = None,
    archive: Annotated[Path | None, typer.Option(help="Use this already-downloaded zip instead of downloading")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace datasets that already exist")] = False,
    keep_archive: Annotated[
        bool,
        typer.Option("--keep-archive/--delete-archive", help="Keep the zip under <root>/.download for later fetches"),
    ] = True,
    retries: Annotated[
        int,
        typer.Option(help="Resume attempts in a row (without progress) after a dropped connection or a server error"),
    ] = 3,
    data_root: DataRootOption = None,
) -> None:
    """Download the published RLMRec data (amazon, yelp, steam), extract it safely and validate it.

    The download resumes where an interrupted one stopped; the archive is kept under <root>/.download
    for later fetches. Datasets that already exist are skipped unless --force.
    """
    from rlmrec.data.fetch import fetch as fetch_datasets

    names = [n for value in datasets or [] for n in value.split(",") if n]
    wanted = None if not names or "all" in names else names
    root = resolve_data_root(data_root)
    console = _err()
    with _progress("data.zip", bytes_=True) as update:
        result = fetch_datasets(
            wanted,
            root,
            url=url,
            size=size,
            archive=archive,
            force=force,
            keep_archive=keep_archive,
            progress=update,
            retries=retries,
        )
    out = Console(highlight=False, soft_wrap=True)
    if result.archive is not None:
        how = "downloaded" if result.downloaded else "used"
        left = "kept" if result.kept else "deleted"
        out.print(f"[dim]{how} {escape(str(result.archive))} ({left})[/dim]")
    invalid = []
    for entry in result.datasets:
        if entry.status == "skipped":
            out.print(f"{entry.name}: already in {escape(str(entry.path))}, skipped (--force replaces it)")
            continue
        assert entry.report is not None
        if entry.status == "invalid":
            invalid.append(entry.name)
            out.print(f"[bold red]{entry.name}: failed validation, not installed[/bold red]")
            _print_report(entry.report, out)
            continue
        splits = next((f.message for f in entry.report.findings if f.check == "splits"), "")
        out.print(f"[bold green]{entry.name}[/bold green]: installed in {escape(str(entry.path))}; {escape(splits)}")
        for finding in entry.report.findings:
            if finding.level in ("warning", "error"):
                out.print(f"  {_MARK[finding.level]}  {escape(finding.message)}")
    if invalid:
        raise DataError(f"{', '.join(invalid)}: failed validation; nothing installed for them")
    console.print("[dim]next: rlmrec data ls; rlmrec data show amazon --user 0; rlmrec run lightgcn con amazon[/dim]")


# ---------------------------------------------------------------------- import


@data_app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="A folder in the RLMRec format")],
    name: Annotated[
        str | None, typer.Option(help="Dataset name under the data root (default: the folder's name)")
    ] = None,
    link: Annotated[bool, typer.Option("--link", help="Link to the folder instead of copying it")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a dataset of the same name")] = False,
    data_root: DataRootOption = None,
) -> None:
    """Bring a dataset folder in the RLMRec format under the data root, as a copy or a link.

    The folder is validated first: nothing is written when it has an error.
    """
    from rlmrec.data.importer import import_folder

    root = resolve_data_root(data_root)
    done = import_folder(path, name or Path(path).expanduser().absolute().name, root, link=link, force=force)
    how = "linked to" if done.linked else "copied from"
    out = Console(highlight=False, soft_wrap=True)
    name = escape(done.name)
    out.print(f"[bold green]{name}[/bold green]: {how} {escape(str(done.source))} as {escape(str(done.path))}")
    for finding in done.report.findings:
        if finding.level == "warning":
            out.print(f"  {_MARK['warning']}  {escape(finding.message)}")


# ---------------------------------------------------------------------- embed


def embed(
    dataset: Annotated[str, typer.Argument(help="A folder name under the data root, or a path (./x)")],
    model: Annotated[
        str | None,
        typer.Option(
            help=f"sentence-transformers model: the bundled default ({DEFAULT_EMBED_MODEL}), a folder, or a hub id; "
            "with --base-url, the server's model (default: text-embedding-ada-002, the paper's)"
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass (with --base-url: per request)")] = 64,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N")] = "auto",
    normalize: Annotated[bool, typer.Option("--normalize/--no-normalize", help="Unit-length rows")] = True,
    base_url: Annotated[
        str | None,
        typer.Option(help="An OpenAI-compatible server instead of a local model, e.g. https://api.openai.com/v1"),
    ] = None,
    api_key_env: Annotated[
        str, typer.Option(help="With --base-url: the environment variable that holds the key")
    ] = "OPENAI_API_KEY",
    concurrency: Annotated[
        int | None, typer.Option(help="With --base-url: requests in flight (default 4)", show_default=False)
    ] = None,
    dimensions: Annotated[
        int | None,
        typer.Option(
            help="With --base-url: the embedding size to ask for (text-embedding-3 models)", show_default=False
        ),
    ] = None,
    data_root: DataRootOption = None,
) -> None:
    """Encode a dataset's user and item profiles into usr_emb_np.pkl / itm_emb_np.pkl.

    Locally with sentence-transformers (the embed extra), or through an OpenAI-compatible
    server with --base-url (batched, retried, cached in the dataset's llm_cache.sqlite).
    Each file is replaced atomically; the previous one is kept as <name>.prev.
    """
    if concurrency is not None and not base_url:
        raise ConfigError("--concurrency applies to a server (--base-url); a local model runs in --batch-size batches")
    if dimensions is not None and not base_url:
        raise ConfigError("--dimensions applies to a server (--base-url); a local model has its own size")
    name, folder = find_dataset(dataset, data_root)
    writable_folder(folder)
    if base_url:
        from rlmrec.profile.embed_api import DEFAULT_API_MODEL, DEFAULT_CONCURRENCY, embed_folder_api

        resolved = base_url
        with _progress(f"embedding {name}", bytes_=False) as update:
            done = embed_folder_api(
                folder, base_url=base_url, model=model or DEFAULT_API_MODEL, api_key_env=api_key_env,
                batch_size=batch_size, concurrency=DEFAULT_CONCURRENCY if concurrency is None else concurrency,
                dimensions=dimensions, normalize=normalize, progress=update,
            )  # fmt: skip
    else:
        from rlmrec.data.embed import embed_folder  # NumPy, SciPy; torch only with the model
        from rlmrec.device import resolve_device

        resolved = str(resolve_device(device))
        with _progress(f"embedding {name}", bytes_=False) as update:
            done = embed_folder(
                folder, model=model or DEFAULT_EMBED_MODEL, batch_size=batch_size, device=resolved,
                progress=update, normalize=normalize,
            )  # fmt: skip
    rate = (done.users + done.items) / done.seconds if done.seconds > 0 else float("inf")
    out = Console(highlight=False, soft_wrap=True)
    out.print(
        f"{name}: wrote usr_emb_np.pkl ({done.users:,} x {done.dim}) and itm_emb_np.pkl "
        f"({done.items:,} x {done.dim}) with {escape(done.model)} on {escape(resolved)} in {done.seconds:.1f} s "
        f"({rate:,.0f} texts/s)"
    )
    if done.kept:
        out.print(f"[dim]previous files kept as {', '.join(p.name for p in done.kept)}[/dim]")
