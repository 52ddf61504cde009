"""``rlmrec data fetch``: download the published RLMRec archive, resumably, and extract
its dataset folders safely under the data root.

The archive is ``data.zip`` of the archive.org item ``rlmrec_data`` (475,035,502
bytes), holding ``data/amazon``, ``data/yelp`` and ``data/steam``. The download goes to
``<root>/.download/<name>.part`` and resumes with an HTTP ``Range`` request after an
interruption (retried at once, a few times in a row without progress, or on the next run); only a file of the
expected size is renamed to the final archive, which later fetches reuse.

Extraction trusts nothing in the archive: a member with an absolute path, a ``..``
component, or a type other than file or folder (a symlink, say) refuses
the whole archive before anything is written. Each dataset is extracted into a staging
folder, validated, and renamed into place only when it passes.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import stat
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Literal

from rlmrec.data.layout import (
    PUBLISHED_DATASETS,
    PUBLISHED_SIZE,
    PUBLISHED_URL,
    SPLIT_FILES,
    _check_name,
)
from rlmrec.data.place import occupied, place, staging_dir
from rlmrec.data.validate import Report, validate_folder
from rlmrec.errors import DataError

DOWNLOAD_DIR = ".download"

# (bytes done, bytes expected or None when the server does not say)
Progress = Callable[[int, int | None], None]

_CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")


def archive_path(root: Path, url: str) -> Path:
    """Where the archive from ``url`` is kept: one file per URL, so a mirror never
    passes for the published archive."""
    stem = Path(PurePosixPath(url.split("?")[0]).name or "archive").stem or "archive"
    digest = hashlib.sha256(url.encode()).hexdigest()[:10]
    return root / DOWNLOAD_DIR / f"{stem}-{digest}.zip"


def expected_size_for(url: str, size: int | None) -> int | None:
    """The size to insist on: the one given, the published one for the published URL,
    else whatever the server announces (None here)."""
    if size is not None:
        return size
    return PUBLISHED_SIZE if url == PUBLISHED_URL else None


def download(
    url: str,
    dest: Path,
    *,
    expected_size: int | None = None,
    progress: Progress | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming what an earlier,
    interrupted call left there. Raises a one-line :class:`DataError` on an HTTP error,
    a size mismatch, or an interruption that outlasts ``retries``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    expected = expected_size
    failures = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        if expected is not None and have > expected:
            part.unlink()  # not the file we want (another archive, or a server that changed)
            have = 0
        if expected is not None and have == expected:
            break
        try:
            expected = _fetch_once(url, part, have, expected, progress, timeout)
        except (OSError, http.client.HTTPException, urllib.error.URLError) as error:
            done = part.stat().st_size if part.exists() else 0
            # ``retries`` counts failures in a row: any progress earns a fresh set.
            failures = 1 if done > have else failures + 1
            if failures > retries:
                of = f" of {expected:,}" if expected else ""
                raise DataError(
                    f"download from {url} interrupted at {done:,}{of} bytes ({_reason(error)}); "
                    "run the command again to resume"
                ) from None
            time.sleep(backoff * failures)
            continue
        done = part.stat().st_size
        if expected is None or done == expected:
            break
        # The body ended early without an error (the server closed the connection): resume.
        failures = 1 if done > have else failures + 1
        if failures > retries:
            raise DataError(
                f"download from {url} stopped at {done:,} of {expected:,} bytes; run the command again to resume"
            )
        time.sleep(backoff * failures)
    os.replace(part, dest)
    return dest


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        return str(error.reason)
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _fetch_once(
    url: str, part: Path, have: int, expected: int | None, progress: Progress | None, timeout: float
) -> int | None:
    """One request: append to ``part`` from byte ``have``. Returns the total size as
    now known. Network trouble propagates (the caller retries); size trouble is a
    :class:`DataError` and removes the partial file."""
    headers = {"User-Agent": "rlmrec-data-fetch", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:
            # Nothing left to send from ``have``: complete if it is the full size, else stale.
            match = _UNSATISFIED_RANGE.search(error.headers.get("Content-Range", ""))
            total = int(match.group(1)) if match else None
            if total is not None and total == have and expected in (None, have):
                return have
            part.unlink()
            raise ConnectionResetError("partial download does not match the server's file; restarting") from None
        if error.code >= 500 or error.code == 429:  # the server is busy or failing: worth another try
            raise ConnectionResetError(f"HTTP {error.code} {error.reason}") from None
        raise DataError(f"download from {url} failed: HTTP {error.code} {error.reason}") from None
    with response:
        if response.status == 206:
            match = _CONTENT_RANGE.search(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != have:
                part.unlink()
                raise ConnectionResetError("server resumed at the wrong offset; restarting")
            total = None if match.group(3) == "*" else int(match.group(3))
            mode = "ab"
        else:  # 200: the server ignored the Range header, start over
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            have, mode = 0, "wb"
        if expected is not None and total is not None and total != expected:
            if part.exists():
                part.unlink()
            raise DataError(
                f"download from {url}: the server's file has {total:,} bytes, expected {expected:,}; "
                "refusing it (a different or changed archive; pass --size to accept another size)"
            )
        expected = expected if expected is not None else total
        with part.open(mode) as out:
            if progress:
                progress(have, expected)
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                have += len(chunk)
                if expected is not None and have > expected:
                    out.close()
                    part.unlink()
                    raise DataError(f"download from {url}: more than the expected {expected:,} bytes; refusing it")
                if progress:
                    progress(have, expected)
    return expected


# ---------------------------------------------------------------- extraction


@dataclass(frozen=True)
class Member:
    info: zipfile.ZipInfo
    relative: PurePosixPath  # inside the dataset folder


def _member_path(info: zipfile.ZipInfo) -> PurePosixPath:
    # Archives made on Windows may separate with backslashes; read them as separators
    # so that a "..\\" cannot hide from the checks.
    return PurePosixPath(info.filename.replace("\\", "/"))


def _unsafe(info: zipfile.ZipInfo) -> str | None:
    """Why a member must not be extracted, or None."""
    path = _member_path(info)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", path.as_posix()):
        return "absolute path"
    if ".." in path.parts:
        return "'..' in the path"
    mode = info.external_attr >> 16
    if info.create_system == 3 and mode:  # Unix: the file type is in the high bits
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            return "symbolic link"
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            return "special file"
    return None


def datasets_in(zf: zipfile.ZipFile, archive: Path) -> dict[str, list[Member]]:
    """Dataset folders of an archive (folders holding a ``trn_mat.pkl``, at any depth:
    ``data/amazon`` or ``amazon``) and their files. Checks every member first."""
    for info in zf.infolist():
        why = _unsafe(info)
        if why:
            raise DataError(f"{archive}: unsafe member {info.filename!r} ({why}); refusing to extract anything")
    prefixes: dict[str, PurePosixPath] = {}
    for info in zf.infolist():
        path = _member_path(info)
        if path.name == SPLIT_FILES[0] and len(path.parts) >= 2 and not info.is_dir():
            folder = path.parent
            if folder.name in prefixes and prefixes[folder.name] != folder:
                raise DataError(
                    f"{archive}: two dataset folders named {folder.name!r} ({prefixes[folder.name]}, {folder})"
                )
            prefixes[folder.name] = folder
    found: dict[str, list[Member]] = {name: [] for name in sorted(prefixes)}
    for info in zf.infolist():
        if info.is_dir():
            continue
        path = _member_path(info)
        for name, prefix in prefixes.items():
            if path.is_relative_to(prefix):
                found[name].append(Member(info, path.relative_to(prefix)))
    return found


@dataclass(frozen=True)
class Extracted:
    name: str
    path: Path
    status: Literal["installed", "invalid", "skipped"]  # invalid: failed validation, not put in place
    report: Report | None = None  # None when skipped


def extract(archive: Path, root: Path, names: Iterable[str] | None = None, *, force: bool = False) -> list[Extracted]:
    """Extract the dataset folders ``names`` (all when None) of ``archive`` under
    ``root``, each validated before it is renamed into place. Datasets already there
    are skipped unless ``force``."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(
            f"{archive}: not a readable zip archive ({_reason(error)}); delete it and fetch again"
        ) from None
    with zf:
        found = datasets_in(zf, archive)
        if not found:
            raise DataError(f"{archive}: no dataset folder (a folder with {SPLIT_FILES[0]}) in the archive")
        wanted = list(dict.fromkeys(names)) if names is not None else list(found)
        for name in wanted:
            _check_name(name)
            if name not in found:
                raise DataError(f"{archive}: no dataset {name!r} in the archive (it has: {', '.join(found)})")
        todo = [name for name in wanted if force or not occupied(root / name)]
        need = sum(m.info.file_size for name in todo for m in found[name])
        root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(root).free
        if need > free:
            raise DataError(f"{root}: {need:,} bytes needed to extract, {free:,} free")
        results = {name: Extracted(name, root / name, "skipped") for name in wanted if name not in todo}
        if todo:
            stage = staging_dir(root, "fetch")
            try:
                for name in todo:
                    results[name] = _extract_one(zf, archive, name, found[name], stage, root, force)
            finally:
                shutil.rmtree(stage, ignore_errors=True)
        return [results[name] for name in wanted]


