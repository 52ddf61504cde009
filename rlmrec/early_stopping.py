"""Early stopping as the reference decides it (docs/protocol.md §4).

Each validation produces one value of the selection metric (Recall@K, the last K).
A value *strictly* greater than the best so far is an improvement: it becomes the
best and resets the count of evaluations without one; anything else (an equal value
included) adds one to that count. Training stops once the count reaches
``patience``. The count starts at the first evaluation (after epoch 0), and so does
the best value: the very first evaluation always improves on "nothing yet".
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class EarlyStopping:
    """The stopping rule and its state; ``update`` once per validation."""

    patience: int
    best_value: float = -math.inf
    best_epoch: int = -1
    bad_evals: int = 0  # evaluations since the last improvement

    def update(self, epoch: int, value: float) -> bool:
        """Record the validation value of ``epoch``; True when it is a new best."""
        if value > self.best_value:  # strictly: the reference keeps the earlier of two equal values
            self.best_value, self.best_epoch, self.bad_evals = value, epoch, 0
            return True
        self.bad_evals += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_evals >= self.patience

    @property
    def patience_left(self) -> int:
        return self.patience - self.bad_evals
