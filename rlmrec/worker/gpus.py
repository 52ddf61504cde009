"""Which devices a worker's slots run on."""

from __future__ import annotations

import shutil
import subprocess

from rlmrec.errors import ConfigError


def detect_gpus() -> list[int]:
    """GPU indices from ``nvidia-smi`` (no torch import, no CUDA context); none without it."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [int(line) for line in out.stdout.split() if line.strip().isdigit()] if out.returncode == 0 else []


def parse_gpus(spec: str) -> list[int]:
    """``auto`` (all detected, possibly none), ``none``, or ``0,1``."""
    spec = spec.strip().lower()
    if spec == "auto":
        return detect_gpus()
    if spec in ("none", "cpu", ""):
        return []
    try:
        gpus = [int(part) for part in spec.split(",")]
    except ValueError:
        raise ConfigError(f"bad --gpus '{spec}': expected auto, none, or indices such as 0,1") from None
    if any(g < 0 for g in gpus) or len(set(gpus)) != len(gpus):
        raise ConfigError(f"bad --gpus '{spec}': indices must be distinct and >= 0")
    return gpus


def slots(gpus: list[int], per_gpu: int) -> list[str]:
    """One device name per slot: ``per_gpu`` on each GPU, or ``per_gpu`` CPU slots."""
    if per_gpu < 1:
        raise ConfigError(f"--per-gpu must be >= 1 (got {per_gpu})")
    if not gpus:
        return ["cpu"] * per_gpu
    return [f"cuda:{g}" for g in gpus for _ in range(per_gpu)]
