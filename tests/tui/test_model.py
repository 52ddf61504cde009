"""The runs table's logic without a terminal: filters, sorting, paging, estimates."""

from __future__ import annotations

import pytest
from rlmrec.tui.model import Query, arrange, page, time_left

from rlmrec.errors import RLMRecError
from rlmrec.store import Store


def test_query_fields_and_words(dash: tuple[Store, dict[str, int]]) -> None:
    store, ids = dash
    runs = store.runs()
    assert [r.id for r in arrange(runs, Query.parse("status=succeeded,failed"))] == [
        ids["done_a"], ids["done_b"], ids["failed"]]  # fmt: skip
    assert [r.id for r in arrange(runs, Query.parse("model=gccf seed=2024"))] == [ids["queued"]]
    assert [r.id for r in arrange(runs, Query.parse("gen other"))] == [ids["queued"]]  # words: variant + group
    for bad, message in [("colour=red", "unknown filter field"), ("status=done", "unknown status 'done'")]:
        with pytest.raises(RLMRecError, match=message):
            Query.parse(bad)


def test_sorting_and_grouping(dash: tuple[Store, dict[str, int]]) -> None:
    store, ids = dash
    runs = store.runs()
    by_test = arrange(runs, Query(), "test R@20", reverse=True)
    assert [r.id for r in by_test[:2]] == [ids["done_b"], ids["done_a"]]
    grouped = arrange(runs, Query(), "id", grouped=True)
    assert [r.group for r in grouped] == ["other", "other", "study", "study", "study"]


def test_paging_clamps() -> None:
    rows = list(range(450))
    assert page(rows, 0, 200)[1:] == (0, 3) and len(page(rows, 2, 200)[0]) == 50
    assert page(rows, 9, 200)[1] == 2 and page([], 3, 200)[1:] == (0, 1)


def test_time_left_counts_epochs_to_early_stop(dash: tuple[Store, dict[str, int]]) -> None:
    store, ids = dash
    run = store.get(ids["running"])
    # best epoch 6, last epoch 6: 15 epochs to an early stop at 0.05 s each (0.35 s over 7 epochs)
    assert time_left(run) == pytest.approx(15 * 0.35 / 7)
    assert time_left(store.get(ids["done_a"])) is None