def _extract_one(
    zf: zipfile.ZipFile, archive: Path, name: str, members: list[Member], stage: Path, root: Path, force: bool
) -> Extracted:
    folder = stage / name
    folder.mkdir()
    for member in members:
        out = folder.joinpath(*member.relative.parts)
        # Belt and braces: the member checks above already rule out escapes.
        if not out.resolve().is_relative_to(folder.resolve()):
            raise DataError(f"{archive}: member {member.info.filename!r} escapes the target folder")
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            with zf.open(member.info) as src, out.open("xb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise DataError(
                f"{archive}: cannot extract {member.info.filename!r} ({_reason(error)}); the archive is damaged, "
                "delete it and fetch again"
            ) from None
        os.chmod(out, 0o644)
    report = validate_folder(folder, name)
    if not report.ok:
        # The staging folder is about to vanish: name the files as the archive does.
        where = f"{archive.name}:{members[0].info.filename[: -len(members[0].relative.as_posix())].rstrip('/')}"
        report.findings = [replace(f, message=f.message.replace(str(folder), where)) for f in report.findings]
        report.path = None
        return Extracted(name, root / name, "invalid", report)
    place(folder, root / name, force=force)
    report.path = root / name
    return Extracted(name, root / name, "installed", report)


@dataclass(frozen=True)
class Fetched:
    archive: Path | None  # None: nothing was needed
    downloaded: bool  # False: an archive from an earlier fetch (or --archive) was used
    kept: bool
    datasets: list[Extracted]


