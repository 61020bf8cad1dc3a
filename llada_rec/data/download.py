"""Download the Amazon Reviews 2023 files of a category: streaming, resumable, atomic.

``download_category("Industrial_and_Scientific", Path("data/scientific"))`` fetches, into one
flat folder that ``read_source("amazon2023" | "amazon2023-benchmark", folder)`` reads:

- ``reviews``: ``raw/review_categories/<Category>.jsonl.gz`` -> ``<Category>.jsonl.gz``
- ``meta``: ``raw/meta_categories/meta_<Category>.jsonl.gz`` -> ``meta_<Category>.jsonl.gz``
- ``benchmark``: ``benchmark/5core/last_out_w_his/<Category>.{train,valid,test}.csv.gz``
  -> ``<Category>.{train,valid,test}.csv.gz``

Each file streams into ``<dest>.part``, which is renamed to ``<dest>`` only once its size
matches the server's Content-Length, so an existing ``<dest>`` is complete and is skipped
without any network access. A ``.part`` left by an interrupted run is resumed with an HTTP
Range request; if the server ignores the range (200 instead of 206), answers from another
offset, or says the range is past the end (416, the part is larger than the file), the file
is fetched again from the start. Only the standard library (urllib) is used.

What arrives is checked before it takes the final name (:func:`content_problem`): a ``.gz``
file must decompress to its end (a truncated or damaged file fails) and start with JSON
objects (``.jsonl.gz``) or a CSV header (``.csv.gz``). A file that fails (an HTML error page,
say) is kept only as ``<dest>.rejected.tmp``; an existing ``<dest>`` gets the quick check
(its head) before it is used.
"""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import os
import re
import zlib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional, Sequence

from tqdm.auto import tqdm

from llada_rec.utils import UserError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_2023"
KINDS = ("reviews", "meta", "benchmark")
USER_AGENT = "llada-rec-downloader/0.1 (python urllib)"


class DownloadError(UserError, RuntimeError):
    """A file could not be fetched; the message says which and what to do about it."""


class IncompleteDownload(DownloadError):
    """The transfer stopped early; the ``.part`` file is kept and the next call resumes it."""


class RejectedDownload(DownloadError):
    """What arrived (or what is already there) is not the file it should be."""


HEAD_LINES = 5  # lines of a .jsonl.gz parsed as JSON before a download is accepted


