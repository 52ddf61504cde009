"""The generated batch script, option by option, and the checks of what the nodes
can reach (SQLite, localhost, a local artifacts folder) from a given /proc/mounts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rlmrec.errors import SlurmError
from rlmrec.slurm.script import JobContext, SubmitOptions, grace_of, render, time_limit_s, worker_grace
from rlmrec.slurm.shared import check_artifacts, check_store, filesystem_of

CTX = JobContext("/opt/venv/bin/python", Path("/home/u/proj"), "postgresql+psycopg://u@db/rl", Path("/nfs/runs"), None)


def _directives(script: str) -> list[str]:
    return [line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH ")]


def _exec_line(script: str) -> str:
    [line] = [line for line in script.splitlines() if line.startswith("exec ")]
    return line


def test_defaults_one_cpu_worker_that_inherits_the_environment() -> None:
    script = render(SubmitOptions(), CTX)
    assert script.startswith("#!/bin/bash\n")
    assert _directives(script) == [
        "--job-name=rlmrec-worker", "--array=0-0", "--nodes=1", "--ntasks=1", "--signal=B:TERM@120",
        "--export=ALL", "--chdir=/home/u/proj", "--output=/nfs/runs/slurm/%A_%a.out",
    ]  # fmt: skip
    assert "export RLMREC_DB=postgresql+psycopg://u@db/rl\n" in script
    assert "export RLMREC_ARTIFACTS=/nfs/runs\n" in script and "RLMREC_DATA" not in script
    line = _exec_line(script)
    assert line == "exec /opt/venv/bin/python -m rlmrec worker --until-empty --per-gpu 1 --grace 90 --gpus none"


@pytest.mark.parametrize(
    ("options", "directive"),
    [
        (SubmitOptions(jobs=8), "--array=0-7"),
        (SubmitOptions(gpus_per_job=2), "--gres=gpu:2"),
        (SubmitOptions(partition="gpu-a100"), "--partition=gpu-a100"),
        (SubmitOptions(time="12:00:00"), "--time=12:00:00"),
        (SubmitOptions(mem="32G"), "--mem=32G"),
        (SubmitOptions(cpus_per_task=8), "--cpus-per-task=8"),
        (SubmitOptions(account="lab-42"), "--account=lab-42"),
        (SubmitOptions(qos="high"), "--qos=high"),
        (SubmitOptions(constraint="a100|h100"), "--constraint=a100|h100"),
        (SubmitOptions(grace_s=300), "--signal=B:TERM@300"),
        (SubmitOptions(time="00:10:00"), "--signal=B:TERM@120"),
        (SubmitOptions(time="00:03:00"), "--signal=B:TERM@90"),  # the default grace: at most half the limit
    ],
)
def test_each_option_becomes_its_sbatch_directive(options: SubmitOptions, directive: str) -> None:
    directives = _directives(render(options, CTX))
    assert directive in directives
    option = directive.split("=")[0]
    assert [d for d in directives if d.split("=")[0] == option] == [directive]  # once, not also a default


def test_unset_options_are_left_to_the_cluster() -> None:
    directives = "\n".join(_directives(render(SubmitOptions(), CTX)))
    for option in ("--gres", "--partition", "--time", "--mem", "--cpus-per-task", "--account", "--qos", "--constraint"):
        assert option not in directives


def test_gpu_workers_use_the_gpus_slurm_allocated_with_per_gpu_slots() -> None:
    script = render(SubmitOptions(jobs=8, gpus_per_job=1, per_gpu=2, time="12:00:00"), CTX)
    line = _exec_line(script)
    assert line.endswith('--per-gpu 2 --grace 90 --gpus "$gpus"')
    assert 'gpus="${CUDA_VISIBLE_DEVICES:-}"' in script
    assert "threads=$(( ${SLURM_CPUS_PER_TASK:-1} / 2 ))" in script  # two slots share the job's CPUs


def test_the_script_runs_in_bash_and_passes_slurms_gpus_and_threads_to_the_worker(tmp_path: Path) -> None:
    fake_python = tmp_path / "python"
    fake_python.write_text('#!/bin/sh\necho "RLMREC_THREADS=$RLMREC_THREADS RLMREC_DB=$RLMREC_DB $*"\n')
    fake_python.chmod(0o755)
    ctx = JobContext(str(fake_python), tmp_path, "postgresql+psycopg://u@db/rl", tmp_path / "runs", str(tmp_path))
    script = tmp_path / "job.sh"
    script.write_text(render(SubmitOptions(gpus_per_job=2, per_gpu=2, cpus_per_task=16), ctx))
    env = {"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "2,5", "SLURM_CPUS_PER_TASK": "16"}
    out = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == (
        "RLMREC_THREADS=4 RLMREC_DB=postgresql+psycopg://u@db/rl "
        "-m rlmrec worker --until-empty --per-gpu 2 --grace 90 --gpus 2,5"
    )
    env.pop("CUDA_VISIBLE_DEVICES")  # a cluster that gave no GPU: say so instead of using someone else's
    failed = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert failed.returncode == 1 and "no CUDA_VISIBLE_DEVICES for --gres=gpu:2" in failed.stderr


def test_the_data_root_travels_when_set() -> None:
    ctx = JobContext(CTX.python, CTX.workdir, CTX.store_url, CTX.artifacts, "/nfs/data sets")
    assert "export RLMREC_DATA='/nfs/data sets'\n" in render(SubmitOptions(), ctx)


@pytest.mark.parametrize(
    ("spec", "seconds"),
    [("90", 5400), ("5:30", 330), ("12:00:00", 43200), ("1-2", 93600), ("1-02:03", 93780), ("2-00:00:01", 172801),
     ("unlimited", None)],
)  # fmt: skip
def test_slurm_time_formats(spec: str, seconds: int | None) -> None:
    assert time_limit_s(spec) == seconds


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (SubmitOptions(jobs=0), "--jobs must be >= 1"),
        (SubmitOptions(per_gpu=0), "--per-gpu must be >= 1"),
        (SubmitOptions(gpus_per_job=-1), "--gpus-per-job must be >= 0"),
        (SubmitOptions(cpus_per_task=0), "--cpus-per-task must be >= 1"),
        (SubmitOptions(time="12h"), "bad --time '12h'"),
        (SubmitOptions(mem="lots"), "bad --mem 'lots'"),
        (SubmitOptions(partition="gpu\n#SBATCH --account=theirs"), "bad --partition"),
        (SubmitOptions(account="a b"), "bad --account 'a b'"),
        (SubmitOptions(time="00:01:00", grace_s=60), "--grace 60 leaves no time"),
        (SubmitOptions(grace_s=0), "--grace must be >= 1"),
    ],
)
def test_bad_options_are_refused_with_what_to_do(options: SubmitOptions, fragment: str) -> None:
    with pytest.raises(SlurmError, match=fragment.replace("|", r"\|")):
        render(options, CTX)


def test_the_worker_keeps_part_of_the_grace_to_hand_runs_back() -> None:
    assert [worker_grace(g) for g in (120, 20, 600, 3)] == [90, 14, 570, 0]
    assert grace_of(SubmitOptions(time="1")) == 30


MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
tmpfs /tmp tmpfs rw 0 0
nas:/export/home /home nfs4 rw,vers=4.2 0 0
lustre@o2ib:/scratch /scratch lustre rw 0 0
/dev/vdb /scratch/local ext4 rw 0 0
"""


