"""Side-by-side benchmark: the baselines and LLaDA-Rec on one split, under one budget.

Every model gets the same RecDataModule settings (so the same leave-one-out split), the same
seed, the same training budget and the same evaluation (the best validation checkpoint by
``--monitor``, validation NDCG@1 of greedy decoding as the authors select, then the test
split); ``--patience N`` stops a neural model after N validations without a better one.
Prints one markdown table and writes it, with all figures, as JSON:

    python benchmarks/compare.py --format lcrec --path /work/shared/data/amazon18-scientific \
        --max-epochs 100 --patience 10 --out runs/compare/scientific

The runner resumes: each model's run lives in ``OUT/<model>/`` (``settings.json``, the
Lightning run in ``run/`` with ``checkpoints/last.ckpt`` every epoch, ``result.json`` once
tested).  Rerun the same command after an interruption: finished models are read back, an
interrupted one continues from its ``last.ckpt`` (RNG states, early-stopping count and
learning curve included); other settings in the same ``OUT`` are refused.

Semantic-ID models train their tokenizer first (cached by content under ``--cache-dir``):
TIGER the RQ-VAE, LLaDA-Rec the Multi-Head VQ-VAE, each with ``--tokenizer-base``'s trainer
settings and ``--tokenizer-epochs`` epochs (pass ``--tiger-semantic-ids`` /
``--llada-semantic-ids`` to use ready artifacts instead).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.loggers import CSVLogger

from llada_rec.callbacks import ResumableCheckpoint, TrainingClock, output_writers
from llada_rec.datamodule.recommendation import RecDataModule
from llada_rec.models.base import SequentialRecommender
from llada_rec.config_groups import nest_flat_hparams
from llada_rec.report.tables import TABLE_COLUMNS
from llada_rec.utils import UserError, atomic_write_text

REPO = Path(__file__).resolve().parents[1]
TOKENIZERS = REPO / "experiments" / "tokenizer"
MODELS = ("popularity", "transitions", "gru4rec", "sasrec", "sasrec-bce", "bert4rec", "tiger", "rpg", "llada-rec")
NAMES = {
    "popularity": "Most popular",
    "transitions": "Item transitions",
    "gru4rec": "GRU4Rec",
    "sasrec": "SASRec (CE)",  # full softmax over all items
    "sasrec-bce": "SASRec (BCE)",  # the original loss: one sampled negative per position
    "bert4rec": "BERT4Rec",
    "tiger": "TIGER",
    "rpg": "RPG",
    "llada-rec": "LLaDA-Rec",
}
MONITOR = "val/ndcg@1"  # greedy NDCG@1, the authors' selection; the same rule for every model
NOT_SETTINGS = ("models", "out", "threads")  # options that do not change a model's run


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    data = p.add_argument_group("data (one RecDataModule setting for every model)")
    data.add_argument("--format", required=True, help="amazon2023, amazon2023-benchmark, lcrec or recbole")
    data.add_argument("--path", required=True)
    data.add_argument("--category", default=None)
    data.add_argument("--kcore", type=int, default=5)
    data.add_argument("--max-history", type=int, default=20)
    data.add_argument("--batch-size", type=int, default=256)
    data.add_argument("--eval-batch-size", type=int, default=256)
    data.add_argument("--embedding-model", default=None, help="sentence-transformers model of the item texts (default: the DataModule's)")
    data.add_argument("--pca-dim", type=int, default=128, help="whitened PCA of the embeddings (0: none)")
    data.add_argument("--cache-dir", default=".cache/llada_rec")
    data.add_argument("--train-order", default="length_buckets", choices=("length_buckets", "shuffle"), help="training batches: of about equal history length, or a plain shuffle")
    budget = p.add_argument_group("budget")
    budget.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    budget.add_argument("--max-epochs", type=int, default=5, help="per neural model (also sets the LR schedule)")
    budget.add_argument("--max-minutes", type=float, default=None, help="training wall-time cap per model (trainer.max_time)")
    budget.add_argument("--patience", type=int, default=None, help="early stopping: stop a neural model after this many validations (epochs here) without a better --monitor; default: none")
    budget.add_argument("--monitor", default=MONITOR, help="validation metric (maximised) that selects the tested checkpoint and drives early stopping")
    budget.add_argument("--eval-users", type=int, default=None, help="validate and test on this many users drawn with --seed (the same for every model); default all")
    budget.add_argument("--val-users", type=int, default=None, help="validate on this many users instead (default: --eval-users); e.g. test on all, select on 2000")
    budget.add_argument("--seed", type=int, default=0)
    budget.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    budget.add_argument("--accelerator", default="cpu", help="cpu, gpu or auto (one device per model)")
    budget.add_argument("--precision", default="32-true", help="trainer precision, e.g. bf16-mixed")
    size = p.add_argument_group("model size (SASRec, TIGER and LLaDA-Rec alike)")
    size.add_argument("--d-model", type=int, default=64)
    size.add_argument("--layers", type=int, default=2)
    size.add_argument("--heads", type=int, default=2, help="attention heads")
    size.add_argument("--dropout", type=float, default=0.1)
    size.add_argument("--lr", type=float, default=None, help="peak learning rate of every neural model (default: each model's own)")
    size.add_argument("--beam-size", type=int, default=20, help="test beams of TIGER and LLaDA-Rec")
    size.add_argument("--val-beam-size", type=int, default=1, help="validation beams of TIGER and LLaDA-Rec (1: greedy, as the authors select)")
    size.add_argument("--llada-attention", default="bidirectional", help="LLaDA-Rec's attention variant (e.g. cached_history)")
    ids = p.add_argument_group("semantic IDs")
    ids.add_argument("--tokenizer-base", default=str(TOKENIZERS / "demo.yaml"), help="tokenizer config giving seed and trainer settings (its data section is ignored)")
    ids.add_argument("--tiger-tokenizer", default=str(TOKENIZERS / "rqvae.yaml"))
    ids.add_argument("--llada-tokenizer", default=None, help="model override for LLaDA-Rec's tokenizer (default: the base's Multi-Head VQ-VAE)")
    ids.add_argument("--rpg-tokenizer", default=None, help="model override for RPG's tokenizer, e.g. experiments/tokenizer/opq.yaml (default: LLaDA-Rec's)")
    ids.add_argument("--tokenizer-epochs", type=int, default=None, help="override the tokenizer's max_epochs")
    ids.add_argument("--tiger-semantic-ids", default=None, help="ready artifact directory for TIGER")
    ids.add_argument("--llada-semantic-ids", default=None, help="ready artifact directory for LLaDA-Rec")
    p.add_argument("--out", default="runs/compare")
    return p.parse_args(argv)


# -- models ---------------------------------------------------------------------------------
def model_arguments(model_class: type, *settings: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments of ``model_class`` from layers of flat settings, a later layer
    winning: ``group.field`` keys (``network.block``, ``decoding.num_steps``) and the bare
    field names of its config groups (``d_model``, ``beam_size``) go into those groups;
    other keys stay arguments.  A layer's ``network.dropout`` overrides an earlier
    layer's bare ``dropout`` and the reverse."""
    merged: dict[str, Any] = {}
    for layer in settings:
        nested: dict[str, Any] = {}
        for key, value in layer.items():
            group, dot, field = key.partition(".")
            if dot:
                nested.setdefault(group, {})[field] = value
            else:
                nested[key] = value
        for key, value in nest_flat_hparams(model_class, nested).items():
            both_groups = isinstance(value, dict) and isinstance(merged.get(key), dict)
            merged[key] = {**merged[key], **value} if both_groups else value
    return merged


