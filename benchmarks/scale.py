"""Scaling benchmark: seconds and peak RSS of each data stage as the data grows (issue 22).

Generates deterministic Amazon-2023-format raw files (``<Category>.jsonl`` reviews and
``meta_<Category>.jsonl``; power-law item and user popularity, items = reviews / 10, users =
reviews / 8) and measures, each stage in a fresh subprocess (so the peak RSS is the stage's):

- ``read``: ``read_source("amazon2023")`` + ``preprocess(kcore=5)`` (metadata included), for
  the library's reader (``new``) and the pre-columnar one kept in ``tests/legacy_pipeline``
  (``old``) on the same files; their counts and a hash of the sequences are compared;
- ``samples``: the train / val / test samples (max_history 20) from the preprocessed data;
- ``tokenizer``: codes and collision resolution of an RQ-KMeans tokenizer (M=4, K=256, fitted
  on 10k items) on N random 128-d embeddings, as at the end of a tokenizer's ``fit``, in
  chunks (``new``) and with the whole [N, M, K] distance table (``old``, the code before);
- ``index``: the decoding index (``ItemCodeIndex``) over N unique random code tuples.

Then a table and JSON (``--out``) with the log-log growth exponents between sizes.  The
generated files are deleted at the end (``--keep`` keeps them)::

    python benchmarks/scale.py --reviews 250000 1000000 4000000 --impl old new \
        --tokenizer-items 10000 100000 1000000 --out docs/results/scale/scale.json
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CATEGORY = "Synthetic"


# ----------------------------------------------------------------------------- data


def _ids(prefix: str, index: np.ndarray, salt: int, width: int) -> Any:
    """Deterministic, Amazon-looking ids: ``prefix`` + a zero-padded scrambled number."""
    import polars as pl

    index = index.astype(np.uint64)
    if width >= 20:  # a bijection of the 64-bit integers
        mixed = index * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt)
    else:  # a bijection of [0, 2^31 - 1)
        mixed = (index * np.uint64(48271) + np.uint64(salt)) % np.uint64(2**31 - 1)
    digits = pl.Series(mixed).cast(pl.String).str.zfill(width)
    return pl.select(pl.concat_str(pl.lit(prefix), digits)).to_series()


def _power_law(rng: np.random.Generator, n: int, size: int, exponent: float) -> np.ndarray:
    """``size`` draws from 0..n-1 with P(r) proportional to (r + 1)^-exponent, ranks shuffled."""
    weights = (np.arange(1, n + 1, dtype=np.float64)) ** -exponent
    cdf = np.cumsum(weights)
    draws = np.searchsorted(cdf, rng.random(size) * cdf[-1])
    return rng.permutation(n)[draws]


def generate(directory: Path, reviews: int, seed: int = 0) -> dict[str, Any]:
    """Write ``<CATEGORY>.jsonl`` and ``meta_<CATEGORY>.jsonl`` with ``reviews`` lines."""
    import polars as pl

    rng = np.random.default_rng(seed)
    num_items, num_users = max(10, reviews // 10), max(8, reviews // 8)
    directory.mkdir(parents=True, exist_ok=True)
    review_file = directory / f"{CATEGORY}.jsonl"
    chunk = 2_000_000
    with open(review_file, "wb") as out:
        for start in range(0, reviews, chunk):
            n = min(chunk, reviews - start)
            users = _power_law(rng, num_users, n, 0.6)
            items = _power_law(rng, num_items, n, 0.9)
            frame = pl.select(
                rating=pl.Series(rng.integers(1, 6, n).astype(np.float64)),
                title=pl.lit("Works as described"),
                text=pl.lit("Good value; arrived on time and does what it says."),
                images=pl.lit([], dtype=pl.List(pl.String)),
                asin=_ids("B", items, 17, 10),
                parent_asin=_ids("B", items, 1, 10),
                user_id=_ids("A", users, 3, 27),
                timestamp=pl.Series(1_500_000_000_000 + rng.integers(0, 2 * 10**11, n)),
                helpful_vote=pl.Series(rng.integers(0, 3, n)),
                verified_purchase=pl.lit(True),
            )
            frame.write_ndjson(out)
    items = np.arange(num_items)
    words = np.array(["sturdy", "compact", "steel", "blue", "quiet", "portable", "digital", "kit"])
    meta = pl.select(
        main_category=pl.lit("Synthetic"),
        title=pl.lit("Thing ") + pl.Series(items).cast(pl.String) + pl.lit(" &amp; co"),
        average_rating=pl.lit(4.2),
        rating_number=pl.Series(rng.integers(1, 500, num_items)),
        features=pl.Series([list(words[rng.integers(0, 8, 3)]) for _ in range(min(num_items, 1000))] * (num_items // 1000 + 1))[:num_items],
        description=pl.lit(["A thing for doing things, made of good materials."], dtype=pl.List(pl.String)),
        price=pl.lit(None, dtype=pl.Float64),
        images=pl.lit([], dtype=pl.List(pl.String)),
        store=pl.lit("Acme"),
        categories=pl.lit(["Synthetic", "Things"], dtype=pl.List(pl.String)),
        details=pl.lit({"Weight": "1 kg", "Colour": "blue"}),
        parent_asin=_ids("B", items, 1, 10),
        bought_together=pl.lit(None, dtype=pl.String),
    )
    meta.sample(fraction=1.0, shuffle=True, seed=seed).write_ndjson(directory / f"meta_{CATEGORY}.jsonl")
    return {
        "reviews": reviews,
        "items": num_items,
        "users": num_users,
        "review_bytes": review_file.stat().st_size,
        "meta_bytes": (directory / f"meta_{CATEGORY}.jsonl").stat().st_size,
    }


# ----------------------------------------------------------------------------- measuring


class PeakRss:
    """Peak resident memory of this process during a block (polled every 10 ms)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def current() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _poll(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.current())

    def __enter__(self) -> "PeakRss":
        self.start = self.current()
        self.peak = self.start
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())


