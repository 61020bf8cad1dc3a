"""Readers on tiny fixture files in each real format, bad input, and preprocess invariants."""

from __future__ import annotations

import gzip
import json
import logging
import random
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from llada_rec.data.dataset import DataError, RawInteractions, preprocess
from llada_rec.data.readers import FORMATS, read_source

Row = tuple[str, str, int]  # (user, item, timestamp in ms)


# ----------------------------------------------------------------------------- fixture writers


def make_rows(num_users: int = 12, num_items: int = 9, seed: int = 0) -> list[Row]:
    """Each user reviews 5..8 distinct items at distinct, increasing times."""
    rng = random.Random(seed)
    rows: list[Row] = []
    for u in range(num_users):
        items = rng.sample(range(num_items), rng.randint(5, 8))
        t = 1_600_000_000_000 + rng.randint(0, 10**6)
        for item in items:
            t += rng.randint(1, 10**5)
            rows.append((f"U{u:02d}", f"B{item:03d}", t))
    rng.shuffle(rows)  # files are not ordered by time
    return rows


def titles(rows: list[Row]) -> dict[str, str]:
    return {item: f"Thing {item} &amp; co" for item in sorted({r[1] for r in rows})}


def write(path: Path, text: str, gz: bool) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def review_record(user: str, item: str, ts: int) -> dict:
    return {
        "rating": 4.0, "title": "ok", "text": "works, mostly", "images": [], "asin": item + "X",
        "parent_asin": item, "user_id": user, "timestamp": ts, "helpful_vote": 0,
        "verified_purchase": True,
    }


def meta_record(item: str, title: str) -> dict:
    return {
        "main_category": "Tools", "title": title, "average_rating": 4.5, "rating_number": 10,
        "features": ["sturdy"], "description": ["a thing"], "price": None, "images": [],
        "videos": [], "store": "Acme", "categories": ["Tools", "Hand"],
        "details": {"Weight": "1 kg"}, "parent_asin": item, "bought_together": None,
    }


def write_amazon2023(d: Path, cat: str, rows: list[Row], gz: bool = False) -> None:
    d.mkdir(parents=True, exist_ok=True)
    write(d / f"{cat}.jsonl", "".join(json.dumps(review_record(*r)) + "\n" for r in rows), gz)
    meta = "".join(json.dumps(meta_record(i, t)) + "\n" for i, t in titles(rows).items())
    write(d / f"meta_{cat}.jsonl", meta, gz)


def official_sequences(rows: list[Row]) -> dict[str, list[Row]]:
    """As the official last_out split script: per user, a stable sort by timestamp."""
    per_user: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        per_user[r[0]].append(r)
    return {u: sorted(rs, key=lambda r: r[2]) for u, rs in per_user.items()}


def write_benchmark(
    d: Path, cat: str, rows: list[Row], gz: bool = False, header: bool = True
) -> None:
    d.mkdir(parents=True, exist_ok=True)
    splits: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for seq in official_sequences(rows).values():
        for j, (user, item, ts) in enumerate(seq):
            split = "train" if j < len(seq) - 2 else "valid" if j == len(seq) - 2 else "test"
            history = " ".join(r[1] for r in seq[:j])
            splits[split].append(f"{user},{item},4.0,{ts},{history}")
    head = ["user_id,parent_asin,rating,timestamp,history"] if header else []
    for split, lines in splits.items():
        write(d / f"{cat}.{split}.csv", "\n".join(head + lines) + "\n", gz)
    meta = "".join(json.dumps(meta_record(i, t)) + "\n" for i, t in titles(rows).items())
    write(d / f"meta_{cat}.jsonl", meta, gz)


