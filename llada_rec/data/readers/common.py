"""What every reader shares: finding the files, reading lines (gzip, progress bar), counting
bad lines, and parsing ids and times.

A reader iterates :class:`Lines` of a file, calls :meth:`BadLines.skip` for each line it
cannot use and :meth:`BadLines.check` to refuse a file that is mostly bad (see the policy in
:mod:`llada_rec.data.readers`).
"""

from __future__ import annotations

import gc
import gzip
import io
import logging
import math
import re
import zlib
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Optional

import polars as pl
from tqdm.auto import tqdm

from llada_rec.data.dataset import DataError

log = logging.getLogger(__name__)

PROGRESS_MIN_BYTES = 8 << 20  # smaller files read in well under a second: no bar
MAX_BAD_FRACTION = 0.5  # more bad lines than this: the file is not of the format
EARLY_CHECK_LINES = 1000  # ... checked already here, so a wrong 5 GB file fails fast
WARN_FIRST = 5  # bad lines logged one by one per file; the rest only counted
BLOCK_BYTES = 8 << 20  # columnar readers parse whole lines in blocks of about this size
PLAIN_NUMBER = r"^-?[0-9]+(\.[0-9]+)?$"  # what float() and polars read alike
# a line that str.strip() empties (the line-by-line rules ignore it): Rust's \s lacks \x1c-\x1f
_BLANK_ROW = r"^[\s\x1c-\x1f]*$"


def pick_category(dirs: list[Path], pattern: str, category: str | None, what: str) -> str:
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


