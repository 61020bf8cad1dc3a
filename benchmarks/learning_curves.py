"""Learning speed: validation NDCG@1 against training seconds and samples, per model.

Runs ``benchmarks/compare.py``'s pipeline (one split, one seed, one evaluation subset) for
each model and each LLaDA-Rec variant, validating every ``--val-every`` training steps,
and writes ``learning_curves.json`` (every point, every row's test figures) and
``learning_curves.png`` (``--plot-metric``, default NDCG@1, against training seconds,
validation excluded, and against training samples).  The clock is ``llada_rec.callbacks.TrainingClock``.

    python benchmarks/learning_curves.py --format lcrec --path DIR --models sasrec tiger llada-rec \\
        --variant paper:history_mask=history_token --variant authors:history_mask=sequence_per_item \\
        --max-epochs 6 --max-minutes 10 --eval-users 2000 --threads 2 --out runs/curves/scientific

Early stopping and resuming are compare.py's: ``--patience N`` here counts validations
(every ``--val-every`` steps), and a rerun of the same command reads finished rows back
and continues an interrupted one from its ``last.ckpt``.

A variant is ``NAME:key=value,key=value``: LLaDARec constructor arguments, settings of its
config groups as ``network.<field>`` / ``decoding.<field>`` or by the bare field name
(``network.block=llama`` or ``block=llama``, ``decoding.num_steps=2``), and RecDataModule
ones as ``data.<name>`` (e.g. ``data.train_order=shuffle``); values are read as YAML
scalars.  Without ``--variant`` LLaDA-Rec runs once with its defaults.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402

from llada_rec.utils import atomic_write_text  # noqa: E402


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME:key=value,key=value`` -> (NAME, {key: value}); values parsed as YAML scalars."""
    name, _, body = text.partition(":")
    if not name:
        raise argparse.ArgumentTypeError(f"variant {text!r}: expected NAME:key=value,...")
    overrides: dict[str, Any] = {}
    for item in filter(None, body.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"variant {text!r}: {item!r} is not key=value")
        overrides[key.strip()] = yaml.safe_load(value)
    return name, overrides


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=False)
    p.add_argument("--variant", action="append", default=[], type=parse_variant, help="LLaDA-Rec variant NAME:key=value,... (repeatable); keys: constructor arguments, network.<field> / "
                   "decoding.<field> (or the bare field name, e.g. block=llama), data.<RecDataModule argument>")
    p.add_argument("--val-every", type=int, default=40, help="validate every N training steps (0: at the end of every epoch, as compare.py)")
    # NDCG@1 (= top-1 hit): the one figure that greedy validation (semantic-ID models) and
    # full ranking (SASRec, ...) measure alike; NDCG@10 of a greedy decode is NDCG@1
    p.add_argument("--plot-metric", default="val/ndcg@1")
    known, rest = p.parse_known_args(argv)
    if "-h" in rest or "--help" in rest:
        p.print_help()
        print("\nand every option of benchmarks/compare.py:")
    return known, rest


def plot(rows: list[dict[str, Any]], metric: str, path: Path) -> None:
    """Two panels: metric vs training seconds, metric vs training samples (one line per row)."""
    fig, (by_time, by_samples) = plt.subplots(1, 2, figsize=(14, 5.5), dpi=100)
    colours = plt.get_cmap("tab20").colors
    for i, row in enumerate(rows):  # 20 distinct colours, then dashed: no two rows look alike
        curve = [p for p in row["learning_curve"] if metric in p]
        if not curve:
            continue
        values = [p[metric] for p in curve]
        style = dict(marker="o", markersize=3, label=row["model"], color=colours[(2 * i) % 20 + (i // 10) % 2], linestyle="-" if i < 20 else "--")
        by_time.plot([p["train_s"] for p in curve], values, **style)
        by_samples.plot([p["samples"] / 1000 for p in curve], values, **style)
    by_time.set_xlabel("training seconds (validation excluded)")
    by_samples.set_xlabel("training samples (thousands)")
    for axis in (by_time, by_samples):
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
    by_samples.legend(fontsize=10)
    fig.suptitle(f"Learning curves: {metric}", fontsize=13)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
    known, rest = parse_args(argv)
    args = compare.parse_args(rest)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    every = {"val_check_interval": known.val_every, "check_val_every_n_epoch": None} if known.val_every else None
    runs: list[tuple[str, Optional[str], dict[str, Any]]] = []
    for name in args.models:
        if name == "llada-rec" and known.variant:
            runs += [(name, f"LLaDA-Rec ({label})", overrides) for label, overrides in known.variant]
        else:
            runs.append((name, None, {}))
    rows = []
    for name, label, overrides in runs:
        print(f"== {label or compare.NAMES[name]}", flush=True)
        row = compare.run_model(name, args, out, overrides=overrides, label=label, trainer_overrides=every if name not in ("popularity", "transitions") else None)
        rows.append(row)
        print(compare.markdown_table([row]), flush=True)
        # written after every model: a long run keeps what it measured so far
        atomic_write_text(out / "learning_curves.json", json.dumps({"settings": vars(args), "val_every": known.val_every, "rows": rows}, indent=2) + "\n")
        plot(rows, known.plot_metric, out / "learning_curves.png")
    table = compare.markdown_table(rows)
    atomic_write_text(out / "results.md", table + "\n")
    print(table)
    return rows


if __name__ == "__main__":
    main()
