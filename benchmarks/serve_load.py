"""Load on `llada-rec serve`: requests/s and latency at 1, 8, 32 concurrent clients, the
server's peak memory, and the offline throughput of the Python API on the same histories.

    python benchmarks/serve_load.py --run runs/demo/version_0 [--requests 64] [--beam 50]
        [--mixed 10000] [--out runs/serve_load.json]

Starts the server on a free 127.0.0.1 port (all traffic stays on this machine), waits for
/health, drives it, stops it, prints the figures and writes them as JSON.  Histories are
drawn (seeded) from the run's item ids, 1 to max_history long.  ``--mixed N`` adds a run of
N requests from 8 clients with 10% malformed ones interleaved: server errors (5xx), wrong
answers on the valid ones (checked against the Python API), 4xx on the malformed ones, and
the server's memory (PSS) over the first and last thousand requests.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from llada_rec.serving import Recommender

REPO = Path(__file__).resolve().parents[1]
MAX_BODY = 65_536  # the server's body limit in this benchmark: the oversized bodies stay cheap to send


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_memory_bytes(pid: int) -> int:
    """Proportional set size (PSS: shared pages split between their sharers, so forked workers
    are not counted twice) of a process and all its descendants (the server and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


class MemoryWatch(threading.Thread):
    """Samples the server tree's memory (PSS) every ``interval`` seconds, with the request count then."""

    def __init__(self, pid: int, counter: list[int], interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.counter, self.interval = pid, counter, interval
        self.samples: list[tuple[int, int]] = []  # (requests done, bytes)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((self.counter[0], tree_memory_bytes(self.pid)))
            self.stop.wait(self.interval)


class Client:
    """One keep-alive HTTP connection to the server."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(self, body: bytes) -> tuple[int, bytes]:
        for attempt in (0, 1):  # the server may close after an error reply: reconnect once
            try:
                self.connection.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
                reply = self.connection.getresponse()
                return reply.status, reply.read()
            except (http.client.HTTPException, ConnectionError):
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt:
                    raise
        raise AssertionError("unreachable")


def start_server(run: str, port: int, opts: argparse.Namespace, config: str | None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "llada_rec", "serve", "--ckpt_path", run, "--port", str(port), "--accelerator", "cpu",
               "--max_batch_size", str(opts.max_batch_size), "--batch_timeout", str(opts.batch_timeout),
               "--max_body_bytes", str(MAX_BODY), "--timeout", "300", *(["--config", config] if config else [])]
    server = subprocess.Popen(command, env=env, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited: {server.stderr.read().decode()[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.5)
    server.kill()
    raise SystemExit("server not ready in 300 s")


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM (the server stops its workers), then SIGKILL to anything left in its session."""
    server.terminate()
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(server.pid, signal.SIGKILL)  # the server's own session: its processes only
    except ProcessLookupError:
        pass
    server.wait()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def drive(port: int, bodies: list[bytes], clients: int, counter: list[int]) -> tuple[float, list[tuple[int, bytes, float]]]:
    """Send ``bodies`` from ``clients`` threads (each its own slice, in order); wall seconds and
    (status, reply, latency) per body in the order given."""
    results: list = [None] * len(bodies)

    def work(worker: int) -> None:
        client = Client(port)
        for i in range(worker, len(bodies), clients):
            start = time.perf_counter()
            status, reply = client.post(bodies[i])
            results[i] = (status, reply, time.perf_counter() - start)
            counter[0] += 1

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(work, range(clients)))
    return time.perf_counter() - start, results


def histories(item_ids: list[str], max_history: int, count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [rng.sample(item_ids, rng.randint(1, min(max_history, len(item_ids)))) for _ in range(count)]


def malformed(rng: random.Random) -> bytes:
    return rng.choice([
        b'{"history": ["a"', b"", b'{"k": 3}', b'{"history": []}', b'{"history": ["no-such-item-id"]}',
        b'{"history": [1.5]}', b'{"history": [null], "k": 5}', b'[]', b'"text"',
        b'{"history": ["x"], "k": 1e99}', b'{"history": ["x"], "k": "10"}', b'{"history": ["x"], "extra": 1}',
        b'{"history": ["' + b"y" * (MAX_BODY + 10) + b'"]}',
    ])


def concurrency_figures(port: int, server_pid: int, bodies: list[bytes], levels: list[int], requests: int) -> dict:
    figures = {}
    for clients in levels:
        counter = [0]
        watch = MemoryWatch(server_pid, counter)
        watch.start()
        sent = (bodies * (1 + clients * requests // len(bodies)))[: clients * requests]
        wall, results = drive(port, sent, clients, counter)
        watch.stop.set()
        watch.join()
        latencies = [r[2] for r in results]
        errors = sum(r[0] != 200 for r in results)
        figures[str(clients)] = {
            "requests": len(sent), "errors": errors, "seconds": round(wall, 3), "requests_per_s": round(len(sent) / wall, 2),
            "p50_ms": round(1000 * percentile(latencies, 50), 1), "p95_ms": round(1000 * percentile(latencies, 95), 1),
            "p99_ms": round(1000 * percentile(latencies, 99), 1),
            "server_peak_pss_mb": round(max(b for _, b in watch.samples) / 2**20, 1),
        }
        print(f"{clients:>3} clients: {figures[str(clients)]}", flush=True)
    return figures


def mixed_run(port: int, server_pid: int, rec: Recommender, pool: list[list[str]], total: int, k: int) -> dict:
    """``total`` requests from 8 clients, every 10th malformed; checked against the API."""
    rng = random.Random(1)
    expected = [a.items for a in rec.recommend(pool, k=k)]
    plan = [(-1, malformed(rng)) if i % 10 == 9 else (i % len(pool), json.dumps({"history": pool[i % len(pool)], "k": k}).encode())
            for i in range(total)]
    counter = [0]
    watch = MemoryWatch(server_pid, counter, interval=0.2)
    watch.start()
    wall, results = drive(port, [body for _, body in plan], 8, counter)
    watch.stop.set()
    watch.join()
    server_errors = sum(status >= 500 for status, _, _ in results)
    wrong = sum(1 for (index, _), (status, reply, _) in zip(plan, results)
                if index >= 0 and (status != 200 or json.loads(reply)["items"] != expected[index]))
    bad_refused = sum(1 for (index, _), (status, _, _) in zip(plan, results) if index < 0 and 400 <= status < 500)
    first = [b for done, b in watch.samples if done <= 1000]
    last = [b for done, b in watch.samples if done >= total - 1000]
    figures = {
        "requests": total, "malformed": sum(index < 0 for index, _ in plan), "malformed_refused_4xx": bad_refused,
        "server_errors_5xx": server_errors, "wrong_answers": wrong, "seconds": round(wall, 1),
        "pss_first_1000_mb": round(statistics.mean(first) / 2**20, 1) if first else None,
        "pss_last_1000_mb": round(statistics.mean(last) / 2**20, 1) if last else None,
    }
    if first and last:
        figures["pss_change"] = round(statistics.mean(last) / statistics.mean(first) - 1, 4)
    print(f"mixed: {figures}", flush=True)
    return figures


def offline_figures(rec: Recommender, pool: list[list[str]], k: int, batch_sizes: list[int]) -> dict:
    figures = {}
    for batch_size in batch_sizes:
        rec.batch_size = batch_size
        rec.recommend(pool[:batch_size], k=k)  # warm-up
        start = time.perf_counter()
        rec.recommend(pool, k=k)
        wall = time.perf_counter() - start
        figures[str(batch_size)] = {"histories": len(pool), "seconds": round(wall, 3), "histories_per_s": round(len(pool) / wall, 2)}
        print(f"offline API, batch {batch_size}: {figures[str(batch_size)]}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/demo/version_0", help="a run directory or checkpoint")
    parser.add_argument("--requests", type=int, default=64, help="requests per client at each concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--beam", type=int, default=None, help="decoding beam size (default: the checkpoint's)")
    parser.add_argument("--max_batch_size", type=int, default=32)
    parser.add_argument("--batch_timeout", type=float, default=0.01)
    parser.add_argument("--histories", type=int, default=512, help="distinct histories drawn")
    parser.add_argument("--mixed", type=int, default=0, help="also run this many requests with 10%% malformed")
    parser.add_argument("--out", default=None, help="JSON file (default: print only)")
    opts = parser.parse_args()
    opts.run = str(Path(opts.run).resolve())  # the server runs in a temporary directory
    decoding = {"beam_size": opts.beam} if opts.beam else None
    rec = Recommender.load(opts.run, decoding=decoding)
    pool = histories(rec.item_map.item_ids, rec.item_map.max_history, opts.histories, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        config = None
        if decoding:
            config = str(Path(tmp) / "decoding.yaml")
            Path(config).write_text(yaml.safe_dump({"model": {"init_args": {"decoding": decoding}}}))
        port = free_port()
        server = start_server(opts.run, port, opts, config)
        try:
            bodies = [json.dumps({"history": h, "k": opts.k}).encode() for h in pool]
            served = concurrency_figures(port, server.pid, bodies, opts.concurrency, opts.requests)
            idle_pss = tree_memory_bytes(server.pid)
            offline = offline_figures(rec, pool, opts.k, sorted({opts.max_batch_size, 256}))
            mixed = mixed_run(port, server.pid, rec, pool, opts.mixed, opts.k) if opts.mixed else None
        finally:
            stop_server(server)
    top = str(max(opts.concurrency))
    result = {
        "run": opts.run, "model": type(rec.model).__name__, "decoding": dataclasses.asdict(rec.model.decoding) if hasattr(rec.model, "decoding") else None,
        "k": opts.k, "max_batch_size": opts.max_batch_size, "batch_timeout": opts.batch_timeout, "cpu_count": os.cpu_count(),
        "served": served, "offline_api": offline, "server_pss_after_runs_mb": round(idle_pss / 2**20, 1), "mixed": mixed,
        "served_over_offline": {b: round(served[top]["requests_per_s"] / offline[b]["histories_per_s"], 3) for b in offline},
    }
    print(json.dumps(result["served_over_offline"]), f"(served at {top} clients / offline API, by offline batch size)")
    if opts.out:
        Path(opts.out).parent.mkdir(parents=True, exist_ok=True)
        Path(opts.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
