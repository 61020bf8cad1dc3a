"""Readers: one directory of source files -> :class:`RawInteractions`.

``read_source(format, path, category)`` reads one of four layouts (``FORMATS``):

- ``amazon2023``: Amazon Reviews 2023 raw files, reviews ``<Category>.jsonl[.gz]`` and
  metadata ``meta_<Category>.jsonl[.gz]``, in ``path`` or in the official sub-folders
  ``raw/review_categories`` and ``raw/meta_categories``. Items are keyed by ``parent_asin``,
  users by ``user_id``; time is ``timestamp`` (milliseconds, kept as is).
- ``amazon2023-benchmark``: the official split ``<Category>.{train,valid,test}.csv[.gz]``
  (``benchmark/5core/last_out_w_his``; columns ``user_id,parent_asin,rating,timestamp,history``,
  with or without the header line) plus ``meta_<Category>.jsonl[.gz]`` for text.
  All rows of the three files are returned, train first, then valid, then test. The official
  script (``benchmark_scripts/last_out_split.py`` of the Amazon Reviews 2023 repository) sorts
  each user's de-duplicated interactions by timestamp (a stable sort), writes all but the last
  two to train in that order, the second-last to valid and the last to test. ``preprocess``
  sorts by (timestamp, read order), so ties fall in the same order, and its leave-one-out
  gives back valid = second-last and test = last. The files are already a 5-core fixed point
  without repeated (user, item) pairs, so ``kcore=5`` removes nothing. The reader checks this
  per user against the test row's ``history`` column (all earlier items, oldest first) and
  logs a warning with the number of users whose rebuilt sequence differs.
- ``lcrec``: ``<X>.inter.json`` (``{user: [item, ...]}``, oldest first, no time: the
  position in the list is the timestamp) and ``<X>.item.json`` (``{item: {title, ...}}``).
- ``recbole``: atomic files ``<X>.inter`` and ``<X>.item`` (tab-separated, header of
  ``name:type``). ``user_id`` and ``item_id`` are required; without a ``timestamp`` column the
  row number is the timestamp (file order). The ``.item`` file is optional (items then have
  no metadata). Item fields: ``token`` and ``token_seq`` are kept as strings (a ``token_seq``
  stays its space-separated text, as titles are), ``float`` -> float, ``float_seq`` -> list.

Any file may be gzip-compressed (``.gz`` appended); when both exist the plain file is read.
``item_meta`` holds only items that occur in the interactions.

Bad input, what happens:

- unknown format, ``path`` missing or not a directory, a required file missing, no matching
  category or several with ``category=None``: :class:`DataError` (listing what was found).
- line-based files (jsonl, csv, RecBole): a malformed line (bad JSON, not an object, wrong
  number of columns, not UTF-8 in jsonl), a missing or empty required field, a timestamp
  that is not a finite number: the line is skipped and counted in ``RawInteractions.skipped``
  under ``"<file name>: <reason>"``; the first few are logged as warnings with file and
  line number. If more than half of a file's lines are bad (checked after 1,000 lines and at
  the end) the file is not of the format: :class:`DataError` naming it.
- metadata records: same as above; a repeated ``parent_asin`` keeps the first record (counted).
- whole-document files (LC-Rec json) that do not parse or do not have the expected shape, a
  RecBole header that is not ``name:type``, a benchmark csv without the required columns, a
  truncated or corrupt gzip stream, text that is not UTF-8 in csv / RecBole files:
  :class:`DataError` naming the file (and line / key).
- no interaction at all after reading: :class:`DataError`.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import math
import re
import zlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from tqdm.auto import tqdm

from llada_rec.data.dataset import DataError, RawInteractions

log = logging.getLogger(__name__)

FORMATS = ("amazon2023", "amazon2023-benchmark", "lcrec", "recbole")

PROGRESS_MIN_BYTES = 8 << 20  # smaller files read in well under a second: no bar
MAX_BAD_FRACTION = 0.5  # more bad lines than this: the file is not of the format
EARLY_CHECK_LINES = 1000  # ... checked already here, so a wrong 5 GB file fails fast
WARN_FIRST = 5  # bad lines logged one by one per file; the rest only counted

_SPLITS = ("train", "valid", "test")
_BENCHMARK_COLUMNS = ("user_id", "parent_asin", "rating", "timestamp", "history")
_RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")
_PARENT_ASIN = re.compile(rb'"parent_asin"\s*:\s*"([^"\\]*)"')
_decode_json = json.JSONDecoder().decode  # on str: a third faster than json.loads(bytes)


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
    reader = {
        "amazon2023": _read_amazon2023,
        "amazon2023-benchmark": _read_amazon2023_benchmark,
        "lcrec": _read_lcrec,
        "recbole": _read_recbole,
    }[format]
    raw = reader(path, category, show_progress)
    if not raw.users:
        raise DataError(f"{raw.source}: no interactions could be read")
    if raw.skipped:
        log.warning("%s: skipped %s", raw.source, dict(raw.skipped))
    return raw


# ----------------------------------------------------------------------------- files


def _pick_category(dirs: list[Path], pattern: str, category: str | None, what: str) -> str:
    """The category whose main file matches ``pattern``; errors list the candidates."""
    regex = re.compile(pattern)
    found = sorted(
        {
            m.group(1)
            for d in dirs
            if d.is_dir()
            for f in d.iterdir()
            if (m := regex.fullmatch(f.name)) and f.is_file()
        }
    )
    where = " or ".join(str(d) for d in dirs)
    if category is not None:
        if category in found:
            return category
        raise DataError(
            f"{where}: no {what} for category {category!r}; found: {', '.join(found) or 'none'}"
        )
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(f"{where}: no {what} found")
    raise DataError(f"{where}: several categories ({', '.join(found)}); choose one with category=")


def _find_file(dirs: list[Path], name: str) -> Path | None:
    """``name`` or ``name.gz`` in the first directory that has one (plain file first)."""
    for d in dirs:
        for candidate in (d / name, d / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _require_file(dirs: list[Path], name: str, what: str) -> Path:
    found = _find_file(dirs, name)
    if found is None:
        where = " or ".join(str(d) for d in dirs)
        raise DataError(f"{where}: missing {what} file {name}[.gz]")
    return found


class _Lines:
    """Iterate the lines of a plain or gzip file, with a byte-based progress bar.

    Bytes lines by default (the caller decodes each, so a bad line is one skip); ``text=True``
    decodes UTF-8 and turns a decoding error into a :class:`DataError` naming the file.
    """

    def __init__(self, path: Path, show_progress: bool, text: bool = False) -> None:
        self.path, self.text = path, text
        self.size = path.stat().st_size
        self.show = show_progress and self.size >= PROGRESS_MIN_BYTES

    def __iter__(self) -> Iterator[Any]:
        with open(self.path, "rb") as raw, tqdm(
            total=self.size, unit="B", unit_scale=True, desc=self.path.name,
            disable=not self.show, leave=False,
        ) as bar:
            stream: Any = raw
            if self.path.name.endswith(".gz"):
                stream = gzip.GzipFile(fileobj=raw, mode="rb")
            if self.text:
                stream = io.TextIOWrapper(stream, encoding="utf-8", newline="")
            try:
                for n, line in enumerate(stream, 1):
                    if not n & 0x3FFF:
                        bar.update(raw.tell() - bar.n)
                    yield line
            except UnicodeDecodeError as e:
                raise DataError(f"{self.path}: not UTF-8 text ({e})") from e
            except (OSError, EOFError, zlib.error) as e:
                raise DataError(f"{self.path}: cannot read, truncated or corrupt ({e})") from e
            bar.update(self.size - bar.n)


class _BadLines:
    """Counts skipped lines of one file; logs the first few; refuses a mostly bad file."""

    def __init__(self, path: Path, skipped: Counter, what: str) -> None:
        self.path, self.skipped, self.what = path, skipped, what
        self.lines = 0  # non-blank lines seen
        self.bad = 0
        self.first: str = ""

    def skip(self, line_no: int, reason: str) -> None:
        self.bad += 1
        self.skipped[f"{self.path.name}: {reason}"] += 1
        if not self.first:
            self.first = f"line {line_no}: {reason}"
        if self.bad <= WARN_FIRST:
            log.warning("%s:%d: %s; line skipped", self.path, line_no, reason)

    def check(self, final: bool = False) -> None:
        """Raise when more than half of the lines so far are bad."""
        if self.bad and self.bad > MAX_BAD_FRACTION * self.lines:
            raise DataError(
                f"{self.path}: {self.bad} of {self.lines} lines are not valid {self.what} "
                f"(first at {self.first}); is this the right file and format?"
            )
        if final and self.bad > WARN_FIRST:
            log.warning("%s: %d bad lines in all (%d logged)", self.path, self.bad, WARN_FIRST)


def _parse_time(value: Any) -> float | None:
    """A finite float, or None (bools are not times)."""
    if isinstance(value, bool):
        return None
    try:
        ts = float(value)
    except (TypeError, ValueError):
        return None
    return ts if math.isfinite(ts) else None


def _as_id(value: Any) -> str | None:
    """Ids are non-empty strings; integer ids (some dumps) become strings."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


