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
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

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
            except DownloadError as e:
                listing = "\n".join(
                    f"  {base_url.rstrip('/')}/{r} -> {dest / l}" for r, l in files.values()
                )
                raise DownloadError(f"{e}\nThe files of {category!r}:\n{listing}") from e
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
        log.info("%s exists; not downloaded again", dest)
        return dest
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    response, offset, total = _open(url, dest, part, offset, timeout)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if response is None:  # the part already holds the whole file
        os.replace(part, dest)
        return dest
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
    os.replace(part, dest)
    return dest


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
        hint = " (check the category name and base_url)" if e.code == 404 else ""
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}{hint}") from e
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(
            f"cannot download {url}: {reason}. Without network access, download the files by "
            f"hand into {dest.parent} (same file names), or pass base_url= a mirror that has "
            "the same layout."
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