def measure(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with PeakRss() as rss:
        result = fn()
    figures = {
        "wall_s": round(time.perf_counter() - wall0, 3),
        "cpu_s": round(time.process_time() - cpu0, 3),
        "peak_rss_gib": round(rss.peak / 2**30, 4),
        "rss_at_start_gib": round(rss.start / 2**30, 4),
        "max_rss_process_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 4),
    }
    return result, figures


def _pipeline(impl: list[str]) -> tuple[Callable, Callable]:
    if impl == ["old"]:
        sys.path.insert(0, str(ROOT / "tests"))
        from legacy_pipeline import read_source as old_read
        from legacy_pipeline.dataset import preprocess as old_preprocess

        return old_read, old_preprocess
    from llada_rec.data.dataset import preprocess
    from llada_rec.data.readers import read_source

    return read_source, preprocess


def _fingerprint(data: Any) -> dict[str, Any]:
    digest = hashlib.sha256()
    digest.update("\n".join(data.user_ids).encode())
    digest.update("\n".join(data.item_ids).encode())
    for seq in data.sequences:
        digest.update(np.asarray(seq, dtype=np.int64).tobytes())
    titles = sum(1 for m in data.item_meta if m and m.get("title"))
    return {**{k: v for k, v in data.stats().items() if k in ("users", "items", "interactions")},
            "sequences_sha256": digest.hexdigest()[:16], "items_with_title": titles,
            "skipped": {k: v for k, v in sorted(data.skipped.items())}}


def stage_read(args: argparse.Namespace) -> dict[str, Any]:
    read_source, preprocess = _pipeline(args.impl)
    data, figures = measure(lambda: preprocess(read_source("amazon2023", args.path, CATEGORY, show_progress=False), kcore=5))
    return {**figures, **_fingerprint(data)}


def stage_samples(args: argparse.Namespace) -> dict[str, Any]:
    read_source, preprocess = _pipeline(args.impl)
    data = preprocess(read_source("amazon2023", args.path, CATEGORY, show_progress=False), kcore=5)
    gc.collect()
    splits, figures = measure(lambda: [data.samples(s, 20) for s in ("train", "val", "test")])
    return {**figures, "samples": [len(s) for s in splits]}


def stage_tokenizer(args: argparse.Namespace) -> dict[str, Any]:
    """RQ-KMeans (M=4, K=256) fitted on 10k of the items, then codes and collision resolution
    for all: chunked (``new``), or with the whole [N, M, K] table in memory as before (``old``)."""
    import torch

    from llada_rec.tokenizers import RQKMeans
    from llada_rec.tokenizers.collisions import resolve_collisions

    torch.set_num_threads(1)
    embeddings = torch.randn(args.items, 128, generator=torch.Generator().manual_seed(0))
    model = RQKMeans(num_heads=4, codebook_size=256, kmeans_iters=10)
    model.build(128)
    model.fit_codes(embeddings[: min(args.items, 10_000)])

    def stage() -> Any:
        if args.impl == ["new"]:
            return model.unique_codes(embeddings)[1:]
        codes, _ = model.tokenize(embeddings)
        return resolve_collisions(codes, model.distances(embeddings))

    (codes, report), figures = measure(stage)
    return {**figures, "collisions_before": report.collisions_before, "items_moved": report.items_moved,
            "codes_sha256": hashlib.sha256(np.ascontiguousarray(codes).tobytes()).hexdigest()[:16]}


def stage_index(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from llada_rec.decoding import ItemCodeIndex

    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from decode_throughput import random_item_codes

    codes = random_item_codes(args.items, 4, 256)
    index, figures = measure(lambda: ItemCodeIndex(codes, 256))
    return {**figures, "index_mib": round(index.nbytes / 2**20, 1)}


STAGES = {"read": stage_read, "samples": stage_samples, "tokenizer": stage_tokenizer, "index": stage_index}


# ----------------------------------------------------------------------------- driver


def run_stage(stage: str, **options: Any) -> dict[str, Any]:
    """One stage in a fresh interpreter; its JSON result (or the error)."""
    command = [sys.executable, __file__, "--stage", stage]
    for key, value in options.items():
        command += [f"--{key}", str(value)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def exponents(rows: list[dict[str, Any]], size_key: str, value_key: str) -> dict[str, float]:
    """log-log slope between consecutive sizes (and first to last) of ``value_key``."""
    points = [(r[size_key], r[value_key]) for r in rows if value_key in r and r[value_key] > 0]
    out = {}
    for (n0, v0), (n1, v1) in zip(points, points[1:]):
        out[f"{n0}->{n1}"] = round(math.log(v1 / v0) / math.log(n1 / n0), 3)
    if len(points) > 2:
        (n0, v0), (n1, v1) = points[0], points[-1]
        out[f"{n0}->{n1}"] = round(math.log(v1 / v0) / math.log(n1 / n0), 3)
    return out


def _print_rows(title: str, rows: list[dict[str, Any]], keys: list[str]) -> None:
    print(f"\n{title}")
    print(" | ".join(f"{k:>14}" for k in keys))
    for row in rows:
        print(" | ".join(f"{str(row.get(k, '-')):>14}" for k in keys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reviews", type=int, nargs="*", default=[250_000, 1_000_000, 4_000_000])
    parser.add_argument("--impl", nargs="+", default=["old", "new"], choices=["old", "new"])
    parser.add_argument("--old-max-reviews", type=int, default=4_000_000, help="largest size the old reader runs at")
    parser.add_argument("--samples", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--old-max-samples", type=int, default=1_000_000, help="largest size the old sample building runs at")
    parser.add_argument("--tokenizer-items", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--old-max-tokenizer-items", type=int, default=100_000,
                        help="largest size the whole-table tokenizer stage runs at (1M: a 4 GiB table, 8 during concatenation)")
    parser.add_argument("--index-items", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--workdir", default=None, help="where the files go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--out", default=None, help="write the JSON here")
    parser.add_argument("--stage", choices=list(STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--items", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:  # a child process: one stage, one JSON line
        print(json.dumps(STAGES[args.stage](args)))
        return

    results = run_all(args)
    report(results, args)


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every size and stage, each stage in its own process; the files deleted at the end."""
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "node": platform.node()},
        "command": " ".join(sys.argv),
        "read": [], "samples": [], "tokenizer": [], "index": [],
    }
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="llada-scale-"))
    try:
        for n in args.reviews:
            folder = workdir / f"reviews_{n}"
            started = time.perf_counter()
            info = generate(folder, n)
            print(f"generated {n} reviews in {time.perf_counter() - started:.1f}s: {info}", flush=True)
            for impl in args.impl:
                if impl == "old" and n > args.old_max_reviews:
                    continue
                row = {"reviews": n, "impl": impl, **run_stage("read", impl=impl, path=folder)}
                results["read"].append(row)
                print(json.dumps(row), flush=True)
                if args.samples and (impl == "new" or n <= args.old_max_samples):
                    row = {"reviews": n, "impl": impl, **run_stage("samples", impl=impl, path=folder)}
                    results["samples"].append(row)
                    print(json.dumps(row), flush=True)
            if not args.keep:
                shutil.rmtree(folder)
        for n in args.tokenizer_items:
            for impl in args.impl:
                if impl == "old" and n > args.old_max_tokenizer_items:
                    continue
                row = {"items": n, "impl": impl, **run_stage("tokenizer", items=n, impl=impl)}
                results["tokenizer"].append(row)
                print(json.dumps(row), flush=True)
        for n in args.index_items:
            row = {"items": n, **run_stage("index", items=n)}
            results["index"].append(row)
            print(json.dumps(row), flush=True)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    """Growth exponents, the tables, and the JSON."""
    results["exponents"] = {}
    for stage, size in (("read", "reviews"), ("samples", "reviews")):
        for impl in args.impl:
            rows = [r for r in results[stage] if r["impl"] == impl]
            for key in ("wall_s", "peak_rss_gib"):
                results["exponents"][f"{stage}/{impl}/{key}"] = exponents(rows, size, key)
    for impl in args.impl:
        rows = [r for r in results["tokenizer"] if r["impl"] == impl]
        for key in ("wall_s", "peak_rss_gib"):
            results["exponents"][f"tokenizer/{impl}/{key}"] = exponents(rows, "items", key)
    for key in ("wall_s", "peak_rss_gib"):
        results["exponents"][f"index/{key}"] = exponents(results["index"], "items", key)
    keys = ["wall_s", "cpu_s", "peak_rss_gib"]
    _print_rows("read + preprocess", results["read"], ["reviews", "impl", *keys, "users", "items", "interactions", "sequences_sha256"])
    _print_rows("samples", results["samples"], ["reviews", "impl", *keys])
    _print_rows("tokenizer stage", results["tokenizer"], ["items", "impl", *keys, "collisions_before", "codes_sha256"])
    _print_rows("decoding index", results["index"], ["items", *keys, "index_mib"])
    print("\nlog-log growth exponents")
    for name, values in results["exponents"].items():
        print(f"  {name}: {values}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(out)


if __name__ == "__main__":
    main()
