"""Where rlmrec keeps what it can regenerate (the generated demo dataset; the install
scripts' wheels use the same folder): ``$RLMREC_CACHE``, else ``$XDG_CACHE_HOME/rlmrec``,
else ``~/.cache/rlmrec``. Deleting it loses nothing but the time to rebuild it."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "RLMREC_CACHE"


def cache_root() -> Path:
    """The cache folder (absolute; not created here)."""
    chosen = os.environ.get(CACHE_ENV)
    if not chosen:
        # The XDG spec says to ignore a relative XDG_CACHE_HOME.
        xdg = os.environ.get("XDG_CACHE_HOME")
        chosen = str(Path(xdg) / "rlmrec") if xdg and os.path.isabs(xdg) else "~/.cache/rlmrec"
    # Absolute, so messages and later chdirs cannot make it ambiguous.
    return Path(chosen).expanduser().absolute()
