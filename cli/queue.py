"""``rlmrec queue``: validate and submit runs (a cross product and a grid)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from rlmrec.errors import RLMRecError
from rlmrec.queueing import Submission, plan

from .common import ArtifactsOption, DbOption, JsonOption, StrictConsole, open_store, silence_stdout


def queue(
    model: Annotated[str, typer.Argument(help="Backbone, comma list, or all")],
    variant: Annotated[str, typer.Argument(help="base, con (plus), gen (gene); comma list, or all")],
    dataset: Annotated[str, typer.Argument(help="Dataset under the data root or demo; comma list, or all")],
    *,
    seeds: Annotated[int | None, typer.Option("--seeds", help="N consecutive seeds from the preset seed")] = None,
    seed: Annotated[list[int] | None, typer.Option("--seed", help="An explicit seed (repeatable)")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="key=value; a comma list in the value expands a grid", metavar="KEY=VALUE"),
    ] = None,
    max_epochs: Annotated[int | None, typer.Option(help="Epoch cap (preset: 3000)")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N (default: the worker's slot)")] = None,
    priority: Annotated[int, typer.Option(help="Higher runs first")] = 0,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A label (repeatable)")] = None,
    note: Annotated[str | None, typer.Option(help="Free text kept with the runs")] = None,
    group: Annotated[str | None, typer.Option(help="Submission name (default: a timestamp)")] = None,
    data_root: Annotated[
        str | None, typer.Option(help="Dataset folder root (env: RLMREC_DATA; default ./data)")
    ] = None,
    db: DbOption = None,
    artifacts: ArtifactsOption = None,
    json_: JsonOption = False,
) -> None:
    """Queue every combination of MODEL x VARIANT x DATASET x seeds x --set grid.

    Everything is validated now, so nothing fails later on a worker for a typo.
    Example: rlmrec queue lightgcn,gccf base,gen demo --seeds 3 --set lr=1e-3,2e-3
    """
    try:
        specs = plan(
            Submission(
                model,
                variant,
                dataset,
                n_seeds=seeds,
                seeds=seed or (),
                overrides=set_ or (),
                epochs=max_epochs,
                device=device,
                priority=priority,
                tags=tag or (),
                note=note,
                group=group,
                data_root=data_root,
            )
        )
        store = open_store(db, artifacts)
        # Printed inside the transaction: if the output fails, nothing is queued.
        store.add_runs(specs, before_commit=lambda ids: _announce(ids, specs[0].group or "", json_=json_))
    except OSError as error:  # stdout closed or full; the transaction rolled back
        silence_stdout()
        raise RLMRecError(f"nothing queued: cannot print the queued ids ({error.strerror or error})") from None


def _announce(ids: list[int], group: str, *, json_: bool) -> None:
    if json_:
        typer.echo(json.dumps({"group": group, "ids": ids}))
        return
    contiguous = ids == list(range(ids[0], ids[0] + len(ids)))
    span = f"{ids[0]}-{ids[-1]}" if contiguous and len(ids) > 1 else ", ".join(map(str, ids))
    StrictConsole().print(
        f"queued {len(ids)} run(s): ids {span}, group [bold]{escape(group)}[/bold]\n"
        f"[dim]start a worker: rlmrec worker --until-empty   watch: rlmrec ls, rlmrec logs ID -f[/dim]",
        highlight=False,
        soft_wrap=True,  # a command to copy stays on one line, whatever the width
    )
