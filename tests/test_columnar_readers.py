"""The columnar LC-Rec and RecBole readers against the pre-columnar ones
(``tests/legacy_pipeline``, the oracle): the same rows, skipped counts, logged line numbers,
errors, sequences and metadata on clean and messy files, and clean files never take the
line-by-line path."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Optional

import legacy_pipeline
import pytest
from test_columnar_pipeline import _triples, assert_same
from test_readers import make_rows, titles, write_lcrec, write_recbole

from llada_rec.data.dataset import DataError
from llada_rec.data.readers import common, lcrec, read_source, recbole


def _same_error(fmt: str, path: Path) -> str:
    """Both readers raise; the same message (returned)."""
    messages = []
    for reader in (read_source, legacy_pipeline.read_source):
        with pytest.raises(DataError) as err:
            reader(fmt, path, show_progress=False)
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    return messages[0]


def _same_outcome(fmt: str, path: Path, caplog) -> Optional[str]:
    """Both readers fail with the same message (returned), or both read the same data (None)."""
    try:
        legacy_pipeline.read_source(fmt, path, show_progress=False)
    except DataError:
        return _same_error(fmt, path)
    assert_same(fmt, path, caplog, kcores=(0,))
    return None


def _forbid(monkeypatch, module, name: str) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError(f"{name} called on a clean file")

    monkeypatch.setattr(module, name, refuse)


# ----------------------------------------------------------------------------- LC-Rec


def _lcrec_dir(path: Path, sequences: dict, items: dict | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "S.inter.json").write_text(json.dumps(sequences))
    flat = {str(i) for s in sequences.values() if isinstance(s, list) for i in s}
    (path / "S.item.json").write_text(json.dumps(items if items is not None else {i: {"title": f"t {i}"} for i in sorted(flat)}))
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_lcrec_clean_and_odd_documents_read_as_before(tmp_path: Path, caplog, gz: bool) -> None:
    """Empty lists, one-item users, repeats, unicode ids, ids that are integers (converted)."""
    rng = random.Random(1)
    sequences = {f"u{n}": [f"i{rng.randrange(30)}" for _ in range(rng.randrange(0, 12))] for n in range(60)}
    sequences.update({"é-user": ["ü-item", "i1", "ü-item"], "lonely": ["i2"], "none": []})
    _lcrec_dir(tmp_path / "s", sequences)
    with_ints = {**sequences, "nums": [7, "i3", 12, 7]}
    _lcrec_dir(tmp_path / "i", with_ints, {**{f"i{n}": {"title": "x"} for n in range(30)}, "7": {"title": 7}, "99": {}})
    if gz:
        for d in ("s", "i"):
            p = tmp_path / d / "S.inter.json"
            p.with_name("S.inter.json.gz").write_bytes(gzip.compress(p.read_bytes()))
            p.unlink()
    for d in ("s", "i"):
        assert_same("lcrec", tmp_path / d, caplog)
    raw = read_source("lcrec", tmp_path / "i", show_progress=False)
    assert raw.items.to_list()[-4:] == ["7", "i3", "12", "7"] and raw.timestamps.to_list()[-4:] == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize("bad", [True, "", None, 1.5, ["x"], {"x": 1}])
def test_lcrec_bad_item_ids_same_error(tmp_path: Path, bad) -> None:
    _lcrec_dir(tmp_path, {"a": ["i1", "i2"], "b": ["i1", bad, "i3"]}, {})
    assert "user 'b', position 1: item" in _same_error("lcrec", tmp_path)


@pytest.mark.parametrize("sequence", ["i1 i2", {"i1": 1}, 3, None])
def test_lcrec_sequence_not_a_list_same_error(tmp_path: Path, sequence) -> None:
    """A string (which polars would take as a list of characters) or an object is an error."""
    _lcrec_dir(tmp_path, {"a": ["i1"], "b": sequence}, {})
    assert "user 'b': expected a list of items" in _same_error("lcrec", tmp_path)


def test_lcrec_item_record_not_an_object_same_error(tmp_path: Path) -> None:
    _lcrec_dir(tmp_path, {"a": ["i1", "i2"]}, {"i1": {"title": "x"}, "i9": "just text"})
    assert "item 'i9': expected an object" in _same_error("lcrec", tmp_path)


@pytest.mark.parametrize("ids", ["strings", "integers"])
def test_lcrec_clean_document_is_read_as_columns(tmp_path: Path, monkeypatch, ids: str) -> None:
    """String ids, or integer ids (as the LC-Rec copies have them: converted to text)."""
    if ids == "strings":
        write_lcrec(tmp_path, "Tools", make_rows(num_users=30))
    else:
        rng = random.Random(4)
        _lcrec_dir(tmp_path, {str(u): rng.sample(range(-3, 40), rng.randrange(0, 9)) + [2**63 - 1] for u in range(30)})
    expected = _triples(legacy_pipeline.read_source("lcrec", tmp_path, show_progress=False))
    _forbid(monkeypatch, lcrec, "_interaction_rows")
    assert _triples(read_source("lcrec", tmp_path, show_progress=False)) == expected


def test_lcrec_integer_ids_with_true_false_in_the_text_as_before(tmp_path: Path, caplog) -> None:
    """A user called "true" sends integer ids item by item (polars would read true as 1): the
    same rows; a real true among them is the same error."""
    _lcrec_dir(tmp_path / "a", {"true": [1, 2, 3], "false": [3, 2, 2**70]})
    assert_same("lcrec", tmp_path / "a", caplog)
    _lcrec_dir(tmp_path / "b", {"u": [1, 2, 3], "v": [3, True]}, {})
    assert "user 'v', position 1: item True" in _same_error("lcrec", tmp_path / "b")


# ----------------------------------------------------------------------------- RecBole


def _recbole_damage(lines: list[str], damage: str) -> str:
    """The lines of a RecBole interactions file (header first) with one kind of damage."""
    lines = list(lines)
    width = lines[1].count("\t") + 1
    edits = {
        "more columns": lambda: lines.insert(4, lines[4] + "\textra"),
        "fewer columns": lambda: lines.insert(5, lines[5].rsplit("\t", 1)[0]),
        "blank line": lambda: lines.insert(3, ""),
        "whitespace line": lambda: lines.insert(6, " \t" * (width - 1) + " "),
        "empty user": lambda: lines.insert(2, "\t" + lines[2].split("\t", 1)[1]),
        "empty item": lambda: lines.insert(7, lines[7].split("\t", 1)[0] + "\t" + "\t".join(lines[7].split("\t")[2:]) if width > 2 else lines[7].split("\t")[0] + "\t"),
        "crlf": lambda: None,
        "lone cr": lambda: lines.__setitem__(3, lines[3] + "\r" + lines[4]),
    }
    edits[damage]()
    return ("\r\n" if damage == "crlf" else "\n").join(lines) + "\n"


_DAMAGES = ["more columns", "fewer columns", "blank line", "whitespace line", "empty user", "empty item", "crlf", "lone cr"]


@pytest.mark.parametrize("with_time", [True, False])
@pytest.mark.parametrize("damage", _DAMAGES)
def test_messy_recbole_interactions_read_as_before(tmp_path: Path, caplog, damage: str, with_time: bool) -> None:
    """Without a time column the row number is the time: a skipped row still counts."""
    write_recbole(tmp_path, "Tools", make_rows(num_users=25, num_items=12, seed=9), with_time=with_time)
    lines = (tmp_path / "Tools.inter").read_text().splitlines()
    (tmp_path / "Tools.inter").write_bytes(_recbole_damage(lines, damage).encode())
    assert_same("recbole", tmp_path, caplog)


@pytest.mark.parametrize("time", ["soon", " 1600000000999 ", "1.6e12", "+5", "1_600", "inf", "nan", "1e999", "9" * 400, "-3", "7.25"])
def test_recbole_times_read_as_float_reads_them(tmp_path: Path, caplog, time: str) -> None:
    write_recbole(tmp_path, "Tools", make_rows(num_users=25, num_items=12, seed=9))
    with open(tmp_path / "Tools.inter", "a") as f:
        f.write(f"U01\tB001\t4.0\t{time}\n")
    assert_same("recbole", tmp_path, caplog)


@pytest.mark.parametrize("block_bytes", [40, 333, None])
def test_recbole_row_number_time_across_blocks(tmp_path: Path, caplog, monkeypatch, block_bytes) -> None:
    monkeypatch.setattr(common, "BLOCK_BYTES", block_bytes or common.BLOCK_BYTES)
    write_recbole(tmp_path, "Tools", make_rows(num_users=40, num_items=15, seed=2), with_time=False)
    assert_same("recbole", tmp_path, caplog)


@pytest.mark.parametrize("where", ["header", "block start"])
def test_byte_order_mark_kept_as_before(tmp_path: Path, caplog, monkeypatch, where: str) -> None:
    """A BOM starting a line stays part of the id (polars alone would drop it at the start
    of its input, so of a block)."""
    write_recbole(tmp_path, "Tools", make_rows(num_users=25, num_items=12, seed=9))
    lines = (tmp_path / "Tools.inter").read_text().splitlines()
    if where == "header":
        lines[0] = "\ufeff" + lines[0]
    else:
        lines[1] = "\ufeff" + lines[1]
        monkeypatch.setattr(common, "BLOCK_BYTES", len(lines[0]) + 1)  # the second block starts at line 2
    (tmp_path / "Tools.inter").write_text("\n".join(lines) + "\n")
    message = _same_outcome("recbole", tmp_path, caplog)
    assert message is None or "header has no 'user_id'" in message


@pytest.mark.parametrize(
    "text",
    [
        "",  # empty file
        "user_id:token\titem_id:token\n",  # header only: nothing read
        "user_id\titem_id:token\nU1\tB1\n",
        "user_id:token\titem:token\nU1\tB1\n",
        "user_id:token\titem_id:token\tuser_id:token\nU1\tB1\tU2\n",  # a repeated name: the first
        "\nuser_id:token\titem_id:token\nU1\tB1\n",
        "user_id:token\titem_id:token\nU1\tB\xff1\n",  # not UTF-8
        "user_id:token\titem_id:token\n" + "U1\n" * 1200,  # mostly bad: the early check
    ],
)
def test_recbole_bad_files_same_error_or_rows(tmp_path: Path, caplog, text: str) -> None:
    (tmp_path / "Tools.inter").write_bytes(text.encode("utf-8", "surrogateescape") if "\xff" not in text else text.encode("latin-1"))
    _same_outcome("recbole", tmp_path, caplog)


_ITEM_HEADER = "item_id:token\ttitle:token_seq\tcategories:token_seq\tprice:float\tvec:float_seq"


@pytest.mark.parametrize(
    "row",
    [
        "B001\tsecond copy\tX\t1.0\t2",  # repeated item: the first row kept
        "UNSEEN\tnever\tX\t1.0\t2",  # no interaction: left out
        "B002\t\t\t\t",  # empty fields: '', None, []
        "B002\tx\ty\tcheap\t1",  # not a float: skipped
        "B002\tx\ty\t 2.5 \t1",  # float() strips spaces
        "B002\tx\ty\t2.5\t1  2",  # two spaces: float_seq splits on any run
        "B002\tx\ty\t2.5\t1 x",
        "B002\tx\ty\t1e3\t1e-2 3",
        "\tx\ty\t2.5\t1",  # no item id
        "B002\tx\ty",  # too few columns
        "B002\tx\ty\t2\t3\t4",
        "",  # blank line
    ],
)
def test_messy_recbole_items_read_as_before(tmp_path: Path, caplog, row: str) -> None:
    rows = make_rows(num_users=25, num_items=12, seed=9)
    write_recbole(tmp_path, "Tools", rows)
    items = (tmp_path / "Tools.item").read_text().splitlines()
    items.insert(3, row)
    (tmp_path / "Tools.item").write_text("\n".join(items) + "\n")
    assert_same("recbole", tmp_path, caplog, kcores=(0,))


@pytest.mark.parametrize("header", [_ITEM_HEADER.replace("item_id:token", "item_id:float"), "id:token\ttitle:token_seq", "item_id:token\ttitle:token_seq\ttitle:token_seq"])
def test_recbole_item_headers_as_before(tmp_path: Path, caplog, header: str) -> None:
    write_recbole(tmp_path, "Tools", make_rows(num_users=20, num_items=10, seed=3))
    width = header.count("\t") + 1
    items = (tmp_path / "Tools.item").read_text().splitlines()
    rows = ["\t".join(line.split("\t")[:width]) for line in items[1:]]
    (tmp_path / "Tools.item").write_text("\n".join([header, *rows]) + "\n")
    message = _same_outcome("recbole", tmp_path, caplog)
    assert message is None or "Tools.item" in message


@pytest.mark.parametrize("gz", [False, True])
def test_recbole_clean_files_are_read_as_columns(tmp_path: Path, monkeypatch, gz: bool) -> None:
    rows = make_rows(num_users=30)
    write_recbole(tmp_path, "Tools", rows)
    if gz:
        for name in ("Tools.inter", "Tools.item"):
            (tmp_path / f"{name}.gz").write_bytes(gzip.compress((tmp_path / name).read_bytes()))
            (tmp_path / name).unlink()
    old = legacy_pipeline.read_source("recbole", tmp_path, show_progress=False)
    _forbid(monkeypatch, recbole, "_read_interaction_lines")
    _forbid(monkeypatch, recbole, "_read_item_lines")
    raw = read_source("recbole", tmp_path, show_progress=False)
    assert _triples(raw) == _triples(old) and raw.item_meta == old.item_meta
    assert {i: m["title"] for i, m in raw.item_meta.items()} == titles(rows)
