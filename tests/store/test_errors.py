"""A store that cannot be used: every command says why on one line of stderr
starting with ``error:``, exits 1, prints no traceback, never shows a password,
and leaves what it could not use untouched."""

from __future__ import annotations

import importlib.util
import os
import random
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from rlmrec.cli.main import app
from typer.testing import CliRunner, Result

from rlmrec.errors import StoreError
from rlmrec.store import RunSpec, Store

# Commands that open the store: reading ones and the writing ones.
READS = {"ls": ["ls"], "show": ["show", "1"], "workers": ["workers"]}
WRITES = {"queue": ["queue", "lightgcn", "base", "demo"], "cancel": ["cancel", "1"]}
COMMANDS = READS | WRITES


def cli(name: str, url: str, tmp_path: Path) -> Result:
    args = [*COMMANDS[name], "--db", url]
    if name == "queue":
        args += ["--data-root", str(tmp_path)]  # demo: no dataset files needed
    return CliRunner().invoke(app, args, env={"RLMREC_DB": None, "RLMREC_ARTIFACTS": None})


def error_line(result: Result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an escaped exception
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def spec() -> RunSpec:
    return RunSpec("lightgcn", "base", "demo", 2023, {"model": "lightgcn", "epochs": 3})


def make_store(path: Path, runs: int = 1) -> None:
    store = Store(f"sqlite:///{path}", path.parent / "art")
    store.add_runs([spec() for _ in range(runs)])
    store.close()


def count(path: Path) -> int:
    store = Store(f"sqlite:///{path}", path.parent / "art")
    try:
        return len(store.runs())
    finally:
        store.close()


# -- URLs that cannot name a store -----------------------------------------------------------


BAD_URLS = {
    "unsupported scheme": ("mysql://u:secret@db.example/runs", ["unsupported database 'mysql'", "mysql://u:***@"]),
    "port not a number": ("postgresql://u:secret@h:port/x", ["bad store URL", "u:***@h:port"]),
    "no scheme": ("://runs", ["bad store URL '://runs'", "sqlite:///runs.db"]),
    "unknown driver": ("postgresql+nosuch://u:secret@h/x", ["unknown driver 'postgresql+nosuch'"]),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(BAD_URLS))
def test_bad_url(tmp_path: Path, case: str, command: str) -> None:
    url, fragments = BAD_URLS[case]
    line = error_line(cli(command, url, tmp_path), *fragments)
    assert "secret" not in line


def test_bad_url_from_the_environment(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["ls"], env={"RLMREC_DB": "mysql://u:secret@db.example/runs"})
    assert "secret" not in error_line(result, "unsupported database 'mysql'")


@pytest.mark.skipif(importlib.util.find_spec("asyncpg") is not None, reason="asyncpg is installed")
def test_missing_driver_names_it(tmp_path: Path) -> None:
    line = error_line(cli("ls", "postgresql+asyncpg://u:secret@h/x", tmp_path), "needs the 'asyncpg' driver")
    assert "pip install asyncpg" in line and "secret" not in line


@pytest.mark.parametrize("command", list(COMMANDS))
def test_sqlite_folder_missing(tmp_path: Path, command: str) -> None:
    url = f"sqlite:///{tmp_path / 'nope' / 'runs.db'}"
    error_line(cli(command, url, tmp_path), f"folder {tmp_path / 'nope'} does not exist")
    assert not (tmp_path / "nope").exists()  # not created behind the user's back


def test_sqlite_path_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "runs.db").mkdir()
    error_line(cli("ls", str(tmp_path / "runs.db"), tmp_path), "cannot open store", "unable to open database file")


# -- read-only ------------------------------------------------------------------------------


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A store with one run, its file 0o444 and its folder 0o555."""
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "runs.db"
    make_store(path)
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        if os.access(path, os.W_OK) or os.access(folder, os.W_OK):
            pytest.skip("chmod does not stop this user from writing (root)")
        yield path
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)


@pytest.mark.parametrize("command", list(WRITES))
def test_read_only_by_permissions(read_only_folder: Path, tmp_path: Path, command: str) -> None:
    error_line(cli(command, f"sqlite:///{read_only_folder}", tmp_path), "read-only")
    assert stat.S_IMODE(read_only_folder.stat().st_mode) == 0o444


def ro_url(path: Path) -> str:
    """SQLite opens the file read-only whoever the user is (root included)."""
    return f"sqlite:///file:{path}?mode=ro&uri=true"


@pytest.mark.parametrize("command", list(WRITES))
def test_read_only_by_uri_refuses_writes(tmp_path: Path, command: str) -> None:
    path = tmp_path / "runs.db"
    make_store(path)
    before = path.read_bytes()
    error_line(cli(command, ro_url(path), tmp_path), "is read-only", "make the file and its folder writable")
    assert count(path) == 1
    assert path.read_bytes() == before


@pytest.mark.parametrize("command", ["ls", "show"])
def test_read_only_by_uri_still_reads(tmp_path: Path, command: str) -> None:
    path = tmp_path / "runs.db"
    make_store(path)
    result = cli(command, ro_url(path), tmp_path)
    assert result.exit_code == 0, result.output
    assert "lightgcn" in result.stdout and "queued" in result.stdout


def test_read_only_store_api_raises_one_line_store_error(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    make_store(path, runs=2)
    store = Store(ro_url(path), tmp_path / "art")
    assert store.artifacts == tmp_path / "art" and [r.id for r in store.runs()] == [1, 2]
    for write in (lambda: store.add_runs([spec()]), lambda: store.cancel([1]), lambda: store.set_priority([2], 5)):
        with pytest.raises(StoreError, match="read-only") as caught:
            write()
        assert "\n" not in str(caught.value) and str(path) in str(caught.value)
    store.close()
    assert count(path) == 2


def test_read_only_uri_default_artifacts_next_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    make_store(path)
    assert Store(ro_url(path)).artifacts == tmp_path / "runs"  # not a folder named "file:..."


def test_read_only_uri_of_a_missing_file(tmp_path: Path) -> None:
    # ls only reads: a missing file is named as such before SQLite is asked to open it
    error_line(cli("ls", ro_url(tmp_path / "none.db"), tmp_path), f"no run store at {tmp_path / 'none.db'}")
    assert not (tmp_path / "none.db").exists()


# -- not a database ---------------------------------------------------------------------------


def _random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(0).randbytes(8192))


def _damaged_pages(path: Path) -> None:
    make_store(path, runs=3)
    data = bytearray(path.read_bytes())
    data[100:] = random.Random(1).randbytes(len(data) - 100)  # a valid header, garbage after it
    path.write_bytes(bytes(data))


CORRUPT = {
    "random bytes": (_random_bytes, "file is not a database"),
    "text": (lambda p: p.write_text("hello, not sqlite\n"), "file is not a database"),
    "damaged pages": (_damaged_pages, "malformed"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_database_is_named_and_left_untouched(tmp_path: Path, case: str, command: str) -> None:
    path = tmp_path / "runs.db"
    write, reason = CORRUPT[case]
    write(path)
    before = path.read_bytes()
    error_line(cli(command, str(path), tmp_path), "is not a readable SQLite database", reason, "move it aside")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("runs")) == ["runs.db"]


# -- PostgreSQL -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", list(COMMANDS))
def test_unreachable_postgresql_hides_the_password(tmp_path: Path, command: str) -> None:
    result = cli(command, "postgresql://u:secret@127.0.0.1:1/x", tmp_path)
    error_line(result, "cannot reach store postgresql://u:***@127.0.0.1:1/x", "is the server running?")
    assert "secret" not in result.output
