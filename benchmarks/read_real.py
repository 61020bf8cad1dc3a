"""Read + preprocess of a real data set, the columnar readers against the pre-columnar ones
(``tests/legacy_pipeline``): seconds and peak RSS (issue 22).

Measures the LC-Rec directory given (``--path``) and a RecBole copy of it written to a
temporary folder (same users, items, order; the position as ``timestamp``; titles as
``token_seq``; deleted at the end).  Each measurement runs in a fresh interpreter (so the
peak RSS is its own), old and new alternating, ``--repeats`` times; the read alone and read +
``preprocess(kcore)`` are timed in the same process, and the counts and a hash of the
sequences of old and new are compared::

    python benchmarks/read_real.py --path ../shared/data/amazon18-games --repeats 3 \\
        --out docs/results/scale/read_games.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import ROOT, PeakRss, _fingerprint, _pipeline  # noqa: E402


def write_recbole_copy(lcrec_dir: Path, out: Path) -> Path:
    """``<X>.inter`` / ``<X>.item`` in RecBole's atomic format from an LC-Rec directory."""
    import polars as pl

    inter_file = next(lcrec_dir.glob("*.inter.json"))
    name = inter_file.name[: -len(".inter.json")]
    sequences = json.loads(inter_file.read_text())
    rows = pl.DataFrame({"user_id": list(sequences), "item_id": list(sequences.values())}).explode("item_id")
    rows = rows.with_columns(timestamp=pl.int_range(pl.len()).over("user_id").cast(pl.Float64))
    out.mkdir(parents=True, exist_ok=True)
    rows.rename({"user_id": "user_id:token", "item_id": "item_id:token", "timestamp": "timestamp:float"}).write_csv(
        out / f"{name}.inter", separator="\t", quote_style="never")
    items = json.loads((lcrec_dir / f"{name}.item.json").read_text())
    titles = pl.DataFrame({  # split-join: no tab, CR or LF inside a field
        "item_id:token": list(items), "title:token_seq": [" ".join(str(m.get("title") or "").split()) for m in items.values()]})
    titles.write_csv(out / f"{name}.item", separator="\t", quote_style="never")
    return out


def stage(args: argparse.Namespace) -> dict[str, Any]:
    """One read + preprocess in this process: seconds, peak RSS, counts."""
    read_source, preprocess = _pipeline([args.impl])
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with PeakRss() as rss:
        raw = read_source(args.format, args.path, show_progress=False)
        read_s = time.perf_counter() - wall0
        data = preprocess(raw, kcore=args.kcore)
    return {"read_s": round(read_s, 3), "wall_s": round(time.perf_counter() - wall0, 3),
            "cpu_s": round(time.process_time() - cpu0, 3), "peak_rss_gib": round(rss.peak / 2**30, 4),
            "rss_at_start_gib": round(rss.start / 2**30, 4), **_fingerprint(data)}


def run_stage(**options: Any) -> dict[str, Any]:
    command = [sys.executable, __file__, "--stage"] + [f"--{k}={v}" for k, v in options.items()]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", required=True, help="an LC-Rec directory")
    parser.add_argument("--kcore", type=int, default=5, help="preprocess's k-core (the DataModule's default)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="write the JSON here")
    parser.add_argument("--stage", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    parser.add_argument("--format", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(stage(args)))
        return
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                               "command": " ".join(sys.argv), "kcore": args.kcore, "rows": []}
    workdir = Path(tempfile.mkdtemp(prefix="llada-read-real-"))
    try:
        sources = {"lcrec": Path(args.path), "recbole": write_recbole_copy(Path(args.path), workdir / "recbole")}
        for fmt, path in sources.items():
            for repeat in range(args.repeats):
                for impl in ("old", "new"):
                    row = {"format": fmt, "impl": impl, "repeat": repeat,
                           **run_stage(impl=impl, format=fmt, path=path, kcore=args.kcore)}
                    results["rows"].append(row)
                    print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    summarise(results)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".tmp").write_text(json.dumps(results, indent=1) + "\n")
        out.with_suffix(".tmp").replace(out)


def summarise(results: dict[str, Any]) -> None:
    """Median of the repeats per format and implementation; whether old and new agree."""
    results["summary"] = {}
    print(f"\n{'format':>8} {'impl':>4} {'read_s':>7} {'wall_s':>7} {'cpu_s':>7} {'peak_rss_gib':>12}  users / items / interactions")
    for fmt in dict.fromkeys(r["format"] for r in results["rows"]):
        fingerprints = set()
        for impl in ("old", "new"):
            rows = [r for r in results["rows"] if r["format"] == fmt and r["impl"] == impl]
            median = {k: sorted(r[k] for r in rows)[len(rows) // 2] for k in ("read_s", "wall_s", "cpu_s", "peak_rss_gib")}
            fingerprints |= {json.dumps({k: r[k] for k in ("users", "items", "interactions", "sequences_sha256", "items_with_title", "skipped")}) for r in rows}
            results["summary"][f"{fmt}/{impl}"] = median
            print(f"{fmt:>8} {impl:>4} {median['read_s']:>7} {median['wall_s']:>7} {median['cpu_s']:>7} {median['peak_rss_gib']:>12}  "
                  f"{rows[0]['users']} / {rows[0]['items']} / {rows[0]['interactions']}")
        results["summary"][f"{fmt}/same_data"] = len(fingerprints) == 1
        print(f"{fmt:>8} old and new give the same data: {len(fingerprints) == 1}")


if __name__ == "__main__":
    main()