def write_lcrec(d: Path, name: str, rows: list[Row]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    inter = {u: [r[1] for r in seq] for u, seq in official_sequences(rows).items()}
    (d / f"{name}.inter.json").write_text(json.dumps(inter))
    items = {i: {"title": t, "categories": "Tools,Hand"} for i, t in titles(rows).items()}
    (d / f"{name}.item.json").write_text(json.dumps(items, indent=2))


def write_recbole(d: Path, name: str, rows: list[Row], with_time: bool = True) -> None:
    d.mkdir(parents=True, exist_ok=True)
    if with_time:
        lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
        lines += [f"{u}\t{i}\t4.0\t{t}" for u, i, t in rows]
    else:  # file order is time order
        lines = ["user_id:token\titem_id:token\trating:float"]
        lines += [f"{u}\t{i}\t4.0" for seq in official_sequences(rows).values() for u, i, _ in seq]
    (d / f"{name}.inter").write_text("\n".join(lines) + "\n")
    items = ["item_id:token\ttitle:token_seq\tcategories:token_seq\tprice:float\tvec:float_seq"]
    items += [f"{i}\t{t}\tTools Hand\t9.5\t1 2.5" for i, t in titles(rows).items()]
    (d / f"{name}.item").write_text("\n".join(items) + "\n")


def put(d: Path, texts: dict[str, str]) -> None:
    for name, text in texts.items():
        (d / name).write_text(text)


def triples(raw: RawInteractions) -> list[tuple[str, str, float]]:
    return list(zip(raw.users, raw.items, raw.timestamps))


def sequences_by_user(raw: RawInteractions, kcore: int = 0) -> dict[str, list[str]]:
    data = preprocess(raw, kcore=kcore)
    return {
        data.user_ids[u]: [data.item_ids[i - 1] for i in seq]
        for u, seq in enumerate(data.sequences)
    }


# ----------------------------------------------------------------------------- formats


@pytest.mark.parametrize("fmt", ["amazon2023", "amazon2023-benchmark"])
def test_plain_and_gzip_read_the_same(tmp_path: Path, fmt: str) -> None:
    rows = make_rows()
    writer = write_amazon2023 if fmt == "amazon2023" else write_benchmark
    writer(tmp_path / "plain", "Tools", rows, gz=False)
    writer(tmp_path / "gz", "Tools", rows, gz=True)
    plain = read_source(fmt, tmp_path / "plain", show_progress=False)
    zipped = read_source(fmt, tmp_path / "gz", show_progress=False)
    assert zipped.source.endswith(".gz") and not plain.source.endswith(".gz")
    assert triples(plain) == triples(zipped)
    assert plain.item_meta == zipped.item_meta and not plain.skipped and not zipped.skipped
    assert sorted(triples(plain)) == sorted((u, i, float(t)) for u, i, t in rows)


def test_amazon2023_fields(tmp_path: Path) -> None:
    rows = make_rows()
    write_amazon2023(tmp_path, "Tools", rows)
    raw = read_source("amazon2023", tmp_path, show_progress=False)
    assert triples(raw) == [(u, i, float(t)) for u, i, t in rows]  # file order is kept
    item = rows[0][1]
    assert raw.item_meta[item] == meta_record(item, titles(rows)[item])  # the whole record


def test_amazon2023_meta_only_for_items_with_reviews(tmp_path: Path) -> None:
    rows = make_rows()
    write_amazon2023(tmp_path, "Tools", rows)
    with open(tmp_path / "meta_Tools.jsonl", "a") as f:
        f.write(json.dumps(meta_record("UNSEEN", "never reviewed")) + "\n")
        f.write(json.dumps(meta_record(rows[0][1], "second copy")) + "\n")
    raw = read_source("amazon2023", tmp_path, show_progress=False)
    assert "UNSEEN" not in raw.item_meta
    assert raw.item_meta[rows[0][1]]["title"] == titles(rows)[rows[0][1]]  # first record kept
    assert raw.skipped == Counter({"meta_Tools.jsonl: repeated metadata record (first kept)": 1})


def test_official_subfolder_layout(tmp_path: Path) -> None:
    rows = make_rows()
    write_amazon2023(tmp_path / "tmp", "Tools", rows, gz=True)
    (tmp_path / "raw" / "review_categories").mkdir(parents=True)
    (tmp_path / "raw" / "meta_categories").mkdir(parents=True)
    for name, sub in (("Tools.jsonl.gz", "review"), ("meta_Tools.jsonl.gz", "meta")):
        (tmp_path / "tmp" / name).rename(tmp_path / "raw" / f"{sub}_categories" / name)
    raw = read_source("amazon2023", tmp_path, show_progress=False)
    assert len(raw.users) == len(rows) and len(raw.item_meta) == len(titles(rows))


@pytest.mark.parametrize("header", [True, False])
def test_all_formats_give_the_same_sequences(tmp_path: Path, header: bool) -> None:
    rows = make_rows()
    write_amazon2023(tmp_path / "a", "Tools", rows, gz=True)
    write_benchmark(tmp_path / "b", "Tools", rows, header=header)
    write_lcrec(tmp_path / "l", "Tools", rows)
    write_recbole(tmp_path / "r", "Tools", rows)
    write_recbole(tmp_path / "r0", "Tools", rows, with_time=False)
    raws = {
        "amazon2023": read_source("amazon2023", tmp_path / "a", show_progress=False),
        "benchmark": read_source("amazon2023-benchmark", tmp_path / "b", show_progress=False),
        "lcrec": read_source("lcrec", tmp_path / "l", show_progress=False),
        "recbole": read_source("recbole", tmp_path / "r", show_progress=False),
        "recbole-no-time": read_source("recbole", tmp_path / "r0", show_progress=False),
    }
    assert triples(raws["amazon2023"]) == triples(raws["recbole"])  # same rows, same order
    expected = {u: [r[1] for r in seq] for u, seq in official_sequences(rows).items()}
    for name, raw in raws.items():
        assert sequences_by_user(raw) == expected, name
        assert {i: m["title"] for i, m in raw.item_meta.items()} == titles(rows), name


def test_lcrec_position_is_time(tmp_path: Path) -> None:
    (tmp_path / "S.inter.json").write_text(json.dumps({"0": [5, 3, 9], "1": [9, 5, 3, 1]}))
    item_meta = {str(i): {"title": f"t{i}"} for i in (1, 3, 5, 9, 7)}
    (tmp_path / "S.item.json").write_text(json.dumps(item_meta))
    raw = read_source("lcrec", tmp_path, show_progress=False)
    assert triples(raw) == [
        ("0", "5", 0.0), ("0", "3", 1.0), ("0", "9", 2.0),
        ("1", "9", 0.0), ("1", "5", 1.0), ("1", "3", 2.0), ("1", "1", 3.0),
    ]
    assert sorted(raw.item_meta) == ["1", "3", "5", "9"]  # item 7 has no interaction
    assert sequences_by_user(raw) == {"0": ["5", "3", "9"], "1": ["9", "5", "3", "1"]}


def test_recbole_types_and_optional_item_file(tmp_path: Path, caplog) -> None:
    rows = make_rows()
    write_recbole(tmp_path, "Tools", rows)
    raw = read_source("recbole", tmp_path, show_progress=False)
    item = rows[0][1]
    assert raw.item_meta[item] == {
        "title": titles(rows)[item], "categories": "Tools Hand", "price": 9.5, "vec": [1.0, 2.5],
    }
    (tmp_path / "Tools.item").unlink()
    with caplog.at_level(logging.WARNING):
        raw = read_source("recbole", tmp_path, show_progress=False)
    assert raw.item_meta == {} and len(raw.users) == len(rows)
    assert "Tools.item" in caplog.text


def test_benchmark_reproduces_official_split_with_time_ties(tmp_path: Path, caplog) -> None:
    """Ties (within train, train vs valid) must resolve as the official script did."""
    rows = [
        # user A: Z, Y, X share a time (official order: as in the input), then W, V tie
        ("A", "Z", 100), ("A", "Y", 100), ("A", "X", 100), ("A", "W", 200), ("A", "V", 200),
        ("B", "V", 50), ("B", "W", 60), ("B", "X", 60), ("B", "Y", 60), ("B", "Z", 70),
    ]
    write_benchmark(tmp_path, "Tools", rows)
    with caplog.at_level(logging.WARNING):
        raw = read_source("amazon2023-benchmark", tmp_path, show_progress=False)
    assert "differ" not in caplog.text
    data = preprocess(raw, kcore=0)
    seqs = sequences_by_user(raw)
    assert seqs == {"A": ["Z", "Y", "X", "W", "V"], "B": ["V", "W", "X", "Y", "Z"]}
    targets = {
        stage: {data.user_ids[u]: data.item_ids[t - 1] for u, _, t in data.samples(stage, 20)}
        for stage in ("val", "test")
    }
    assert targets == {"val": {"A": "W", "B": "Y"}, "test": {"A": "V", "B": "Z"}}


def test_benchmark_warns_when_history_disagrees(tmp_path: Path, caplog) -> None:
    rows = [("A", "P", 1), ("A", "Q", 2), ("A", "R", 3), ("A", "S", 4)]
    write_benchmark(tmp_path, "Tools", rows)
    test_file = tmp_path / "Tools.test.csv"
    # the test row's history is out of time order
    test_file.write_text(test_file.read_text().replace("P Q R", "Q P R"))
    with caplog.at_level(logging.WARNING):
        read_source("amazon2023-benchmark", tmp_path, show_progress=False)
    assert "for 1 of 1 users" in caplog.text and "Tools.test.csv" in caplog.text


# ----------------------------------------------------------------------------- bad input


def test_malformed_and_incomplete_lines_are_counted_and_named(tmp_path: Path, caplog) -> None:
    rows = make_rows()
    write_amazon2023(tmp_path, "Tools", rows)
    lines = (tmp_path / "Tools.jsonl").read_text().splitlines()
    lines.insert(3, '{"user_id": "U99", "parent_asin": ')  # line 4: truncated JSON
    no_user = review_record("U98", "B001", 5)
    del no_user["user_id"]
    lines.insert(6, json.dumps(no_user))  # line 7
    lines.insert(8, json.dumps(review_record("U97", "B001", "yesterday")))  # line 9
    lines.insert(9, "")  # blank lines are ignored
    (tmp_path / "Tools.jsonl").write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        raw = read_source("amazon2023", tmp_path, show_progress=False)
    assert raw.skipped == Counter({
        "Tools.jsonl: malformed JSON line": 1,
        "Tools.jsonl: missing or invalid field 'user_id'": 1,
        "Tools.jsonl: missing or invalid field 'timestamp'": 1,
    })
    assert f"{tmp_path / 'Tools.jsonl'}:4: malformed JSON line" in caplog.text
    assert "Tools.jsonl:7:" in caplog.text and "Tools.jsonl:9:" in caplog.text
    assert sorted(triples(raw)) == sorted((u, i, float(t)) for u, i, t in rows)
    assert preprocess(raw, kcore=0).skipped["Tools.jsonl: malformed JSON line"] == 1


def test_mostly_bad_file_is_an_error(tmp_path: Path) -> None:
    write_amazon2023(tmp_path, "Tools", make_rows(num_users=2))
    good = (tmp_path / "Tools.jsonl").read_text()
    (tmp_path / "Tools.jsonl").write_text(good + "user_id,parent_asin\n" * 40)
    with pytest.raises(DataError, match=r"Tools\.jsonl: 40 of \d+ lines are not valid"):
        read_source("amazon2023", tmp_path, show_progress=False)


def test_csv_row_with_wrong_columns_is_skipped(tmp_path: Path) -> None:
    write_benchmark(tmp_path, "Tools", make_rows())
    with open(tmp_path / "Tools.train.csv", "a") as f:
        f.write("U00,B001,4.0\n")
    raw = read_source("amazon2023-benchmark", tmp_path, show_progress=False)
    assert raw.skipped == Counter({"Tools.train.csv: expected 5 columns, got 3": 1})


@pytest.mark.parametrize(
    "setup, fmt, match",
    [
        (lambda d: None, "parquet", "unknown data format 'parquet'"),
        (lambda d: d.rmdir(), "lcrec", "no such directory"),
        (
            lambda d: write_amazon2023(d, "Tools", make_rows()),
            "lcrec",
            r"no <X>\.inter\.json file found",
        ),
        (
            lambda d: put(d, {"Tools.jsonl": ""}),
            "amazon2023",
            r"missing metadata file meta_Tools\.jsonl",
        ),
        (
            lambda d: [write_amazon2023(d, c, make_rows()) for c in ("Tools", "Games")],
            "amazon2023",
            r"several categories \(Games, Tools\)",
        ),
        (
            lambda d: (write_benchmark(d, "Tools", make_rows()), (d / "Tools.valid.csv").unlink()),
            "amazon2023-benchmark",
            r"missing benchmark valid file Tools\.valid\.csv",
        ),
        (
            lambda d: put(d, {"Tools.jsonl": "\n\n", "meta_Tools.jsonl": ""}),
            "amazon2023",
            "no interactions could be read",
        ),
        (
            lambda d: put(d, {"S.inter.json": '{"0": [1, 2,\n 3,]}', "S.item.json": "{}"}),
            "lcrec",
            r"S\.inter\.json:2:4: not valid JSON",
        ),
        (
            lambda d: put(d, {"S.inter.json": '{"0": [1, 2], "7": 3}', "S.item.json": "{}"}),
            "lcrec",
            r"user '7': expected a list",
        ),
        (
            lambda d: put(d, {"S.inter": "user_id\titem_id:token\n1\t2\n"}),
            "recbole",
            r"S\.inter:1: header field 'user_id' is not name:type",
        ),
        (
            lambda d: put(d, {"S.inter": "user:token\titem_id:token\n1\t2\n"}),
            "recbole",
            r"S\.inter:1: header has no 'user_id' field",
        ),
        (
            lambda d: (
                (d / "Tools.jsonl.gz").write_bytes(gzip.compress(b'{"a": 1}\n' * 50)[:30]),
                (d / "meta_Tools.jsonl").write_text(""),
            ),
            "amazon2023",
            r"Tools\.jsonl\.gz: cannot read, truncated or corrupt",
        ),
    ],
)
def test_bad_input_errors(tmp_path: Path, setup, fmt: str, match: str) -> None:
    d = tmp_path / "data"
    d.mkdir()
    setup(d)
    with pytest.raises(DataError, match=match):
        read_source(fmt, d, show_progress=False)


def test_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "S.inter.json").write_text("{}")
    with pytest.raises(DataError, match="not a directory"):
        read_source("lcrec", tmp_path / "S.inter.json", show_progress=False)


