"""The columnar pipeline against the pre-columnar one (``tests/legacy_pipeline``, the oracle):
the same rows, skipped counts, logged line numbers, errors, sequences and metadata on every
reader test data set, on messy files that send blocks through the line-by-line fallback, and
for every block size."""

from __future__ import annotations

import json
import logging
import random
import re
from pathlib import Path

import legacy_pipeline
import pytest
from legacy_pipeline.dataset import preprocess as old_preprocess
from test_readers import make_rows, review_record, meta_record, write_amazon2023, write_benchmark, write_lcrec, write_recbole

from llada_rec.data.dataset import DataError, preprocess
from llada_rec.data.readers import common, read_source

_LINE_WARNING = re.compile(r"(\S+:\d+: .*); line skipped")


def _read_both(fmt: str, path: Path, caplog) -> tuple:
    """(new raw, old raw, new warnings, old warnings) of one directory."""
    results = []
    for reader in (read_source, legacy_pipeline.read_source):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            raw = reader(fmt, path, show_progress=False)
        results.append((raw, _LINE_WARNING.findall(caplog.text)))
    (new, new_log), (old, old_log) = results
    return new, old, new_log, old_log


def _triples(raw) -> list:
    return list(zip(raw.users, raw.items, raw.timestamps))


def _as_lists(data) -> tuple:
    return data.user_ids, data.item_ids, [list(s) for s in data.sequences], data.item_meta, dict(data.skipped)


def assert_same(fmt: str, path: Path, caplog, kcores=(0, 2, 5)) -> None:
    new, old, new_log, old_log = _read_both(fmt, path, caplog)
    assert _triples(new) == _triples(old)
    # the same lines named, with the same reasons (metadata is read later by the new pipeline)
    assert new_log == [w for w in old_log if "/meta_" not in w]
    for kcore in kcores:
        for repeats in ("first", "keep"):
            try:
                expected = _as_lists(old_preprocess(old, kcore=kcore, repeats=repeats))
            except DataError as err:
                with pytest.raises(DataError, match=re.escape(str(err).split(": ", 1)[1])):
                    preprocess(new, kcore=kcore, repeats=repeats)
                continue
            assert _as_lists(preprocess(new, kcore=kcore, repeats=repeats)) == expected, (kcore, repeats)
    assert new.item_meta == old.item_meta and new.skipped == old.skipped


def _messy_reviews(rng: random.Random, rows: list) -> list[str]:
    """Good review lines with every kind of line the block parser must hand to the
    line-by-line rules, at random places."""
    lines = [json.dumps(review_record(*r)) for r in rows]
    odd = [
        '{"user_id": "U99", "parent_asin": ',  # truncated
        "[1, 2, 3]",  # not an object
        json.dumps({**review_record("U01", "B001", 5), "user_id": 7}),  # integer id: converted
        json.dumps({**review_record("U01", "B002", 5), "user_id": True}),  # bool id: skipped
        json.dumps({**review_record("U02", "B003", 5), "parent_asin": ""}),  # empty id
        json.dumps({**review_record("U02", "B004", 5), "parent_asin": None}),
        json.dumps(review_record("U03", "B005", "1600000000123")),  # time as a string: parsed
        json.dumps(review_record("U03", "B006", "yesterday")),
        json.dumps({**review_record("U03", "B006", 7), "timestamp": True}),
        '{"user_id": "U04", "parent_asin": "B007", "timestamp": 1e999}',  # infinite
        '{"user_id": "U04", "parent_asin": "B007", "timestamp": NaN}',
        '{"user_id": "U05", "user_id": "U06", "parent_asin": "B008", "timestamp": 3}',  # last key wins
        '{"user_id": ["U05"], "parent_asin": "B008", "timestamp": 3}',
        '{"user_id": "U07", "parent_asin": "B009", "timestamp": 4}\r',  # CRLF line end
        "   ",  # blank: ignored, not counted
        "",
    ]
    for line in odd:
        lines.insert(rng.randrange(len(lines) + 1), line)
    return lines


def test_every_reader_data_set_reads_as_before(tmp_path: Path, caplog) -> None:
    rows = make_rows(num_users=40, num_items=25)
    write_amazon2023(tmp_path / "a", "Tools", rows)
    write_amazon2023(tmp_path / "agz", "Tools", rows, gz=True)
    write_benchmark(tmp_path / "b", "Tools", rows)
    write_benchmark(tmp_path / "b0", "Tools", rows, header=False)
    write_lcrec(tmp_path / "l", "Tools", rows)
    write_recbole(tmp_path / "r", "Tools", rows)
    write_recbole(tmp_path / "r0", "Tools", rows, with_time=False)
    for fmt, sub in [("amazon2023", "a"), ("amazon2023", "agz"), ("amazon2023-benchmark", "b"),
                     ("amazon2023-benchmark", "b0"), ("lcrec", "l"), ("recbole", "r"), ("recbole", "r0")]:
        assert_same(fmt, tmp_path / sub, caplog)


