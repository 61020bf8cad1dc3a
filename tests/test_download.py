"""Downloader against a local HTTP server: full, interrupted + resumed, ignored Range, offline."""

from __future__ import annotations

import gzip
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from llada_rec.data.download import (
    DownloadError,
    IncompleteDownload,
    download_category,
    download_file,
)
from llada_rec.data.readers import read_source


class FileServer:
    """Serves ``files`` (url path -> bytes) on 127.0.0.1 with Range support and faults.

    ``ignore_range``: answer every request with 200 and the whole file.
    ``cut_after``: the first ``cut_times`` responses send only this many body bytes, then
    close the connection (the Content-Length still announces the full size).
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.ignore_range = False
        self.cut_after: int | None = None
        self.cut_times = 1
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        range_header = h.headers.get("Range")
        self.requests.append((h.path, range_header))
        data = self.files.get(h.path)
        if data is None:
            h.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
        if match and not self.ignore_range:
            start = int(match.group(1))
            if start >= len(data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            h.send_response(200)
        body = data[start:]
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if self.cut_after is not None and self.cut_times > 0:
            self.cut_times -= 1
            body = body[: self.cut_after]
        h.wfile.write(body)
        h.wfile.flush()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def payload() -> bytes:
    return bytes(range(256)) * 1200 + b"tail"  # 307,204 bytes, position-dependent content


@pytest.fixture
def server(payload: bytes):
    srv = FileServer({"/data/file.bin": payload})
    yield srv
    srv.close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (bound then closed: connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.bin"


def test_full_download(server: FileServer, payload: bytes, tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "file.bin"
    out = download_file(f"{server.url}/data/file.bin", dest, show_progress=False, chunk_size=4096)
    assert out == dest and dest.read_bytes() == payload
    assert not (tmp_path / "sub" / "file.bin.part").exists()
    assert server.requests == [("/data/file.bin", None)]


def test_interrupted_then_resumed(server: FileServer, payload: bytes, tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    part = tmp_path / "file.bin.part"
    server.cut_after = 100_000
    with pytest.raises(IncompleteDownload, match="resumes"):
        download_file(f"{server.url}/data/file.bin", dest, show_progress=False, chunk_size=8192)
    assert not dest.exists()
    assert part.read_bytes() == payload[:100_000]

    download_file(f"{server.url}/data/file.bin", dest, show_progress=False, chunk_size=8192)
    assert dest.read_bytes() == payload
    assert not part.exists()
    assert server.requests[-1] == ("/data/file.bin", "bytes=100000-")


def test_server_ignoring_range_refetches(
    server: FileServer, payload: bytes, tmp_path: Path
) -> None:
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(b"\xff" * 5000)  # wrong bytes: must not survive
    server.ignore_range = True
    download_file(f"{server.url}/data/file.bin", dest, show_progress=False)
    assert server.requests == [("/data/file.bin", "bytes=5000-")]
    assert dest.read_bytes() == payload


def test_part_larger_than_file_refetches(
    server: FileServer, payload: bytes, tmp_path: Path
) -> None:
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(payload + b"garbage")
    download_file(f"{server.url}/data/file.bin", dest, show_progress=False)
    assert dest.read_bytes() == payload
    assert [r for _, r in server.requests] == [f"bytes={len(payload) + 7}-", None]


def test_complete_part_is_renamed(server: FileServer, payload: bytes, tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(payload)
    download_file(f"{server.url}/data/file.bin", dest, show_progress=False)
    assert dest.read_bytes() == payload and len(server.requests) == 1


def test_existing_file_is_skipped_without_network(tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"already here")
    assert download_file(closed_port_url(), dest, show_progress=False) == dest
    assert dest.read_bytes() == b"already here"


def test_unreachable_host_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as info:
        download_file(closed_port_url(), tmp_path / "x" / "file.bin", show_progress=False)
    message = str(info.value)
    assert "by hand" in message and str(tmp_path / "x") in message and "--data.dataset.base_url URL" in message
    assert not (tmp_path / "x" / "file.bin").exists()


def test_http_404(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file(f"{server.url}/data/missing.bin", tmp_path / "m.bin", show_progress=False)


def _gz_jsonl(records: list[dict]) -> bytes:
    return gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode())


def test_download_category_then_read(tmp_path: Path) -> None:
    """Official layout on the server -> flat folder that both Amazon 2023 readers accept."""
    cat = "Tiny_Things"
    reviews, train, valid, test = [], ["user_id,parent_asin,rating,timestamp,history"], [], []
    for u in range(4):
        seq = [f"I{(u + j) % 6}" for j in range(5)]
        for j, item in enumerate(seq):
            ts = 1000 * j + u
            reviews.append({"user_id": f"U{u}", "parent_asin": item, "timestamp": ts, "rating": 5.0})
            row = f"U{u},{item},5.0,{ts},{' '.join(seq[:j])}"
            (train if j < 3 else valid if j == 3 else test).append(row)
    meta = [{"parent_asin": f"I{i}", "title": f"thing {i}"} for i in range(6)]
    base = "/amazon_2023"
    files = {
        f"{base}/raw/review_categories/{cat}.jsonl.gz": _gz_jsonl(reviews),
        f"{base}/raw/meta_categories/meta_{cat}.jsonl.gz": _gz_jsonl(meta),
    }
    header = train[0]
    for split, rows in (("train", train), ("valid", [header] + valid), ("test", [header] + test)):
        files[f"{base}/benchmark/5core/last_out_w_his/{cat}.{split}.csv.gz"] = gzip.compress(
            ("\n".join(rows) + "\n").encode()
        )
    srv = FileServer(files)
    srv.cut_after, srv.cut_times = 50, 1  # the first transfer breaks; download_category resumes
    try:
        out = download_category(cat, tmp_path, base_url=srv.url + base, show_progress=False)
    finally:
        srv.close()
    assert set(out) == {"reviews", "meta", "train", "valid", "test"}
    assert all(p.parent == tmp_path and p.is_file() for p in out.values())
    assert srv.requests[1][1] == "bytes=50-"

    raw = read_source("amazon2023", tmp_path, show_progress=False)
    bench = read_source("amazon2023-benchmark", tmp_path, show_progress=False)
    assert len(raw.users) == len(bench.users) == 20
    assert sorted(zip(raw.users, raw.items, raw.timestamps)) == sorted(
        zip(bench.users, bench.items, bench.timestamps)
    )
    assert raw.item_meta["I3"]["title"] == "thing 3" and bench.item_meta == raw.item_meta


def test_download_category_offline_lists_files(tmp_path: Path) -> None:
    base = closed_port_url().rsplit("/", 1)[0]
    with pytest.raises(DownloadError) as info:
        download_category("Video_Games", tmp_path, base_url=base, kinds=("meta", "benchmark"),
                          show_progress=False)
    message = str(info.value)
    assert "meta_Video_Games.jsonl.gz" in message and "Video_Games.test.csv.gz" in message
    assert "review_categories" not in message  # reviews were not asked for
    assert "\n" not in message and "--data.dataset.base_url URL" in message  # one line, the option as typed


# -- what arrives is checked before it takes the final name ------------------------------
GOOD = _gz_jsonl([{"parent_asin": f"I{i}", "title": f"thing {i}"} for i in range(50)])
BAD_CONTENT = {
    "bad gzip": (b"\x1f\x8b" + bytes(range(200)), "damaged or truncated gzip"),
    "HTML page": (b"<!DOCTYPE html><html><body>503 Service Unavailable</body></html>", "not a gzip file (it starts with '<!DOCTYPE html>"),
    "truncated": (GOOD[: len(GOOD) // 2], "damaged or truncated gzip"),
    "gzip of HTML": (gzip.compress(b"<html>\n<body>moved</body>\n</html>\n"), "not JSON lines (line 1: '<html>"),
}


@pytest.mark.parametrize("case", list(BAD_CONTENT))
def test_a_corrupt_download_is_rejected_and_not_kept(case: str, tmp_path: Path) -> None:
    body, reason = BAD_CONTENT[case]
    srv = FileServer({"/meta_X.jsonl.gz": body})  # Content-Length matches: the size check alone passes
    dest = tmp_path / "meta_X.jsonl.gz"
    try:
        with pytest.raises(DownloadError) as info:
            download_file(f"{srv.url}/meta_X.jsonl.gz", dest, show_progress=False)
    finally:
        srv.close()
    message = str(info.value)
    rejected = tmp_path / "meta_X.jsonl.gz.rejected.tmp"
    assert reason in message and "\n" not in message
    assert f"kept as {rejected} (delete it)" in message and "run the same command again" in message.lower()
    assert "--data.dataset.base_url" in message
    assert not dest.exists() and not (tmp_path / "meta_X.jsonl.gz.part").exists() and rejected.read_bytes() == body


def test_a_good_download_is_kept_and_reused(tmp_path: Path) -> None:
    srv = FileServer({"/meta_X.jsonl.gz": GOOD})
    dest = tmp_path / "meta_X.jsonl.gz"
    try:
        download_file(f"{srv.url}/meta_X.jsonl.gz", dest, show_progress=False)
        download_file(f"{srv.url}/meta_X.jsonl.gz", dest, show_progress=False)
    finally:
        srv.close()
    assert dest.read_bytes() == GOOD and len(srv.requests) == 1  # the second call used the kept file


def test_a_bad_file_already_in_place_names_itself_to_delete(tmp_path: Path) -> None:
    """An HTML page kept by an older version under the final name: every run used to fail on it."""
    dest = tmp_path / "meta_X.jsonl.gz"
    dest.write_bytes(BAD_CONTENT["HTML page"][0])
    with pytest.raises(DownloadError) as info:
        download_file(closed_port_url(), dest, show_progress=False)
    assert str(info.value).startswith(f"{dest}: not a gzip file") and "delete it and run the same command again" in str(info.value)