def test_category_picks_among_several(tmp_path: Path) -> None:
    write_lcrec(tmp_path, "Tools", make_rows(seed=1))
    write_lcrec(tmp_path, "Games", make_rows(seed=2, num_users=5))
    raw = read_source("lcrec", tmp_path, category="Games", show_progress=False)
    assert len(set(raw.users)) == 5
    match = r"no <X>\.inter\.json file for category 'Toys'; found: Games, Tools"
    with pytest.raises(DataError, match=match):
        read_source("lcrec", tmp_path, category="Toys", show_progress=False)


def test_every_format_reads_its_layout_and_an_unknown_one_is_named(tmp_path: Path) -> None:
    """Each name in FORMATS reads files written in its layout (a format added without a writer
    here fails: no test would cover it); an unknown name is refused with the list."""
    writers = {"amazon2023": write_amazon2023, "amazon2023-benchmark": write_benchmark, "lcrec": write_lcrec, "recbole": write_recbole}
    rows = make_rows()
    expected = {u: [r[1] for r in seq] for u, seq in official_sequences(rows).items()}
    for fmt in FORMATS:
        writers[fmt](tmp_path / fmt, "Tools", rows)
        assert sequences_by_user(read_source(fmt, tmp_path / fmt, show_progress=False)) == expected, fmt
    with pytest.raises(DataError, match="unknown data format 'csv'; expected one of " + ", ".join(FORMATS)):
        read_source("csv", tmp_path / "lcrec", show_progress=False)


