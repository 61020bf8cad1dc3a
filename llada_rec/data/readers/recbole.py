"""``recbole``: RecBole atomic files ``<X>.inter`` and ``<X>.item``.

Tab-separated, with a header of ``name:type``. ``user_id`` and ``item_id`` are required;
without a ``timestamp`` column the row number is the timestamp (file order). The ``.item``
file is optional (items then have no metadata). Item fields: ``token`` and ``token_seq`` are
kept as strings (a ``token_seq`` stays its space-separated text, as titles are), ``float`` ->
float, ``float_seq`` -> list.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from llada_rec.data.dataset import DataError, RawInteractions
from llada_rec.data.readers.common import (
    EARLY_CHECK_LINES,
    BadLines,
    Lines,
    find_file,
    gc_paused,
    parse_time,
    pick_category,
    require_file,
)

log = logging.getLogger(__name__)

_RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")


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


def read_recbole(path: Path, category: str | None, show_progress: bool) -> RawInteractions:
    with gc_paused():
        return _read_recbole(path, category, show_progress)


def _read_recbole(path: Path, category: str | None, show_progress: bool) -> RawInteractions:
    name = pick_category([path], r"(.+)\.inter(?:\.gz)?", category, "<X>.inter file")
    inter_file = require_file([path], f"{name}.inter", "RecBole interactions")
    skipped: Counter = Counter()
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
    item_file = find_file([path], f"{name}.item")
    item_meta: dict[str, dict[str, Any]] = {}
    if item_file is None:
        log.warning("%s: no %s.item file; items have no metadata (empty text)", path, name)
    else:
        item_meta = _read_recbole_items(item_file, set(items), skipped, show_progress)
    return RawInteractions(users, items, timestamps, item_meta, str(inter_file), skipped)


def _read_recbole_items(
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
