"""``lcrec``: the LC-Rec json files.

``<X>.inter.json`` (``{user: [item, ...]}``, oldest first, no time: the position in the list
is the timestamp) and ``<X>.item.json`` (``{item: {title, ...}}``). Both are whole documents:
one that does not parse or does not have this shape is a :class:`DataError`.

The interactions document is parsed once (the ``json`` module's C parser) and its lists go
into polars as one list column, exploded to (user, item, position) columns.  A document with
an id polars cannot take as a non-empty string (an integer id, which is converted, or a bad
one, which is an error naming the user and position) is read item by item under the same
rules instead (:func:`_interaction_rows`).
"""

from __future__ import annotations

import gzip
import json
import zlib
from itertools import chain
from pathlib import Path
from typing import Any, Optional

import polars as pl

from llada_rec.data.dataset import DataError, RawInteractions
from llada_rec.data.readers.common import as_id, gc_paused, pick_category, require_file

_COLUMNS = {"user": pl.String, "item": pl.String, "timestamp": pl.Float64}


def _load_json_document(path: Path) -> tuple[Any, bool]:
    """(the parsed document, whether its text has ``true`` or ``false`` in it)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            text = f.read()
            return json.loads(text), b"true" in text or b"false" in text
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})") from e
    except (UnicodeDecodeError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read ({e})") from e


def read_lcrec(path: Path, category: str | None, show_progress: bool) -> RawInteractions:
    name = pick_category([path], r"(.+)\.inter\.json(?:\.gz)?", category, "<X>.inter.json file")
    inter_file = require_file([path], f"{name}.inter.json", "LC-Rec interactions")
    item_file = require_file([path], f"{name}.item.json", "LC-Rec items")
    with gc_paused():
        data, may_hold_bools = _load_json_document(inter_file)
        if not isinstance(data, dict):
            raise DataError(
                f"{inter_file}: expected a JSON object {{user: [item, ...]}}, got {type(data).__name__}"
            )
        frame = _interaction_columns(data, may_hold_bools)
        if frame is None:
            frame = _interaction_rows(inter_file, data)
        del data
        meta, _ = _load_json_document(item_file)
    if not isinstance(meta, dict):
        raise DataError(
            f"{item_file}: expected a JSON object {{item: {{...}}}}, got {type(meta).__name__}"
        )
    wanted = set(frame["item"].unique().to_list())
    item_meta: dict[str, dict[str, Any]] = {}
    for item, record in meta.items():
        if not isinstance(record, dict):
            raise DataError(
                f"{item_file}: item {item!r}: expected an object, got {type(record).__name__}"
            )
        if item in wanted:
            item_meta[item] = record
    return RawInteractions(frame["user"], frame["item"], frame["timestamp"], item_meta, str(inter_file))


def _interaction_columns(data: dict[str, Any], may_hold_bools: bool) -> Optional[pl.DataFrame]:
    """(user, item, position) of a document whose every sequence is a list of non-empty
    strings or a list of integers (ids as text, as ``as_id`` makes them), users in document
    order; None otherwise (the caller applies the rules)."""
    sequences = list(data.values())
    if any(type(s) is not list for s in sequences):  # polars would take a string as a list
        return None
    flat = list(chain.from_iterable(sequences))  # one C loop; polars builds nested lists in Python
    items = _ids(flat, pl.String)
    if items is None and not may_hold_bools:  # polars would take true as 1
        items = _ids(flat, pl.Int64)
    if items is None or items.null_count() or (items.str.len_bytes() == 0).any():
        return None  # mixed, another kind of id, null or empty: the rules say which error
    lengths = pl.Series("length", list(map(len, sequences)), dtype=pl.Int64)
    frame = pl.DataFrame([pl.Series("user", list(data), dtype=pl.String), lengths]).select(
        pl.col("user").repeat_by("length").list.explode(keep_nulls=False, empty_as_null=False),
        pl.int_ranges(0, pl.col("length")).list.explode(keep_nulls=False, empty_as_null=False).cast(pl.Float64).alias("timestamp"),
    )
    return frame.with_columns(items).select("user", "item", "timestamp")


def _ids(flat: list[Any], dtype: type[pl.DataType]) -> Optional[pl.Series]:
    """The ids as a string column when every one is of ``dtype``, else None."""
    try:
        column = pl.Series("item", flat, dtype=dtype, strict=True)
    except (TypeError, OverflowError, pl.exceptions.PolarsError):
        return None
    return column if dtype == pl.String else column.cast(pl.String)


def _interaction_rows(inter_file: Path, data: dict[str, Any]) -> pl.DataFrame:
    """The document item by item: integer ids become strings, any other id is an error."""
    users: list[str] = []
    items: list[str] = []
    timestamps: list[float] = []
    longest = max((len(s) for s in data.values() if isinstance(s, list)), default=0)
    positions = [float(i) for i in range(longest)]  # shared: the timestamps of every user
    for user, sequence in data.items():
        if not isinstance(sequence, list):
            raise DataError(
                f"{inter_file}: user {user!r}: expected a list of items, "
                f"got {type(sequence).__name__}"
            )
        ids = [as_id(it) for it in sequence]
        if None in ids:
            pos = ids.index(None)
            raise DataError(
                f"{inter_file}: user {user!r}, position {pos}: item {sequence[pos]!r} is not a "
                "string or integer id"
            )
        users.extend([user] * len(ids))
        items.extend(ids)  # type: ignore[arg-type]
        timestamps.extend(positions[: len(ids)])
    return pl.DataFrame({"user": users, "item": items, "timestamp": timestamps}, schema=_COLUMNS)
