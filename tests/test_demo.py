"""The synthetic Amazon-2023-format demo store: determinism, schema, sizes, learnable structure."""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from llada_rec.demo.store import DEMO_CATEGORY, generate_demo, write_demo_dataset

REVIEW_FIELDS = {
    "rating": float, "title": str, "text": str, "images": list, "asin": str,
    "parent_asin": str, "user_id": str, "timestamp": int, "helpful_vote": int,
    "verified_purchase": bool,
}
META_FIELDS = {
    "main_category": str, "title": str, "average_rating": float, "rating_number": int,
    "features": list, "description": list, "price": (float, type(None)), "images": list,
    "videos": list, "store": str, "categories": list, "details": dict, "parent_asin": str,
    "bought_together": (list, type(None)),
}


def read_jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def sequences(reviews: list[dict]) -> list[list[str]]:
    """Per user, items ordered by (timestamp, file order), as preprocessing orders them."""
    per_user = defaultdict(list)
    for order, r in enumerate(reviews):
        per_user[r["user_id"]].append((r["timestamp"], order, r["parent_asin"]))
    return [[item for *_, item in sorted(rows)] for rows in per_user.values()]


@pytest.fixture(scope="module")
def default_demo(tmp_path_factory) -> tuple[dict[str, Path], list[dict], list[dict]]:
    files = write_demo_dataset(tmp_path_factory.mktemp("demo"), seed=0)
    return files, read_jsonl(files["reviews"]), read_jsonl(files["meta"])


@pytest.mark.slow
def test_same_seed_same_bytes_other_seed_other_data(tmp_path, default_demo):
    files, _, _ = default_demo
    again = write_demo_dataset(tmp_path / "again", seed=0)
    for key in ("reviews", "meta"):
        assert again[key].name == files[key].name
        assert again[key].read_bytes() == files[key].read_bytes()
    other = write_demo_dataset(tmp_path / "other", seed=1)
    other_reviews = read_jsonl(other["reviews"])
    assert {r["parent_asin"] for r in read_jsonl(other["meta"])} != {
        r["parent_asin"] for r in default_demo[2]
    }
    assert [r["user_id"] for r in other_reviews[:50]] != [r["user_id"] for r in default_demo[1][:50]]


def test_records_follow_the_amazon_2023_schema(default_demo):
    files, reviews, meta = default_demo
    assert files["reviews"].name == f"{DEMO_CATEGORY}.jsonl.gz"
    assert files["meta"].name == f"meta_{DEMO_CATEGORY}.jsonl.gz"
    for records, schema in ((reviews, REVIEW_FIELDS), (meta, META_FIELDS)):
        for record in records:
            assert set(record) == set(schema)
            for name, kind in schema.items():
                assert isinstance(record[name], kind), (name, record[name])
    for r in reviews:
        assert 1.0 <= r["rating"] <= 5.0
        assert 1_400_000_000_000 < r["timestamp"] < 1_800_000_000_000  # milliseconds
    for m in meta:
        assert m["title"] and m["features"] and m["description"] and m["categories"]
        assert all(isinstance(x, str) for x in m["features"] + m["description"] + m["categories"])
    item_ids = [m["parent_asin"] for m in meta]
    assert len(set(item_ids)) == len(item_ids)
    assert {r["parent_asin"] for r in reviews} == set(item_ids)
    # each user reviews an item once
    assert len({(r["user_id"], r["parent_asin"]) for r in reviews}) == len(reviews)


def test_sizes_and_five_core(default_demo):
    _, reviews, meta = default_demo
    seqs = sequences(reviews)
    lengths = np.array([len(s) for s in seqs])
    assert 600 <= len(meta) <= 1000
    assert 1500 <= len(seqs) <= 3000
    assert 8.0 <= lengths.mean() <= 10.0
    assert lengths.min() >= 5
    assert min(Counter(r["parent_asin"] for r in reviews).values()) >= 5
    # timestamps increase per user, with only a few ties
    per_user = defaultdict(list)
    for r in reviews:
        per_user[r["user_id"]].append(r["timestamp"])
    gaps = np.concatenate([np.diff(sorted(ts)) for ts in per_user.values()])
    assert 0 < (gaps == 0).mean() < 0.1