def make_model(name: str, args: argparse.Namespace, overrides: Optional[dict[str, Any]] = None) -> SequentialRecommender:
    """The model ``name`` at the benchmark's size; other settings are each model's defaults,
    then ``overrides`` (settings of a neural model as :func:`model_arguments` reads them,
    e.g. a LLaDA-Rec variant's ``history_mask`` or ``network.block``)."""
    size: dict[str, Any] = dict(d_model=args.d_model, num_layers=args.layers, num_attention_heads=args.heads, dropout=args.dropout)
    if args.lr is not None:
        size["lr"] = args.lr
    beams = dict(beam_size=args.beam_size, val_beam_size=args.val_beam_size)
    if name == "popularity":
        from llada_rec.models.baselines import MostPopular

        return MostPopular()
    if name == "transitions":
        from llada_rec.models.baselines import ItemTransitions

        return ItemTransitions()
    from llada_rec.models.baselines import BERT4Rec, GRU4Rec, RPG, SASRec, TIGER
    from llada_rec.models.llada_rec import LLaDARec

    model_class, settings = {
        "sasrec": (SASRec, {**size, "loss": "ce"}),
        "sasrec-bce": (SASRec, {**size, "loss": "bce"}),
        "gru4rec": (GRU4Rec, {k: v for k, v in size.items() if k != "num_attention_heads"}),
        "bert4rec": (BERT4Rec, size),
        "rpg": (RPG, size),
        "tiger": (TIGER, {**size, **beams}),
        "llada-rec": (LLaDARec, {"attention": args.llada_attention, **size, **beams}),
    }.get(name, (None, {}))
    if model_class is None:
        raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")
    return model_class(**model_arguments(model_class, settings, overrides or {}))


