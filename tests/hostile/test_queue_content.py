"""Queue time checks a dataset's content as training will load it (truncated or NaN
embeddings, wrong row counts, mismatched or corrupt matrices, a ``topk`` beyond the
items, an empty split), once per dataset, remembered by the files' sizes and times;
``run`` makes the same checks before it records a run."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from cli_checks import Invoke, one_line_error
from hostile.crafted import SHAPE, coo_state, pickled, write_dataset

from rlmrec.errors import RLMRecError
from rlmrec.queueing import Submission, plan
from rlmrec.store import Store

RNG = np.random.default_rng(1)
USERS, ITEMS = SHAPE


def _emb(rows: int, dim: int = 8) -> np.ndarray:
    return RNG.standard_normal((rows, dim)).astype(np.float32)


def _truncated() -> bytes:
    data = pickle.dumps(_emb(USERS))
    return data[: len(data) // 2]


def _nan() -> np.ndarray:
    emb = _emb(USERS)
    emb[1, 2] = np.nan
    return emb


BROKEN: dict[str, tuple[dict[str, object], str]] = {
    "truncated embeddings": ({"usr_emb_np": _truncated()}, "usr_emb_np.pkl: not a readable pickle"),
    "NaN embeddings": ({"usr_emb_np": _nan()}, "usr_emb_np.pkl: non-finite values"),
    "embeddings of the wrong row count": (
        {"itm_emb_np": _emb(ITEMS - 2)},
        f"itm_emb_np.pkl: {ITEMS - 2} rows but the interaction matrices have {ITEMS} items",
    ),
    "embedding dims differ": ({"itm_emb_np": _emb(ITEMS, 16)}, "itm_emb_np.pkl: embedding dim 16 differs"),
    "matrices of different shapes": (
        {"val_mat": sp.coo_matrix((np.ones(1), ([0], [5])), shape=(USERS, ITEMS + 1))},
        "val_mat.pkl: shape (4, 6) differs from trn_mat.pkl shape (4, 5)",
    ),
    "a corrupt matrix": ({"tst_mat": pickled(sp.coo_matrix, coo_state([0, -1], [0, 1]))}, "tst_mat.pkl: corrupt"),
}


@pytest.mark.parametrize("variant", ["con", "base"])
@pytest.mark.parametrize("case", list(BROKEN))
def test_queue_refuses_a_dataset_training_would_refuse(cli: Invoke, root: Path, case: str, variant: str) -> None:
    """Base runs too: the loader reads embeddings whenever they are there."""
    files, fragment = BROKEN[case]
    write_dataset(root, "bad", **files)
    write_dataset(root, "good")
    one_line_error(cli("queue", "lightgcn", variant, "good,bad", "--seeds", "3", "--set", "topk=5"), fragment)
    assert not Path(os.environ["RLMREC_DB"]).exists() or Store().runs() == []


CONFIG_MISFITS = {  # the toy datasets have 5 items: the default topk (5, 10, 20) does not fit them
    "topk beyond the items": (["lightgcn", "base", "good"], "topk 20 exceeds the 5 items of good"),
    "topk beyond the demo's items": (["lightgcn", "base", "demo", "--set=topk=2000"], "exceeds the 1600 items"),
    "con without embeddings": (["gccf", "con", "noemb", "--set=topk=5"], "noemb/usr_emb_np.pkl: missing"),
    "an empty test split": (["lightgcn", "base", "notest", "--set=topk=5"], "notest: the test split is empty"),
}


@pytest.mark.parametrize("case", list(CONFIG_MISFITS))
def test_queue_and_run_refuse_a_config_the_dataset_cannot_train(cli: Invoke, root: Path, case: str) -> None:
    write_dataset(root, "good")
    write_dataset(root, "noemb", embeddings=False)
    write_dataset(root, "notest", tst_mat=sp.coo_matrix(SHAPE))
    args, fragment = CONFIG_MISFITS[case]
    one_line_error(cli("queue", *args), fragment)
    run_fragment = "needs profile embeddings" if case == "con without embeddings" else fragment
    one_line_error(cli("run", *args, "--max-epochs", "1"), run_fragment)
    assert not Path(os.environ["RLMREC_DB"]).exists() or Store().runs() == []  # nothing recorded


def _count_loads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    from rlmrec.data import dataset

    loads: list[Path] = []
    real = dataset.load_splits

    def counting(path: Path) -> Any:
        loads.append(Path(path))
        return real(path)

    monkeypatch.setattr(dataset, "load_splits", counting)
    return loads


def test_each_dataset_is_read_once_then_again_only_when_it_changes(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rlmrec.data import preflight

    monkeypatch.setattr(preflight, "_CHECKED", {})
    loads = _count_loads(monkeypatch)
    write_dataset(root, "one")
    write_dataset(root, "two")
    grid = ["lr=1e-3,2e-3", "topk=5"]
    submission = Submission("lightgcn,gccf", "all", "one,two", n_seeds=50, overrides=grid, data_root=str(root))
    assert len(plan(submission)) == 2 * 3 * 2 * 50 * 2
    assert sorted(p.name for p in loads) == ["one", "two"]  # once per dataset, not per run
    plan(submission)
    assert len(loads) == 2  # unchanged files: remembered
    emb = root / "two" / "usr_emb_np.pkl"
    emb.write_bytes(pickle.dumps(_nan()))
    os.utime(emb, ns=(emb.stat().st_atime_ns, emb.stat().st_mtime_ns + 1_000_000))
    with pytest.raises(RLMRecError, match=r"usr_emb_np\.pkl: non-finite"):
        plan(submission)
    assert [p.name for p in loads[2:]] == ["two"]  # only the dataset that changed is read again


def test_the_demo_is_queued_from_its_folder(tmp_path: Path) -> None:
    """Queueing reads the demo's cached folder like any dataset's, facts as make_demo's."""
    from rlmrec.data import preflight
    from rlmrec.data.demo import make_demo
    from rlmrec.data.layout import check_dataset

    folder = check_dataset("demo", tmp_path, embeddings=True)
    assert preflight.folder_facts(folder, "demo") == preflight.DatasetFacts.of(make_demo().dataset)


def test_all_datasets_means_the_data_roots_or_the_demo_when_it_has_none(root: Path) -> None:
    """A queue over a researcher's datasets does not also train the demo."""
    root.mkdir(parents=True)
    assert {s.dataset for s in plan(Submission("lightgcn", "base", "all", data_root=str(root)))} == {"demo"}
    write_dataset(root, "one")
    one = Submission("lightgcn", "base", "all", overrides=["topk=5"], data_root=str(root))
    assert {s.dataset for s in plan(one)} == {"one"}
