"""How the dashboard shows statuses, times and metrics."""

from __future__ import annotations

STATUS_STYLE = {
    "queued": "cyan", "running": "bold yellow", "succeeded": "green",
    "failed": "bold red", "cancelled": "magenta", "lost": "red",
}  # fmt: skip


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    return f"{s}s" if s < 60 else f"{s // 60}m{s % 60:02d}s" if s < 3600 else f"{s // 3600}h{s % 3600 // 60:02d}m"


def fmt_metric(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
