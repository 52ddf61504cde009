"""rlmrec data build: every input format, reproducibility, the side files, the presets
for the public raw dumps, bad input, and the demo's raw logs end to end."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlmrec.data.build import BuildOptions, build_dataset
from rlmrec.data.dataset import load_splits

FIELDS = ("user_id", "item_id", "rating", "timestamp")


def _rows(seed: int = 0, n: int = 3000) -> list[tuple[str, str, float, int]]:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 120, n)
    items = rng.integers(0, 60, n) ** 2 % 60  # a skewed item popularity
    ratings = rng.integers(1, 6, n)
    times = 1_500_000_000 + rng.integers(0, 10**7, n)
    return [
        (f"u{u:03d}", f"i{i:03d}", float(r), int(t)) for u, i, r, t in zip(users, items, ratings, times, strict=True)
    ]


def _write(path: Path, rows: list[tuple[str, str, float, int]]) -> Path:
    """The same rows in the format the extension names."""
    name = path.name.removesuffix(".gz")
    opener = gzip.open if path.name.endswith(".gz") else open
    if name.endswith(".parquet"):
        columns = list(zip(*rows, strict=True))
        pq.write_table(pa.table({f: list(c) for f, c in zip(FIELDS, columns, strict=True)}), path)
    elif name.endswith((".csv", ".tsv")):
        with opener(path, "wt", newline="") as out:  # type: ignore[operator]
            writer = csv.writer(out, delimiter="\t" if name.endswith(".tsv") else ",")
            writer.writerow(FIELDS)
            writer.writerows(rows)
    else:
        with opener(path, "wt") as out:  # type: ignore[operator]
            for row in rows:
                out.write(json.dumps(dict(zip(FIELDS, row, strict=True))) + "\n")
    return path


def _matrices(folder: Path) -> list[bytes]:
    return [(folder / f).read_bytes() for f in ("trn_mat.pkl", "val_mat.pkl", "tst_mat.pkl")]


OPTIONS = BuildOptions(k_core=3)


@pytest.mark.parametrize("ext", [".tsv", ".jsonl", ".json.gz", ".parquet", ".csv.gz"])
def test_every_format_gives_the_same_dataset(ext: str, tmp_path: Path) -> None:
    rows = _rows()
    reference = build_dataset(_write(tmp_path / "x.csv", rows), "ref", tmp_path / "data", OPTIONS)
    other = build_dataset(_write(tmp_path / f"x{ext}", rows), "other", tmp_path / "data", OPTIONS)
    assert _matrices(other.path) == _matrices(reference.path)
    assert (other.path / "users.jsonl").read_text() == (reference.path / "users.jsonl").read_text()


def test_byte_identical_and_independent_of_row_order(tmp_path: Path) -> None:
    rows = _rows()
    first = build_dataset(_write(tmp_path / "a.csv", rows), "a", tmp_path / "data", OPTIONS)
    again = build_dataset(_write(tmp_path / "a2.csv", rows), "a2", tmp_path / "data", OPTIONS)
    shuffled = [rows[i] for i in np.random.default_rng(3).permutation(len(rows))]
    moved = build_dataset(_write(tmp_path / "b.csv", shuffled), "b", tmp_path / "data", OPTIONS)
    assert _matrices(first.path) == _matrices(again.path)
    # Ids follow the raw ids, so the row order of the log does not matter for them; the
    # random split does depend on it (the seed draws per row), so compare the union.
    union = [sum(load_splits(f.path)).toarray() for f in (first, moved)]
    assert np.array_equal(union[0], union[1])
    other_seed = build_dataset(_write(tmp_path / "c.csv", rows), "c", tmp_path / "data", BuildOptions(k_core=3, seed=7))
    assert _matrices(other_seed.path)[0] != _matrices(first.path)[0]


def test_outputs_match_the_raw_log(tmp_path: Path) -> None:
    rows = _rows()
    source = _write(tmp_path / "log.csv", rows)
    built = build_dataset(source, "log", tmp_path / "data", OPTIONS)
    users = [json.loads(line) for line in (built.path / "users.jsonl").read_text().splitlines()]
    items = [json.loads(line) for line in (built.path / "items.jsonl").read_text().splitlines()]
    assert users[0] == {"uid": 0, "user_id": users[0]["user_id"]} and [u["uid"] for u in users] == list(
        range(len(users))
    )
    assert [u["user_id"] for u in users] == sorted(u["user_id"] for u in users)  # ids in raw-id order
    liked = {(u, i) for u, i, r, _ in rows if r >= 3}
    train, valid, test = load_splits(built.path)
    assert train.shape == (len(users), len(items)) == (built.users, built.items)
    seen = set()
    for matrix in (train, valid, test):
        coo = matrix.tocoo()
        for u, i in zip(coo.row.tolist(), coo.col.tolist(), strict=True):
            pair = (users[u]["user_id"], items[i]["item_id"])
            assert pair in liked and pair not in seen
            seen.add(pair)
    assert (np.asarray(train.sum(axis=1)).ravel() >= 1).all() and (np.asarray(train.sum(axis=0)).ravel() >= 1).all()
    # Every user and item has at least 3 interactions (the core) over the three splits.
    full = train + valid + test
    assert np.asarray(full.sum(axis=1)).min() >= 3 and np.asarray(full.sum(axis=0)).min() >= 3
    manifest = json.loads((built.path / "build.json").read_text())
    assert manifest["sources"][0]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert manifest["parameters"]["k_core"] == 3 and manifest["parameters"]["split"] == [3.0, 1.0, 1.0]
    assert manifest["seed"] == 2023 and manifest["tool"]["name"] == "rlmrec"
    assert [s["step"] for s in manifest["steps"]] == ["read", "rating >= 3", "duplicates removed", "3-core"]
    assert manifest["steps"][0]["rows"] == len(rows)
    assert manifest["splits"] == {"train": train.nnz, "valid": valid.nnz, "test": test.nnz}
    # The published matrices' type: coo_matrix of float64 ones, rows sorted by user.
    matrix = pickle.loads((built.path / "trn_mat.pkl").read_bytes())
    assert type(matrix).__name__ == "coo_matrix" and matrix.dtype == np.float64
    assert np.all(np.diff(matrix.row) >= 0)


def test_time_split_with_date_strings(tmp_path: Path) -> None:
    lines = ["user,item,date"]
    for u in range(4):
        for day in range(1, 6):
            lines.append(f"u{u},i{(u + day) % 5},2020-01-0{day}")
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    options = BuildOptions(k_core=1, split_by="time")
    built = build_dataset(tmp_path / "log.csv", "t", tmp_path / "data", options)
    _, valid, test = (m.tocoo() for m in load_splits(built.path))
    # Each user: days 1-3 train, day 4 valid, day 5 test; item of day d is (u + d) % 5.
    for u in range(4):
        assert sorted(test.col[test.row == u].tolist()) == [(u + 5) % 5]
        assert sorted(valid.col[valid.row == u].tolist()) == [(u + 4) % 5]
    assert built.steps[1].step == "duplicates removed"  # no rating column: no rating step


# ---------------------------------------------------------------- the public dumps


def _amazon(folder: Path) -> tuple[Path, Path]:
    """reviews_Books.json.gz (strict JSON) and meta_Books.json.gz (Python literals)."""
    reviews, meta = folder / "reviews_Books_5.json.gz", folder / "meta_Books.json.gz"
    with gzip.open(reviews, "wt") as out:
        for u in range(6):
            for i in range(5):
                out.write(json.dumps({
                    "reviewerID": f"A{u}X", "asin": f"000{i}", "reviewerName": "x", "helpful": [0, 0],
                    "reviewText": f"review by {u} of book {i}", "overall": 5.0 if (u + i) % 4 else 2.0,
                    "summary": "s", "unixReviewTime": 1400000000 + u * 10 + i, "reviewTime": "05 13, 2014",
                }) + "\n")  # fmt: skip
    with gzip.open(meta, "wt") as out:
        for i in range(7):  # two more books than anyone reviewed
            record = {"asin": f"000{i}", "title": f"Book {i}", "categories": [["Books", "Fiction"]],
                      "salesRank": {"Books": i}, "related": {"also_bought": ["0001"]}}  # fmt: skip
            out.write(repr(record) + "\n")
    return reviews, meta


def _yelp(folder: Path) -> tuple[Path, Path]:
    reviews, business = folder / "yelp_academic_dataset_review.json", folder / "yelp_academic_dataset_business.json"
    with reviews.open("w") as out:
        for u in range(6):
            for i in range(5):
                out.write(json.dumps({
                    "review_id": f"r{u}{i}", "user_id": f"user{u}", "business_id": f"biz{i}",
                    "stars": 4 if (u + i) % 4 else 1, "useful": 0, "text": f"visit {u}-{i}",
                    "date": f"2018-07-0{i + 1} 22:09:11",
                }) + "\n")  # fmt: skip
    with business.open("w") as out:
        for i in range(5):
            out.write(json.dumps({
                "business_id": f"biz{i}", "name": f"Cafe {i}", "city": "Reno", "state": "NV",
                "categories": "Coffee & Tea, Bakeries", "attributes": {"WiFi": "u'free'"}, "hours": None,
            }) + "\n")  # fmt: skip
    return reviews, business


def _steam(folder: Path) -> tuple[Path, Path]:
    reviews, games = folder / "steam_reviews.json.gz", folder / "steam_games.json.gz"
    with gzip.open(reviews, "wt") as out:
        for u in range(6):
            for i in range(5):
                record = {"username": f"gamer {u}", "hours": 1.5, "products": 3, "product_id": str(100 + i),
                          "page_order": 0, "date": f"2017-12-1{i}", "text": f"fun {u}'s take on {i}",
                          "early_access": False, "page": 1}  # fmt: skip
                out.write(repr(record) + "\n")
    with gzip.open(games, "wt") as out:
        for i in range(5):
            out.write(repr({"id": str(100 + i), "app_name": f"Game {i}", "genres": ["Action"], "price": 4.99}) + "\n")
    return reviews, games


def test_amazon_preset(cli, root: Path, tmp_path: Path) -> None:
    reviews, meta = _amazon(tmp_path)
    result = cli("data", "build", str(reviews), "--name", "books", "--preset", "amazon", "--items", str(meta),
                 "--k-core", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    folder = root / "books"
    manifest = json.loads((folder / "build.json").read_text())
    assert manifest["domain"] == "books"
    assert manifest["columns"] == {"user": "reviewerID", "item": "asin", "rating": "overall",
                                   "time": "unixReviewTime", "text": "reviewText"}  # fmt: skip
    assert manifest["steps"][1]["step"] == "rating >= 3" and manifest["steps"][1]["rows"] < 30
    assert (folder / "users.jsonl").read_text().splitlines()[0] == '{"uid": 0, "reviewerID": "A0X"}'
    meta_lines = [json.loads(line) for line in (folder / "items_meta.jsonl").read_text().splitlines()]
    assert [m["iid"] for m in meta_lines] == list(range(5))  # the two unreviewed books are not kept
    assert meta_lines[0] == {"iid": 0, "title": "Book 0", "categories": [["Books", "Fiction"]]}
    review_lines = [json.loads(line) for line in (folder / "reviews.jsonl").read_text().splitlines()]
    assert review_lines and {r["split"] for r in review_lines} <= {"train", "valid", "test"}
    assert all(r["text"].startswith("review by") for r in review_lines)
    assert cli("data", "validate", "books").exit_code == 0


def test_yelp_preset(cli, root: Path, tmp_path: Path) -> None:
    reviews, business = _yelp(tmp_path)
    result = cli("data", "build", str(reviews), "--name", "yelp", "--preset", "yelp", "--items", str(business),
                 "--k-core", "2", "--split-by", "time")  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads((root / "yelp" / "build.json").read_text())
    assert manifest["domain"] == "businesses" and manifest["columns"]["time"] == "date"
    first = json.loads((root / "yelp" / "items_meta.jsonl").read_text().splitlines()[0])
    assert first == {"iid": 0, "name": "Cafe 0", "categories": "Coffee & Tea, Bakeries", "city": "Reno",
                     "state": "NV", "attributes": {"WiFi": "u'free'"}}  # fmt: skip


def test_steam_preset(cli, root: Path, tmp_path: Path) -> None:
    reviews, games = _steam(tmp_path)
    result = cli("data", "build", str(reviews), "--name", "steam", "--preset", "steam", "--items", str(games),
                 "--k-core", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads((root / "steam" / "build.json").read_text())
    # No rating in the Steam dump: no rating filter, every row kept.
    assert manifest["columns"]["rating"] is None and manifest["steps"][-1]["rows"] == 30
    assert manifest["domain"] == "games"
    assert json.loads((root / "steam" / "items.jsonl").read_text().splitlines()[0]) == {"iid": 0, "product_id": "100"}
    meta = json.loads((root / "steam" / "items_meta.jsonl").read_text().splitlines()[0])
    assert meta == {"iid": 0, "app_name": "Game 0", "genres": ["Action"]}
    texts = [json.loads(line)["text"] for line in (root / "steam" / "reviews.jsonl").read_text().splitlines()]
    assert "fun 0's take on 0" in texts  # quotes inside Python literals survive


# ---------------------------------------------------------------- bad input


def _nothing_left(root: Path) -> None:
    assert not root.exists() or not any(root.iterdir()), list(root.iterdir())


def test_bad_input_is_one_line_and_leaves_nothing(cli, root: Path, tmp_path: Path, one_line_error) -> None:
    log = _write(tmp_path / "log.csv", _rows())
    one_line_error(cli("data", "build", str(tmp_path / "nope.csv"), "--name", "x"), "nope.csv", "no such file")
    one_line_error(
        cli("data", "build", str(log), "--name", "x", "--user-col", "customer"),
        "no column 'customer'", "columns present: user_id, item_id, rating, timestamp",
    )  # fmt: skip
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,rating\nu1,i1,5\nu2,i2,great\n")
    one_line_error(cli("data", "build", str(bad), "--name", "x"), "bad.csv", "rating")
    one_line_error(cli("data", "build", str(log), "--name", "x", "--k-core", "500"), "nothing left after 500-core")
    one_line_error(cli("data", "build", str(log), "--name", "x", "--min-rating", "9"), "nothing left after rating >= 9")
    fake = tmp_path / "log.csv.gz"
    fake.write_bytes(b"this is not gzip at all\n" * 10)
    one_line_error(cli("data", "build", str(fake), "--name", "x"), "log.csv.gz", "gzip")
    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(gzip.compress(log.read_bytes())[:2000])
    one_line_error(cli("data", "build", str(truncated), "--name", "x"), "cut.csv.gz")
    one_line_error(cli("data", "build", str(tmp_path / "x.xlsx"), "--name", "x"), "no such file")
    (tmp_path / "x.xlsx").write_text("")
    one_line_error(cli("data", "build", str(tmp_path / "x.xlsx"), "--name", "x"), "unknown file type '.xlsx'")
    one_line_error(cli("data", "build", str(log), "--name", "x", "--split", "3:1"), "--split")
    one_line_error(cli("data", "build", str(log), "--name", "x", "--preset", "netflix"), "unknown preset")
    one_line_error(cli("data", "build", str(log), "--name", "../x"), "invalid dataset name")
    _nothing_left(root)
    # An existing name is refused without --force and kept as it was.
    assert cli("data", "build", str(log), "--name", "x", "--k-core", "3").exit_code == 0
    before = _matrices(root / "x")
    one_line_error(cli("data", "build", str(log), "--name", "x", "--seed", "1"), "already exists", "--force")
    assert _matrices(root / "x") == before
    assert cli("data", "build", str(log), "--name", "x", "--seed", "1", "--force").exit_code == 0
    assert _matrices(root / "x") != before
    assert sorted(p.name for p in root.iterdir()) == ["x"]  # no staging folder left


# ---------------------------------------------------------------- the demo's raw logs


def test_demo_raw_logs_build_validate_and_train(cli, root: Path, tmp_path: Path) -> None:
    from rlmrec.data.demo_raw import write_demo_raw

    raw = write_demo_raw(tmp_path / "raw")
    result = cli("data", "build", str(raw["interactions"]), "--name", "shop", "--items", str(raw["items"]),
                 "--reviews", str(raw["reviews"]), "--k-core", "5", "--domain", "books")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        "rating >= 3" in result.stdout
        and "5-core" in result.stdout
        and "next: rlmrec data validate shop" in result.stdout
    )
    folder = root / "shop"
    # Valid even under --strict: no duplicates, no cold users or items, splits disjoint.
    assert cli("data", "validate", "shop", "--strict").exit_code == 0
    train, valid, test = load_splits(folder)
    split_of = {}
    for label, matrix in zip(("train", "valid", "test"), (train, valid, test), strict=True):
        coo = matrix.tocoo()
        split_of.update({(u, i): label for u, i in zip(coo.row.tolist(), coo.col.tolist(), strict=True)})
    reviews = [json.loads(line) for line in (folder / "reviews.jsonl").read_text().splitlines()]
    assert len(reviews) > 1000
    assert all(split_of[(r["uid"], r["iid"])] == r["split"] for r in reviews)
    assert len((folder / "items_meta.jsonl").read_text().splitlines()) == train.shape[1]
    run = cli(
        "run", "lightgcn", "base", "shop", "--max-epochs", "2", "--no-record", "--json", "--out", str(tmp_path / "r")
    )
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["test"]["recall@20"] > 0


def test_progress_reports_bytes_read(tmp_path: Path) -> None:
    log = _write(tmp_path / "log.csv.gz", _rows(n=20_000))
    seen: dict[str, list[tuple[int, int]]] = {}
    build_dataset(log, "p", tmp_path / "data", OPTIONS, progress=lambda p, d, t: seen.setdefault(p, []).append((d, t)))
    reads = seen["reading interactions"]
    assert all(total == log.stat().st_size for _, total in reads)
    assert [done for done, _ in reads] == sorted(done for done, _ in reads)
    assert reads[-1][0] == log.stat().st_size  # compressed bytes, all of them


def test_headerless_csv_with_named_columns(cli, root: Path, tmp_path: Path, one_line_error) -> None:
    # The Amazon "ratings only" files: user,item,rating,time and no header row.
    rows = _rows()
    log = tmp_path / "ratings_Books.csv"
    log.write_text("".join(f"{u},{i},{r},{t}\n" for u, i, r, t in rows))
    named = _write(tmp_path / "named.csv", rows)
    result = cli("data", "build", str(log), "--name", "plain", "--columns", "user,item,rating,time", "--k-core", "3")
    assert result.exit_code == 0, result.output
    assert cli("data", "build", str(named), "--name", "named", "--k-core", "3").exit_code == 0
    assert _matrices(root / "plain") == _matrices(root / "named")
    assert json.loads((root / "plain" / "build.json").read_text())["steps"][0]["rows"] == len(rows)
    jsonl = _write(tmp_path / "log.jsonl", rows)
    one_line_error(cli("data", "build", str(jsonl), "--name", "j", "--columns", "a,b"), "--columns is for CSV/TSV")
