"""``amazon2023``: the Amazon Reviews 2023 raw files.

Reviews ``<Category>.jsonl[.gz]`` and metadata ``meta_<Category>.jsonl[.gz]``, in ``path`` or
in the official sub-folders ``raw/review_categories`` and ``raw/meta_categories``. Items are
keyed by ``parent_asin``, users by ``user_id``; time is ``timestamp`` (milliseconds, kept as
is). :func:`read_meta` also serves ``amazon2023-benchmark``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from legacy_pipeline.dataset import RawInteractions
from legacy_pipeline.common import (
    EARLY_CHECK_LINES,
    BadLines,
    Lines,
    as_id,
    parse_time,
    pick_category,
    require_file,
)

_PARENT_ASIN = re.compile(rb'"parent_asin"\s*:\s*"([^"\\]*)"')
_decode_json = json.JSONDecoder().decode  # on str: a third faster than json.loads(bytes)


def read_amazon2023(path: Path, category: str | None, show_progress: bool) -> RawInteractions:
    review_dirs = [path, path / "raw" / "review_categories"]
    meta_dirs = [path, path / "raw" / "meta_categories"]
    category = pick_category(
        review_dirs, r"(?!meta_)(.+)\.jsonl(?:\.gz)?", category, "review file <Category>.jsonl[.gz]"
    )
    reviews = require_file(review_dirs, f"{category}.jsonl", "reviews")
    meta = require_file(meta_dirs, f"meta_{category}.jsonl", "metadata")
    skipped: Counter = Counter()
    users, items, timestamps = _read_reviews(reviews, skipped, show_progress)
    item_meta = read_meta(meta, set(items), skipped, show_progress)
    return RawInteractions(users, items, timestamps, item_meta, str(reviews), skipped)


def _json_records(
    path: Path, bad: BadLines, show_progress: bool, skip_line: Optional[Callable[[bytes], bool]] = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, JSON object) of each good line of a JSON-lines file; a malformed line or
    one that is not an object is a counted skip.  ``skip_line`` passes over raw lines
    before parsing (they count as read, not as bad)."""
    for line_no, line in enumerate(Lines(path, show_progress), 1):
        if not line.strip():
            continue
        bad.lines += 1
        if bad.lines == EARLY_CHECK_LINES:
            bad.check()
        if skip_line is not None and skip_line(line):
            continue
        try:
            record = _decode_json(line.decode("utf-8"))
        except ValueError:  # JSONDecodeError, UnicodeDecodeError
            bad.skip(line_no, "malformed JSON line")
            continue
        if not isinstance(record, dict):
            bad.skip(line_no, "line is not a JSON object")
            continue
        yield line_no, record


def _read_reviews(
    path: Path, skipped: Counter, show_progress: bool
) -> tuple[list[str], list[str], list[float]]:
    """(user_id, parent_asin, timestamp) of every valid review line."""
    bad = BadLines(path, skipped, "review JSON")
    users: list[str] = []
    items: list[str] = []
    timestamps: list[float] = []
    interned: dict[str, str] = {}  # one string object per id: millions of rows share them
    for line_no, record in _json_records(path, bad, show_progress):
        user = as_id(record.get("user_id"))
        item = as_id(record.get("parent_asin"))
        ts = parse_time(record.get("timestamp"))
        if user is None or item is None or ts is None:
            field = "user_id" if user is None else "parent_asin" if item is None else "timestamp"
            bad.skip(line_no, f"missing or invalid field {field!r}")
            continue
        users.append(interned.setdefault(user, user))
        items.append(interned.setdefault(item, item))
        timestamps.append(ts)
    bad.check(final=True)
    return users, items, timestamps


def read_meta(
    path: Path, wanted: set[str], skipped: Counter, show_progress: bool
) -> dict[str, dict[str, Any]]:
    """Metadata records of the ``wanted`` items, keyed by ``parent_asin``.

    Lines whose ``parent_asin`` a regex finds outside ``wanted`` are not parsed at all: a
    category's metadata is far larger than the items that survive into the interactions.
    """
    bad = BadLines(path, skipped, "metadata JSON")
    meta: dict[str, dict[str, Any]] = {}

    def unwanted(line: bytes) -> bool:
        quick = _PARENT_ASIN.search(line)
        return quick is not None and quick.group(1).decode("utf-8", "replace") not in wanted

    for line_no, record in _json_records(path, bad, show_progress, skip_line=unwanted):
        item = as_id(record.get("parent_asin"))
        if item is None:
            bad.skip(line_no, "missing or invalid field 'parent_asin'")
            continue
        if item not in wanted:
            continue
        if item in meta:
            skipped[f"{path.name}: repeated metadata record (first kept)"] += 1
            continue
        meta[item] = record
    bad.check(final=True)
    return meta