@pytest.mark.parametrize("block_bytes", [64, 700, 5_000, None])
def test_messy_reviews_read_as_before_for_any_block_size(tmp_path: Path, caplog, monkeypatch, block_bytes) -> None:
    """Bad lines land in some blocks and not others; the rest of the file stays columnar."""
    monkeypatch.setattr(common, "BLOCK_BYTES", block_bytes or common.BLOCK_BYTES)
    rng = random.Random(5)
    rows = make_rows(num_users=60, num_items=30, seed=3)
    rows += [(u, i, t) for u, i, t in rng.sample(rows, 20)]  # exact duplicates
    rows += [(u, i, t + 7) for u, i, t in rng.sample(rows, 20)]  # repeats
    rows += [(u, "B001", t) for u, _, t in rng.sample(rows, 5)]  # time ties
    write_amazon2023(tmp_path, "Tools", rows)
    (tmp_path / "Tools.jsonl").write_text("\n".join(_messy_reviews(rng, rows)) + "\n")
    with open(tmp_path / "meta_Tools.jsonl", "a") as f:
        f.write('{"parent_asin": "B002", "title": \n')  # malformed, of an item with reviews
        f.write("not json at all\n")  # no parent_asin to find: parsed, bad
        f.write(json.dumps(meta_record("B003", "second copy")) + "\n")
        f.write(json.dumps(meta_record("UNSEEN", "never reviewed")) + "\n")
    assert_same("amazon2023", tmp_path, caplog)


def test_invalid_utf8_and_missing_metadata_as_before(tmp_path: Path, caplog) -> None:
    rows = make_rows(num_users=20, num_items=12, seed=4)
    write_amazon2023(tmp_path, "Tools", rows)
    with open(tmp_path / "Tools.jsonl", "ab") as f:
        f.write(b'{"user_id": "U01\xff", "parent_asin": "B001", "timestamp": 5}\n')
    meta = [line for line in (tmp_path / "meta_Tools.jsonl").read_text().splitlines() if '"B000"' not in line]
    (tmp_path / "meta_Tools.jsonl").write_text("\n".join(meta) + "\n")
    assert_same("amazon2023", tmp_path, caplog)
    data = preprocess(read_source("amazon2023", tmp_path, show_progress=False), kcore=0)
    assert data.skipped["item without metadata (kept, empty text)"] == 1
    assert data.item_meta[data.item_ids.index("B000")] == {}


