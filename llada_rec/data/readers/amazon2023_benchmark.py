"""``amazon2023-benchmark``: the official Amazon Reviews 2023 split.

``<Category>.{train,valid,test}.csv[.gz]`` (``benchmark/5core/last_out_w_his``; columns
``user_id,parent_asin,rating,timestamp,history``, with or without the header line) plus
``meta_<Category>.jsonl[.gz]`` for text. All rows of the three files are returned, train
first, then valid, then test, so that ``preprocess``'s leave-one-out gives back valid =
second-last and test = last (why this holds: ``docs/DECISIONS.md``, Data). The reader checks
this per user against the test row's ``history`` column (all earlier items, oldest first) and
logs a warning with the number of users whose rebuilt sequence differs.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Iterator, Optional

import polars as pl

from llada_rec.data.dataset import DataError, RawInteractions
from llada_rec.data.readers.amazon2023 import JsonlMeta
from llada_rec.data.readers.common import (
    EARLY_CHECK_LINES,
    BadLines,
    Lines,
    clean_interactions,
    gc_paused,
    parse_time,
    pick_category,
    read_delimited,
    require_file,
)

log = logging.getLogger(__name__)

_SPLITS = ("train", "valid", "test")
_BENCHMARK_COLUMNS = ("user_id", "parent_asin", "rating", "timestamp", "history")


def read_amazon2023_benchmark(
    path: Path, category: str | None, show_progress: bool
) -> RawInteractions:
    split_dirs = [path, path / "benchmark" / "5core" / "last_out_w_his"]
    meta_dirs = [path, path / "raw" / "meta_categories"]
    category = pick_category(
        split_dirs, r"(.+)\.train\.csv(?:\.gz)?", category,
        "benchmark split <Category>.train.csv[.gz]",
    )
    files = {s: require_file(split_dirs, f"{category}.{s}.csv", f"benchmark {s}") for s in _SPLITS}
    meta = require_file(meta_dirs, f"meta_{category}.jsonl", "metadata")
    skipped: Counter = Counter()
    frames = []
    test_sequences: dict[str, list[str]] = {}  # user -> history + target of the test row
    with gc_paused():
        for split, file in files.items():
            frame = _read_split_fast(file, show_progress)
            if frame is None:  # some line needs the line-by-line rules
                frame = _read_benchmark_csv(file, skipped, show_progress)
            if split == "test" and "history" in frame.columns:
                for user, item, history in frame.select("user", "item", "history").iter_rows():
                    test_sequences[user] = history.split() + [item]
            frames.append(frame.select("user", "item", "timestamp"))
        rows = pl.concat(frames)
        _check_benchmark_order(files["test"], rows, test_sequences)
    return RawInteractions(
        rows["user"], rows["item"], rows["timestamp"], JsonlMeta(meta, show_progress), str(files["train"]), skipped
    )


def _read_split_fast(path: Path, show_progress: bool) -> Optional[pl.DataFrame]:
    """The rows of a split file read by polars (user, item, timestamp, history), or None when
    a line needs the line-by-line rules (:func:`read_delimited`'s, an empty id, a timestamp
    that is not a plain number)."""
    columns: dict[str, int] = {}

    def first_line(row: list[str]) -> tuple[int, bool]:  # the header, or data in the official order
        columns.update(_benchmark_columns(path, row))
        return len(columns), row[0] == "user_id"

    frame = read_delimited(path, show_progress, ",", first_line)
    if frame is None:
        return None
    frame = frame.select(
        user=f"column_{columns['user_id']}", item=f"column_{columns['parent_asin']}",
        timestamp=f"column_{columns['timestamp']}",
        **({"history": pl.col(f"column_{columns['history']}").fill_null("")} if "history" in columns else {}),
    )
    return clean_interactions(frame)


def _read_benchmark_csv(path: Path, skipped: Counter, show_progress: bool) -> pl.DataFrame:
    """The rows of one split file line by line (bad rows skipped and counted): user, item,
    timestamp and, with a history column, history."""
    bad = BadLines(path, skipped, "benchmark csv rows")
    users: list[str] = []
    items: list[str] = []
    timestamps: list[float] = []
    histories: list[str] = []
    columns: dict[str, int] | None = None
    for line_no, row in _csv_rows(path, show_progress):
        if columns is None:  # first row: the header, or data in the official column order
            columns = _benchmark_columns(path, row)
            if row and row[0] == "user_id":
                continue
        bad.lines += 1
        if bad.lines == EARLY_CHECK_LINES:
            bad.check()
        if len(row) != len(columns):
            bad.skip(line_no, f"expected {len(columns)} columns, got {len(row)}")
            continue
        user = row[columns["user_id"]]
        item = row[columns["parent_asin"]]
        ts = parse_time(row[columns["timestamp"]])
        if not user or not item or ts is None:
            field = "user_id" if not user else "parent_asin" if not item else "timestamp"
            bad.skip(line_no, f"missing or invalid field {field!r}")
            continue
        users.append(user)
        items.append(item)
        timestamps.append(ts)
        if "history" in (columns or {}):
            histories.append(row[columns["history"]])
    bad.check(final=True)
    frame = pl.DataFrame(
        {"user": users, "item": items, "timestamp": timestamps},
        schema={"user": pl.String, "item": pl.String, "timestamp": pl.Float64},
    )
    return frame.with_columns(history=pl.Series(histories, dtype=pl.String)) if histories else frame


def _csv_rows(path: Path, show_progress: bool) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of a comma-separated file without quoting (ids hold no commas)."""
    for line_no, line in enumerate(Lines(path, show_progress, text=True), 1):
        line = line.rstrip("\r\n")
        if line.strip():
            yield line_no, line.split(",")


def _benchmark_columns(path: Path, first_row: list[str]) -> dict[str, int]:
    """Column name -> position, from the header or, without one, the official order."""
    if first_row and first_row[0] == "user_id":
        columns = {name.strip(): i for i, name in enumerate(first_row)}
        missing = [c for c in ("user_id", "parent_asin", "timestamp") if c not in columns]
        if missing:
            raise DataError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
        return columns
    if len(first_row) not in (4, 5):
        raise DataError(
            f"{path}:1: expected the columns {','.join(_BENCHMARK_COLUMNS)} "
            f"(with or without a header), got {len(first_row)} fields"
        )
    return {name: i for i, name in enumerate(_BENCHMARK_COLUMNS[: len(first_row)])}


def _check_benchmark_order(test_file: Path, rows: pl.DataFrame, test_sequences: dict[str, list[str]]) -> None:
    """Warn when (timestamp, read order) does not rebuild the test rows' history + target."""
    if not test_sequences:
        return
    rebuilt = (
        rows.with_row_index("order")
        .filter(pl.col("user").is_in(pl.Series(list(test_sequences), dtype=pl.String)))
        .sort(["user", "timestamp", "order"])
        .group_by("user")
        .agg(pl.col("item"))
    )
    sequences = dict(zip(rebuilt["user"].to_list(), rebuilt["item"].to_list()))
    differ = [user for user, expected in test_sequences.items() if sequences.get(user) != expected]
    if differ:
        log.warning(
            "%s: for %d of %d users, the time-ordered train+valid+test rows differ from the "
            "test row's history + target (e.g. user %s); leave-one-out will not match the "
            "official split for them",
            test_file, len(differ), len(test_sequences), differ[0],
        )
