"""Can jobs on other nodes reach the run store and the artifacts folder?

Judged from here, before anything is submitted: a SQLite file is never shared (its
WAL journal needs every writer on one host, and a local path is not even visible
elsewhere); a PostgreSQL server named ``localhost`` (or a Unix socket) is this host's
only; a folder is shared when the filesystem holding it, per ``/proc/mounts``, is a
network or cluster filesystem (NFS, Lustre, GPFS, BeeGFS, CephFS...). A local disk
(ext4, xfs, tmpfs, overlay) is not. ``--force`` overrides both, for a one-node cluster.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from rlmrec.errors import SlurmError
from rlmrec.store.engine import display_url, sqlite_path

# Filesystem types (the third field of /proc/mounts) that every node of a cluster mounts
# alike; fuse mounts are "fuse.<name>".
SHARED_FS = frozenset(
    {
        "nfs", "nfs4", "lustre", "gpfs", "beegfs", "ceph", "cephfs", "fuse.ceph-fuse", "glusterfs",
        "fuse.glusterfs", "cifs", "smb3", "smbfs", "panfs", "wekafs", "pvfs2", "orangefs", "afs",
        "ocfs2", "gfs2", "fuse.juicefs", "fuse.sshfs", "quobyte", "fuse.quobyte", "vast",
    }
)  # fmt: skip
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", ""})


def filesystem_of(path: Path, mounts: str | None = None) -> tuple[str, str]:
    """``(mount point, filesystem type)`` holding ``path`` (or, if it does not exist yet,
    its nearest existing parent): the longest mount point that prefixes it."""
    if mounts is None:
        mounts = Path("/proc/mounts").read_text()
    target, rest = path.absolute(), Path()
    while not target.exists() and target != target.parent:  # symlinks resolve on the part that exists
        target, rest = target.parent, Path(target.name) / rest
    resolved = str(target.resolve() / rest).rstrip("/") or "/"
    best = ("/", "unknown")
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")  # /proc/mounts escapes spaces
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, fields[2])
    return best


def check_store(url: str) -> None:
    """An error naming why jobs on other nodes could not use the store at ``url``."""
    parsed = make_url(url)
    if sqlite_path(parsed) is not None or parsed.get_backend_name() == "sqlite":
        raise SlurmError(
            f"the run store {display_url(url)} is a SQLite file, which jobs on other nodes cannot share; "
            "use PostgreSQL (--db postgresql://user@host/db), or --force on a one-node cluster"
        )
    host = parsed.host or str(parsed.query.get("host") or "")  # none: libpq's Unix socket
    if host.lower() in _LOCAL_HOSTS or host.startswith("/"):
        raise SlurmError(
            f"the run store {display_url(url)} is on this host only (localhost or a socket); name the "
            "server by a host name the nodes resolve, or --force on a one-node cluster"
        )


def check_artifacts(path: Path, mounts: str | None = None) -> None:
    """An error unless ``path`` is on a filesystem every node mounts."""
    point, kind = filesystem_of(path, mounts)
    if kind.lower() not in SHARED_FS:
        raise SlurmError(
            f"the artifacts folder {path} is on a local '{kind}' filesystem ({point}) the nodes do not share; "
            "point --artifacts (RLMREC_ARTIFACTS) at a shared one (NFS, Lustre, GPFS...), or --force"
        )
