"""``rlmrec embed --base-url``: profile embeddings from an OpenAI-compatible embeddings
endpoint (the paper used OpenAI's ``text-embedding-ada-002``), beside the local
sentence-transformers path of :mod:`rlmrec.data.embed`.

Same texts, same output files and atomic writes as the local path; requests go out in
batches of ``batch_size`` texts, ``concurrency`` at a time, with the retries of
:class:`~rlmrec.profile.client.Server`, and every vector is stored in the dataset's answer
cache as its batch arrives, so a rerun pays only for texts it has not embedded yet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rlmrec.data.embed import Embedded, Progress, profile_texts, write_embeddings
from rlmrec.data.layout import EMB_FILES
from rlmrec.errors import DataError, LLMError
from rlmrec.profile.cache import CACHE_FILE, Cache, request_key
from rlmrec.profile.client import DEFAULT_KEY_ENV, GaveUp, Server

DEFAULT_API_MODEL = "text-embedding-ada-002"
DEFAULT_CONCURRENCY = 4  # requests in flight


def _key(model: str, text: str, dimensions: int | None = None) -> str:
    # The size is part of the question only when asked for: keys made before it stay valid.
    request: dict[str, str | int] = {"model": model, "input": text}
    if dimensions is not None:
        request["dimensions"] = dimensions
    return request_key(request)


async def _embed(
    server: Server, cache: Cache, texts: list[str], *, batch_size: int, concurrency: int, force: bool,
    progress: Progress | None, dimensions: int | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """A vector for each distinct text, from the cache or the server."""
    keys = {t: _key(server.model, t, dimensions) for t in texts}
    found = {} if force else cache.get_vectors(keys.values(), server.model)
    vectors = {t: found[k] for t, k in keys.items() if k in found}
    todo = [t for t in keys if t not in vectors]
    if progress:
        progress(len(vectors), len(keys))
    if not todo:
        return vectors
    await server.check()

    def batches() -> Iterator[list[str]]:
        for start in range(0, len(todo), batch_size):
            yield todo[start : start + batch_size]

    async def work(queue: Iterator[list[str]]) -> None:
        for batch in queue:  # shared by every worker: each batch is sent once
            try:
                rows = await server.embed(batch, dimensions=dimensions)
            except GaveUp as error:
                raise LLMError(f"{server.base_url} (embeddings): {error}") from None
            if dimensions is not None and any(len(r) != dimensions for r in rows):
                raise LLMError(
                    f"{server.base_url} (embeddings): asked for {dimensions} dimensions, got {len(rows[0])}; "
                    "this server or model ignores --dimensions"
                )
            got = {t: np.asarray(r, dtype=np.float32) for t, r in zip(batch, rows, strict=True)}
            cache.put_vectors(server.model, {keys[t]: v for t, v in got.items()})
            vectors.update(got)
            if progress:
                progress(len(vectors), len(keys))

    shared = batches()
    workers = [asyncio.create_task(work(shared)) for _ in range(concurrency)]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return vectors


def _matrix(texts: list[str], vectors: dict[str, np.ndarray], normalize: bool) -> np.ndarray:
    dims = {vectors[t].size for t in texts}
    if len(dims) != 1:
        raise LLMError(f"the server returned embeddings of different sizes ({', '.join(map(str, sorted(dims)))})")
    out: np.ndarray = np.stack([vectors[t] for t in texts]).astype(np.float32)
    if not np.isfinite(out).all():
        raise LLMError("the server returned non-finite embeddings (NaN/inf)")
    if normalize:
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out = (out / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    return out


def embed_folder_api(
    folder: Path,
    *,
    base_url: str,
    model: str = DEFAULT_API_MODEL,
    api_key_env: str = DEFAULT_KEY_ENV,
    batch_size: int = 64,
    concurrency: int = DEFAULT_CONCURRENCY,
    dimensions: int | None = None,
    normalize: bool = True,
    force: bool = False,
    timeout_s: float = 120.0,
    http_retries: int = 6,
    backoff_s: float = 1.0,
    progress: Progress | None = None,
) -> Embedded:
    """Encode the profiles of ``folder`` through the server and write its embedding files."""
    if batch_size < 1 or concurrency < 1 or (dimensions is not None and dimensions < 1):
        raise DataError("--batch-size, --concurrency and --dimensions must be positive")
    folder = Path(folder)
    users, items = profile_texts(folder)
    started = time.perf_counter()

    async def run() -> dict[str, np.ndarray]:
        server = Server(
            base_url, model, api_key_env=api_key_env, timeout_s=timeout_s, http_retries=http_retries,
            backoff_s=backoff_s,
        )  # fmt: skip
        try:
            with Cache(folder / CACHE_FILE) as cache:
                return await _embed(
                    server, cache, users + items, batch_size=batch_size, concurrency=concurrency, force=force,
                    progress=progress, dimensions=dimensions,
                )  # fmt: skip
        finally:
            await server.close()

    vectors = asyncio.run(run())
    seconds = time.perf_counter() - started
    user_emb, item_emb = _matrix(users, vectors, normalize), _matrix(items, vectors, normalize)
    if user_emb.shape[1] != item_emb.shape[1]:
        raise LLMError(f"the server gave {user_emb.shape[1]}-d user and {item_emb.shape[1]}-d item embeddings")
    kept = write_embeddings(folder, dict(zip(EMB_FILES, (user_emb, item_emb), strict=True)))
    return Embedded(len(users), len(items), int(user_emb.shape[1]), model, seconds, kept)