@pytest.mark.parametrize(
    ("path", "mount", "kind"),
    [
        ("/home/u/runs", "/home", "nfs4"),
        ("/scratch/lab/runs/new/not/yet", "/scratch", "lustre"),
        ("/scratch/local/runs", "/scratch/local", "ext4"),  # the longest mount point wins
        ("/scratchy", "/", "ext4"),  # a prefix of a name is not a parent folder
        ("/tmp/x", "/tmp", "tmpfs"),
    ],
)
def test_the_filesystem_of_a_path_is_that_of_its_longest_mount_point(path: str, mount: str, kind: str) -> None:
    assert filesystem_of(Path(path), MOUNTS) == (mount, kind)


def test_only_a_network_filesystem_counts_as_shared() -> None:
    check_artifacts(Path("/home/u/runs"), MOUNTS)
    check_artifacts(Path("/scratch/lab/runs"), MOUNTS)
    with pytest.raises(SlurmError, match=r"local 'ext4' filesystem \(/scratch/local\).*--force"):
        check_artifacts(Path("/scratch/local/runs"), MOUNTS)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("sqlite:////nfs/runs.db", "is a SQLite file"),
        ("sqlite:///runs.db", "is a SQLite file"),
        ("postgresql+psycopg://u:pw@localhost/rl", "on this host only"),
        ("postgresql://u@127.0.0.1:5432/rl", "on this host only"),
        ("postgresql:///rl", "on this host only"),  # a Unix socket
        ("postgresql://u@/rl?host=/var/run/postgresql", "on this host only"),
    ],
)
def test_stores_the_nodes_cannot_reach_are_refused(url: str, fragment: str) -> None:
    with pytest.raises(SlurmError, match=fragment) as refused:
        check_store(url)
    assert "pw" not in str(refused.value)


def test_a_server_named_by_host_is_reachable() -> None:
    check_store("postgresql+psycopg://u:secret@db.cluster.example:5432/rl")