def test_mostly_bad_file_same_error_at_the_early_check(tmp_path: Path, monkeypatch) -> None:
    """1,200 lines, 700 bad from line 301: refused at the early check (when line 1,000 is read), by
    both, with the same message, whether or not the good lines come as one block."""
    good = [json.dumps(review_record(f"U{i}", "B001", i)) for i in range(500)]
    lines = good[:300] + ["{bad"] * 700 + good[300:]
    (tmp_path / "Tools.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "meta_Tools.jsonl").write_text("")
    messages = []
    for block_bytes in (None, 10_000):
        monkeypatch.setattr(common, "BLOCK_BYTES", block_bytes or common.BLOCK_BYTES)
        for reader in (read_source, legacy_pipeline.read_source):
            with pytest.raises(DataError) as err:
                reader("amazon2023", tmp_path, show_progress=False)
            messages.append(str(err.value))
    assert len(set(messages)) == 1 and "699 of 1000 lines are not valid review JSON (first at line 301" in messages[0]


def test_metadata_is_read_for_surviving_items_only(tmp_path: Path) -> None:
    """After the k-core filter only the items left are parsed, and only the text fields
    asked for are kept; a bad metadata line of a dropped item is no longer counted (the one
    intended difference from the old reader)."""
    rows = make_rows(num_users=30, num_items=40, seed=6)
    write_amazon2023(tmp_path, "Tools", rows)
    raw = read_source("amazon2023", tmp_path, show_progress=False)
    data = preprocess(raw, kcore=4, meta_fields=["title", "categories"])
    dropped = sorted(set(raw.items.to_list()) - set(data.item_ids))
    assert dropped  # some items do not survive
    with open(tmp_path / "meta_Tools.jsonl", "a") as f:
        f.write('{"parent_asin": "%s", "title": \n' % dropped[0])
    raw = read_source("amazon2023", tmp_path, show_progress=False)
    again = preprocess(raw, kcore=4, meta_fields=["title", "categories"])
    assert again.item_meta == data.item_meta and not any("malformed" in k for k in again.skipped)
    assert all(set(m) == {"title", "categories"} for m in again.item_meta)
    old = legacy_pipeline.read_source("amazon2023", tmp_path, show_progress=False)
    assert old.skipped["meta_Tools.jsonl: malformed JSON line"] == 1
    assert [{k: m[k] for k in ("title", "categories")} for m in old_preprocess(old, kcore=4).item_meta] == again.item_meta


def test_empty_after_kcore_same_error(tmp_path: Path) -> None:
    write_amazon2023(tmp_path, "Tools", make_rows(num_users=4, num_items=30))
    messages = []
    for reader, prep in ((read_source, preprocess), (legacy_pipeline.read_source, old_preprocess)):
        with pytest.raises(DataError) as err:
            prep(reader("amazon2023", tmp_path, show_progress=False), kcore=5)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and "no user is left after filtering (kcore=5" in messages[0]


def test_samples_equal_the_tuple_samples(tmp_path: Path) -> None:
    rows = make_rows(num_users=50, num_items=20, seed=8)
    write_amazon2023(tmp_path, "Tools", rows)
    new = preprocess(read_source("amazon2023", tmp_path, show_progress=False), kcore=2)
    old = old_preprocess(legacy_pipeline.read_source("amazon2023", tmp_path, show_progress=False), kcore=2)
    for stage in ("train", "val", "test"):
        for max_history in (1, 3, 20):
            assert list(new.samples(stage, max_history)) == old.samples(stage, max_history)
    assert new.train_items().tolist() == old.train_items().tolist()


def test_progress_bar_for_large_files_reviews_and_metadata(tmp_path: Path, monkeypatch, capsys) -> None:
    """A bar per file read (reviews, then metadata in preprocess) above the size threshold,
    none below it."""
    write_amazon2023(tmp_path, "Tools", make_rows(num_users=30))
    preprocess(read_source("amazon2023", tmp_path, show_progress=True), kcore=0)
    assert "Tools.jsonl" not in capsys.readouterr().err
    monkeypatch.setattr(common, "PROGRESS_MIN_BYTES", 1)
    monkeypatch.setattr(common, "BLOCK_BYTES", 1000)
    preprocess(read_source("amazon2023", tmp_path, show_progress=True), kcore=0)
    err = capsys.readouterr().err
    size = (tmp_path / "Tools.jsonl").stat().st_size
    assert "Tools.jsonl" in err and "meta_Tools.jsonl" in err
    assert f"/{size / 1000:.1f}k" in err  # the bar counts the file's bytes


def _forbid(monkeypatch, module, name: str) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError(f"{name} called on a clean file")

    monkeypatch.setattr(module, name, refuse)


@pytest.mark.parametrize("header", [True, False])
def test_clean_files_never_take_the_line_by_line_path(tmp_path: Path, monkeypatch, header: bool) -> None:
    from llada_rec.data.readers import amazon2023, amazon2023_benchmark

    rows = make_rows(num_users=30)
    write_amazon2023(tmp_path / "a", "Tools", rows)
    write_benchmark(tmp_path / "b", "Tools", rows, header=header)
    expected = {fmt: _triples(legacy_pipeline.read_source(fmt, tmp_path / d, show_progress=False))
                for fmt, d in (("amazon2023", "a"), ("amazon2023-benchmark", "b"))}
    _forbid(monkeypatch, amazon2023, "_parse_lines")
    _forbid(monkeypatch, amazon2023, "_json_records")
    _forbid(monkeypatch, amazon2023_benchmark, "_read_benchmark_csv")
    for fmt, d in (("amazon2023", "a"), ("amazon2023-benchmark", "b")):
        raw = read_source(fmt, tmp_path / d, show_progress=False)
        assert _triples(raw) == expected[fmt]
        preprocess(raw, kcore=2)  # metadata too


@pytest.mark.parametrize("damage", ["wrong columns", "blank line", "empty user", "bad time", "crlf", "time with spaces"])
def test_messy_benchmark_files_read_as_before(tmp_path: Path, caplog, damage: str) -> None:
    write_benchmark(tmp_path, "Tools", make_rows(num_users=25, num_items=12, seed=9))
    lines = (tmp_path / "Tools.train.csv").read_text().splitlines()
    if damage == "wrong columns":
        lines.insert(4, "U01,B001,4.0")
    elif damage == "blank line":
        lines.insert(5, "")
    elif damage == "empty user":
        lines[6] = "," + lines[6].split(",", 1)[1]
    elif damage == "bad time":
        lines.insert(3, "U02,B003,4.0,soon,B001")
    elif damage == "time with spaces":
        lines.insert(3, "U02,B003,4.0, 1600000000999 ,B001")
    text = ("\r\n" if damage == "crlf" else "\n").join(lines) + "\n"
    (tmp_path / "Tools.train.csv").write_text(text, newline="")
    assert_same("amazon2023-benchmark", tmp_path, caplog)