# ----------------------------------------------------------------------------- preprocess


def raw_of(rows: list[tuple[str, str, float]]) -> RawInteractions:
    return RawInteractions(
        users=[r[0] for r in rows],
        items=[r[1] for r in rows],
        timestamps=[float(r[2]) for r in rows],
        item_meta={r[1]: {"title": r[1]} for r in rows},
        source="test",
    )


def reference_kcore(rows: list[tuple[str, str, float]], k: int) -> set[tuple[str, str, float]]:
    """Remove any user or item with fewer than k interactions until none is left to remove."""
    kept = set(rows)
    while True:
        users = Counter(r[0] for r in kept)
        items = Counter(r[1] for r in kept)
        new = {r for r in kept if users[r[0]] >= k and items[r[1]] >= k}
        if new == kept:
            return kept
        kept = new


def test_kcore_reaches_a_fixed_point_through_a_chain() -> None:
    """Dropping item x leaves u1 short; dropping u1 leaves y short; and so on (3 rounds)."""
    k = 3
    core = [(f"c{u}", f"i{j}", j) for u in range(3) for j in range(3)]  # survives: 3x3
    chain = [
        ("u1", "x", 1), ("u1", "y", 2), ("u1", "i0", 3),  # x has 2 users -> gone, then u1
        ("u2", "x", 1), ("u2", "y", 2), ("u2", "z", 3), ("u2", "i1", 4),  # y then short -> u2
        ("u3", "y", 1), ("u3", "z", 2), ("u3", "i2", 3),  # z short after u2 -> u3 gone
        ("u4", "z", 1), ("u4", "i0", 2), ("u4", "i1", 3),  # u4 keeps 2 core items -> gone
    ]
    rows = core + chain
    # one pass (items, then users) is not enough: afterwards some item is short again
    item_count = Counter(r[1] for r in rows)
    one_pass = [r for r in rows if item_count[r[1]] >= k]
    user_count = Counter(r[0] for r in one_pass)
    one_pass = [r for r in one_pass if user_count[r[0]] >= k]
    assert min(Counter(r[1] for r in one_pass).values()) < k
    data = preprocess(raw_of(rows), kcore=k, min_length=k, repeats="keep")
    assert data.user_ids == ["c0", "c1", "c2"] and data.item_ids == ["i0", "i1", "i2"]
    assert data.sequences == [[1, 2, 3]] * 3


