"""`llada-rec serve`: the real server in a subprocess on a free localhost port, real HTTP.

Its answers equal the Python API's and `predict`'s; every class of bad request gets its 4xx
with a one-line message, and the server goes on answering; concurrent requests (batched by
LitServe) each get their own answer."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from llada_rec.cli import main
from llada_rec.serving import Recommender

from serving_runs import HISTORIES, fit_and_predict, predictions, write_data

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port: int, body: bytes, path: str = "/predict", timeout: float = 60.0) -> tuple[int, object]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        reply = connection.getresponse()
        text = reply.read()
        return reply.status, json.loads(text) if text else None
    finally:
        connection.close()


def get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        reply = connection.getresponse()
        reply.read()
        return reply.status
    except OSError:
        return 0
    finally:
        connection.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("litserve")  # the [serve] extra (`make install` installs it)
    root = write_data(tmp_path_factory.mktemp("served"))
    run = fit_and_predict(root, "LLaDARec")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    log = (root / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "llada_rec", "serve", "--ckpt_path", str(run), "--port", str(port), "--accelerator", "cpu",
         "--max_batch_size", "8", "--batch_timeout", "0.02", "--max_body_bytes", "100000"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while get(port, "/health") != 200:
            assert server.poll() is None, (root / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "server not ready in 180 s"
            time.sleep(0.5)
        yield port, run
    finally:
        stop(server)
        log.close()


def stop(server: subprocess.Popen) -> None:
    """SIGTERM (the server stops its workers), then SIGKILL to whatever of its session is left."""
    server.terminate()
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(server.pid, signal.SIGKILL)  # its own session (start_new_session): only its processes
    except ProcessLookupError:
        pass
    server.wait()


def session_processes(pid: int) -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and _session(int(p)) == pid]


def _session(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])  # state, ppid, pgrp, session
    except (OSError, IndexError, ValueError):
        return -1


@pytest.mark.slow
def test_served_answers_equal_the_api_and_predict(served):
    port, run = served
    expected = Recommender.load(run).recommend(HISTORIES, k=10)
    rows = predictions(run)
    for history, answer, row in zip(HISTORIES, expected, rows):
        status, got = post(port, json.dumps({"history": history, "k": 10}).encode())
        assert status == 200 and got["items"] == answer.items == row["items"]
        assert got["scores"] == pytest.approx(answer.scores, abs=1e-5) and got["unknown"] == []
    status, many = post(port, json.dumps([{"history": h, "k": 4} for h in HISTORIES]).encode())
    assert status == 200 and [m["items"] for m in many] == [a.items[:4] for a in expected]
    status, got = post(port, json.dumps({"history": ["nope", *HISTORIES[1]], "k": 3}).encode())
    assert status == 200 and got["items"] == expected[1].items[:3] and got["unknown"] == ["nope"]


@pytest.mark.slow
def test_concurrent_requests_each_get_their_own_answer(served):
    port, run = served
    expected = {i: a.items[:5] for i, a in enumerate(Recommender.load(run).recommend(HISTORIES, k=5))}
    jobs = [i % len(HISTORIES) for i in range(40)]
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda i: post(port, json.dumps({"history": HISTORIES[i], "k": 5}).encode()), jobs))
    assert [status for status, _ in replies] == [200] * len(jobs)
    assert [got["items"] for _, got in replies] == [expected[i] for i in jobs]


BAD_REQUESTS = [
    (b'{"history": ["i1"', 400, "not JSON"),
    (b"", 400, "not JSON"),
    (b'{"k": 3}', 400, "history: missing"),
    (b'{"history": []}', 400, "history: empty"),
    (b'{"history": ["zzz"]}', 400, "no known item id"),
    (b'{"history": ["i1"], "k": "ten"}', 400, "k: must be an integer"),
    (b'{"history": ["i1"], "k": 99999999999999999999}', 400, "k: must be an integer"),
    (b'{"history": ["i1"], "k": -1}', 400, "k: must be an integer"),
    (b'{"history": [["i1"]]}', 400, "history[0]: an item id is a string or an integer, got list"),
    (b'{"history": ["i1"], "__class__": "os.system"}', 400, "unknown field"),
    (b'{"history": ["i1", "' + b"x" * 10_000_000 + b'"]}', 413, "over 100,000 bytes"),
]


@pytest.mark.slow
def test_bad_requests_get_their_4xx_and_the_server_keeps_answering(served):
    port, run = served
    [good] = Recommender.load(run).recommend([HISTORIES[2]], k=5)
    for body, status, message in BAD_REQUESTS:
        got_status, got = post(port, body)
        assert got_status == status, (body[:60], got)
        assert message in got["detail"] and "\n" not in got["detail"], got
        ok, answer = post(port, json.dumps({"history": HISTORIES[2], "k": 5}).encode())
        assert ok == 200 and answer["items"] == good.items, body[:60]
    assert get(port, "/health") == 200


@pytest.mark.slow
def test_unbatched_server_answers_and_sigterm_stops_it_with_its_workers(tmp_path):
    """With --max_batch_size 1 (LitServe's unbatched loop) the answers are the API's; `kill PID`
    of the server leaves no worker process behind (LitServe stops them on Ctrl-C only)."""
    pytest.importorskip("litserve")
    root = write_data(tmp_path)
    run = fit_and_predict(root, "MostPopular")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen([sys.executable, "-m", "llada_rec", "serve", "--ckpt_path", str(run), "--port", str(port), "--accelerator", "cpu",
                               "--max_batch_size", "1"],
                              cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while get(port, "/health") != 200:
            assert server.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        expected = Recommender.load(run).recommend(HISTORIES, k=4)
        status, got = post(port, json.dumps([{"history": h, "k": 4} for h in HISTORIES]).encode())
        assert status == 200 and [g["items"] for g in got] == [a.items for a in expected]
        status, got = post(port, json.dumps({"history": HISTORIES[3], "k": 4}).encode())
        assert status == 200 and got["items"] == expected[3].items
        assert len(session_processes(server.pid)) >= 2  # the server and its inference worker
        server.terminate()
        server.wait(timeout=60)
        deadline = time.monotonic() + 30
        while session_processes(server.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert session_processes(server.pid) == []
    finally:
        stop(server)


def test_serve_refuses_a_missing_checkpoint_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--ckpt_path", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and err.count("\n") == 1 and "no such checkpoint or run directory" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--ckpt_path", "best"])
    assert exit_info.value.code == 2 and "needs --config" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for option in ("--ckpt_path", "--config", "--port", "--max_batch_size", "--batch_timeout", "--workers_per_device", "--accelerator"):
        assert option in out
