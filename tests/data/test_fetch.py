"""rlmrec data fetch against a local HTTP server serving a fixture archive: full
download, resume after an interrupted transfer (with a Range request), size mismatch,
malicious archives refused with nothing written, and the CLI end to end."""

from __future__ import annotations

import io
import pickle
import socket
import stat
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from rlmrec.data.fetch import archive_path, download, extract, fetch
from rlmrec.errors import DataError


class ArchiveServer:
    """Serves ``payload`` at ``/data.zip`` on 127.0.0.1 with Range support. ``cuts``
    lists, per request in order, how many body bytes to send before dropping the
    connection (None: all); ``ignore_range`` answers 200 to everything."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.cuts: list[int | None] = []
        self.ignore_range = False
        self.errors: list[int] = []  # statuses to answer the first requests with
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append({"path": self.path, **dict(self.headers.items())})
                if self.path == "/moved.zip":  # archive.org redirects to a storage node
                    self.send_response(302)
                    self.send_header("Location", "/data.zip")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path != "/data.zip":
                    self.send_error(404)
                    return
                if server.errors:
                    self.send_error(server.errors.pop(0))
                    return
                data, start = server.payload, 0
                wanted = self.headers.get("Range")
                if wanted and not server.ignore_range:
                    start = int(wanted.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = server.cuts.pop(0) if server.cuts else None
                if cut is None:
                    self.wfile.write(body)
                    return
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # the transfer dies mid-way
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _split(rows: list[int], cols: list[int]) -> bytes:
    import scipy.sparse as sp

    return pickle.dumps(sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(3, 4)))


def _dataset_files(seed: int) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    return {
        "trn_mat.pkl": _split([0, 1, 2, 0], [0, 1, 2, 3]),
        "val_mat.pkl": _split([1], [3]),
        "tst_mat.pkl": _split([2], [0]),
        "usr_emb_np.pkl": pickle.dumps(rng.standard_normal((3, 8)).astype(np.float32)),
        "itm_emb_np.pkl": pickle.dumps(rng.standard_normal((4, 8)).astype(np.float32)),
        "usr_prf.pkl": pickle.dumps({u: {"profile": f"user {u}", "reasoning": "r"} for u in range(3)}),
        "itm_prf.pkl": pickle.dumps({i: {"profile": f"item {i}", "reasoning": "r"} for i in range(4)}),
    }


def build_zip(prefix: str = "data/", extra: list[tuple[zipfile.ZipInfo | str, bytes]] | None = None) -> bytes:
    """An archive shaped like the published one: ``data/amazon``, ``data/yelp``,
    ``data/steam`` (plus a folder that is no dataset), and ``extra`` members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        if prefix:
            zf.writestr(prefix, b"")
        for seed, name in enumerate(("amazon", "yelp", "steam")):
            zf.writestr(f"{prefix}{name}/", b"")
            for fname, data in _dataset_files(seed).items():
                zf.writestr(f"{prefix}{name}/{fname}", data)
        zf.writestr(f"{prefix}mapper/amazon_user.json", b"{}")
        for member, data in extra or []:
            zf.writestr(member, data)
    return buffer.getvalue()


@pytest.fixture
def server() -> Iterator[ArchiveServer]:
    srv = ArchiveServer(build_zip())
    yield srv
    srv.close()


