"""RLMRec's two alignments, each written once and applicable to any backbone."""

from rlmrec.align.base import Alignment
from rlmrec.align.contrastive import ConConfig, ContrastiveAlignment
from rlmrec.align.generative import GenConfig, GenerativeAlignment

__all__ = ["Alignment", "ConConfig", "ContrastiveAlignment", "GenConfig", "GenerativeAlignment"]
