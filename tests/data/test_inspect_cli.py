"""rlmrec data ls / show / validate on small hand-made folders, the built-in demo and (read
only, when present) the real Amazon-book splits; every bad input is a one-line error."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

AMAZON = Path(__file__).resolve().parents[3] / "shared" / "data" / "amazon"


# ---------------------------------------------------------------- ls


def test_ls_empty_root_lists_the_demo_and_says_how_to_get_data(cli, root: Path) -> None:
    result = cli("data", "ls")
    assert result.exit_code == 0, result.output
    assert f"no datasets under {root}" in result.stdout and "rlmrec data fetch" in result.stdout
    assert "demo (built in)" in result.stdout and "demo: built in, generated into" in result.stdout
    [demo] = json.loads(cli("data", "ls", "--json").stdout)
    assert demo["name"] == "demo" and demo["builtin"] and demo["error"] is None
    assert (demo["users"], demo["items"]) == (2000, 1600) and demo["embeddings"] == {"present": True, "dim": 256}
    assert Path(demo["path"]).name.startswith("demo-v") and not Path(demo["path"]).is_relative_to(root)


def test_ls_counts_profiles_and_embeddings(cli, toy, root: Path) -> None:
    toy.folder("plain", usr_prf=None, itm_prf=None)
    toy.folder("full", usr_emb_np=np.ones((4, 7)), itm_emb_np=np.ones((5, 7)))
    (root / "notes").mkdir()  # not a dataset: no trn_mat.pkl
    listing = json.loads(cli("data", "ls", "--json").stdout)
    assert [d["name"] for d in listing] == ["full", "plain", "demo"]
    full, plain, demo = listing
    assert demo["builtin"] and not full["builtin"]
    assert (full["users"], full["items"]) == (4, 5)
    assert full["interactions"] == {"train": 5, "valid": 2, "test": 2}
    assert full["density"] == pytest.approx(9 / 20)
    assert full["profiles"] == {"users": True, "items": True}
    assert full["embeddings"] == {"present": True, "dim": 7}
    assert plain["profiles"] == {"users": False, "items": False} and plain["embeddings"]["dim"] is None
    assert full["error"] is None and plain["error"] is None

    table = cli("data", "ls").stdout
    assert "45.000%" in table and "7-d" in table and "users, items" in table
    assert "notes" not in table and f"data root {root}" in table and "demo (built in)" in table


def test_ls_shows_a_broken_dataset_without_failing(cli, toy, root: Path) -> None:
    toy.folder("good")
    bad = toy.folder("bad")
    (bad / "val_mat.pkl").write_bytes(b"not a pickle at all")
    toy.folder("bademb", usr_emb_np=np.ones((3, 2)), itm_emb_np=np.ones((5, 2)))
    result = cli("data", "ls", "--json")
    assert result.exit_code == 0
    by_name = {d["name"]: d for d in json.loads(result.stdout)}
    assert by_name["good"]["error"] is None
    assert "val_mat.pkl" in by_name["bad"]["error"] and "not a readable pickle" in by_name["bad"]["error"]
    assert by_name["bademb"]["users"] == 4 and "3 rows" in by_name["bademb"]["error"]
    table = cli("data", "ls").stdout
    assert "not a readable pickle" in table


def test_ls_real_amazon_read_only(cli) -> None:
    if not AMAZON.is_dir():
        pytest.skip(f"{AMAZON} not present")
    listing = json.loads(cli("data", "ls", "--json", "--data-root", str(AMAZON.parent)).stdout)
    amazon = next(d for d in listing if d["name"] == "amazon")
    assert (amazon["users"], amazon["items"]) == (11000, 9332)
    assert amazon["interactions"] == {"train": 120464, "valid": 40290, "test": 40106}


# ---------------------------------------------------------------- show


def test_show_user_like_read_profile(cli, toy) -> None:
    toy.folder()
    result = cli("data", "show", "toy", "--user", "0")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "User 0's Profile" in out
    assert "PROFILE: user 0 likes topic 0" in out and "REASONING: because of user 0's history" in out
    assert "Training interactions: 2 items (plus 1 validation, 0 test)" in out
    assert "item 0 likes topic 0" in out and "item 4 likes topic 1" in out  # each item with its profile


def test_show_item_json(cli, toy) -> None:
    toy.folder()
    view = json.loads(cli("data", "show", "toy", "--item", "1", "--json").stdout)
    assert view["kind"] == "item" and view["index"] == 1
    assert view["profile"] == "item 1 likes topic 1"
    assert (view["train"], view["valid"], view["test"]) == ([1], [0], [3])
    assert view["train_profiles"] == {"1": "user 1 likes topic 1"}


def test_show_limit_and_missing_profiles(cli, toy) -> None:
    toy.folder(usr_prf=None, itm_prf={0: {"profile": "only item zero"}})
    out = cli("data", "show", "toy", "--user", "0", "--limit", "1").stdout
    assert "no user profiles in this dataset" in out
    assert "only item zero" in out and "1 more (--limit)" in out
    out = cli("data", "show", "toy", "--item", "4").stdout
    assert "no profile for item 4" in out


def test_show_builtin_demo(cli) -> None:
    result = cli("data", "show", "demo", "--user", "3")
    assert result.exit_code == 0, result.output
    assert "PROFILE: " in result.stdout and "REASONING: " in result.stdout and "(demo, 2,000 users)" in result.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["nosuch", "--user", "0"], ["unknown dataset 'nosuch'", "available: toy", "rlmrec data fetch"]),
        (["toy"], ["exactly one of --user N or --item N"]),
        (["toy", "--user", "1", "--item", "1"], ["exactly one of"]),
        (["toy", "--user", "4"], ["user 4 out of range", "4 users (0..3)"]),
        (["toy", "--item", "-1"], ["item -1 out of range"]),
        (["../toy", "--user", "0"], ["not a folder"]),
    ],
)
def test_show_errors(cli, toy, one_line_error, args: list[str], fragments: list[str]) -> None:
    toy.folder()
    one_line_error(cli("data", "show", *args), *fragments)


def test_show_corrupt_profiles_is_one_line(cli, toy, one_line_error) -> None:
    folder = toy.folder()
    (folder / "usr_prf.pkl").write_bytes(pickle.dumps(["not", "a", "dict"]))
    one_line_error(cli("data", "show", "toy", "--user", "0"), "usr_prf.pkl", "expected a dict")


# ---------------------------------------------------------------- validate


def _validate(cli, *args: str) -> tuple[int, dict]:
    result = cli("data", "validate", *args, "--json")
    return result.exit_code, json.loads(result.stdout)


def _levels(report: dict, check: str) -> list[str]:
    return [f["level"] for f in report["findings"] if f["check"] == check]


def test_validate_clean_folder(cli, toy) -> None:
    toy.folder()
    result = cli("data", "validate", "toy")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert "toy: valid" in result.stdout
    assert "4 users x 5 items; train / valid / test 5 / 2 / 2" in result.stdout
    assert "no profile embeddings" in result.stdout  # info, not a failure
    code, report = _validate(cli, "toy")
    assert code == 0 and report["valid"] and report["errors"] == report["warnings"] == 0


def test_validate_accepts_a_path(cli, toy, tmp_path: Path) -> None:
    toy.folder("elsewhere", root=tmp_path / "outside")
    result = cli("data", "validate", str(tmp_path / "outside" / "elsewhere"))
    assert result.exit_code == 0, result.output
    assert "elsewhere: valid" in result.stdout


def test_validate_split_overlap_is_an_error(cli, toy, one_line_error) -> None:
    # (0, 0) is in train and test; (1, 4) in valid and test.
    toy.folder(tst_mat=toy.split(([0, 1, 3], [0, 4, 1])))
    result = cli("data", "validate", "toy")
    one_line_error(result, "toy: 2 errors")
    assert "1 (user, item) pair in both train and test (e.g. user 0, item 0)" in result.stdout
    assert "in both valid and test (e.g. user 1, item 4)" in result.stdout
    code, report = _validate(cli, "toy")
    assert code == 1 and not report["valid"] and _levels(report, "overlap") == ["error", "error"]


def test_validate_duplicates_and_stored_zeros_are_warnings(cli, toy) -> None:
    trn = toy.split(([0, 0, 1, 2, 3, 0, 2], [0, 0, 1, 2, 3, 4, 1]), values=[1, 1, 1, 1, 1, 1, 0])
    toy.folder(trn_mat=trn)
    code, report = _validate(cli, "toy")
    assert code == 0 and report["warnings"] == 2
    messages = [f["message"] for f in report["findings"] if f["check"] == "duplicates"]
    assert messages == [
        "trn_mat.pkl: 1 duplicate (user, item) entry (the loader counts each pair once)",
        "trn_mat.pkl: 1 stored zero (not interactions; dropped)",
    ]


def test_validate_duplicates_in_csr_form(cli, toy) -> None:
    import scipy.sparse as sp

    # A non-canonical CSR matrix: user 0 lists item 0 twice.
    trn = sp.csr_matrix((np.ones(6), np.array([0, 0, 4, 1, 2, 3]), np.array([0, 3, 4, 5, 6])), shape=(4, 5))
    toy.folder(trn_mat=trn)
    code, report = _validate(cli, "toy")
    assert code == 0 and _levels(report, "duplicates") == ["warning"]


def test_validate_users_and_items_without_training(cli, toy) -> None:
    # User 3 and items 3, 4 never appear in training; user 3 has a test row.
    toy.folder(trn_mat=toy.split(([0, 1, 2], [0, 1, 2])), val_mat=toy.split(([0], [3])), tst_mat=toy.split(([3], [4])))
    code, report = _validate(cli, "toy")
    assert code == 0
    messages = [f["message"] for f in report["findings"] if f["check"] == "coverage"]
    assert messages == [
        "1 of 4 users have no training interactions (e.g. 3); 1 of their valid/test rows are still evaluated",
        "2 of 5 items have no training interactions (e.g. 3, 4)",
    ]
    assert cli("data", "validate", "toy", "--strict").exit_code == 1


def test_validate_strict_turns_warnings_into_failure(cli, toy, one_line_error) -> None:
    toy.folder(trn_mat=toy.split(([0, 1, 2], [0, 1, 2])), val_mat=toy.split(([0], [3])), tst_mat=toy.split(([3], [4])))
    one_line_error(cli("data", "validate", "toy", "--strict"), "toy: 2 warning(s) (--strict)")


def test_validate_profile_gaps(cli, toy) -> None:
    usr = toy.profiles(4, "user")
    del usr[2]
    usr[9] = {"profile": "a user this dataset does not have"}
    itm = toy.profiles(5, "item")
    itm[0] = {"profile": "   "}
    toy.folder(usr_prf=usr, itm_prf=itm)
    code, report = _validate(cli, "toy")
    assert code == 1
    profiles = {f["message"]: f["level"] for f in report["findings"] if f["check"] == "profiles"}
    assert profiles == {
        "usr_prf.pkl: 1 index outside 0..3 (e.g. 9); the profiles belong to another id mapping": "error",
        "usr_prf.pkl: no profile for 1 of 4 users (e.g. 2); rlmrec embed needs them all": "warning",
        "itm_prf.pkl: 1 empty profile (e.g. 0)": "warning",
    }


def test_validate_embeddings(cli, toy) -> None:
    usr = np.ones((4, 3))
    usr[1] = 0.0
    toy.folder(usr_emb_np=usr, itm_emb_np=np.ones((5, 3)))
    code, report = _validate(cli, "toy")
    assert code == 0
    assert [f["message"] for f in report["findings"] if f["check"] == "embeddings"] == [
        "usr_emb_np.pkl: 1 all-zero rows (e.g. 1)",
        "users and items, dim 3",
    ]


@pytest.mark.parametrize(
    ("damage", "fragments"),
    [
        ("corrupt", ["trn_mat.pkl", "not a readable pickle"]),
        ("truncated", ["trn_mat.pkl", "not a readable pickle"]),
        ("empty", ["trn_mat.pkl", "not a readable pickle"]),
        ("wrong type", ["trn_mat.pkl", "expected a scipy sparse"]),
        ("code", ["trn_mat.pkl", "refusing to unpickle"]),
    ],
)
def test_validate_bad_split_files(cli, toy, one_line_error, damage: str, fragments: list[str]) -> None:
    folder = toy.folder()
    file = folder / "trn_mat.pkl"
    good = file.read_bytes()
    payload = {
        "corrupt": b"\x80\x04garbage" + good[40:],
        "truncated": good[: len(good) // 2],
        "empty": b"",
        "wrong type": pickle.dumps(np.zeros((4, 5))),
        "code": b"cos\nsystem\n(S'true'\ntR.",  # os.system('true')
    }[damage]
    file.write_bytes(payload)
    result = cli("data", "validate", "toy")
    one_line_error(result, "toy: 1 error")
    for fragment in fragments:
        assert fragment in result.stdout
    # Checks that need the splits are skipped, the rest still run.
    code, report = _validate(cli, "toy")
    assert code == 1 and _levels(report, "splits") == ["error"] and _levels(report, "overlap") == []
    assert _levels(report, "profiles") == ["ok", "ok"]


def test_validate_truncated_embedding(cli, toy) -> None:
    folder = toy.folder(usr_emb_np=np.ones((4, 3)), itm_emb_np=np.ones((5, 3)))
    data = (folder / "itm_emb_np.pkl").read_bytes()
    (folder / "itm_emb_np.pkl").write_bytes(data[:-20])
    code, report = _validate(cli, "toy")
    assert code == 1 and _levels(report, "embeddings") == ["error"] and _levels(report, "overlap") == ["ok"]


def test_validate_wrong_format_folder(cli, root: Path, one_line_error) -> None:
    folder = root / "csvs"
    folder.mkdir(parents=True)
    (folder / "train.csv").write_text("user,item\n0,1\n")
    result = cli("data", "validate", str(folder))
    one_line_error(result, "csvs: 1 error")
    assert "trn_mat.pkl: missing" in result.stdout


def test_validate_unknown_dataset(cli, toy, one_line_error) -> None:
    toy.folder()
    one_line_error(cli("data", "validate", "tyo"), "unknown dataset 'tyo'", "available: toy")
    one_line_error(cli("data", "validate", ".hidden"), "not a folder")


def test_validate_builtin_demo(cli) -> None:
    code, report = _validate(cli, "demo")
    assert code == 0 and report["valid"] and Path(report["path"]).name.startswith("demo-v")
    assert _levels(report, "embeddings") == ["ok"] and _levels(report, "profiles") == ["ok", "ok"]


def test_validate_real_amazon_read_only(cli) -> None:
    if not AMAZON.is_dir():
        pytest.skip(f"{AMAZON} not present")
    before = sorted(p.name for p in AMAZON.iterdir())
    result = cli("data", "validate", str(AMAZON))
    assert result.exit_code == 0, result.output
    assert "amazon: valid" in result.stdout and "11,000 users x 9,332 items" in result.stdout
    assert "train, valid and test are disjoint" in result.stdout
    assert sorted(p.name for p in AMAZON.iterdir()) == before


def test_data_commands_start_without_numpy_or_torch() -> None:
    code = "import sys, rlmrec.cli.main; print(sorted(m for m in ('numpy', 'scipy', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