def _installed(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


# ---------------------------------------------------------------- download


def test_download_whole_file(server: ArchiveServer, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    dest = download(server.url, tmp_path / "a.zip", progress=lambda done, total: seen.append((done, total)))
    assert dest.read_bytes() == server.payload
    assert not (tmp_path / "a.zip.part").exists()
    assert seen[-1] == (len(server.payload), len(server.payload))
    assert "Range" not in server.requests[0]


def test_interrupted_download_resumes_on_the_next_run(server: ArchiveServer, tmp_path: Path) -> None:
    size = len(server.payload)
    server.cuts = [size // 3]
    dest = tmp_path / "a.zip"
    with pytest.raises(DataError) as info:
        download(server.url, dest, retries=0)
    msg = str(info.value)
    assert f"stopped at {size // 3:,} of {size:,} bytes" in msg and "run the command again to resume" in msg
    assert "\n" not in msg and not dest.exists()
    part = tmp_path / "a.zip.part"
    assert part.read_bytes() == server.payload[: size // 3]  # kept for the next run

    download(server.url, dest, retries=0)
    assert dest.read_bytes() == server.payload
    assert server.requests[1]["Range"] == f"bytes={size // 3}-"


def test_interrupted_download_resumes_within_one_run(server: ArchiveServer, tmp_path: Path) -> None:
    size = len(server.payload)
    server.cuts = [100, 50]  # two drops, then the rest
    dest = download(server.url, tmp_path / "a.zip", retries=3, backoff=0)
    assert dest.read_bytes() == server.payload
    assert [r.get("Range") for r in server.requests] == [None, "bytes=100-", "bytes=150-"]
    assert size > 150


def test_resume_through_a_redirect_keeps_the_range(server: ArchiveServer, tmp_path: Path) -> None:
    server.cuts = [100]
    dest = download(server.url.replace("data.zip", "moved.zip"), tmp_path / "a.zip", backoff=0)
    assert dest.read_bytes() == server.payload
    assert [(r["path"], r.get("Range")) for r in server.requests] == [
        ("/moved.zip", None),
        ("/data.zip", None),
        ("/moved.zip", "bytes=100-"),
        ("/data.zip", "bytes=100-"),
    ]


def test_each_drop_with_progress_earns_fresh_retries(server: ArchiveServer, tmp_path: Path) -> None:
    server.cuts = [10, 10, 10, 10, 10]  # five drops, each after some progress
    dest = download(server.url, tmp_path / "a.zip", retries=1, backoff=0)
    assert dest.read_bytes() == server.payload and len(server.requests) == 6


def test_server_errors_are_retried_client_errors_are_not(server: ArchiveServer, tmp_path: Path) -> None:
    server.errors = [503, 500]
    dest = download(server.url, tmp_path / "a.zip", retries=2, backoff=0)
    assert dest.read_bytes() == server.payload and len(server.requests) == 3
    server.errors = [503, 503]
    with pytest.raises(DataError, match=r"interrupted at 0 bytes \(HTTP 503"):
        download(server.url, tmp_path / "b.zip", retries=1, backoff=0)
    server.errors = [403]
    with pytest.raises(DataError, match="failed: HTTP 403"):
        download(server.url, tmp_path / "c.zip", retries=5, backoff=0)


def test_server_without_range_support_restarts(server: ArchiveServer, tmp_path: Path) -> None:
    (tmp_path / "a.zip.part").write_bytes(server.payload[:80])
    server.ignore_range = True
    dest = download(server.url, tmp_path / "a.zip")
    assert dest.read_bytes() == server.payload
    assert server.requests[0]["Range"] == "bytes=80-"


def test_complete_part_is_not_downloaded_again(server: ArchiveServer, tmp_path: Path) -> None:
    # The transfer finished but the rename did not happen: the server answers 416.
    (tmp_path / "a.zip.part").write_bytes(server.payload)
    dest = download(server.url, tmp_path / "a.zip")
    assert dest.read_bytes() == server.payload
    assert len(server.requests) == 1
    # With the size known up front, not even a request.
    (tmp_path / "b.zip.part").write_bytes(server.payload)
    download(server.url, tmp_path / "b.zip", expected_size=len(server.payload))
    assert len(server.requests) == 1


def test_size_mismatch_is_refused(server: ArchiveServer, tmp_path: Path) -> None:
    size = len(server.payload)
    with pytest.raises(DataError) as info:
        download(server.url, tmp_path / "a.zip", expected_size=size + 10)
    assert f"has {size:,} bytes, expected {size + 10:,}" in str(info.value)
    assert not (tmp_path / "a.zip").exists() and not (tmp_path / "a.zip.part").exists()


def test_stale_part_larger_than_expected_is_discarded(server: ArchiveServer, tmp_path: Path) -> None:
    (tmp_path / "a.zip.part").write_bytes(b"x" * (len(server.payload) + 5))
    dest = download(server.url, tmp_path / "a.zip", expected_size=len(server.payload))
    assert dest.read_bytes() == server.payload
    assert "Range" not in server.requests[0]


def test_http_error_and_unreachable_server(server: ArchiveServer, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="HTTP 404"):
        download(server.url.replace("data.zip", "nope.zip"), tmp_path / "a.zip")
    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DataError) as info:
        download(f"http://127.0.0.1:{port}/data.zip", tmp_path / "a.zip", retries=1, backoff=0)
    assert "interrupted at 0 bytes" in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------- extraction


def _zip_file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "archive.zip"
    path.write_bytes(data)
    return path


def _symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("member", "why"),
    [
        ("../evil.txt", "'..' in the path"),
        ("data/amazon/../../../evil.txt", "'..' in the path"),
        ("data\\..\\..\\evil.txt", "'..' in the path"),
        ("/tmp/evil.txt", "absolute path"),
        ("C:/evil.txt", "absolute path"),
        (_symlink("data/amazon/usr_prf.pkl.link", "/etc/passwd"), "symbolic link"),
        (_symlink("data/evil", "../../.."), "symbolic link"),
    ],
)
def test_malicious_archive_is_refused_and_nothing_is_written(tmp_path: Path, member: object, why: str) -> None:
    target = "/etc/passwd" if isinstance(member, zipfile.ZipInfo) else b"pwned"
    payload = target.encode() if isinstance(target, str) else target
    archive = _zip_file(tmp_path, build_zip(extra=[(member, payload)]))  # type: ignore[list-item]
    root = tmp_path / "deep" / "data"
    with pytest.raises(DataError) as info:
        extract(archive, root)
    msg = str(info.value)
    assert "unsafe member" in msg and why in msg and "refusing to extract anything" in msg
    assert not root.exists() or _installed(root) == []
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "deep" / "evil.txt").exists()
    assert not Path("/tmp/evil.txt").exists() or Path("/tmp/evil.txt").read_bytes() != b"pwned"


def test_extract_only_the_wanted_dataset(tmp_path: Path) -> None:
    archive = _zip_file(tmp_path, build_zip())
    root = tmp_path / "data"
    results = extract(archive, root, ["amazon"])
    assert [(r.name, r.status) for r in results] == [("amazon", "installed")]
    assert _installed(root) == ["amazon"]  # no staging folder left, no yelp, no mapper
    assert sorted(p.name for p in (root / "amazon").iterdir()) == sorted(_dataset_files(0))
    assert results[0].report is not None and results[0].report.ok


def test_extract_archive_without_data_prefix(tmp_path: Path) -> None:
    archive = _zip_file(tmp_path, build_zip(prefix=""))
    results = extract(archive, tmp_path / "data")
    assert [r.name for r in results] == ["amazon", "steam", "yelp"]
    assert _installed(tmp_path / "data") == ["amazon", "steam", "yelp"]


def test_existing_datasets_are_skipped_unless_forced(tmp_path: Path) -> None:
    archive = _zip_file(tmp_path, build_zip())
    root = tmp_path / "data"
    (root / "amazon").mkdir(parents=True)
    (root / "amazon" / "mine.txt").write_text("keep me")
    results = extract(archive, root, ["amazon", "yelp"])
    assert [(r.name, r.status) for r in results] == [("amazon", "skipped"), ("yelp", "installed")]
    assert (root / "amazon" / "mine.txt").exists()
    results = extract(archive, root, ["amazon"], force=True)
    assert results[0].status == "installed" and not (root / "amazon" / "mine.txt").exists()
    assert _installed(root) == ["amazon", "yelp"]


def test_invalid_dataset_in_archive_is_not_installed(tmp_path: Path) -> None:
    bad = pickle.dumps({"not": "a matrix"})
    archive = _zip_file(tmp_path, build_zip(prefix="", extra=[("broken/trn_mat.pkl", bad)]))
    root = tmp_path / "data"
    results = extract(archive, root)
    status = {r.name: r.status for r in results}
    assert status == {"amazon": "installed", "broken": "invalid", "steam": "installed", "yelp": "installed"}
    assert _installed(root) == ["amazon", "steam", "yelp"]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"this is not a zip file", "not a readable zip archive"),
        (b"", "not a readable zip archive"),
    ],
)
def test_bad_archives(tmp_path: Path, data: bytes, needle: str) -> None:
    with pytest.raises(DataError, match=needle):
        extract(_zip_file(tmp_path, data), tmp_path / "data")


