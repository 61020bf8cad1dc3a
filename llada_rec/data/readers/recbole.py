"""``recbole``: RecBole atomic files ``<X>.inter`` and ``<X>.item``.

Tab-separated, with a header of ``name:type``. ``user_id`` and ``item_id`` are required;
without a ``timestamp`` column the row number is the timestamp (file order). The ``.item``
file is optional (items then have no metadata). Item fields: ``token`` and ``token_seq`` are
kept as strings (a ``token_seq`` stays its space-separated text, as titles are), ``float`` ->
float, ``float_seq`` -> list.

Both files are read by polars into string columns (:func:`read_delimited`), then checked and
typed as columns.  A file with a line the columnar read cannot vouch for (a blank line, a
carriage return, a row of another width, an empty id, a number that polars and ``float``
might read differently, bad UTF-8, a bad header) is read line by line under the rules of
:mod:`llada_rec.data.readers` instead, so skips, counts, line numbers and errors are the same
either way.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Optional

import polars as pl

from llada_rec.data.dataset import DataError, RawInteractions
from llada_rec.data.readers.common import (
    EARLY_CHECK_LINES,
    PLAIN_NUMBER,
    BadLines,
    Lines,
    clean_interactions,
    find_file,
    gc_paused,
    parse_time,
    pick_category,
    read_delimited,
    require_file,
)

log = logging.getLogger(__name__)

_RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")
_NUMBER = PLAIN_NUMBER.strip("^$")
_NUMBER_LIST = rf"^{_NUMBER}( {_NUMBER})*$"  # one space between numbers: split(" ") is split()
_INTERACTION_SCHEMA = {"user": pl.String, "item": pl.String, "timestamp": pl.Float64}


def _recbole_header(path: Path, line: str) -> list[tuple[str, str]]:
    """[(name, type)] of a RecBole header line; error naming the field otherwise."""
    fields = []
    for raw_field in line.rstrip("\r\n").split("\t"):
        name, sep, kind = raw_field.strip().partition(":")
        if not sep or not name or kind not in _RECBOLE_TYPES:
            raise DataError(
                f"{path}:1: header field {raw_field!r} is not name:type with type in "
                f"{', '.join(_RECBOLE_TYPES)} (RecBole atomic file)"
            )
        fields.append((name, kind))
    return fields


def _recbole_lines(path: Path, show_progress: bool) -> Iterator[tuple[int, str]]:
    """(line number, text) of the header (line 1) and every non-blank line after it."""
    for line_no, line in enumerate(Lines(path, show_progress, text=True), 1):
        line = line.rstrip("\r\n")
        if line_no == 1 or line.strip():
            yield line_no, line


def _read_columns(path: Path, show_progress: bool, required: tuple[str, ...]) -> Optional[tuple[pl.DataFrame, list[tuple[str, str]]]]:
    """(the data rows as string columns ``column_i``, the header), or None when the file
    needs the line-by-line rules; a header that is not valid, lacks a ``required`` field or
    repeats a name is left to them too (they raise its error)."""
    header: list[tuple[str, str]] = []

    def first_line(fields: list[str]) -> Optional[tuple[int, bool]]:
        try:
            header[:] = _recbole_header(path, "\t".join(fields))
        except DataError:
            return None
        names = [n for n, _ in header]
        if len(set(names)) != len(names) or any(r not in names for r in required):
            return None
        return len(header), True

    frame = read_delimited(path, show_progress, "\t", first_line)
    return None if frame is None else (frame, header)


def read_recbole(path: Path, category: str | None, show_progress: bool) -> RawInteractions:
    name = pick_category([path], r"(.+)\.inter(?:\.gz)?", category, "<X>.inter file")
    inter_file = require_file([path], f"{name}.inter", "RecBole interactions")
    skipped: Counter = Counter()
    with gc_paused():
        read = _read_columns(inter_file, show_progress, ("user_id", "item_id"))
        frame = None if read is None else _interaction_columns(*read)
        if frame is None:
            frame = _read_interaction_lines(inter_file, skipped, show_progress)
        item_file = find_file([path], f"{name}.item")
        item_meta: dict[str, dict[str, Any]] = {}
        if item_file is None:
            log.warning("%s: no %s.item file; items have no metadata (empty text)", path, name)
        else:
            wanted = frame["item"].unique()
            item_meta = _item_columns(item_file, wanted, show_progress)
            if item_meta is None:
                item_meta = _read_item_lines(item_file, set(wanted.to_list()), skipped, show_progress)
    return RawInteractions(frame["user"], frame["item"], frame["timestamp"], item_meta, str(inter_file), skipped)


def _interaction_columns(frame: pl.DataFrame, header: list[tuple[str, str]]) -> Optional[pl.DataFrame]:
    """(user, item, timestamp) when every row has both ids and a plain finite time (the row
    number without a time column); None otherwise."""
    names = [n for n, _ in header]
    rows = frame.select(
        user=f"column_{names.index('user_id')}",
        item=f"column_{names.index('item_id')}",
        timestamp=pl.col(f"column_{names.index('timestamp')}") if "timestamp" in names
        else pl.int_range(1, pl.len() + 1).cast(pl.String),
    )
    return clean_interactions(rows)


def _read_interaction_lines(inter_file: Path, skipped: Counter, show_progress: bool) -> pl.DataFrame:
    """(user, item, timestamp) of the interactions file line by line (bad rows skipped)."""
    bad = BadLines(inter_file, skipped, "RecBole rows")
    users: list[str] = []
    items: list[str] = []
    timestamps: list[float] = []
    interned: dict[str, str] = {}
    header: list[tuple[str, str]] = []
    for line_no, line in _recbole_lines(inter_file, show_progress):
        if line_no == 1:
            header = _recbole_header(inter_file, line)
            names = [n for n, _ in header]
            for required in ("user_id", "item_id"):
                if required not in names:
                    raise DataError(f"{inter_file}:1: header has no {required!r} field")
            user_col, item_col = names.index("user_id"), names.index("item_id")
            time_col = names.index("timestamp") if "timestamp" in names else None
            continue
        bad.lines += 1
        if bad.lines == EARLY_CHECK_LINES:
            bad.check()
        fields = line.split("\t")
        if len(fields) != len(header):
            bad.skip(line_no, f"expected {len(header)} columns, got {len(fields)}")
            continue
        user, item = fields[user_col], fields[item_col]
        ts = float(bad.lines) if time_col is None else parse_time(fields[time_col])
        if not user or not item or ts is None:
            field = "user_id" if not user else "item_id" if not item else "timestamp"
            bad.skip(line_no, f"missing or invalid field {field!r}")
            continue
        users.append(interned.setdefault(user, user))
        items.append(interned.setdefault(item, item))
        timestamps.append(ts)
    if not header:
        raise DataError(f"{inter_file}: empty file (no header)")
    bad.check(final=True)
    return pl.DataFrame({"user": users, "item": items, "timestamp": timestamps}, schema=_INTERACTION_SCHEMA)


def _typed(column: str, kind: str) -> tuple[pl.Expr, pl.Expr]:
    """(the column as its RecBole type, whether every value converts as ``float`` would)."""
    col = pl.col(column)
    if kind == "float":  # empty -> None
        return col.cast(pl.Float64), (col.is_null() | col.str.contains(PLAIN_NUMBER)).all()
    if kind == "float_seq":  # empty -> []
        as_list = col.str.split(" ").list.eval(pl.element().cast(pl.Float64))
        return (pl.when(col.is_null()).then(pl.lit([], dtype=pl.List(pl.Float64))).otherwise(as_list),
                (col.is_null() | col.str.contains(_NUMBER_LIST)).all())
    return col.fill_null(""), pl.lit(True)


def _item_columns(path: Path, wanted: pl.Series, show_progress: bool) -> Optional[dict[str, dict[str, Any]]]:
    """item_id -> {field: value} (the first row of each wanted item) read as columns, or None
    when a row needs the line-by-line rules."""
    read = _read_columns(path, show_progress, ("item_id",))
    if read is None:
        return None
    frame, header = read
    if dict(header)["item_id"] not in ("token", "token_seq"):
        return None
    typed = [_typed(f"column_{i}", kind) for i, (_, kind) in enumerate(header)]
    item_column = pl.col(f"column_{[n for n, _ in header].index('item_id')}")
    if not frame.select(pl.all_horizontal([ok for _, ok in typed]) & item_column.is_not_null().all()).item():
        return None
    records = frame.select([value.alias(name) for (value, _), (name, _) in zip(typed, header)])
    records = records.filter(pl.col("item_id").is_in(wanted.implode())).unique("item_id", keep="first", maintain_order=True)
    meta: dict[str, dict[str, Any]] = {}
    for record in records.iter_rows(named=True):
        meta[record.pop("item_id")] = record
    return meta


def _read_item_lines(
    path: Path, wanted: set[str], skipped: Counter, show_progress: bool
) -> dict[str, dict[str, Any]]:
    """item_id -> {field: value} with RecBole types applied (token_seq kept as text)."""
    bad = BadLines(path, skipped, "RecBole item rows")
    meta: dict[str, dict[str, Any]] = {}
    header: list[tuple[str, str]] = []
    for line_no, line in _recbole_lines(path, show_progress):
        if line_no == 1:
            header = _recbole_header(path, line)
            if "item_id" not in [n for n, _ in header]:
                raise DataError(f"{path}:1: header has no 'item_id' field")
            continue
        bad.lines += 1
        fields = line.split("\t")
        if len(fields) != len(header):
            bad.skip(line_no, f"expected {len(header)} columns, got {len(fields)}")
            continue
        record: dict[str, Any] = {}
        try:
            for (field, kind), value in zip(header, fields):
                if kind == "float":
                    record[field] = float(value) if value.strip() else None
                elif kind == "float_seq":
                    record[field] = [float(v) for v in value.split()]
                else:
                    record[field] = value
        except ValueError:
            bad.skip(line_no, f"field {field!r} is not a {kind}")
            continue
        item = record.pop("item_id")
        if not item:
            bad.skip(line_no, "missing or invalid field 'item_id'")
        elif item in wanted and item not in meta:
            meta[item] = record
    bad.check(final=True)
    return meta
