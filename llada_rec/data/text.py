"""Item metadata -> one clean string per item, the input of the text encoder (SPEC §2).

The text of an item is the values of ``fields`` (default: title, features, categories,
description, as in the authors' code) in that order, **unlabelled** (no field names; why:
``docs/DECISIONS.md``, "Text").  Each value is cleaned (HTML entities unescaped, also
double-escaped ones such as ``&amp;eacute;``; tags removed; whitespace collapsed); empty
fields are skipped; fields are joined by ". " (a space alone when the field already ends in
sentence punctuation), and the whole is capped at ``max_chars`` on a word boundary.

Value types met in the Amazon dumps: ``str``; lists of ``str`` (2023 ``features``,
``description``, ``categories``); nested lists (2018 ``categories``); numbers; ``None``; dicts
(2023 ``details``, if asked for) as "key: value" pairs.  Repeated parts of one field (the 2018
nested categories repeat their roots) are kept once.

An item with no text at all gets the fallback ``"item <id>"`` (its original id) so every
item still has an embedding; the number of such items is returned for the caller to report.
"""

from __future__ import annotations

import html
import re
from typing import Any, Iterator, Sequence

DEFAULT_TEXT_FIELDS: tuple[str, ...] = ("title", "features", "categories", "description")

_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>", re.DOTALL)
_SPACE = re.compile(r"\s+")
_TERMINAL = (".", "!", "?", ";", ":")
_MAX_UNESCAPE_ROUNDS = 4


def clean_text(text: str) -> str:
    """Unescape HTML entities (repeatedly, for double escaping), drop tags, collapse spaces."""
    for _ in range(_MAX_UNESCAPE_ROUNDS):
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    text = _TAG.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def _leaves(value: Any) -> Iterator[str]:
    """The cleaned, non-empty string parts of a field value, depth first."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        cleaned = clean_text(value)
        if cleaned:
            yield cleaned
    elif isinstance(value, (int, float)):
        if value == value:  # skip NaN
            yield f"{value:g}" if isinstance(value, float) else str(value)
    elif isinstance(value, dict):
        for key, inner in value.items():
            parts = list(_leaves(inner))
            if parts:
                yield f"{clean_text(str(key))}: {', '.join(parts)}"
    elif isinstance(value, (list, tuple)):
        for inner in value:
            yield from _leaves(inner)
    else:
        raise TypeError(f"unsupported value type {type(value).__name__}")


def _join(parts: Sequence[str], separator: str) -> str:
    """Join parts with ``separator``, or a bare space after a part ending a sentence."""
    out = ""
    for part in parts:
        if not out:
            out = part
        elif out.endswith(_TERMINAL):
            out = f"{out} {part}"
        else:
            out = f"{out}{separator}{part}"
    return out


def field_text(value: Any) -> str:
    """One field's cleaned text; list parts joined by ", ", repeated parts kept once."""
    parts = list(dict.fromkeys(_leaves(value)))
    return _join(parts, ", ")


def truncate_words(text: str, max_chars: int) -> str:
    """Cap ``text`` at ``max_chars`` characters, cutting at the last space when there is one."""
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars + 1].rfind(" ")
    head = text[:cut] if cut > 0 else text[:max_chars]
    return head.rstrip(" ,;:-")


def item_text(meta: dict[str, Any], fields: Sequence[str] = DEFAULT_TEXT_FIELDS) -> str:
    """The text of one item: cleaned values of ``fields``, in order, empty ones skipped."""
    texts = []
    for name in fields:
        if name not in meta:
            continue
        try:
            texts.append(field_text(meta[name]))
        except TypeError as err:
            raise TypeError(f"field {name!r}: {err}") from None
    return _join([t for t in texts if t], ". ")


def item_texts(
    item_ids: Sequence[str],
    item_meta: Sequence[dict],
    fields: Sequence[str] = DEFAULT_TEXT_FIELDS,
    max_chars: int = 1000,
) -> tuple[list[str], int]:
    """One string per item (aligned with ``item_ids``) and the number of fallbacks used.

    ``item_meta[i]`` is the metadata dict of ``item_ids[i]`` (``None`` or ``{}`` when the item
    has none).  Items without any text get ``"item <id>"``.
    """
    if len(item_ids) != len(item_meta):
        raise ValueError(
            f"item_ids has {len(item_ids)} entries but item_meta has {len(item_meta)}"
        )
    if isinstance(fields, str):
        raise TypeError(f"fields must be a sequence of field names, not the string {fields!r}")
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    texts: list[str] = []
    fallbacks = 0
    for item_id, meta in zip(item_ids, item_meta):
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise TypeError(
                f"metadata of item {item_id!r} is a {type(meta).__name__}, expected a dict"
            )
        try:
            text = item_text(meta, fields)
        except TypeError as err:
            raise TypeError(f"item {item_id!r}: {err}") from None
        if not text:
            text = f"item {item_id}"
            fallbacks += 1
        texts.append(truncate_words(text, max_chars))
    return texts, fallbacks