# ----------------------------------------------------------------------------- amazon 2023


def _read_amazon2023(path: Path, category: str | None, show_progress: bool) -> RawInteractions:
    review_dirs = [path, path / "raw" / "review_categories"]
    meta_dirs = [path, path / "raw" / "meta_categories"]
    category = _pick_category(
        review_dirs, r"(?!meta_)(.+)\.jsonl(?:\.gz)?", category, "review file <Category>.jsonl[.gz]"
    )
    reviews = _require_file(review_dirs, f"{category}.jsonl", "reviews")
    meta = _require_file(meta_dirs, f"meta_{category}.jsonl", "metadata")
    skipped: Counter = Counter()
    users, items, timestamps = _read_reviews(reviews, skipped, show_progress)
    item_meta = _read_meta(meta, set(items), skipped, show_progress)
    return RawInteractions(users, items, timestamps, item_meta, str(reviews), skipped)


def _json_records(
    path: Path, bad: "_BadLines", show_progress: bool, skip_line: Optional[Callable[[bytes], bool]] = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, JSON object) of each good line of a JSON-lines file; a malformed line or
    one that is not an object is a counted skip.  ``skip_line`` passes over raw lines
    before parsing (they count as read, not as bad)."""
    for line_no, line in enumerate(_Lines(path, show_progress), 1):
        if not line.strip():
            continue
        bad.lines += 1
        if bad.lines == EARLY_CHECK_LINES:
            bad.check()
        if skip_line is not None and skip_line(line):
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


def _read_reviews(
    path: Path, skipped: Counter, show_progress: bool
) -> tuple[list[str], list[str], list[float]]:
    """(user_id, parent_asin, timestamp) of every valid review line."""
    bad = _BadLines(path, skipped, "review JSON")
    users: list[str] = []
    items: list[str] = []
    timestamps: list[float] = []
    interned: dict[str, str] = {}  # one string object per id: millions of rows share them
    for line_no, record in _json_records(path, bad, show_progress):
        user = _as_id(record.get("user_id"))
        item = _as_id(record.get("parent_asin"))
        ts = _parse_time(record.get("timestamp"))
        if user is None or item is None or ts is None:
            field = "user_id" if user is None else "parent_asin" if item is None else "timestamp"
            bad.skip(line_no, f"missing or invalid field {field!r}")
            continue
        users.append(interned.setdefault(user, user))
        items.append(interned.setdefault(item, item))
        timestamps.append(ts)
    bad.check(final=True)
    return users, items, timestamps


def _read_meta(
    path: Path, wanted: set[str], skipped: Counter, show_progress: bool
) -> dict[str, dict[str, Any]]:
    """Metadata records of the ``wanted`` items, keyed by ``parent_asin``.

    Lines whose ``parent_asin`` a regex finds outside ``wanted`` are not parsed at all: a
    category's metadata is far larger than the items that survive into the interactions.
    """
    bad = _BadLines(path, skipped, "metadata JSON")
    meta: dict[str, dict[str, Any]] = {}

    def unwanted(line: bytes) -> bool:
        quick = _PARENT_ASIN.search(line)
        return quick is not None and quick.group(1).decode("utf-8", "replace") not in wanted

    for line_no, record in _json_records(path, bad, show_progress, skip_line=unwanted):
        item = _as_id(record.get("parent_asin"))
        if item is None:
            bad.skip(line_no, "missing or invalid field 'parent_asin'")
            continue
        if item not in wanted:
            continue
        if item in meta:
            skipped[f"{path.name}: repeated metadata record (first kept)"] += 1
            continue
        meta[item] = record
    bad.check(final=True)
    return meta


def _read_amazon2023_benchmark(
    path: Path, category: str | None, show_progress: bool
) -> RawInteractions:
    split_dirs = [path, path / "benchmark" / "5core" / "last_out_w_his"]
    meta_dirs = [path, path / "raw" / "meta_categories"]
    category = _pick_category(
        split_dirs, r"(.+)\.train\.csv(?:\.gz)?", category,
        "benchmark split <Category>.train.csv[.gz]",
    )
    files = {s: _require_file(split_dirs, f"{category}.{s}.csv", f"benchmark {s}") for s in _SPLITS}
    meta = _require_file(meta_dirs, f"meta_{category}.jsonl", "metadata")
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
    item_meta = _read_meta(meta, set(items), skipped, show_progress)
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
    bad = _BadLines(path, skipped, "benchmark csv rows")
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
        ts = _parse_time(row[columns["timestamp"]])
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
    for line_no, line in enumerate(_Lines(path, show_progress, text=True), 1):
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


# ----------------------------------------------------------------------------- LC-Rec json


def _load_json_document(path: Path) -> Any:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            return json.loads(f.read())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})") from e
    except (UnicodeDecodeError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read ({e})") from e


def _read_lcrec(path: Path, category: str | None, show_progress: bool) -> RawInteractions:
    name = _pick_category([path], r"(.+)\.inter\.json(?:\.gz)?", category, "<X>.inter.json file")
    inter_file = _require_file([path], f"{name}.inter.json", "LC-Rec interactions")
    item_file = _require_file([path], f"{name}.item.json", "LC-Rec items")
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
        ids = [_as_id(it) for it in sequence]
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


# ----------------------------------------------------------------------------- RecBole


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
    for line_no, line in enumerate(_Lines(path, show_progress, text=True), 1):
        line = line.rstrip("\r\n")
        if line_no == 1 or line.strip():
            yield line_no, line


def _read_recbole(path: Path, category: str | None, show_progress: bool) -> RawInteractions:
    name = _pick_category([path], r"(.+)\.inter(?:\.gz)?", category, "<X>.inter file")
    inter_file = _require_file([path], f"{name}.inter", "RecBole interactions")
    skipped: Counter = Counter()
    bad = _BadLines(inter_file, skipped, "RecBole rows")
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
        ts = float(bad.lines) if time_col is None else _parse_time(fields[time_col])
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
    item_file = _find_file([path], f"{name}.item")
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
    bad = _BadLines(path, skipped, "RecBole item rows")
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
