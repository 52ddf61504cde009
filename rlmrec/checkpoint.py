"""The resumable training state: what goes in, what comes out, and its file.

A checkpoint is written after every validation (``state.pt`` in the run's folder)
and holds everything an uninterrupted run would still have in memory: the model,
the optimizer, every random generator, and the trainer's progress (next epoch,
best state and value, early-stopping count, timings, history). Resuming from it
gives exactly the numbers of an uninterrupted run on CPU. Plain tensors, numbers
and containers only, so it loads with ``torch.load(weights_only=True)``: opening a
checkpoint never runs code.

Importing this module does not import torch or NumPy: the worker process, which
only asks whether a run has a checkpoint, stays light.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlmrec.atomic import atomic_write
from rlmrec.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

VERSION = 1
FILENAME = "state.pt"

State = dict[str, Any]


def capture(
    config: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    np_rng: np.random.Generator,
    device: torch.device,
    progress: dict[str, Any],
) -> State:
    """The state to resume from. ``progress`` is the trainer's, as plain values.

    A snapshot: nothing in it is shared with the live model, optimizer or progress,
    so it stays valid however long training continues before it is written."""
    import torch

    rng: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np_rng.bit_generator.state,
        "python": random.getstate(),
    }
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    best_state = progress.get("best_state") or {}
    return {
        "version": VERSION,
        "config": config,
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        # state_dict() hands out the live moment buffers, which every step updates in place.
        "optimizer": copy.deepcopy(optimizer.state_dict()) if optimizer else {},
        "rng": rng,
        "progress": {
            **copy.deepcopy({k: v for k, v in progress.items() if k != "best_state"}),
            # Replaced, never updated in place, on an improvement: no copy needed.
            "best_state": {k: v.cpu() for k, v in best_state.items()},
        },
    }


def apply(
    state: State,
    config: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    np_rng: np.random.Generator,
    device: torch.device,
) -> dict[str, Any]:
    """Load ``state`` into the model, optimizer and generators; returns the progress
    (``best_state`` on ``device``). Refuses a state written for another config."""
    import torch

    if state.get("version") != VERSION:
        raise ConfigError(f"checkpoint version {state.get('version')} is not {VERSION}; remove it to start afresh")
    if state.get("config") != config:
        raise ConfigError("the checkpoint was written for a different config; remove it to start afresh")
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    np_rng.bit_generator.state = rng["numpy"]
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))  # weights_only loading turns the tuple into a list
    if "cuda" in rng and device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], device)
    progress = dict(state["progress"])
    progress["best_state"] = {k: v.to(device) for k, v in (progress.get("best_state") or {}).items()}
    return progress


def save(state: State, path: Path) -> None:
    """Write ``state`` to ``path``; a kill mid-write leaves the previous checkpoint."""
    import torch

    with atomic_write(path) as tmp:
        torch.save(state, tmp)


def load(path: Path) -> State | None:
    """The state saved at ``path``, or None when there is none."""
    import torch

    if not path.exists():
        return None
    # weights_only: tensors, numbers and containers; never arbitrary pickled objects.
    state: State = torch.load(path, map_location="cpu", weights_only=True)
    return state
