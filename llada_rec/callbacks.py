"""Callbacks every run can use: checkpointing that a run can be resumed from exactly
(``fit --ckpt_path last``), the training clock (validation's share of the time, learning curves),
and the run's output files (``metrics.json`` after ``test``, ``predictions.jsonl`` after ``predict``)."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any, Optional

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ModelSummary, RichModelSummary

from llada_rec.utils import StagedFiles, atomic_write_text, run_dir


def rng_states() -> dict[str, Any]:
    """Global RNG states (torch CPU and CUDA, numpy, python) as tensors and plain lists."""
    version, state, gauss = random.getstate()
    np_state = np.random.get_state(legacy=True)
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [version, list(state), gauss],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    version, state, gauss = states["python"]
    random.setstate((version, tuple(state), gauss))
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class ResumableCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose ``last.ckpt`` is written at the end of every training epoch.

    Lightning 2.6 writes ``last.ckpt`` only when a monitored checkpoint is saved in the same
    step, so a run without a new best has a stale ``last.ckpt``.  Here it is rewritten after
    every epoch (after validation, best tracking and early stopping have seen that epoch),
    written to a temporary name and renamed (an interruption mid-write keeps the previous
    one), and it carries the global RNG states, so a resumed run draws the same masks and
    dropout as an uninterrupted one.  ``fast_dev_run`` writes no checkpoint.
    """

    def __init__(self, *args: Any, save_last: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, save_last=save_last, **kwargs)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self.save_last and not trainer.sanity_checking and not trainer.fast_dev_run:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        if trainer.fast_dev_run:  # a smoke test keeps nothing (it has no version folder: loggers are off)
            return
        tmp = f"{filepath}.tmp"
        try:
            super()._save_checkpoint(trainer, tmp)
            if trainer.is_global_zero and os.path.exists(tmp):
                os.replace(tmp, filepath)
        finally:  # a failed write or rename leaves no half-written file behind
            if trainer.is_global_zero and os.path.exists(tmp):
                os.remove(tmp)
        trainer.strategy.barrier("checkpoint_rename")
        self._last_checkpoint_saved = filepath

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_states"] = rng_states()

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if "rng_states" in checkpoint and trainer.state.fn == "fit":
            set_rng_states(checkpoint["rng_states"])


class TrainingClock(Callback):
    """Wall-clock seconds spent training and validating, and training samples seen.

    Logs ``time/train_s``, ``time/val_s`` (this epoch's) and ``time/val_share`` (validation's
    share of the epoch's wall time) at the end of every training epoch, and keeps one record
    per validation in :attr:`records` (cumulative training seconds and samples, the
    validation metrics), the points of a learning curve.  The sanity check is not counted.
    """

    def __init__(self) -> None:
        self.records: list[dict[str, float]] = []
        self.train_s = self.val_s = 0.0  # cumulative over the fit
        self.samples = 0
        self._fit_start = self._val_start = self._epoch_start = 0.0
        self._epoch_val_s = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fit_start = time.perf_counter() - self.train_s - self.val_s  # a resumed fit continues the clock

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start, self._epoch_val_s = time.perf_counter(), 0.0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        first = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
        self.samples += int(first.shape[0])

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val_start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        seconds = time.perf_counter() - self._val_start
        self.val_s += seconds
        self._epoch_val_s += seconds
        self.train_s = time.perf_counter() - self._fit_start - self.val_s
        record = {"epoch": trainer.current_epoch, "step": trainer.global_step, "samples": self.samples,
                  "train_s": self.train_s, "val_s": self.val_s}
        record.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")})
        self.records.append(record)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch_s = max(time.perf_counter() - self._epoch_start, 1e-9)
        self.train_s = time.perf_counter() - self._fit_start - self.val_s
        pl_module.log_dict(
            {"time/train_s": epoch_s - self._epoch_val_s, "time/val_s": self._epoch_val_s, "time/val_share": self._epoch_val_s / epoch_s},
            on_step=False, on_epoch=True,
        )


