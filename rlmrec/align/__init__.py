"""RLMRec's two alignments, each written once and applicable to any backbone.

The configs import without torch; the modules (and torch) load on first use, so the
queue and the run store stay fast to start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlmrec.align.configs import ConConfig, GenConfig
from rlmrec.lazy import lazy_attributes

if TYPE_CHECKING:
    from rlmrec.align.base import Alignment
    from rlmrec.align.contrastive import ContrastiveAlignment
    from rlmrec.align.generative import GenerativeAlignment

_LAZY = {
    "Alignment": "rlmrec.align.base",
    "ContrastiveAlignment": "rlmrec.align.contrastive",
    "GenerativeAlignment": "rlmrec.align.generative",
}


__getattr__ = lazy_attributes("rlmrec.align", _LAZY)


__all__ = ["Alignment", "ConConfig", "ContrastiveAlignment", "GenConfig", "GenerativeAlignment"]
