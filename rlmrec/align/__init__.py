"""RLMRec's two alignments, each written once and applicable to any backbone.

The configs import without torch; the modules (and torch) load on first use, so the
queue and the run store stay fast to start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rlmrec.align.configs import ConConfig, GenConfig

if TYPE_CHECKING:
    from rlmrec.align.base import Alignment
    from rlmrec.align.contrastive import ContrastiveAlignment
    from rlmrec.align.generative import GenerativeAlignment

_LAZY = {
    "Alignment": "rlmrec.align.base",
    "ContrastiveAlignment": "rlmrec.align.contrastive",
    "GenerativeAlignment": "rlmrec.align.generative",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rlmrec.align' has no attribute {name!r}")


__all__ = ["Alignment", "ConConfig", "ContrastiveAlignment", "GenConfig", "GenerativeAlignment"]