class RunFileWriter(Callback):
    """A callback that writes one file into the run directory (:func:`llada_rec.utils.run_dir`):
    ``output_dir`` when set (the CLI sets it for test/predict of a trained run), else the
    logger's version directory, else the trainer's root dir.  Rank 0 writes, atomically; with
    ``staging`` set (the CLI sets it), the file is only staged, and moved into place when the
    whole run has succeeded (:class:`llada_rec.utils.StagedFiles`)."""

    filename = ""

    def __init__(self, output_dir: Optional[str] = None) -> None:
        self.output_dir = output_dir
        self.staging: Optional[StagedFiles] = None

    def write(self, path: Path, text: str, note: str) -> None:
        """Write (or stage) the run's result ``text`` at ``path``; ``note`` says where it went."""
        if self.staging is not None:
            self.staging.stage(path, text, show=True, note=note)
            return
        atomic_write_text(path, text)
        print(note)

    def path(self, trainer: L.Trainer) -> Path:
        """The file's path; a collective call under DDP (every rank must ask)."""
        return run_dir(trainer, self.output_dir) / self.filename


class MetricsWriter(RunFileWriter):
    """``metrics.json`` at the end of ``test``: every logged ``test/...`` metric, sorted by name."""

    filename = "metrics.json"

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        results = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
        path = self.path(trainer)
        if trainer.is_global_zero:
            self.write(path, json.dumps(results, indent=2, sort_keys=True) + "\n", f"wrote test metrics to {path}")


class PredictionsWriter(RunFileWriter):
    """``predictions.jsonl`` at the end of ``predict``: one JSON line per sample, in sample order.

    ``predict_step`` returns ``{"sample": [B], "items": [B, k], "scores": [B, k]}``; rows are
    gathered from every rank (a sample a sampler repeats counts once) and described by the
    DataModule's ``describe_prediction(sample, items, scores)`` (user, history, item ids, target)
    when it has one, else written as they are.
    """

    filename = "predictions.jsonl"

    def __init__(self, output_dir: Optional[str] = None) -> None:
        super().__init__(output_dir)
        self._rows: list[dict[str, Any]] = []

    def on_predict_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._rows = []

    def on_predict_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                             batch_idx: int, dataloader_idx: int = 0) -> None:
        if outputs is not None:
            self._rows += prediction_rows(outputs)

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rows, self._rows = self._rows, []
        if trainer.world_size > 1:
            gathered: list[list[dict[str, Any]]] = [None] * trainer.world_size  # type: ignore[list-item]
            torch.distributed.all_gather_object(gathered, rows)
            rows = [r for part in gathered for r in part]
        path = self.path(trainer)
        if not trainer.is_global_zero:
            return
        unique = {r["sample"]: r for r in rows}  # a sample repeated by a sampler counts once
        describe = getattr(trainer.datamodule, "describe_prediction", None)
        lines = [json.dumps(describe(s, r["items"], r["scores"]) if describe else r) for s, r in sorted(unique.items())]
        self.write(path, "\n".join(lines) + "\n", f"wrote {len(lines)} recommendations to {path}")


class _SummaryOfParameters:
    """The model summary, left out for a model without parameters (the count baselines: a table of zeros)."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if any(True for _ in pl_module.parameters()):
            super().on_fit_start(trainer, pl_module)  # type: ignore[misc]


class ParameterModelSummary(_SummaryOfParameters, ModelSummary):
    pass


class ParameterRichModelSummary(_SummaryOfParameters, RichModelSummary):
    pass


def without_empty_summary(callback: Callback) -> Callback:
    """Lightning's own model summary callback as one that skips models without parameters."""
    if type(callback) not in (ModelSummary, RichModelSummary):
        return callback
    kind = ParameterRichModelSummary if isinstance(callback, RichModelSummary) else ParameterModelSummary
    return kind(callback._max_depth, **callback._summarize_kwargs)


def prediction_rows(outputs: dict[str, Any]) -> list[dict[str, Any]]:
    """One batch of ``predict_step`` outputs as plain rows (scores rounded to 6 decimals)."""
    items, scores = outputs["items"], outputs["scores"]
    return [
        {"sample": int(outputs["sample"][i]), "items": items[i].tolist(), "scores": [round(float(s), 6) for s in scores[i]]}
        for i in range(items.shape[0])
    ]


def output_writers() -> list[Callback]:
    """The callbacks every entry point registers: ``metrics.json`` and ``predictions.jsonl``."""
    return [MetricsWriter(), PredictionsWriter()]