def find_file(dirs: list[Path], name: str) -> Path | None:
    """``name`` or ``name.gz`` in the first directory that has one (plain file first)."""
    for d in dirs:
        for candidate in (d / name, d / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def require_file(dirs: list[Path], name: str, what: str) -> Path:
    found = find_file(dirs, name)
    if found is None:
        where = " or ".join(str(d) for d in dirs)
        raise DataError(f"{where}: missing {what} file {name}[.gz]")
    return found


class Lines:
    """Iterate the lines of a plain or gzip file, with a byte-based progress bar.

    Bytes lines by default (the caller decodes each, so a bad line is one skip); ``text=True``
    decodes UTF-8 and turns a decoding error into a :class:`DataError` naming the file.
    """

    def __init__(self, path: Path, show_progress: bool, text: bool = False) -> None:
        self.path, self.text = path, text
        self.size = path.stat().st_size
        self.show = show_progress and self.size >= PROGRESS_MIN_BYTES

    @contextmanager
    def _opened(self) -> Iterator[tuple[BinaryIO, Any, Any]]:
        """(raw file, decompressed stream, progress bar); the bar ends full."""
        with open(self.path, "rb") as raw, tqdm(
            total=self.size, unit="B", unit_scale=True, desc=self.path.name,
            disable=not self.show, leave=False,
        ) as bar:
            stream: Any = raw
            if self.path.name.endswith(".gz"):
                stream = gzip.GzipFile(fileobj=raw, mode="rb")
            yield raw, stream, bar
            bar.update(self.size - bar.n)

    def __iter__(self) -> Iterator[Any]:
        with self._opened() as (raw, stream, bar):
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


class Blocks(Lines):
    """Iterate a plain or gzip file in blocks of whole lines: ``(number of the block's first
    line, bytes)``, with the same progress bar and read errors as :class:`Lines`."""

    def __init__(self, path: Path, show_progress: bool, block_bytes: int | None = None) -> None:
        super().__init__(path, show_progress)
        self.block_bytes = block_bytes or BLOCK_BYTES

    def __iter__(self) -> Iterator[tuple[int, bytes]]:  # type: ignore[override]
        with self._opened() as (raw, stream, bar):
            line_no, rest = 1, b""
            while True:
                try:
                    data = stream.read(self.block_bytes)
                except (OSError, EOFError, zlib.error) as e:
                    raise DataError(f"{self.path}: cannot read, truncated or corrupt ({e})") from e
                bar.update(raw.tell() - bar.n)
                if not data:
                    break
                data = rest + data
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # no line end yet: keep reading
                    rest = data
                    continue
                block, rest = data[:cut], data[cut:]
                yield line_no, block
                line_no += block.count(b"\n")
            if rest:
                yield line_no, rest


def read_delimited(
    path: Path, show_progress: bool, separator: str, first_line: Callable[[list[str]], Optional[tuple[int, bool]]]
) -> Optional[pl.DataFrame]:
    """The rows of a delimited file without quoting as string columns ``column_0``, ... (an
    empty field is null), read by polars a block at a time; None when some line needs the
    line-by-line rules: a blank or whitespace-only line, a carriage return, a row with another
    number of fields, text that is not UTF-8, no data row.  ``first_line(fields)`` gives (the
    number of fields, whether that line is a header to leave out), or None for the line-by-line
    rules; it may raise DataError."""
    frames, width, sep = [], 0, separator.encode()
    for _, block in Blocks(path, show_progress):
        if b"\r" in block or b"\n\n" in block or block.startswith((b"\n", b"\xef\xbb\xbf")):
            return None  # (polars drops a byte-order mark that starts its input; the rules keep it)
        if not width:
            head, _, rest = block.partition(b"\n")
            try:
                shape = first_line(head.decode("utf-8").split(separator))
            except UnicodeDecodeError:
                return None
            if shape is None:
                return None
            width, is_header = shape
            block = rest if is_header else block
        rows = block.count(b"\n") + (not block.endswith(b"\n"))
        if not block:
            continue
        if block.count(sep) != rows * (width - 1):  # a longer row makes polars raise
            return None
        try:
            frame = pl.read_csv(
                io.BytesIO(block), has_header=False, separator=separator, quote_char=None,
                infer_schema=False, new_columns=[f"column_{i}" for i in range(width)],
            )
        except (pl.exceptions.PolarsError, ValueError):
            return None
        frames.append(frame)
    if not frames:
        return None
    frame = pl.concat(frames)
    suspects = frame.filter(pl.col("column_0").fill_null("").str.contains(_BLANK_ROW))  # few or none
    blank = suspects.select(pl.concat_str(pl.all().fill_null("")).str.contains(_BLANK_ROW).any()).item()
    return None if blank else frame


def clean_interactions(frame: pl.DataFrame) -> Optional[pl.DataFrame]:
    """``frame`` (string columns user, item, timestamp, maybe more) with float times when every
    row has both ids and a time that is a plain finite number; None otherwise (the caller
    applies the line-by-line rules)."""
    clean = frame.select(
        pl.col("user").is_not_null().all() & pl.col("item").is_not_null().all()
        & pl.col("timestamp").str.contains(PLAIN_NUMBER).all()
    ).item()
    if not clean:
        return None
    frame = frame.with_columns(pl.col("timestamp").cast(pl.Float64))
    return frame if frame["timestamp"].is_finite().all() else None  # 400 digits: inf, a bad time


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a reader builds millions of acyclic
    objects (it would rescan them all, again and again; a quarter of the old read time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def block_lines(first_line: int, block: bytes) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of the non-blank lines of a block."""
    for offset, line in enumerate(block.split(b"\n")):
        if line.strip():
            yield first_line + offset, line


class BadLines:
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

    def count_good(self, lines: int) -> None:
        """``lines`` more non-blank lines, none bad (a block read in one go); the early check
        runs as it would have line by line."""
        total = self.lines + lines
        if self.lines < EARLY_CHECK_LINES <= total:
            self.lines = EARLY_CHECK_LINES
            self.check()
        self.lines = total

    def check(self, final: bool = False) -> None:
        """Raise when more than half of the lines so far are bad."""
        if self.bad and self.bad > MAX_BAD_FRACTION * self.lines:
            raise DataError(
                f"{self.path}: {self.bad} of {self.lines} lines are not valid {self.what} "
                f"(first at {self.first}); is this the right file and format?"
            )
        if final and self.bad > WARN_FIRST:
            log.warning("%s: %d bad lines in all (%d logged)", self.path, self.bad, WARN_FIRST)


def parse_time(value: Any) -> float | None:
    """A finite float, or None (bools are not times)."""
    if isinstance(value, bool):
        return None
    try:
        ts = float(value)
    except (TypeError, ValueError):
        return None
    return ts if math.isfinite(ts) else None


def as_id(value: Any) -> str | None:
    """Ids are non-empty strings; integer ids (some dumps) become strings."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None