def test_kcore_matches_reference_on_random_data() -> None:
    rng = random.Random(7)
    # long-tailed item popularity, so each k removes a different share
    rows = [
        (f"u{rng.randint(0, 60)}", f"i{int(rng.paretovariate(1.2)) % 40}", float(t))
        for t in range(900)
    ]
    for k in (2, 4, 6):
        data = preprocess(raw_of(rows), kcore=k, min_length=k, repeats="keep")
        got = {
            (data.user_ids[u], data.item_ids[i - 1])
            for u, seq in enumerate(data.sequences)
            for i in seq
        }
        expected = reference_kcore(rows, k)
        assert got == {(u, i) for u, i, _ in expected}
        assert data.num_interactions == len(expected)
        assert min(len(s) for s in data.sequences) >= k
        assert min(Counter(i for s in data.sequences for i in s).values()) >= k


def test_duplicates_dropped_and_ties_keep_read_order() -> None:
    rows = [
        ("a", "p", 5), ("a", "q", 1), ("a", "r", 5), ("a", "q", 1),  # exact duplicate of row 2
        ("a", "s", 3), ("a", "t", 5), ("a", "q", 9),  # q again later: a real repeat, kept
    ]
    data = preprocess(raw_of(rows), kcore=0, repeats="keep")
    assert [data.item_ids[i - 1] for i in data.sequences[0]] == ["q", "s", "p", "r", "t", "q"]
    assert data.skipped["duplicate interaction"] == 1
    first = preprocess(raw_of(rows), kcore=0)  # default: only the earliest of a repeat
    assert [first.item_ids[i - 1] for i in first.sequences[0]] == ["q", "s", "p", "r", "t"]
    assert first.skipped["repeat interaction (earliest kept)"] == 1


def test_leave_one_out_samples() -> None:
    rng = random.Random(3)
    rows = []
    for u in range(6):
        n = rng.randint(3, 30)
        rows += [(f"u{u}", f"i{rng.randint(0, 9)}", float(t)) for t in range(n)]  # repeats allowed
    data = preprocess(raw_of(rows), kcore=0, repeats="keep")
    max_history = 5
    train = defaultdict(list)
    for user, history, target in data.samples("train", max_history):
        train[user].append((history, target))
    val = {u: (h, t) for u, h, t in data.samples("val", max_history)}
    test = {u: (h, t) for u, h, t in data.samples("test", max_history)}
    for user, seq in enumerate(data.sequences):
        n = len(seq)
        # training never sees the last two positions, as target or as history
        assert train[user] == [(seq[max(0, j - max_history):j], seq[j]) for j in range(1, n - 2)]
        assert val[user] == (seq[max(0, n - 2 - max_history):n - 2], seq[n - 2])
        assert test[user] == (seq[max(0, n - 1 - max_history):n - 1], seq[n - 1])
    assert set(data.train_items()) == {i for s in data.sequences for i in s[:-2]}