def data_module(args: argparse.Namespace, semantic_ids: Optional[str] = None, **overrides: Any) -> RecDataModule:
    """The benchmark's RecDataModule; ``overrides``: other RecDataModule settings (a variant's),
    by field name, placed in their groups by the configs' migration."""
    embedding = {"embedding_model": args.embedding_model} if args.embedding_model else {}
    return RecDataModule(**nest_flat_hparams(RecDataModule, dict(
        val_max_users=args.val_users or args.eval_users or None,  # a seeded random subset, the same for every model
        test_max_users=args.eval_users or None,
        **embedding,
        pca_dim=args.pca_dim or None,
        format=args.format,
        path=args.path,
        category=args.category,
        kcore=args.kcore,
        max_history=args.max_history,
        batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size,
        cache_dir=args.cache_dir,
        semantic_ids=semantic_ids,
        seed=args.seed,
        **{"train_order": args.train_order, **overrides},
    )))


def semantic_ids_for(name: str, args: argparse.Namespace, out: Path) -> tuple[Optional[str], float]:
    """(artifact directory, seconds spent) for a semantic-ID model; (None, 0) for the others.
    RPG uses ``--rpg-tokenizer``, else LLaDA-Rec's parallel IDs (the Multi-Head VQ-VAE, or ``--llada-tokenizer``)."""
    if name not in ("tiger", "llada-rec", "rpg"):
        return None, 0.0
    ready = {"tiger": args.tiger_semantic_ids, "rpg": None if args.rpg_tokenizer else args.llada_semantic_ids}.get(name, args.llada_semantic_ids)
    if ready:
        return ready, 0.0
    from llada_rec.tokenizers.stage import build_semantic_ids

    configs = [args.tokenizer_base]
    override = {"tiger": args.tiger_tokenizer, "rpg": args.rpg_tokenizer or args.llada_tokenizer}.get(name, args.llada_tokenizer)
    if override:
        configs.append(override)
    if args.tokenizer_epochs is not None:
        budget = out / "tokenizer_budget.yaml"
        atomic_write_text(budget, f"trainer:\n  max_epochs: {args.tokenizer_epochs}\n")
        configs.append(str(budget))
    start = time.perf_counter()
    base = data_module(args)
    path = build_semantic_ids(configs, base.embeddings, base.item_ids, base.train_items, Path(args.cache_dir) / "semantic_ids")
    return str(path), time.perf_counter() - start


class ResumableClock(TrainingClock):
    """A :class:`TrainingClock` whose totals and learning curve are saved in checkpoints, so
    a resumed run's figures cover every session."""

    def state_dict(self) -> dict[str, Any]:
        return {"records": self.records, "train_s": self.train_s, "val_s": self.val_s, "samples": self.samples}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.records = list(state_dict["records"])
        self.train_s, self.val_s, self.samples = state_dict["train_s"], state_dict["val_s"], state_dict["samples"]


