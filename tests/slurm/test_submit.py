"""``rlmrec slurm submit`` and ``status`` against stand-in Slurm tools on PATH that
record what they are given: the password never reaches the script, argv or store;
refusals are one line; the job is recorded; squeue's answers are read right."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_checks import Invoke
from typer.testing import Result

from rlmrec.store import Store

SECRET = "s3cr3t-pw"
URL = f"postgresql+psycopg://lab:{SECRET}@db.cluster.example:5432/rlmrec"


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fake sbatch/squeue/scontrol on PATH; each writes its argv, stdin and environment
    under ``calls/``. squeue answers with ``squeue.txt``."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    calls.mkdir()
    replies = {"sbatch": "echo 4242", "squeue": f"cat {tmp_path}/squeue.txt", "scontrol": "exit 1"}
    for name, reply in replies.items():
        tool = bin_dir / name
        record = f'echo "$@" > {calls}/{name}.argv\ncat > {calls}/{name}.stdin\nenv > {calls}/{name}.env'
        tool.write_text(f"#!/bin/sh\n{record}\n{reply}\n")
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return calls


@pytest.fixture
def sqlite_cli(cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """The CLI in a scratch working folder with the suite's private SQLite store."""
    monkeypatch.chdir(tmp_path)
    return cli


def test_dry_run_prints_the_script_and_submits_nothing(sqlite_cli: Invoke, tools: Path) -> None:
    result = sqlite_cli("slurm", "submit", "--jobs", "8", "--gpus-per-job", "1", "--per-gpu", "2", "--time",
                        "12:00:00", "--partition", "gpu", "--dry-run", "--force")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("#!/bin/bash\n#SBATCH --job-name=rlmrec-worker\n#SBATCH --array=0-7\n")
    assert "#SBATCH --gres=gpu:1\n" in result.stdout and "--per-gpu 2" in result.stdout
    assert not (tools / "sbatch.argv").exists()
    assert Store().slurm_jobs() == []


def test_a_sqlite_store_is_refused_in_one_line_unless_forced(
    sqlite_cli: Invoke, tools: Path, one_line_error: Callable[..., str]
) -> None:
    one_line_error(sqlite_cli("slurm", "submit", "--jobs", "2"), "is a SQLite file", "PostgreSQL", "--force")
    assert not (tools / "sbatch.argv").exists()


def test_bad_options_are_refused_in_one_line(sqlite_cli: Invoke, one_line_error: Callable[..., str]) -> None:
    one_line_error(sqlite_cli("slurm", "submit", "--time", "12h", "--force"), "bad --time '12h'", "HH:MM:SS")
    one_line_error(sqlite_cli("slurm", "submit", "--jobs", "0", "--force"), "--jobs must be >= 1")


def test_a_local_artifacts_folder_is_refused_for_a_shared_store(
    cli: Invoke, tmp_path: Path, tools: Path, monkeypatch: pytest.MonkeyPatch, one_line_error: Callable[..., str]
) -> None:
    from rlmrec.slurm import jobs

    monkeypatch.setattr(jobs, "check_store", lambda url: None)  # no server behind URL: only the folder is judged
    from rlmrec.cli import slurm as slurm_cli

    monkeypatch.setattr(slurm_cli, "open_store", lambda db, artifacts=None, **kw: RemoteStore(tmp_path, URL))
    line = one_line_error(cli("slurm", "submit"), "artifacts folder", "do not share", "--force")
    assert SECRET not in line and not (tools / "sbatch.argv").exists()


class RemoteStore(Store):
    """A store whose URL names a remote server (with a password) but whose data lives in
    SQLite: what submit reads of the URL is its text."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        super().__init__(f"sqlite:///{tmp_path / 'remote.db'}", tmp_path / "runs")
        self.url = url


def test_submit_passes_the_password_in_the_environment_only(
    tmp_path: Path, tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlmrec.slurm.jobs import submit
    from rlmrec.slurm.script import SubmitOptions

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RLMREC_DB", URL)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    store = RemoteStore(tmp_path, URL)
    done = submit(store, SubmitOptions(jobs=3, time="1:00:00"), force=True)
    assert done.job == "4242"
    script = (tools / "sbatch.stdin").read_text()
    assert script == done.script and "#SBATCH --array=0-2" in script
    assert "export RLMREC_DB=postgresql+psycopg://lab@db.cluster.example:5432/rlmrec\n" in script
    assert SECRET not in script
    assert SECRET not in (tools / "sbatch.argv").read_text()
    env = dict(line.split("=", 1) for line in (tools / "sbatch.env").read_text().splitlines() if "=" in line)
    assert env["PGPASSWORD"] == SECRET and "RLMREC_DB" not in env  # --export=ALL hands it to the jobs
    [job] = store.slurm_jobs()
    assert (job.job_id, job.tasks, job.script) == ("4242", 3, script)
    assert SECRET not in json.dumps(job.options) and job.options["time"] == "1:00:00"
    assert (tmp_path / "runs" / "slurm").is_dir()  # Slurm writes the jobs' output there but never creates it


def _status(cli: Invoke) -> list[dict[str, object]]:
    result: Result = cli("slurm", "status", "--json")
    assert result.exit_code == 0, result.output
    out: list[dict[str, object]] = json.loads(result.stdout)
    return out


def test_status_reads_each_task_from_squeue_with_its_worker_and_runs(
    sqlite_cli: Invoke, tools: Path, tmp_path: Path
) -> None:
    store = Store()
    store.add_slurm_job("4242", tasks=4, host="login", options={}, script="")
    store.register_worker("node7:99:0", "node7", 99, ["cpu"], slurm=("4242", 1))
    (tmp_path / "squeue.txt").write_text(
        "4242_0|RUNNING|1:02|node3\n4242_1|RUNNING|1:02|node7\n4242_[2-3]|PENDING|0:00|\n"
    )
    [job] = _status(sqlite_cli)
    tasks = job["tasks"]
    assert isinstance(tasks, list)
    assert [(t["task"], t["state"], t["nodes"], t["worker"]) for t in tasks] == [
        (None, "PENDING", "", None), (0, "RUNNING", "node3", None), (1, "RUNNING", "node7", "node7:99:0"),
    ]  # fmt: skip
    assert "--jobs=4242" in (tools / "squeue.argv").read_text()
    (tmp_path / "squeue.txt").write_text("")  # gone from the queue, scontrol and sacct know nothing more
    assert [t["state"] for t in _status(sqlite_cli)[0]["tasks"]] == ["GONE"]  # type: ignore[index]


def test_status_and_cancel_refuse_jobs_of_other_stores(
    sqlite_cli: Invoke, tools: Path, one_line_error: Callable[..., str]
) -> None:
    Store().add_slurm_job("4242", tasks=1, host="login", options={}, script="")
    one_line_error(sqlite_cli("slurm", "status", "999"), "job 999 was not submitted with this store")
    one_line_error(sqlite_cli("slurm", "cancel", "999_1"), "job 999 was not submitted with this store")
    one_line_error(sqlite_cli("slurm", "cancel", "4242_x"), "bad Slurm job '4242_x'")
