"""The early-stopping rule on hand-made validation sequences (no training involved)."""

from __future__ import annotations

import math

import pytest

from rlmrec.early_stopping import EarlyStopping


def _replay(values: list[float], patience: int, test_step: int = 3) -> tuple[EarlyStopping, list[bool], int]:
    """Feed ``values`` as the validations of epochs 0, test_step, 2*test_step...
    until the rule says stop; returns the rule, the improvement flags, and how
    many validations ran."""
    rule = EarlyStopping(patience)
    flags = []
    for n, value in enumerate(values):
        flags.append(rule.update(n * test_step, value))
        if rule.should_stop:
            return rule, flags, n + 1
    return rule, flags, len(values)


def test_first_evaluation_is_always_an_improvement() -> None:
    rule = EarlyStopping(patience=5)
    assert rule.update(0, 0.0) and (rule.best_epoch, rule.best_value, rule.bad_evals) == (0, 0.0, 0)


@pytest.mark.parametrize(
    ("values", "patience", "ran", "best_epoch", "best"),
    [
        # Patience 5: five evaluations in a row without a strictly better value stop it.
        ([0.10, 0.12, 0.13, 0.12, 0.13, 0.11, 0.13, 0.125, 0.2], 5, 8, 6, 0.13),
        # An improvement resets the count; the one after it starts again from zero.
        ([0.1, 0.09, 0.09, 0.09, 0.09, 0.11, 0.1, 0.1, 0.1, 0.1, 0.1], 5, 11, 15, 0.11),
        # Equal is not better: the earlier of two equal values stays the best.
        ([0.1, 0.2, 0.2, 0.2], 3, 4, 3, 0.2),
        # The count starts at epoch 0: a run that never improves after its first
        # validation stops after 1 + patience validations.
        ([0.3, 0.2, 0.1], 2, 3, 0, 0.3),
        # Never stopping: the sequence ends first.
        ([0.1, 0.2, 0.3], 1, 3, 6, 0.3),
    ],
)
def test_hand_made_sequences(values: list[float], patience: int, ran: int, best_epoch: int, best: float) -> None:
    rule, _, n = _replay(values, patience)
    assert (n, rule.best_epoch, rule.best_value) == (ran, best_epoch, best)


def test_improvement_flags_and_patience_left() -> None:
    rule = EarlyStopping(patience=3)
    seen = [(rule.update(e, v), rule.patience_left) for e, v in [(0, 0.1), (3, 0.1), (6, 0.05), (9, 0.2), (12, 0.2)]]
    assert seen == [(True, 3), (False, 2), (False, 1), (True, 3), (False, 2)]
    assert not rule.should_stop


def test_nan_is_never_an_improvement() -> None:
    rule = EarlyStopping(patience=1)
    rule.update(0, 0.1)
    assert not rule.update(3, math.nan)
    assert rule.should_stop and rule.best_value == 0.1


def test_the_reference_stopping_epochs_of_a_real_curve() -> None:
    """A curve of the shape the issue describes (rising, then a flat stretch, then one
    more rise): with patience 5 the run stops in the flat stretch and never sees the
    later rise; with patience 10 it does."""
    curve = [0.05 + 0.001 * n for n in range(60)]  # epochs 0..177, rising
    curve += [curve[-1] - 0.0005] * 6  # epochs 180..195, flat just below the best
    curve += [curve[59] + 0.002] * 3  # epochs 198.., higher again
    five, _, ran5 = _replay(curve, 5)
    ten, _, ran10 = _replay(curve, 10)
    assert (five.best_epoch, ran5) == (177, 65)
    assert ten.best_epoch == 198 and ten.best_value > five.best_value and ran10 == len(curve)
