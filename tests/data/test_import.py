"""rlmrec data import: copy or link a folder under the data root, validated first;
existing names are refused unless --force."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _names(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_import_copies(cli, toy, root: Path, tmp_path: Path) -> None:
    source = toy.folder("mine", root=tmp_path / "elsewhere")
    (source / "notes.txt").write_text("extra files come along")
    result = cli("data", "import", str(source), "--name", "books")
    assert result.exit_code == 0, result.output
    assert "books: copied from" in result.stdout
    target = root / "books"
    assert target.is_dir() and not target.is_symlink()
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in source.iterdir())
    assert _names(root) == ["books"]  # no staging folder left
    listing = json.loads(cli("data", "ls", "--json").stdout)
    assert [d["name"] for d in listing] == ["books", "demo"] and listing[0]["users"] == 4  # the demo is always listed
    # A copy: changing the source afterwards does not touch the dataset.
    (source / "trn_mat.pkl").unlink()
    assert cli("data", "validate", "books").exit_code == 0


def test_import_links_and_defaults_the_name(cli, toy, root: Path, tmp_path: Path) -> None:
    source = toy.folder("mine", root=tmp_path / "elsewhere")
    result = cli("data", "import", str(source), "--link")
    assert result.exit_code == 0, result.output
    assert "mine: linked to" in result.stdout
    target = root / "mine"
    assert target.is_symlink() and target.resolve() == source.resolve()
    assert cli("data", "show", "mine", "--user", "1").exit_code == 0


def test_import_refuses_an_invalid_folder_and_writes_nothing(
    cli, toy, root: Path, tmp_path: Path, one_line_error
) -> None:
    # Overlapping splits: the loader would accept it, validation does not.
    source = toy.folder("leaky", root=tmp_path / "elsewhere", tst_mat=toy.split(([0], [0])))
    one_line_error(
        cli("data", "import", str(source)),
        "not imported: 1 (user, item) pair in both train and test",
        f"rlmrec data validate {source} shows all",
    )
    assert _names(root) == []


def test_import_refuses_wrong_format_and_missing_folders(cli, root: Path, tmp_path: Path, one_line_error) -> None:
    csvs = tmp_path / "csvs"
    csvs.mkdir()
    (csvs / "ratings.csv").write_text("u,i\n")
    one_line_error(cli("data", "import", str(csvs)), "not imported:", "trn_mat.pkl: missing")
    one_line_error(cli("data", "import", str(tmp_path / "nope")), "not a folder")
    one_line_error(cli("data", "import", str(csvs), "--name", "../up"), "invalid dataset name")
    assert _names(root) == []


def test_import_refuses_to_overwrite_unless_forced(cli, toy, root: Path, tmp_path: Path, one_line_error) -> None:
    toy.folder("books")
    (root / "books" / "marker").write_text("old")
    source = toy.folder("new", root=tmp_path / "elsewhere", usr_emb_np=np.ones((4, 2)), itm_emb_np=np.ones((5, 2)))
    one_line_error(cli("data", "import", str(source), "--name", "books"), "already exists", "--force")
    assert (root / "books" / "marker").exists()
    result = cli("data", "import", str(source), "--name", "books", "--force")
    assert result.exit_code == 0, result.output
    assert not (root / "books" / "marker").exists() and (root / "books" / "usr_emb_np.pkl").exists()
    assert _names(root) == ["books"]


def test_force_over_a_link_keeps_the_linked_data(cli, toy, root: Path, tmp_path: Path) -> None:
    linked = toy.folder("linked", root=tmp_path / "a")
    other = toy.folder("other", root=tmp_path / "b")
    assert cli("data", "import", str(linked), "--name", "x", "--link").exit_code == 0
    assert cli("data", "import", str(other), "--name", "x", "--force").exit_code == 0
    assert not (root / "x").is_symlink()
    assert (linked / "trn_mat.pkl").exists()  # replacing the link never deletes what it pointed to


def test_import_of_the_dataset_itself_is_refused(cli, toy, root: Path, one_line_error) -> None:
    folder = toy.folder("books")
    one_line_error(cli("data", "import", str(folder), "--name", "books"), "is already the dataset 'books'")
    one_line_error(cli("data", "import", str(root.parent)), "contains the data root")
