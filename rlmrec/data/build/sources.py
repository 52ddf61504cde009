"""Raw input files for ``rlmrec data build``: CSV, TSV, JSON Lines and Parquet, each
optionally gzip-compressed, chosen by extension.

Interaction files can hold tens of millions of rows, so they are read by pyarrow into
columns (never one Python object per row); a counting wrapper around the file reports
the compressed bytes read, which drives the progress bar. Two JSON Lines dialects
exist in the wild: strict JSON (Yelp, Amazon 2018) and Python ``repr`` dicts with single
quotes (Amazon 2014 metadata, the Steam dumps). The second is parsed line by line with
``ast.literal_eval``, which builds literals only and never runs code.
"""

from __future__ import annotations

import ast
import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

from rlmrec.errors import DataError

Format = Literal["csv", "tsv", "jsonl", "parquet"]
# (bytes read so far, file size): compressed bytes for .gz files.
Progress = Callable[[int, int], None]
_EXTENSIONS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# A line longer than this is not a record but a broken or hostile file.
_MAX_LINE = 16 * 1024 * 1024
_LITERAL_CHUNK = 20_000


@dataclass(frozen=True)
class Source:
    path: Path
    format: Format
    gzip: bool
    # Column names of a CSV/TSV file without a header row (its first row is data).
    header: tuple[str, ...] | None = None

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def open_source(path: Path, header: tuple[str, ...] | None = None) -> Source:
    """Check that ``path`` exists and has a known extension (``.csv``, ``.tsv``,
    ``.jsonl``/``.json``/``.ndjson``, ``.parquet``, each optionally ``.gz``).
    ``header`` names the columns of a CSV/TSV file that has no header row."""
    path = Path(path).expanduser().absolute()
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    ext = suffixes[-2] if compressed and len(suffixes) > 1 else (suffixes[-1] if suffixes and not compressed else "")
    fmt = _EXTENSIONS.get(ext)
    if fmt is None:
        known = ", ".join(sorted(_EXTENSIONS))
        raise DataError(f"{path}: unknown file type {ext or '(none)'!r}; use one of {known}, optionally with .gz")
    if fmt == "parquet" and compressed:
        raise DataError(f"{path}: Parquet compresses internally; give the .parquet file, not a .gz of it")
    if header is not None and fmt not in ("csv", "tsv"):
        raise DataError(f"{path}: --columns is for CSV/TSV files without a header row")
    return Source(path, fmt, compressed, header)


class _Counting(io.RawIOBase):
    """A read-only file that reports how many bytes were read through it."""

    def __init__(self, raw: BinaryIO, size: int, progress: Progress | None) -> None:
        self._raw, self._size, self._progress, self.done = raw, size, progress, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        self.done += n or 0
        if self._progress is not None:
            self._progress(self.done, self._size)
        return n or 0


def _byte_stream(source: Source, progress: Progress | None) -> io.BufferedReader:
    raw = _Counting(source.path.open("rb"), source.size, progress)
    stream: BinaryIO = io.BufferedReader(raw, buffer_size=1 << 20)
    if source.gzip:
        stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
    return io.BufferedReader(stream, buffer_size=1 << 20)  # type: ignore[arg-type]


def _first_line(source: Source) -> bytes:
    with _byte_stream(source, None) as stream:
        try:
            for line in iter(lambda: stream.readline(_MAX_LINE), b""):
                if line.strip():
                    return line
        except (OSError, EOFError, zlib.error) as error:
            raise _unreadable(source, error) from None
    raise DataError(f"{source.path}: the file is empty")


def _unreadable(source: Source, error: BaseException) -> DataError:
    what = "gzip data" if source.gzip else source.format.upper()
    return DataError(f"{source.path}: cannot read it as {what} ({error}); check the file and its extension")


def _parse_record(line: bytes, source: Source, number: int) -> dict[str, Any]:
    """One JSON Lines record, strict JSON or a Python dict literal."""
    text = line.decode("utf-8", errors="replace")
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            raise DataError(
                f"{source.path}, line {number}: neither JSON nor a Python dict literal; each line must be one record"
            ) from None
    if not isinstance(value, dict):
        raise DataError(f"{source.path}, line {number}: expected an object per line, found {type(value).__name__}")
    return value


def _is_strict_json(source: Source) -> bool:
    try:
        json.loads(_first_line(source))
    except ValueError:
        return False
    return True


def column_names(source: Source) -> list[str]:
    """The columns (fields of the first record, for JSON Lines) of ``source``."""
    try:
        if source.format == "parquet":
            return list(pq.ParquetFile(source.path).schema_arrow.names)
        if source.format == "jsonl":
            return list(_parse_record(_first_line(source), source, 1))
        with _byte_stream(source, None) as stream:
            reader = pcsv.open_csv(stream, read_options=_csv_read(source), parse_options=_csv_parse(source))
            return list(reader.schema.names)
    except (pa.ArrowException, OSError, EOFError, zlib.error) as error:
        raise _unreadable(source, error) from None


def _csv_parse(source: Source) -> pcsv.ParseOptions:
    return pcsv.ParseOptions(delimiter="\t" if source.format == "tsv" else ",", newlines_in_values=True)


def _csv_read(source: Source) -> pcsv.ReadOptions:
    return pcsv.ReadOptions(column_names=list(source.header) if source.header else None, block_size=8 << 20)