def category_files(category: str, kinds: Sequence[str] = KINDS) -> dict[str, tuple[str, str]]:
    """name -> (path under the base URL, local file name) of the files of ``kinds``."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown kind(s) {unknown}; expected a subset of {KINDS}")
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", category):
        raise ValueError(f"category {category!r} is not a plain name such as 'Video_Games'")
    files: dict[str, tuple[str, str]] = {}
    if "reviews" in kinds:
        files["reviews"] = (f"raw/review_categories/{category}.jsonl.gz", f"{category}.jsonl.gz")
    if "meta" in kinds:
        name = f"meta_{category}.jsonl.gz"
        files["meta"] = (f"raw/meta_categories/{name}", name)
    if "benchmark" in kinds:
        for split in ("train", "valid", "test"):
            name = f"{category}.{split}.csv.gz"
            files[split] = (f"benchmark/5core/last_out_w_his/{name}", name)
    return files


def download_category(
    category: str,
    dest: Path,
    base_url: str = DEFAULT_BASE_URL,
    kinds: Sequence[str] = KINDS,
    show_progress: bool = True,
    retries: int = 3,
) -> dict[str, Path]:
    """Fetch a category's files into ``dest``; returns name -> local path.

    Names: ``reviews``, ``meta``, and ``train``/``valid``/``test`` for ``benchmark``. A
    transfer that stops early is resumed up to ``retries`` times before giving up.
    """
    dest = Path(dest).expanduser()
    files = category_files(category, kinds)
    out: dict[str, Path] = {}
    for name, (remote, local) in files.items():
        url = f"{base_url.rstrip('/')}/{remote}"
        for attempt in range(retries + 1):
            try:
                out[name] = download_file(url, dest / local, show_progress=show_progress)
                break
            except IncompleteDownload as e:
                if attempt == retries:
                    raise
                log.warning("%s; resuming (attempt %d of %d)", e, attempt + 1, retries)
            except RejectedDownload:
                raise
            except DownloadError as e:
                listing = "; ".join(f"{base_url.rstrip('/')}/{r} -> {dest / l}" for r, l in files.values())
                raise DownloadError(f"{e} The files of {category!r}: {listing}") from e
    return out


def download_file(
    url: str,
    dest: Path,
    show_progress: bool = True,
    timeout: float = 30.0,
    chunk_size: int = 1 << 20,
) -> Path:
    """Stream ``url`` into ``dest`` (via ``dest.part``, resuming it); returns ``dest``."""
    dest = Path(dest)
    if dest.is_file():
        problem = content_problem(dest, whole=False)
        if problem:
            raise RejectedDownload(f"{dest}: {problem}; delete it and run the same command again to download it anew")
        log.info("%s exists; not downloaded again", dest)
        return dest
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    response, offset, total = _open(url, dest, part, offset, timeout)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if response is None:  # the part already holds the whole file
        return _accept(part, dest, url)
    with response, open(part, "ab" if offset else "wb") as out, tqdm(
        total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
        desc=dest.name, disable=not show_progress,
    ) as bar:
        try:
            while chunk := response.read(chunk_size):
                out.write(chunk)
                bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as e:
            out.flush()
            raise IncompleteDownload(
                f"{url}: transfer interrupted after {out.tell()} bytes ({e}); "
                f"{part} is kept and the next call resumes it"
            ) from e
        size = out.tell()
    if total is not None and size != total:
        raise IncompleteDownload(
            f"{url}: got {size} of {total} bytes; {part} is kept and the next call resumes it"
        )
    return _accept(part, dest, url)


def _accept(part: Path, dest: Path, url: str) -> Path:
    """Rename a complete ``part`` to ``dest`` if its content checks out; else keep it as
    ``<dest>.rejected.tmp`` and raise RejectedDownload saying what to do."""
    problem = content_problem(part)
    if problem:
        rejected = dest.with_name(dest.name + ".rejected.tmp")
        os.replace(part, rejected)
        raise RejectedDownload(
            f"{url}: the download is {problem}; it is kept as {rejected} (delete it). Run the same "
            "command again to download it anew, or give a mirror with --data.dataset.base_url URL"
        )
    os.replace(part, dest)
    return dest


def content_problem(path: Path, whole: bool = True) -> Optional[str]:
    """What is wrong with a downloaded ``.gz`` file (named like its final name, or ``.part``
    of it), or None: not gzip, damaged or truncated (``whole``: decompressed to its end),
    or a head that is not JSON lines (``.jsonl.gz``) or a CSV header (``.csv.gz``)."""
    name = path.name.removesuffix(".part")
    if not name.endswith(".gz"):
        return None
    with open(path, "rb") as f:
        start = f.read(64)
    if start[:2] != b"\x1f\x8b":
        text = start.decode("utf-8", "replace").strip()
        return f"not a gzip file (it starts with {text.splitlines()[0][:40]!r})" if text else "an empty file"
    try:
        with gzip.open(path, "rb") as f:
            head = [f.readline() for _ in range(HEAD_LINES)]
            while whole and f.read(1 << 22):
                pass
    except (OSError, EOFError, zlib.error) as e:
        return f"a damaged or truncated gzip file ({e})"
    return _head_problem(name, [line for line in head if line.strip()])


def _head_problem(name: str, head: list[bytes]) -> Optional[str]:
    if not head:
        return "empty once decompressed"
    if ".jsonl" in name:
        for number, line in enumerate(head, 1):
            try:
                if isinstance(json.loads(line), dict):
                    continue
            except ValueError:
                pass
            return f"not JSON lines (line {number}: {line[:40].decode('utf-8', 'replace')!r})"
    if ".csv" in name and b"," not in head[0]:
        return f"not a CSV file (its first line: {head[0][:40].decode('utf-8', 'replace')!r})"
    return None


def _open(
    url: str, dest: Path, part: Path, offset: int, timeout: float
) -> tuple[http.client.HTTPResponse | None, int, int | None]:
    """(response or None when the part is complete, offset to append at, total size or None)."""
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        request = urllib.request.Request(url, headers=headers)
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            total = _content_range_total(e.headers.get("Content-Range"))
            e.close()
            if total == offset:
                return None, offset, total
            log.warning("%s: %s (%d bytes) exceeds the file; fetching again", url, part, offset)
            part.unlink()
            return _open(url, dest, part, 0, timeout)
        hint = " (check the category name and --data.dataset.base_url)" if e.code == 404 else ""
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}{hint}") from e
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(
            f"cannot download {url}: {reason}. Without network access, download the files by "
            f"hand into {dest.parent} (same file names), or give a mirror that has the same "
            "layout with --data.dataset.base_url URL."
        ) from e
    length = response.headers.get("Content-Length")
    if offset and response.status == 206:
        start = _content_range_start(response.headers.get("Content-Range"))
        total = _content_range_total(response.headers.get("Content-Range"))
        if total is None and length is not None:
            total = offset + int(length)
        if start == offset:
            return response, offset, total
        log.warning("%s: server answered the range from byte %s; fetching again", url, start)
        response.close()
        part.unlink()
        return _open(url, dest, part, 0, timeout)
    if offset:
        log.warning("%s: server ignored the range request; fetching from the start", url)
    return response, 0, int(length) if length is not None else None


def _content_range_start(value: str | None) -> int | None:
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (value or "").strip())
    return int(match.group(1)) if match else None


def _content_range_total(value: str | None) -> int | None:
    match = re.fullmatch(r"bytes (?:\d+-\d+|\*)/(\d+)", (value or "").strip())
    return int(match.group(1)) if match else None
