"""User-facing errors: each one renders as a single line, never a traceback."""

from __future__ import annotations


class RLMRecError(Exception):
    """A mistake the user can fix (bad input, unknown name, missing file).

    The CLI prints ``str(error)`` on one line and exits non-zero; anything else
    that escapes is a bug and keeps its traceback.
    """


class DataError(RLMRecError):
    """A dataset folder or file is missing, malformed or inconsistent."""


class ConfigError(RLMRecError):
    """An unknown model, variant or configuration key, or a bad value."""


class StoreError(RLMRecError):
    """The run store cannot be opened or used: unreachable, read-only, corrupt, or
    an operation that its state forbids (removing a running run, say)."""


class LLMError(RLMRecError):
    """An LLM or embedding server cannot be used: unreachable, a refused key, an
    unknown model, a prompt over its context, or an answer it will not give."""


class SlurmError(RLMRecError):
    """Slurm cannot take or report the workers: its tools are missing or refuse the
    job, or the store or artifacts folder would be out of the nodes' reach."""
