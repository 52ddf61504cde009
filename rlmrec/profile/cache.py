"""The answer cache: one SQLite file in the dataset folder that stores every answer as it
arrives, so nothing is paid for twice. An interrupted or crashed run, run again, finds
what was answered and asks only for the rest.

Rows are keyed by the SHA-256 of the whole request (messages, model, sampling settings)
and the model: a changed prompt, template or setting is a new question. Profile answers
keep the raw text, the parsed fields, tokens, attempts, status (``ok``/``failed``) and
the last error; a failed row is asked again on the next run. Embeddings (``rlmrec embed
--base-url``) live in a second table. No key or header is ever stored.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rlmrec.errors import DataError

CACHE_FILE = "llm_cache.sqlite"
Status = Literal["ok", "failed"]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT NOT NULL, model TEXT NOT NULL, kind TEXT NOT NULL, entity INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')), request TEXT NOT NULL,
    raw TEXT, profile TEXT, reasoning TEXT, tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL,
    attempts INTEGER NOT NULL, error TEXT, created REAL NOT NULL, PRIMARY KEY (key, model));
CREATE TABLE IF NOT EXISTS embeddings (
    key TEXT NOT NULL, model TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL,
    created REAL NOT NULL, PRIMARY KEY (key, model));
"""


def request_key(payload: dict[str, Any]) -> str:
    """SHA-256 of a canonical JSON form of a request."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Answer:
    """One stored answer: ``profile``/``reasoning`` when ``status`` is ok, ``error`` when not."""

    status: Status
    profile: str | None
    reasoning: str | None
    raw: str | None
    tokens_in: int
    tokens_out: int
    attempts: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Cache:
    """The cache file of one dataset folder. ``readonly`` (dry runs) never creates or
    writes the file: a missing one reads as empty."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        try:
            if readonly and not self.path.exists():
                self._db = sqlite3.connect(":memory:")
            elif readonly:
                self._db = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro", uri=True)
            else:
                self._db = sqlite3.connect(self.path, timeout=30)
                # WAL: a reader (a dry run, another process) never blocks the run that writes.
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            if not readonly or not self.path.exists():
                self._db.executescript(_SCHEMA)
            self._db.execute("SELECT count(*) FROM answers").fetchone()
        except sqlite3.Error as error:
            raise DataError(f"{self.path}: not a usable answer cache ({error}); move it away to start afresh") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ profiles

    def get(self, key: str, model: str) -> Answer | None:
        row = self._db.execute(
            "SELECT status, profile, reasoning, raw, tokens_in, tokens_out, attempts, error "
            "FROM answers WHERE key = ? AND model = ?",
            (key, model),
        ).fetchone()
        return Answer(*row) if row else None

    def put(self, key: str, model: str, kind: str, entity: int, request: dict[str, Any], answer: Answer) -> None:
        """Store (or replace) one answer, committed at once: a crash loses nothing answered."""
        self._db.execute(
            "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key, model, kind, entity, answer.status, json.dumps(request, ensure_ascii=False),
                answer.raw, answer.profile, answer.reasoning, answer.tokens_in, answer.tokens_out,
                answer.attempts, answer.error, time.time(),
            ),
        )  # fmt: skip
        self._db.commit()

    def counts(self) -> dict[str, int]:
        """Stored answers by status (for messages and tests)."""
        rows = self._db.execute("SELECT status, count(*) FROM answers GROUP BY status").fetchall()
        return {status: n for status, n in rows}

    # ------------------------------------------------------------------ embeddings

    def get_vectors(self, keys: Iterable[str], model: str) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        wanted = list(keys)
        for start in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, blob in self._db.execute(
                f"SELECT key, vector FROM embeddings WHERE model = ? AND key IN ({marks})", (model, *chunk)
            ):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_vectors(self, model: str, vectors: dict[str, np.ndarray]) -> None:
        now = time.time()
        self._db.executemany(
            "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)",
            [(k, model, v.size, np.asarray(v, dtype=np.float32).tobytes(), now) for k, v in vectors.items()],
        )
        self._db.commit()
