"""Readers: one directory of source files -> :class:`RawInteractions`.

``read_source(format, path, category)`` reads one of four layouts (``FORMATS``), one module
each (the module docstring describes the files):

- ``amazon2023`` (:mod:`.amazon2023`): Amazon Reviews 2023 raw files, reviews
  ``<Category>.jsonl[.gz]`` and metadata ``meta_<Category>.jsonl[.gz]``.
- ``amazon2023-benchmark`` (:mod:`.amazon2023_benchmark`): the official split
  ``<Category>.{train,valid,test}.csv[.gz]`` plus ``meta_<Category>.jsonl[.gz]``; all rows,
  train first, then valid, then test.
- ``lcrec`` (:mod:`.lcrec`): ``<X>.inter.json`` and ``<X>.item.json``.
- ``recbole`` (:mod:`.recbole`): atomic files ``<X>.inter`` and (optional) ``<X>.item``.

:mod:`.common` holds what they share (file lookup, line reading, bad-line counting).

Any file may be gzip-compressed (``.gz`` appended); when both exist the plain file is read.
``item_meta`` holds only items that occur in the interactions.  The line-based files are
parsed by polars a block of lines at a time; a block (jsonl) or file (csv, RecBole) with a
line the fast parser cannot vouch for is read line by line under the rules below, so the
skips, counts and messages are the same either way.  The LC-Rec documents are parsed whole
and their lists exploded into columns by polars (item by item only when an id is not a
non-empty string).  Amazon 2023 metadata is not read here but by
``preprocess``, once, for the items that survive its filters.

Bad input, what happens:

- unknown format, ``path`` missing or not a directory, a required file missing, no matching
  category or several with ``category=None``: :class:`DataError` (listing what was found).
- line-based files (jsonl, csv, RecBole): a malformed line (bad JSON, not an object, wrong
  number of columns, not UTF-8 in jsonl), a missing or empty required field, a timestamp
  that is not a finite number: the line is skipped and counted in ``RawInteractions.skipped``
  under ``"<file name>: <reason>"``; the first few are logged as warnings with file and
  line number. If more than half of a file's lines are bad (checked after 1,000 lines and at
  the end) the file is not of the format: :class:`DataError` naming it.
- metadata records: same as above; a repeated ``parent_asin`` keeps the first record (counted);
  lines of items dropped by the filters are not parsed (so not counted when malformed).
- whole-document files (LC-Rec json) that do not parse or do not have the expected shape, a
  RecBole header that is not ``name:type``, a benchmark csv without the required columns, a
  truncated or corrupt gzip stream, text that is not UTF-8 in csv / RecBole files:
  :class:`DataError` naming the file (and line / key).
- no interaction at all after reading: :class:`DataError`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from llada_rec.data.dataset import DataError, RawInteractions
from llada_rec.data.readers.amazon2023 import read_amazon2023
from llada_rec.data.readers.amazon2023_benchmark import read_amazon2023_benchmark
from llada_rec.data.readers.common import (
    EARLY_CHECK_LINES,
    MAX_BAD_FRACTION,
    PROGRESS_MIN_BYTES,
    WARN_FIRST,
)
from llada_rec.data.readers.lcrec import read_lcrec
from llada_rec.data.readers.recbole import read_recbole

__all__ = [
    "FORMATS",
    "read_source",
    "DataError",
    "RawInteractions",
    "PROGRESS_MIN_BYTES",
    "MAX_BAD_FRACTION",
    "EARLY_CHECK_LINES",
    "WARN_FIRST",
]

log = logging.getLogger(__name__)

_READERS = {
    "amazon2023": read_amazon2023,
    "amazon2023-benchmark": read_amazon2023_benchmark,
    "lcrec": read_lcrec,
    "recbole": read_recbole,
}
FORMATS = tuple(_READERS)  # ("amazon2023", "amazon2023-benchmark", "lcrec", "recbole")


def read_source(
    format: str,
    path: str | Path,
    category: str | None = None,
    show_progress: bool = True,
) -> RawInteractions:
    """Read the interactions and item metadata of one category from a directory."""
    if format not in FORMATS:
        raise DataError(f"unknown data format {format!r}; expected one of {', '.join(FORMATS)}")
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such directory (expected the folder with the {format} files)")
    if not path.is_dir():
        raise DataError(f"{path}: not a directory; pass the folder that holds the {format} files")
    raw = _READERS[format](path, category, show_progress)
    if not len(raw.users):
        raise DataError(f"{raw.source}: no interactions could be read")
    if raw.skipped:
        log.warning("%s: skipped %s", raw.source, dict(raw.skipped))
    return raw