def run_settings(name: str, args: argparse.Namespace, label: Optional[str], overrides: Optional[dict], trainer_overrides: Optional[dict]) -> dict[str, Any]:
    """Everything that decides a model's run, as plain JSON values (compared on resume)."""
    settings = {"model": name, "label": label, "overrides": overrides or {}, "trainer_overrides": trainer_overrides or {},
                "args": {k: v for k, v in vars(args).items() if k not in NOT_SETTINGS}}
    return json.loads(json.dumps(settings, sort_keys=True, default=str))


def claim_directory(directory: Path, settings: dict[str, Any]) -> None:
    """Record ``settings`` in ``directory/settings.json``, or check that a run already there
    had the same ones (a one-line error names the settings that differ)."""
    path = directory / "settings.json"
    if not path.exists():
        atomic_write_text(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")
        return
    recorded = json.loads(path.read_text())
    if recorded != settings:
        old, new = recorded.get("args", {}), settings["args"]
        differ = [k for k in {**recorded, **settings} if k != "args" and recorded.get(k) != settings.get(k)]
        differ += [f"--{k.replace('_', '-')}" for k in {**old, **new} if old.get(k) != new.get(k)]
        raise UserError(f"{path}: a run of this model with other settings ({', '.join(differ)}); pass another --out or delete {directory}")


def run_model(
    name: str,
    args: argparse.Namespace,
    out: Path,
    *,
    overrides: Optional[dict[str, Any]] = None,
    label: Optional[str] = None,
    trainer_overrides: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """Fit, then test the best validation checkpoint; figures of one table row.

    ``overrides``: model constructor arguments, and RecDataModule ones as ``data.<name>``; ``label``: the row's name (and run
    directory); ``trainer_overrides``: Trainer arguments (e.g. a validation interval).  Resumes: a model whose
    ``OUT/<label>/result.json`` exists is read back, one with a ``last.ckpt`` continues from it.
    """
    directory = out / (label or name)
    directory.mkdir(parents=True, exist_ok=True)
    claim_directory(directory, run_settings(name, args, label, overrides, trainer_overrides))
    finished = directory / "result.json"
    if finished.exists():
        print(f"   finished earlier: {finished} read back", flush=True)
        return json.loads(finished.read_text())
    row = fit_and_test(name, args, out, overrides=overrides, label=label, trainer_overrides=trainer_overrides)
    atomic_write_text(finished, json.dumps(row, indent=2) + "\n")
    return row


def make_trainer(args: argparse.Namespace, model: SequentialRecommender, logger: CSVLogger, trainer_overrides: Optional[dict[str, Any]]) -> L.Trainer:
    """The benchmark's Trainer: the best checkpoint by ``--monitor`` and ``last.ckpt`` every
    epoch, the resumable clock, early stopping with ``--patience`` (gradient-trained models)."""
    trained = model.automatic_optimization  # count models: no gradients, nothing to stop early
    checkpoint = ResumableCheckpoint(monitor=args.monitor, mode="max", save_top_k=1, filename="best-epoch{epoch}", auto_insert_metric_name=False)
    callbacks: list[L.Callback] = [checkpoint, ResumableClock(), *output_writers()]  # metrics.json in the run directory
    if args.patience is not None and trained:
        callbacks.append(EarlyStopping(monitor=args.monitor, mode="max", patience=args.patience))
    trainer_args: dict[str, Any] = dict(
        max_epochs=args.max_epochs,
        max_time={"minutes": args.max_minutes} if args.max_minutes else None,
        num_sanity_val_steps=0,
        gradient_clip_val=1.0 if trained else None,
        callbacks=callbacks,
        logger=logger,
        accelerator=args.accelerator,
        precision=args.precision,
        devices=1,
        deterministic="warn",  # deterministic kernels where they exist (all of them on CPU)
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return L.Trainer(**{**trainer_args, **(trainer_overrides or {})})


def fit_and_test(
    name: str, args: argparse.Namespace, out: Path, *, overrides: Optional[dict[str, Any]], label: Optional[str], trainer_overrides: Optional[dict[str, Any]]
) -> dict[str, Any]:
    """One model's fit (from ``last.ckpt`` when its run directory has one) and test."""
    model_overrides = {k: v for k, v in (overrides or {}).items() if not k.startswith("data.")}
    data_overrides = {k[5:]: v for k, v in (overrides or {}).items() if k.startswith("data.")}
    if "semantic_ids" in data_overrides:  # a variant's own artifact: the model's tokenizer is not needed
        semantic_ids, tokenizer_s = data_overrides.pop("semantic_ids"), 0.0
    else:
        semantic_ids, tokenizer_s = semantic_ids_for(name, args, out)
    L.seed_everything(args.seed, workers=True, verbose=False)
    datamodule = data_module(args, semantic_ids, **data_overrides)
    model = make_model(name, args, model_overrides)
    trainer = make_trainer(args, model, CSVLogger(out, name=label or name, version="run"), trainer_overrides)  # a fixed directory: a rerun finds last.ckpt
    checkpoint = next(c for c in trainer.callbacks if isinstance(c, ResumableCheckpoint))
    clock = next(c for c in trainer.callbacks if isinstance(c, ResumableClock))
    early = next((c for c in trainer.callbacks if isinstance(c, EarlyStopping)), None)
    last = Path(trainer.logger.log_dir) / "checkpoints" / "last.ckpt"
    resumed = last.exists()
    trainer.fit(model, datamodule=datamodule, ckpt_path=str(last) if resumed else None)
    best = checkpoint.best_model_path or None  # None: stopped before any validation
    # test's checkpoint load restores the callbacks to the best epoch's state: read them first
    fit_clock, stopped_early = clock.state_dict(), bool(early is not None and early.stopped_epoch > 0)
    start = time.perf_counter()
    metrics = trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False)[0]
    test_s = time.perf_counter() - start
    records = fit_clock["records"]
    scores = [r[args.monitor] for r in records if args.monitor in r]
    return {
        "model": label or NAMES[name],
        "overrides": overrides or {},
        "metrics": metrics,
        "train_s": fit_clock["train_s"] + fit_clock["val_s"],  # the fit's wall time over every session, validation included
        "val_s": fit_clock["val_s"],
        "learning_curve": records,
        "test_s": test_s,
        "tokenizer_s": tokenizer_s,
        "parameters": sum(p.numel() for p in model.parameters()),
        "statistics": sum(b.numel() for b in model.buffers()),
        "epochs": trainer.global_step / max(1, trainer.num_training_batches),  # fractional when stopped by the time cap
        "steps": trainer.global_step,
        "stopped_early": stopped_early,
        "best_epoch": records[scores.index(max(scores))]["epoch"] if scores else None,
        "best_score": max(scores) if scores else None,
        "resumed": resumed,
        "best_checkpoint": best,
        "semantic_ids": semantic_ids,
        "run_dir": trainer.log_dir,
    }


# -- output ---------------------------------------------------------------------------------
def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    metric_names = [c.replace("recall", "R").replace("ndcg", "N") for c in TABLE_COLUMNS]
    header = ["model", *metric_names, "train s", "val share", "epochs", "best epoch", "test s", "params"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for row in rows:
        cells = [f"{row['metrics'][f'test/{c}']:.4f}" for c in TABLE_COLUMNS]
        params = f"{row['parameters']:,}" if row["parameters"] else f"0 ({row['statistics']:,} counts)"
        val_share = row["val_s"] / row["train_s"] if row["train_s"] > 0 else 0.0
        lines.append(
            f"| {row['model']} | " + " | ".join(cells)
            + f" | {row['train_s']:.1f} | {val_share:.0%} | {row['epochs']:.1f} | {row.get('best_epoch', '')} | {row['test_s']:.1f} | {params} |"
        )
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.models:
        print(f"== {NAMES[name]}", flush=True)
        rows.append(run_model(name, args, out))
        print(markdown_table(rows[-1:]), flush=True)
        write_results(out, args, rows)  # after every model: a long study keeps what it measured so far
    print(markdown_table(rows))
    return rows


def write_results(out: Path, args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    """``results.json`` (settings and every row) and ``results.md`` (the table)."""
    atomic_write_text(out / "results.json", json.dumps({"settings": vars(args), "rows": rows}, indent=2) + "\n")
    atomic_write_text(out / "results.md", markdown_table(rows) + "\n")


if __name__ == "__main__":
    try:
        main()
    except UserError as error:
        raise SystemExit(f"error: {error}")