def fetch(
    names: list[str] | None,
    root: Path,
    *,
    url: str = PUBLISHED_URL,
    size: int | None = None,
    archive: Path | None = None,
    force: bool = False,
    keep_archive: bool = True,
    progress: Progress | None = None,
    retries: int = 3,
    backoff: float = 1.0,
) -> Fetched:
    """Download (unless ``archive`` is given or an earlier download is complete), then
    extract and validate the datasets ``names`` (all when None)."""
    if names is not None:
        for name in names:
            _check_name(name)
    if archive is not None:
        if not archive.is_file():
            raise DataError(f"{archive}: no such archive")
        return Fetched(archive, False, True, extract(archive, root, names, force=force))
    if url == PUBLISHED_URL:
        unknown = [n for n in names or () if n not in PUBLISHED_DATASETS]
        if unknown:
            raise DataError(
                f"unknown dataset {unknown[0]!r}: the published archive has {', '.join(PUBLISHED_DATASETS)}"
            )
        # Nothing to do when every wanted dataset is there: no 475 MB download.
        wanted = names or list(PUBLISHED_DATASETS)
        if not force and all(occupied(root / n) for n in wanted):
            return Fetched(None, False, True, [Extracted(n, root / n, "skipped") for n in wanted])
    dest = archive_path(root, url)
    expected = expected_size_for(url, size)
    cached = dest.is_file() and (expected is None or dest.stat().st_size == expected)
    if not cached:
        download(url, dest, expected_size=expected, progress=progress, retries=retries, backoff=backoff)
    results = extract(dest, root, names, force=force)
    if not keep_archive:
        dest.unlink()
    return Fetched(dest, not cached, keep_archive, results)