def test_next_item_transitions_beat_popularity(default_demo):
    """A first-order transition table from the training prefixes finds the held-out last
    item several times as often as the most popular items (Recall@10)."""
    seqs = sequences(default_demo[1])
    transitions: dict[str, Counter] = defaultdict(Counter)
    popularity: Counter = Counter()
    for seq in seqs:
        train = seq[:-1]
        popularity.update(train)
        for a, b in zip(train, train[1:]):
            transitions[a][b] += 1
    top = [item for item, _ in popularity.most_common(10)]
    pop_hits = trans_hits = 0
    for seq in seqs:
        history, target = seq[:-1], seq[-1]
        ranked = [b for b, _ in transitions[history[-1]].most_common(10)]
        ranked += [item for item in top if item not in ranked][: 10 - len(ranked)]
        trans_hits += target in ranked
        pop_hits += target in top
    pop_recall, trans_recall = pop_hits / len(seqs), trans_hits / len(seqs)
    assert pop_recall > 0.01  # popularity is a real, non-zero floor
    assert trans_recall > 4 * pop_recall


def test_family_items_share_text():
    """Items of one family (accessories of one device, volumes of one series) share words."""
    _, meta = generate_demo(num_users=300, num_items=200, seed=3)
    volume_1 = [m for m in meta if m["title"].endswith(", Book 1 (Kindle Edition)")]
    assert volume_1
    series = volume_1[0]["title"].split(", Book")[0]
    assert sum(m["title"].startswith(series + ", Book") for m in meta) >= 3
    accessories = [m for m in meta if " for " in m["title"] and "Accessories" in m["categories"]]
    device = accessories[0]["title"].split(" for ")[-1]
    assert sum(device in m["title"] for m in meta) >= 6  # the device and >= 5 accessories


def test_complete_dataset_is_not_rewritten_and_a_damaged_one_is(tmp_path, caplog):
    files = write_demo_dataset(tmp_path, num_users=300, num_items=150, seed=2)
    good = {k: p.read_bytes() for k, p in files.items()}
    stamps = {k: p.stat().st_mtime_ns for k, p in files.items()}
    assert write_demo_dataset(tmp_path, num_users=300, num_items=150, seed=2) == files
    assert {k: p.stat().st_mtime_ns for k, p in files.items()} == stamps
    files["meta"].write_bytes(good["meta"][:100])  # truncated by hand
    write_demo_dataset(tmp_path, num_users=300, num_items=150, seed=2)
    assert files["meta"].read_bytes() == good["meta"]
    write_demo_dataset(tmp_path, num_users=300, num_items=150, seed=5)  # other arguments
    assert files["reviews"].read_bytes() != good["reviews"]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == sorted(
        p.name for p in files.values()
    )  # no temporary files left behind


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="num_users=50 is too few"):
        write_demo_dataset(tmp_path, num_users=50, num_items=400)
    with pytest.raises(ValueError, match="category"):
        write_demo_dataset(tmp_path, category="a/b")
    assert not any(tmp_path.iterdir())


def test_round_trip_through_the_amazon2023_reader(tmp_path):
    from llada_rec.data.dataset import preprocess
    from llada_rec.data.readers import read_source
    from llada_rec.data.text import item_texts

    write_demo_dataset(tmp_path, num_users=400, num_items=200, seed=4)
    reviews = read_jsonl(tmp_path / f"{DEMO_CATEGORY}.jsonl.gz")
    raw = read_source("amazon2023", tmp_path, DEMO_CATEGORY, show_progress=False)
    assert not raw.skipped
    data = preprocess(raw, kcore=5)
    assert not data.skipped  # the 5-core filter keeps every user and item
    assert data.num_interactions == len(reviews)
    assert data.num_users == 400
    expected = sorted(sequences(reviews))
    got = sorted([data.item_ids[i - 1] for i in seq] for seq in data.sequences)
    assert got == expected
    texts, fallbacks = item_texts(data.item_ids, data.item_meta)
    assert fallbacks == 0
    assert all("&amp;" not in t and "<p>" not in t and "&#39;" not in t for t in texts)
