"""What a recommend request may hold, checked before it reaches the model.

One request is ``{"history": [item ids], "k": 10}`` (``k`` optional); a body may also be a
list of such objects.  Every violation is a :class:`RequestError` with an HTTP status (400,
or 413 for a body or list that is too large) and a one-line message naming the field; the
Python API raises it as it is, the server answers it as ``{"detail": message}``.  Item ids
are strings (integers are read as their decimal string); unknown ids are skipped and listed
back (docs/DECISIONS.md, "Serving").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from llada_rec.data.item_map import ItemMap
from llada_rec.utils import UserError

#: Default upper bound of k: more than any ranking metric reads, small enough to stay cheap.
MAX_K = 100
#: Default largest request body: room for 1,000 histories of 100 long ids.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: Most histories in one body (a list request).
MAX_QUERIES = 1024
FIELDS = ("history", "k")


class RequestError(UserError, ValueError):
    """A request the recommender refuses: ``status`` (4xx) and a one-line message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Query:
    """One validated history: item indices (newest ``max_history``), unknown ids, and k."""

    items: list[int]
    unknown: list[str]
    k: int


def item_id(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise RequestError(f"{where}: an item id is a string or an integer, got {type(value).__name__}")


def parse_k(value: Any, max_k: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= max_k:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
        raise RequestError(f"{where}k: must be an integer in 1..{max_k}, got {shown}")
    return value


def parse_query(request: Any, item_map: ItemMap, default_k: int, max_k: int = MAX_K, where: str = "") -> Query:
    """One ``{"history": [...], "k": ...}`` object -> :class:`Query` (``where`` prefixes messages)."""
    if not isinstance(request, dict):
        raise RequestError(f"{where or 'body'}: expected an object {{\"history\": [item ids], \"k\": 10}}, got {type(request).__name__}")
    extra = sorted(set(request) - set(FIELDS))
    if extra:
        raise RequestError(f"{where}{extra[0][:40]!r}: unknown field (expected {', '.join(FIELDS)})")
    if "history" not in request:
        raise RequestError(f"{where}history: missing (a list of item ids, oldest first)")
    history = request["history"]
    if not isinstance(history, list):
        raise RequestError(f"{where}history: expected a list of item ids, got {type(history).__name__}")
    if not history:
        raise RequestError(f"{where}history: empty (at least one item id)")
    ids = [item_id(value, f"{where}history[{i}]") for i, value in enumerate(history)]
    items, unknown = item_map.encode(ids)
    if not items:
        raise RequestError(f"{where}history: no known item id (unknown: {', '.join(u[:40] for u in unknown[:5])})")
    k = parse_k(request.get("k", default_k), max_k, where)
    return Query(items, unknown, k)


def parse_queries(requests: Any, item_map: ItemMap, default_k: int, max_k: int = MAX_K) -> tuple[list[Query], bool]:
    """A request object or a list of them -> (queries, whether the body was a list)."""
    if not isinstance(requests, list):
        return [parse_query(requests, item_map, default_k, max_k)], False
    if not requests:
        raise RequestError("body: an empty list (expected {\"history\": [...]} objects)")
    if len(requests) > MAX_QUERIES:
        raise RequestError(f"body: {len(requests)} requests in one list; at most {MAX_QUERIES}", status=413)
    return [parse_query(r, item_map, default_k, max_k, where=f"[{i}].") for i, r in enumerate(requests)], True


def parse_body(body: bytes, item_map: ItemMap, default_k: int, max_k: int = MAX_K) -> tuple[list[Query], bool]:
    """A raw request body (JSON) -> (queries, whether it was a list)."""
    try:
        requests = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RequestError(f"body: not JSON ({str(err)[:80]})") from None
    except RecursionError:
        raise RequestError("body: JSON nested too deeply") from None
    return parse_queries(requests, item_map, default_k, max_k)


def response(items: Sequence[str], scores: Sequence[float], unknown: Sequence[str]) -> dict[str, Any]:
    """The answer to one request (scores rounded to 6 decimals, as in predictions.jsonl)."""
    return {"items": list(items), "scores": [round(float(s), 6) for s in scores], "unknown": list(unknown)}
