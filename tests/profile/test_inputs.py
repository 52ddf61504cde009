"""What prompts are made of: training data only. Every validation and test review, and a
review the file calls training data whose pair is not in trn_mat, carries a LEAK marker;
item 6 is only ever held out. None of it may reach a prompt: checked on every prompt the
library builds and on every request the server receives."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from profile_fakes import N_ITEMS, N_USERS, TRAIN, held_out_titles, title, write_dataset

from rlmrec.errors import DataError
from rlmrec.profile.inputs import load_inputs
from rlmrec.profile.prompts import item_messages, load_prompts, user_messages


def _inputs(folder: Path, **kw: int):
    settings = {"reviews_per_item": 10, "items_per_user": 10, "seed": 2023, **kw}
    return load_inputs(folder, **settings)


def test_no_held_out_data_in_any_prompt_the_library_builds(dataset: Path) -> None:
    inputs = _inputs(dataset)
    prompts = load_prompts("books")
    names = {i.iid: i.name for i in inputs.items}
    profiles = {i: f"PROFILE-OF-{title(i)}" for i in range(N_ITEMS)}  # held-out items' profiles exist too
    for item in inputs.items:
        text = json.dumps(item_messages(prompts, item, 3000)[0])
        assert "LEAK" not in text
    for user in inputs.users:
        text = json.dumps(user_messages(prompts, user, names, profiles, 3000)[0])
        assert "LEAK" not in text
        assert not any(t in text for t in held_out_titles(user.uid)), user.uid
        trained = {i for u, i in TRAIN if u == user.uid}
        assert {e.iid for e in user.items} == trained  # every training item, and only those
        assert all(f"review by u{user.uid} of i{i}" in text for i in trained if i != 7)


def test_a_review_is_used_only_when_the_file_and_trn_mat_agree(dataset: Path) -> None:
    inputs = _inputs(dataset)
    item3 = [r.text for r in inputs.items[3].reviews]
    assert item3 == ["review by u1 of i3", "review by u4 of i3"]  # not the mislabelled u0 review
    assert inputs.items[6].reviews == []  # only held-out interactions
    assert inputs.items[6].meta["title"] == "HELDOUT-ONLY-6"  # its own metadata is not interaction data
    assert "price" not in inputs.items[1].meta  # nulls dropped


def test_no_held_out_data_in_any_request_the_server_receives(cli, llm, dataset: Path) -> None:
    assert cli("profile", "shop", "--base-url", llm.url, "--model", "fake-model").exit_code == 0
    chats = [r["body"]["messages"] for r in llm.chat_requests()]
    assert len(chats) == N_ITEMS + N_USERS
    assert not any("LEAK" in json.dumps(m) for m in chats)
    user_prompts = [m[1]["content"] for m in chats if "profile of this reader" in m[1]["content"]]
    for user in range(N_USERS):
        trained = {title(i) for u, i in TRAIN if u == user}
        (prompt,) = [p for p in user_prompts if set(re.findall(r'"title": "([^"]+)"', p)) == trained]
        assert not any(t in prompt for t in held_out_titles(user)), user
    assert not any("HELDOUT-ONLY" in p for p in user_prompts)


def test_samples_are_seeded_per_entity(dataset: Path) -> None:
    one = _inputs(dataset, items_per_user=1, reviews_per_item=1)
    assert all(len(u.items) == 1 for u in one.users) and all(len(i.reviews) <= 1 for i in one.items)
    assert one == _inputs(dataset, items_per_user=1, reviews_per_item=1)  # the same every run
    seeds = {tuple(u.items[0].iid for u in _inputs(dataset, items_per_user=1, seed=s).users) for s in range(20)}
    assert len(seeds) > 1  # the seed matters


def test_missing_metadata_says_what_to_run(cli, root: Path, one_line_error) -> None:
    write_dataset(root, meta=False)
    result = cli("profile", "shop", "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    one_line_error(result, "items_meta.jsonl: missing", "rlmrec data build ... --items FILE")


def test_the_cached_demo_is_not_written_to(cli, one_line_error) -> None:
    result = cli("profile", "demo", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--dry-run")
    one_line_error(result, "generated demo in rlmrec's cache", "rlmrec data import")


def test_user_profiles_alone_need_item_profiles(cli, dataset: Path, one_line_error) -> None:
    result = cli("profile", "shop", "--users", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--dry-run")
    one_line_error(result, "itm_prf.pkl: missing", "rlmrec profile shop --items first")


@pytest.mark.parametrize(
    ("fname", "line", "message"),
    [
        ("items_meta.jsonl", "{not json", "items_meta.jsonl:9: not JSON"),
        ("items_meta.jsonl", "[1, 2]", "items_meta.jsonl:9: expected a JSON object, got list"),
        ("items_meta.jsonl", '{"iid": "3"}', "items_meta.jsonl:9: 'iid' must be an integer index"),
        ("items_meta.jsonl", '{"iid": true}', "'iid' must be an integer index"),
        ("items_meta.jsonl", '{"iid": 99}', "'iid' 99 outside 0..7"),
        ("items_meta.jsonl", '{"iid": 2, "title": "again"}', "items_meta.jsonl:9: item 2 appears twice"),
        ("reviews.jsonl", '{"uid": 0, "iid": 0, "split": "dev", "text": "x"}', "'split' must be one of"),
        ("reviews.jsonl", '{"uid": 0, "iid": 0, "split": "train", "text": 5}', "'text' must be a string"),
        ("reviews.jsonl", '{"uid": 0, "iid": 0, "split": "train", "text": "x", "rating": "5"}', "'rating' must be"),
        ("reviews.jsonl", '{"uid": 6, "iid": 0, "split": "train", "text": "x"}', "'uid' 6 outside 0..5"),
    ],
)
def test_bad_lines_are_one_line_errors_naming_file_and_line(dataset: Path, fname: str, line: str, message: str) -> None:
    path = dataset / fname
    lines = path.read_text().splitlines()
    lines.insert(8, line)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as caught:
        _inputs(dataset)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_text_that_is_not_utf8(dataset: Path) -> None:
    (dataset / "reviews.jsonl").write_bytes(b'{"uid": 0, "iid": 0, "split": "train", "text": "\xff"}\n')
    with pytest.raises(DataError, match=r"reviews\.jsonl: not UTF-8"):
        _inputs(dataset)


def test_without_reviews_the_prompts_carry_metadata_only(cli, llm, dataset: Path) -> None:
    (dataset / "reviews.jsonl").unlink()
    result = cli("profile", "shop", "--base-url", llm.url, "--model", "fake-model")
    assert result.exit_code == 0, result.output
    assert "no reviews.jsonl: item prompts carry metadata only" in result.output
    assert '"reviews"' in llm.chat_requests()[0]["body"]["messages"][1]["content"]