def read_columns(source: Source, types: dict[str, pa.DataType], progress: Progress | None = None) -> pa.Table:
    """The named columns of ``source``, converted to ``types`` (ids to strings,
    ratings to float64; ``pa.null()`` leaves a column's type to the file). A value that
    does not convert is one error naming the file and the column."""
    names = list(types)
    try:
        if source.format == "parquet":
            table = _read_parquet(source, names, progress)
        elif source.format == "jsonl":
            table = _read_jsonl(source, names, progress)
        else:
            # CSV has no types: a column left to the file is read as text.
            fixed = {k: pa.string() if v == pa.null() else v for k, v in types.items()}
            with _byte_stream(source, progress) as stream:
                table = pcsv.read_csv(
                    stream,
                    read_options=_csv_read(source),
                    parse_options=_csv_parse(source),
                    convert_options=pcsv.ConvertOptions(include_columns=names, column_types=fixed),
                )
    except pa.ArrowInvalid as error:
        raise DataError(f"{source.path}: {_arrow_reason(error, types)}") from None
    except (pa.ArrowException, OSError, EOFError, zlib.error) as error:
        raise _unreadable(source, error) from None
    return _convert(source, table, types)


def _arrow_reason(error: Exception, types: dict[str, pa.DataType]) -> str:
    message = str(error).strip().splitlines()[0]
    if "conversion error" in message or "changed from" in message:
        return f"{message}; every value of that column must have the same type (a number for ratings)"
    return message


def _convert(source: Source, table: pa.Table, types: dict[str, pa.DataType]) -> pa.Table:
    columns = []
    for name, wanted in types.items():
        column = table.column(name)
        if wanted != pa.null() and column.type != wanted:
            try:
                column = column.cast(wanted)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                what = "numbers" if pa.types.is_floating(wanted) else str(wanted)
                raise DataError(
                    f"{source.path}: column {name!r} holds values that are not {what} (its type is {column.type})"
                ) from None
        columns.append(column)
    return pa.table(columns, names=list(types))


def _read_parquet(source: Source, names: list[str], progress: Progress | None) -> pa.Table:
    file = pq.ParquetFile(source.path)
    batches = []
    for group in range(file.num_row_groups):
        batches.append(file.read_row_group(group, columns=names))
        if progress is not None:
            progress(int(source.size * (group + 1) / max(file.num_row_groups, 1)), source.size)
    return pa.concat_tables(batches) if batches else file.schema_arrow.empty_table().select(names)


def _read_jsonl(source: Source, names: list[str], progress: Progress | None) -> pa.Table:
    if not _is_strict_json(source):
        return _read_literal_lines(source, names, progress)
    # Types from the first record; pyarrow then parses only these fields, fast, and
    # ignores the rest (nested attributes and the like).
    first = _parse_record(_first_line(source), source, 1)
    schema = pa.schema([(name, _json_type(first.get(name))) for name in names])
    options = pjson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    with _byte_stream(source, progress) as stream:
        return pjson.read_json(stream, parse_options=options, read_options=pjson.ReadOptions(block_size=8 << 20))


def _json_type(value: Any) -> pa.DataType:
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    return pa.string()


def _read_literal_lines(source: Source, names: list[str], progress: Progress | None) -> pa.Table:
    """Python-literal lines, in chunks: the Python objects of one chunk become Arrow
    columns before the next chunk is parsed."""
    chunks: list[pa.Table] = []
    values: dict[str, list[Any]] = {n: [] for n in names}

    def flush() -> None:
        if values[names[0]]:
            chunks.append(pa.table({n: pa.array([_scalar(v) for v in values[n]], pa.string()) for n in names}))
            for n in names:
                values[n].clear()

    for number, record in iter_records(source, progress):
        for n in names:
            values[n].append(record.get(n))
        if number % _LITERAL_CHUNK == 0:
            flush()
    flush()
    if not chunks:
        return pa.table({n: pa.array([], pa.string()) for n in names})
    return pa.concat_tables(chunks)


def _scalar(value: Any) -> str | None:
    """Python-literal fields as text (converted to the wanted type afterwards)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return repr(value)
    return json.dumps(value)


def iter_records(
    source: Source, progress: Progress | None = None, keep: Callable[[bytes], bool] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every record of ``source`` as a dict, with its 1-based line (row) number. For
    JSON Lines, ``keep`` sees the raw line first, so a cheap test (does it mention a
    kept id?) skips parsing most lines of a large metadata dump."""
    if source.format != "jsonl":
        yield from _table_records(source, progress)
        return
    number = 0
    with _byte_stream(source, progress) as stream:
        try:
            for line in iter(lambda: stream.readline(_MAX_LINE + 1), b""):
                number += 1
                if len(line) > _MAX_LINE:
                    raise DataError(f"{source.path}, line {number}: longer than {_MAX_LINE:,} bytes")
                if not line.strip() or (keep is not None and not keep(line)):
                    continue
                yield number, _parse_record(line, source, number)
        except (OSError, EOFError, zlib.error) as error:
            raise _unreadable(source, error) from None


def _table_records(source: Source, progress: Progress | None) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        if source.format == "parquet":
            table = _read_parquet(source, column_names(source), progress)
        else:
            # Every CSV field as text: an id such as 007 must stay 007.
            as_text = pcsv.ConvertOptions(column_types=dict.fromkeys(column_names(source), pa.string()))
            with _byte_stream(source, progress) as stream:
                table = pcsv.read_csv(
                    stream, read_options=_csv_read(source), parse_options=_csv_parse(source), convert_options=as_text
                )
    except (pa.ArrowException, OSError, EOFError, zlib.error) as error:
        raise _unreadable(source, error) from None
    number = 0
    for batch in table.to_batches(max_chunksize=_LITERAL_CHUNK):
        for record in batch.to_pylist():
            number += 1
            yield number, record
