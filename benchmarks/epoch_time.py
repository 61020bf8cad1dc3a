"""Training seconds per epoch: LLaDA-Rec (class defaults, and the recipe
experiments/recipes/cached_draws.yaml) against TIGER, optionally beside an older revision.

One epoch of real training batches (the DataModule's length-bucketed order, batch 256, the
last 20 items) through a bare loop: loss, backward, gradient clipping, AdamW step.  The
item codes are seeded random tuples (M=4, K=256): a step's cost depends on the shapes, not
on the code values, so no tokenizer has to be trained.  ``--baseline REV`` also times the
``llada_rec`` package of git revision REV, each repeat alternating the two versions in
fresh processes, so both sets of figures come from one run under the same load:

    python benchmarks/epoch_time.py --path /work/shared/data/amazon18-scientific \\
        --baseline 8d3ceac --repeats 2 --threads 2 --out runs/epoch_time.json

Prints a table (the best of the repeats, and the ratios to TIGER) and writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "experiments" / "recipes" / "cached_draws.yaml"
MODELS = ("tiger", "llada-default", "llada-recipe")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--format", default="lcrec")
    p.add_argument("--path", required=True)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--max-history", type=int, default=20)
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--repeats", type=int, default=1, help="epochs timed per model and version (the best is reported)")
    p.add_argument("--max-steps", type=int, default=None, help="time only this many steps of the epoch (quick checks)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--baseline", default=None, help="git revision whose llada_rec is timed beside the working tree's")
    p.add_argument("--out", default="runs/epoch_time.json")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one timing process
    return p.parse_args(argv)


# -- one process: time one epoch of each model with the llada_rec on sys.path ---------------
def recipe_overrides() -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load(RECIPE.read_text())["model"]["init_args"])


def make_model(name: str, args: argparse.Namespace):
    from llada_rec.models.baselines import TIGER
    from llada_rec.models.llada_rec import LLaDARec
    from llada_rec.models.transformer import TransformerConfig

    sizes = dict(d_model=args.d_model, num_layers=args.layers, num_attention_heads=args.heads, dropout=0.1)
    if name == "tiger":
        return TIGER(network=TransformerConfig(**sizes))
    extra = recipe_overrides() if name == "llada-recipe" else {}
    return LLaDARec(network=TransformerConfig(**sizes, block="llama"), **extra)


def time_epoch(name: str, args: argparse.Namespace, datamodule) -> dict[str, Any]:
    import torch

    from llada_rec.models.base import DataInfo

    torch.manual_seed(0)
    info = DataInfo(num_items=datamodule.data.num_items, max_history=args.max_history, num_heads=4, codebook_size=256)
    codes = torch.randint(0, 256, (info.num_items, 4), generator=torch.Generator().manual_seed(0))
    model = make_model(name, args)
    model.data_info = info
    model.build(info, codes)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(batch: dict) -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = model.losses(batch)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return float(loss)

    batches = list(datamodule.train_dataloader())
    if args.max_steps:
        batches = batches[: args.max_steps]
    for batch in batches[:2]:  # warm-up: first-call allocations
        step(batch)
    start = time.perf_counter()
    for batch in batches:
        last = step(batch)
    seconds = time.perf_counter() - start
    return {"model": name, "epoch_s": seconds, "steps": len(batches), "last_loss": last}


def worker(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        from llada_rec.datamodule.recommendation import RecDataModule
        from llada_rec.datamodule.settings import DatasetConfig, LoadersConfig

        datamodule = RecDataModule(dataset=DatasetConfig(format=args.format, path=args.path), loaders=LoadersConfig(batch_size=args.batch_size),
                                   max_history=args.max_history, seed=0)
    except ModuleNotFoundError:  # a baseline revision from before the datamodule package and its groups
        from llada_rec.data.datamodule import RecDataModule

        datamodule = RecDataModule(format=args.format, path=args.path, max_history=args.max_history, batch_size=args.batch_size, seed=0)
    rows = [time_epoch(name, args, datamodule) for name in args.models]
    print("RESULT " + json.dumps(rows), flush=True)


# -- the driver: versions x repeats in fresh processes ---------------------------------------
def export_revision(revision: str, directory: Path) -> Path:
    """The ``llada_rec`` package of ``revision`` unpacked under ``directory``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "llada_rec"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    return directory


def run_worker(code: Path, argv: Sequence[str]) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run([sys.executable, __file__, "--worker", *argv], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"timing process failed:\n{done.stderr[-3000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def summarise(runs: dict[str, list[list[dict[str, Any]]]]) -> dict[str, Any]:
    """Per version: each model's best epoch seconds and its ratio to TIGER's."""
    summary: dict[str, Any] = {}
    for version, repeats in runs.items():
        best: dict[str, float] = {}
        for rows in repeats:
            for row in rows:
                best[row["model"]] = min(best.get(row["model"], float("inf")), row["epoch_s"])
        ratios = {name: seconds / best["tiger"] for name, seconds in best.items() if "tiger" in best and name != "tiger"}
        summary[version] = {"epoch_s": best, "ratio_to_tiger": ratios}
    return summary


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return {}
    argv = [a for a in (argv if argv is not None else sys.argv[1:])]
    worker_argv = [a for a in argv if a not in ("--baseline", args.baseline)]
    runs: dict[str, list[list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        current = Path(tmp) / "current"  # a snapshot: edits during the run do not change what is timed
        shutil.copytree(REPO / "llada_rec", current / "llada_rec", ignore=shutil.ignore_patterns("__pycache__"))
        versions = {"current": current}
        if args.baseline:
            baseline = Path(tmp) / "baseline"
            baseline.mkdir()
            versions = {f"baseline {args.baseline}": export_revision(args.baseline, baseline), **versions}
        for repeat in range(args.repeats):
            for version, code in versions.items():
                rows = run_worker(code, worker_argv)
                runs.setdefault(version, []).append(rows)
                print(f"repeat {repeat + 1} {version}: " + ", ".join(f"{r['model']} {r['epoch_s']:.1f} s" for r in rows), flush=True)
    summary = summarise(runs)
    print(f"\n| version | " + " | ".join(f"{m} s/epoch" for m in args.models) + " | default / TIGER | recipe / TIGER |")
    print("|---|" + "---:|" * (len(args.models) + 2))
    for version, figures in summary.items():
        cells = [f"{figures['epoch_s'].get(m, float('nan')):.1f}" for m in args.models]
        ratios = [f"{figures['ratio_to_tiger'].get(m, float('nan')):.2f}" for m in ("llada-default", "llada-recipe")]
        print(f"| {version} | " + " | ".join(cells + ratios) + " |")
    result = {"settings": {k: v for k, v in vars(args).items() if k != "worker"}, "runs": runs, "summary": summary}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO))
    from llada_rec.utils import atomic_write_text

    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
