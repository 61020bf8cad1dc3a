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
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterator

from legacy_pipeline.dataset import DataError, RawInteractions
from legacy_pipeline.amazon2023 import read_meta
from legacy_pipeline.common import (
    EARLY_CHECK_LINES,
    BadLines,
    Lines,
    parse_time,
    pick_category,
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
    users: list[str] = []
    items: list[str] = []
    timestamps: list[float] = []
    test_sequences: dict[str, list[str]] = {}  # user -> history + target of the test row
    for split, file in files.items():
        _read_benchmark_csv(
            file, users, items, timestamps, skipped, show_progress,
            test_sequences if split == "test" else None,
        )
    _check_benchmark_order(files["test"], users, items, timestamps, test_sequences)
    item_meta = read_meta(meta, set(items), skipped, show_progress)
    return RawInteractions(users, items, timestamps, item_meta, str(files["train"]), skipped)


def _read_benchmark_csv(
    path: Path,
    users: list[str],
    items: list[str],
    timestamps: list[float],
    skipped: Counter,
    show_progress: bool,
    test_sequences: dict[str, list[str]] | None,
) -> None:
    """Append the rows of one split file; for the test file also keep history + target."""
    bad = BadLines(path, skipped, "benchmark csv rows")
    interned: dict[str, str] = {}
    rows = _csv_rows(path, show_progress)
    columns: dict[str, int] | None = None
    for line_no, row in rows:
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
        user = interned.setdefault(user, user)
        item = interned.setdefault(item, item)
        users.append(user)
        items.append(item)
        timestamps.append(ts)
        if test_sequences is not None and "history" in columns:
            test_sequences[user] = row[columns["history"]].split() + [item]
    bad.check(final=True)


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


def _check_benchmark_order(
    test_file: Path,
    users: list[str],
    items: list[str],
    timestamps: list[float],
    test_sequences: dict[str, list[str]],
) -> None:
    """Warn when (timestamp, read order) does not rebuild the test rows' history + target."""
    if not test_sequences:
        return
    per_user: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    for order, (user, item, ts) in enumerate(zip(users, items, timestamps)):
        per_user[user].append((ts, order, item))
    differ = [
        user
        for user, expected in test_sequences.items()
        if [it for _, _, it in sorted(per_user[user])] != expected
    ]
    if differ:
        log.warning(
            "%s: for %d of %d users, the time-ordered train+valid+test rows differ from the "
            "test row's history + target (e.g. user %s); leave-one-out will not match the "
            "official split for them",
            test_file, len(differ), len(test_sequences), differ[0],
        )
