"""rlmrec: a faithful, fast reimplementation of RLMRec (Ren et al., WWW 2024).

Data flows one way: dataset folder -> :class:`rlmrec.data.Dataset` -> model
(:mod:`rlmrec.models`, :mod:`rlmrec.align`) -> :mod:`rlmrec.trainer` -> events.
"""

__version__ = "0.1.0"
