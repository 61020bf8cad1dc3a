"""``lcrec``: the LC-Rec json files.

``<X>.inter.json`` (``{user: [item, ...]}``, oldest first, no time: the position in the list
is the timestamp) and ``<X>.item.json`` (``{item: {title, ...}}``). Both are whole documents:
one that does not parse or does not have this shape is a :class:`DataError`.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Any

from legacy_pipeline.dataset import DataError, RawInteractions
from legacy_pipeline.common import as_id, pick_category, require_file


def _load_json_document(path: Path) -> Any:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            return json.loads(f.read())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})") from e
    except (UnicodeDecodeError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read ({e})") from e


def read_lcrec(path: Path, category: str | None, show_progress: bool) -> RawInteractions:
    name = pick_category([path], r"(.+)\.inter\.json(?:\.gz)?", category, "<X>.inter.json file")
    inter_file = require_file([path], f"{name}.inter.json", "LC-Rec interactions")
    item_file = require_file([path], f"{name}.item.json", "LC-Rec items")
    data = _load_json_document(inter_file)
    if not isinstance(data, dict):
        raise DataError(
            f"{inter_file}: expected a JSON object {{user: [item, ...]}}, got {type(data).__name__}"
        )
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
    meta = _load_json_document(item_file)
    if not isinstance(meta, dict):
        raise DataError(
            f"{item_file}: expected a JSON object {{item: {{...}}}}, got {type(meta).__name__}"
        )
    wanted = set(items)
    item_meta: dict[str, dict[str, Any]] = {}
    for item, record in meta.items():
        if not isinstance(record, dict):
            raise DataError(
                f"{item_file}: item {item!r}: expected an object, got {type(record).__name__}"
            )
        if item in wanted:
            item_meta[item] = record
    return RawInteractions(users, items, timestamps, item_meta, str(inter_file))