def test_truncated_archive(tmp_path: Path) -> None:
    payload = build_zip()
    with pytest.raises(DataError, match="not a readable zip archive"):
        extract(_zip_file(tmp_path, payload[: len(payload) - 200]), tmp_path / "data")


def test_corrupted_member_is_caught_by_its_checksum(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for fname, data in _dataset_files(0).items():
            zf.writestr(f"amazon/{fname}", data)
    payload = bytearray(buffer.getvalue())
    start = payload.index(b"trn_mat.pkl") + len(b"trn_mat.pkl") + 20  # inside its stored data
    payload[start] ^= 0xFF
    root = tmp_path / "data"
    with pytest.raises(DataError) as info:
        extract(_zip_file(tmp_path, bytes(payload)), root)
    assert "amazon/trn_mat.pkl" in str(info.value) and "damaged" in str(info.value)
    assert _installed(root) == []


def test_unknown_dataset_in_archive(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no dataset 'movies' in the archive \(it has: amazon, steam, yelp\)"):
        extract(_zip_file(tmp_path, build_zip()), tmp_path / "data", ["movies"])


# ---------------------------------------------------------------- fetch


def test_fetch_downloads_once_and_reuses_the_archive(server: ArchiveServer, tmp_path: Path) -> None:
    root = tmp_path / "data"
    first = fetch(["amazon"], root, url=server.url)
    assert first.downloaded and first.kept and first.archive == archive_path(root, server.url)
    assert [d.status for d in first.datasets] == ["installed"]
    second = fetch(["yelp", "steam"], root, url=server.url)
    assert not second.downloaded and len(server.requests) == 1
    assert _installed(root) == [".download", "amazon", "steam", "yelp"]
    third = fetch(None, root, url=server.url, keep_archive=False)
    assert [d.status for d in third.datasets] == ["skipped"] * 3
    assert not third.archive.exists()  # type: ignore[union-attr]


def test_fetch_published_names_are_checked_before_any_download(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown dataset 'amzon': the published archive has amazon, yelp, steam"):
        fetch(["amzon"], tmp_path / "data")
    for name in ("amazon", "yelp", "steam"):
        (tmp_path / "data" / name).mkdir(parents=True)
    done = fetch(None, tmp_path / "data")  # everything is there: no network at all
    assert done.archive is None and [d.status for d in done.datasets] == ["skipped"] * 3


# ---------------------------------------------------------------- CLI


def test_cli_fetch_with_resume(cli, root: Path, server: ArchiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLMREC_DATA_URL", server.url)
    server.cuts = [len(server.payload) // 2]
    result = cli("data", "fetch", "amazon", "--retries", "1")
    assert result.exit_code == 0, result.output
    assert "amazon: installed in" in result.stdout and "3 users x 4 items" in result.stdout
    assert server.requests[1]["Range"] == f"bytes={len(server.payload) // 2}-"
    assert _installed(root) == [".download", "amazon"]
    listing = cli("data", "ls", "--json").stdout
    assert '"name": "amazon"' in listing and '"dim": 8' in listing
    assert cli("data", "validate", "amazon").exit_code == 0


def test_cli_fetch_all_and_skip(cli, root: Path, server: ArchiveServer) -> None:
    result = cli("data", "fetch", "all", "--url", server.url, "--delete-archive")
    assert result.exit_code == 0, result.output
    assert _installed(root) == [".download", "amazon", "steam", "yelp"]
    assert list((root / ".download").iterdir()) == []
    again = cli("data", "fetch", "--url", server.url)
    assert again.exit_code == 0 and again.stdout.count("skipped (--force replaces it)") == 3


def test_cli_fetch_from_a_local_archive(cli, root: Path, tmp_path: Path) -> None:
    archive = _zip_file(tmp_path, build_zip())
    result = cli("data", "fetch", "steam", "--archive", str(archive))
    assert result.exit_code == 0, result.output
    assert _installed(root) == ["steam"]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["movies"], ["no dataset 'movies' in the archive"]),
        (["--size", "12"], ["expected 12", "refusing it"]),
        (["--url", "http://127.0.0.1:1/x.zip", "--retries", "0"], ["interrupted at 0 bytes", "run the command again"]),
        (["amzon", "--url", "https://archive.org/download/rlmrec_data/data.zip"], ["unknown dataset 'amzon'"]),
        (["../x"], ["invalid dataset name"]),
    ],
)
def test_cli_fetch_errors(cli, root: Path, server: ArchiveServer, one_line_error, args: list[str], fragments) -> None:
    one_line_error(cli("data", "fetch", "--url", server.url, *args), *fragments)
    assert [p for p in _installed(root) if p != ".download"] == []


def test_cli_fetch_malicious_archive(cli, root: Path, tmp_path: Path, one_line_error) -> None:
    srv = ArchiveServer(build_zip(extra=[("../../evil.txt", b"pwned")]))
    try:
        one_line_error(cli("data", "fetch", "--url", srv.url), "unsafe member '../../evil.txt'")
    finally:
        srv.close()
    assert [p for p in _installed(root) if p != ".download"] == []
    assert not (tmp_path / "evil.txt").exists() and not (root.parent / "evil.txt").exists()


def test_cli_fetch_reports_an_invalid_dataset(cli, root: Path, tmp_path: Path, one_line_error) -> None:
    archive = _zip_file(tmp_path, build_zip(prefix="", extra=[("broken/trn_mat.pkl", b"garbage")]))
    result = cli("data", "fetch", "--archive", str(archive))
    one_line_error(result, "broken: failed validation")
    assert "FAIL  splits      archive.zip:broken/val_mat.pkl: missing" in result.stdout
    assert _installed(root) == ["amazon", "steam", "yelp"]
