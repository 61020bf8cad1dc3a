"""``amazon2023``: the Amazon Reviews 2023 raw files.

Reviews ``<Category>.jsonl[.gz]`` and metadata ``meta_<Category>.jsonl[.gz]``, in ``path`` or
in the official sub-folders ``raw/review_categories`` and ``raw/meta_categories``. Items are
keyed by ``parent_asin``, users by ``user_id``; time is ``timestamp`` (milliseconds, kept as
is). :class:`JsonlMeta` also serves ``amazon2023-benchmark``.

Reviews are parsed by polars a block of lines at a time into three columns.  A block that
polars cannot take as it is (a malformed line, a field of another type, a missing or empty
id) is read again line by line with the rules of :mod:`llada_rec.data.readers`, so bad lines
are skipped, counted and named by line number exactly as before.  Metadata is read later,
once, only for the items that survive preprocessing (:class:`JsonlMeta`).
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Optional, Sequence

import polars as pl

from llada_rec.data.dataset import ItemMeta, RawInteractions
from llada_rec.data.readers.common import (
    EARLY_CHECK_LINES,
    BadLines,
    Blocks,
    as_id,
    block_lines,
    gc_paused,
    parse_time,
    pick_category,
    require_file,
)

_PARENT_ASIN = re.compile(rb'"parent_asin"\s*:\s*"([^"\\]*)"')
_decode_json = json.JSONDecoder().decode  # on str: a third faster than json.loads(bytes)
_REVIEW_SCHEMA = {"user_id": pl.String, "parent_asin": pl.String, "timestamp": pl.Float64}
_COLUMNS = {"user_id": "user", "parent_asin": "item"}


def read_amazon2023(path: Path, category: str | None, show_progress: bool) -> RawInteractions:
    review_dirs = [path, path / "raw" / "review_categories"]
    meta_dirs = [path, path / "raw" / "meta_categories"]
    category = pick_category(
        review_dirs, r"(?!meta_)(.+)\.jsonl(?:\.gz)?", category, "review file <Category>.jsonl[.gz]"
    )
    reviews = require_file(review_dirs, f"{category}.jsonl", "reviews")
    meta = require_file(meta_dirs, f"meta_{category}.jsonl", "metadata")
    skipped: Counter = Counter()
    frame = _read_reviews(reviews, skipped, show_progress)
    return RawInteractions(
        frame["user"], frame["item"], frame["timestamp"], JsonlMeta(meta, show_progress), str(reviews), skipped
    )


def _read_reviews(path: Path, skipped: Counter, show_progress: bool) -> pl.DataFrame:
    """(user, item, timestamp) of every valid review line, in file order."""
    bad = BadLines(path, skipped, "review JSON")
    frames = []
    with gc_paused():
        for first_line, block in Blocks(path, show_progress):
            frame = _parse_block(block)
            if frame is None:
                frame = _parse_lines(first_line, block, bad)
            else:
                bad.count_good(frame.height)
            frames.append(frame)
    bad.check(final=True)
    if not frames:
        return pl.DataFrame(schema={"user": pl.String, "item": pl.String, "timestamp": pl.Float64})
    return pl.concat(frames, rechunk=True)


def _string_field_everywhere(block: bytes, key: bytes, rows: int) -> bool:
    """Whether ``key`` is followed by a string value ``rows`` times: with one per row (polars
    found it in every row) no row has a number, bool or list there, which polars would turn
    into a string where the line-by-line rules convert or skip it.  (Only a key repeated in
    one line, or nested in an object, could hide one; the review files have neither.)"""
    spaced, tight = key + b': "', key + b':"'  # json.dumps spacing (the official files), or none
    first, second = (spaced, tight) if spaced in block[:4096] else (tight, spaced)
    as_strings = block.count(first)
    if as_strings != rows:
        as_strings += block.count(second)
    return as_strings == rows


def _parse_block(block: bytes) -> Optional[pl.DataFrame]:
    """The block's rows when polars parses every line and every id is a non-empty string and
    every timestamp a finite number; otherwise None (the caller reads it line by line)."""
    try:
        frame = pl.read_ndjson(io.BytesIO(block), schema=_REVIEW_SCHEMA)
    except (pl.exceptions.PolarsError, ValueError):
        return None
    rows = frame.height
    if not all(_string_field_everywhere(block, k, rows) for k in (b'"user_id"', b'"parent_asin"')):
        return None
    valid = frame.select(
        pl.col("user_id").str.len_bytes().gt(0).all()
        & pl.col("parent_asin").str.len_bytes().gt(0).all()
        & pl.col("timestamp").is_finite().all()
    ).item()
    return frame.rename(_COLUMNS) if valid else None


def _parse_lines(first_line: int, block: bytes, bad: BadLines) -> pl.DataFrame:
    """The block line by line: bad lines skipped, counted and logged with their number."""
    users: list[str] = []
    items: list[str] = []
    timestamps: list[float] = []
    for line_no, record in _json_records(first_line, block, bad):
        user = as_id(record.get("user_id"))
        item = as_id(record.get("parent_asin"))
        ts = parse_time(record.get("timestamp"))
        if user is None or item is None or ts is None:
            field = "user_id" if user is None else "parent_asin" if item is None else "timestamp"
            bad.skip(line_no, f"missing or invalid field {field!r}")
            continue
        users.append(user)
        items.append(item)
        timestamps.append(ts)
    return pl.DataFrame(
        {"user": users, "item": items, "timestamp": timestamps},
        schema={"user": pl.String, "item": pl.String, "timestamp": pl.Float64},
    )


def _json_records(first_line: int, block: bytes, bad: BadLines, wanted: Optional[set[bytes]] = None):
    """(line number, JSON object) of each good line of a block; a malformed line or one that
    is not an object is a counted skip.  With ``wanted``, a line whose ``parent_asin`` the
    regex finds outside it is passed over unparsed (it counts as read, not as bad)."""
    for line_no, line in block_lines(first_line, block):
        bad.lines += 1
        if bad.lines == EARLY_CHECK_LINES:
            bad.check()
        if wanted is not None:
            quick = _PARENT_ASIN.search(line)
            if quick is not None and quick.group(1) not in wanted:
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


class JsonlMeta:
    """An Amazon 2023 metadata file (``meta_<Category>.jsonl[.gz]``), read on demand.

    :meth:`read` streams it once and parses only the lines of the wanted items (a regex finds
    a line's ``parent_asin`` first), keeping only the asked fields of each record.
    """

    def __init__(self, path: Path, show_progress: bool) -> None:
        self.path, self.show_progress = path, show_progress

    def read(self, wanted: set[str], fields: Optional[Sequence[str]], skipped: Counter) -> ItemMeta:
        bad = BadLines(self.path, skipped, "metadata JSON")
        wanted_bytes = {w.encode("utf-8") for w in wanted}
        wanted_series = pl.Series(list(wanted), dtype=pl.String)
        meta: dict[str, dict[str, Any]] = {}
        with gc_paused():
            for first_line, block in Blocks(self.path, self.show_progress):
                records = _wanted_records(first_line, block, wanted_series, bad)
                if records is None:  # line by line, as the rules say
                    records = _json_records(first_line, block, bad, wanted_bytes)
                for line_no, record in records:
                    item = as_id(record.get("parent_asin"))
                    if item is None:
                        bad.skip(line_no, "missing or invalid field 'parent_asin'")
                        continue
                    if item not in wanted:
                        continue
                    if item in meta:
                        skipped[f"{self.path.name}: repeated metadata record (first kept)"] += 1
                        continue
                    meta[item] = record if fields is None else {f: record[f] for f in fields if f in record}
        bad.check(final=True)
        return meta


def _wanted_records(first_line: int, block: bytes, wanted: pl.Series, bad: BadLines) -> Optional[list[tuple[int, dict]]]:
    """(line number, record) of the block's lines of ``wanted`` items, found by polars reading
    only ``parent_asin``; None when the block needs the line-by-line rules (a line polars
    cannot parse, or a ``parent_asin`` that is not one string per line)."""
    try:
        ids = pl.read_ndjson(io.BytesIO(block), schema={"parent_asin": pl.String})["parent_asin"]
    except (pl.exceptions.PolarsError, ValueError):
        return None
    if ids.null_count() or not _string_field_everywhere(block, b'"parent_asin"', len(ids)):
        return None
    rows = ids.is_in(wanted).arg_true().to_list()
    records = []
    if rows:
        lines = [(first_line + n, line) for n, line in enumerate(block.split(b"\n")) if line.strip()]
        try:
            records = [(lines[r][0], _decode_json(lines[r][1].decode("utf-8"))) for r in rows]
        except ValueError:  # polars took a line the json module does not
            return None
    bad.count_good(len(ids))
    return records
