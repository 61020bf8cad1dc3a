"""A seeded synthetic store in the Amazon Reviews 2023 raw format, for the demo and for tests.

Files: ``<category>.jsonl.gz`` reviews and ``meta_<category>.jsonl.gz`` metadata, read by
``read_source("amazon2023", ...)``.

The items come in families whose texts are alike (:mod:`llada_rec.demo.catalogue`), each
with a habit order.  A user has a few favourite families and walks: after an item, with a kind-dependent probability the next unbought item of its family
in habit order; otherwise the next unbought item of a favourite family (so an old chain can
resume later), a popular item (Zipf) or a random one (why this design:
``docs/DECISIONS.md``, "Demo data").  Every user has >= 5 interactions and every item >= 5 (topped up if needed), so a
5-core filter keeps everything.  Output is byte-identical for equal arguments.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from llada_rec.demo.catalogue import ADJECTIVES, DAY_MS, REVIEW_BAD, REVIEW_GOOD, Catalogue, Family, build_catalogue, pick
from llada_rec.utils import atomic_path, atomic_write_text, sha256_hex

log = logging.getLogger(__name__)

DEMO_CATEGORY = "Demo_Electronics"
_FORMAT_VERSION = 1
_MIN_COUNT = 5  # every user and every item at least this often (5-core)
_START_MS = 1_514_764_800_000  # 2018-01-01
_SPAN_MS = 1_400 * DAY_MS  # first reviews until late 2021; later ones up to 2023
_USER_CHARS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))


def _sampler(rng: np.random.Generator, weights: np.ndarray) -> Callable[[], int]:
    """Draw an index with probability proportional to ``weights`` (faster than rng.choice)."""
    cdf = np.cumsum(weights) / np.sum(weights)
    return lambda: int(min(np.searchsorted(cdf, rng.random(), side="right"), len(cdf) - 1))


#: probability of continuing the last item's family in habit order, by family kind
_FOLLOW = {"platform": 0.7, "series": 0.8, "variants": 0.35}


def _sequences(rng: np.random.Generator, cat: Catalogue, num_users: int) -> list[list[int]]:
    """Users' item sequences (oldest first, no repeats) following the habits described above."""
    n_items = len(cat.meta)
    popular = _sampler(rng, cat.popularity)
    family_pick = _sampler(rng, np.array([f.weight for f in cat.families]))
    position = {i: k for f in cat.families for k, i in enumerate(f.items)}

    def next_unbought(family: Family, after: int, owned: set[int]) -> int | None:
        """The first (or, sometimes, second) unbought item after position ``after``."""
        rest = [i for i in family.items[after + 1 :] if i not in owned]
        if not rest:
            return None
        return rest[1] if len(rest) > 1 and rng.random() < 0.2 else rest[0]

    sequences = []
    for _ in range(num_users):
        favourites = list(dict.fromkeys(family_pick() for _ in range(int(rng.integers(2, 5)))))
        length = min(_MIN_COUNT + int(rng.geometric(1 / 5.5)) - 1, 40, n_items // 2)
        seq: list[int] = []
        owned: set[int] = set()
        while len(seq) < length:
            item = None
            if seq:
                family = cat.families[cat.family_of[seq[-1]]]
                if rng.random() < _FOLLOW[family.kind]:
                    item = next_unbought(family, position[seq[-1]], owned)
            if item is None:
                r = rng.random()
                if r < 0.55:
                    item = next_unbought(cat.families[pick(rng, favourites)], -1, owned)
                elif r < 0.85:
                    item = popular()
                else:
                    item = int(rng.integers(n_items))
            if item is not None and item not in owned:
                seq.append(item)
                owned.add(item)
        sequences.append(seq)
    _top_up(rng, sequences, n_items)
    return sequences


def _top_up(rng: np.random.Generator, sequences: list[list[int]], n_items: int) -> None:
    """Insert rare items at random places of random users until each occurs >= 5 times."""
    counts = np.bincount([i for s in sequences for i in s], minlength=n_items)
    for item in np.flatnonzero(counts < _MIN_COUNT):
        users = rng.permutation(len(sequences))
        need = _MIN_COUNT - counts[item]
        for u in users:
            if need == 0:
                break
            if item not in sequences[u]:
                sequences[u].insert(int(rng.integers(len(sequences[u]) + 1)), int(item))
                need -= 1


def _review(
    rng: np.random.Generator, meta: dict[str, Any], quality: float, user: str, ts: int
) -> dict[str, Any]:
    """One review line in the Amazon Reviews 2023 schema; the rating is around the quality."""
    rating = float(np.clip(round(rng.normal(quality, 0.8)), 1, 5))
    good = rating >= 4
    phrases = REVIEW_GOOD if good else REVIEW_BAD
    if good:
        title = "Five Stars" if rating == 5 else f"{pick(rng, ADJECTIVES)} product"
    else:
        title = "Disappointed"
    asin = meta["parent_asin"]
    if rng.random() < 0.2:  # a child variant of the parent product
        asin = asin[:-1] + ("X" if asin[-1] != "X" else "Y")
    return {
        "rating": rating,
        "title": title,
        "text": f"{pick(rng, phrases)} {pick(rng, phrases)}",
        "images": [],
        "asin": asin,
        "parent_asin": meta["parent_asin"],
        "user_id": user,
        "timestamp": ts,
        "helpful_vote": int(rng.poisson(0.7)),
        "verified_purchase": bool(rng.random() < 0.9),
    }


def generate_demo(
    num_users: int = 2000, num_items: int = 800, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(review records, metadata records) of the synthetic store; reviews in a shuffled order."""
    if num_items < 20:
        raise ValueError(f"num_items must be >= 20, got {num_items}")
    if num_users < max(num_items // 2, 10):
        raise ValueError(
            f"num_users={num_users} is too few for num_items={num_items}: need at least "
            f"{max(num_items // 2, 10)} so every item reaches {_MIN_COUNT} interactions"
        )
    rng = np.random.default_rng(seed)
    cat = build_catalogue(rng, num_items)
    sequences = _sequences(rng, cat, num_users)
    user_ids = list(dict.fromkeys("A" + "".join(rng.choice(_USER_CHARS, 27)) for _ in sequences))
    if len(user_ids) != len(sequences):  # a 27-character collision: practically impossible
        raise RuntimeError("duplicate synthetic user id; use another seed")
    reviews = []
    for user, seq in zip(user_ids, sequences):
        ts = _START_MS + int(rng.integers(0, _SPAN_MS))
        for item in seq:
            reviews.append(_review(rng, cat.meta[item], float(cat.quality[item]), user, ts))
            if rng.random() > 0.03:  # ~3% ties, as in real dumps
                ts += int(rng.exponential(12 * DAY_MS)) + 60_000
    for i, record in enumerate(cat.meta):
        record["rating_number"] = int(rng.integers(20, 5000))
        record["average_rating"] = round(float(cat.quality[i] + rng.normal(0, 0.1)), 1)
    order = rng.permutation(len(reviews))
    return [reviews[i] for i in order], cat.meta


def _gzip_jsonl(records: list[dict[str, Any]], path: Path) -> None:
    """Byte-reproducible gzip (mtime 0, no file name in the header), written atomically."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz:
        for record in records:
            gz.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def _file_hash(path: Path) -> str:
    return sha256_hex(path.read_bytes())


def write_demo_dataset(
    path: str | Path,
    category: str = DEMO_CATEGORY,
    num_users: int = 2000,
    seed: int = 0,
    num_items: int = 800,
) -> dict[str, Path]:
    """Write ``<path>/<category>.jsonl.gz`` and ``<path>/meta_<category>.jsonl.gz``.

    A manifest (``<path>/.demo_<category>.json``: arguments and file hashes, written last)
    marks a complete dataset; when it matches, nothing is rewritten.
    Returns ``{"reviews": ..., "meta": ...}``.
    """
    if not category or "/" in category:
        raise ValueError(f"category {category!r} must be a non-empty file-name part")
    root = Path(path)
    files = {"reviews": root / f"{category}.jsonl.gz", "meta": root / f"meta_{category}.jsonl.gz"}
    manifest = root / f".demo_{category}.json"
    args = {"format": _FORMAT_VERSION, "category": category, "num_users": num_users,
            "num_items": num_items, "seed": seed}
    if manifest.exists() and all(p.exists() for p in files.values()):
        try:
            saved = json.loads(manifest.read_text(encoding="utf-8"))
            if saved.get("args") == args and saved.get("sha256") == {
                k: _file_hash(p) for k, p in files.items()
            }:
                log.info("demo dataset already complete in %s", root)
                return files
        except (ValueError, OSError) as err:
            log.warning("demo manifest %s unreadable (%s); rewriting", manifest, err)
    reviews, meta = generate_demo(num_users=num_users, num_items=num_items, seed=seed)
    _gzip_jsonl(reviews, files["reviews"])
    _gzip_jsonl(meta, files["meta"])
    hashes = {k: _file_hash(p) for k, p in files.items()}
    atomic_write_text(manifest, json.dumps({"args": args, "sha256": hashes}, indent=1))
    log.info("wrote demo dataset (%d reviews, %d items) to %s", len(reviews), len(meta), root)
    return files
