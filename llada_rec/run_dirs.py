"""Run directories and checkpoints from a trainer config: the logger's run root, the run a
checkpoint belongs to, ``--ckpt_path last|best``, and the metric rows a resumed run keeps."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Optional

import torch

from llada_rec.utils import ConfigError


def _first_logger(trainer_config: Any) -> Optional[Any]:
    logger = trainer_config.get("logger")
    if isinstance(logger, list):
        logger = logger[0] if logger else None
    return logger if logger not in (None, True, False) and hasattr(logger, "get") else None


def logger_root(trainer_config: Any) -> Optional[Path]:
    """``save_dir/name`` of the first (CSV-style) logger: the parent of the run's version dirs."""
    logger = _first_logger(trainer_config)
    if logger is None:
        return None
    init = logger.get("init_args") or {}
    save_dir = init.get("save_dir")
    if save_dir is None:
        return None
    name = init.get("name", "lightning_logs")
    return Path(save_dir) / name if name else Path(save_dir)


def checkpoint_run_dir(ckpt_path: str | os.PathLike) -> Optional[Path]:
    """The run directory a checkpoint belongs to (``<run>/checkpoints/x.ckpt`` -> ``<run>``)."""
    path = Path(ckpt_path)
    return path.parent.parent if path.parent.name == "checkpoints" else None


def find_checkpoint(root: Optional[Path], which: str) -> Path:
    """The newest run's ``last.ckpt`` (``which="last"``) or its best checkpoint (``"best"``) below root."""
    where = f"{root}/*/checkpoints" if root is not None else "the logger's run directories"
    lasts = sorted(root.glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime) if root and root.is_dir() else []
    if which == "last":
        if not lasts:
            raise ConfigError(f"--ckpt_path last: no last.ckpt in {where}; train first (fit), or pass a checkpoint path")
        return lasts[-1]
    if lasts:
        state = torch.load(lasts[-1], map_location="cpu", weights_only=True).get("callbacks", {})
        for key, value in state.items():
            best = value.get("best_model_path") if key.startswith("ResumableCheckpoint") or key.startswith("ModelCheckpoint") else None
            if best and Path(best).is_file():
                return Path(best)
    bests = sorted(root.glob("*/checkpoints/best*.ckpt"), key=lambda p: p.stat().st_mtime) if root and root.is_dir() else []
    if not bests:
        raise ConfigError(f"--ckpt_path best: no best checkpoint in {where}; train first (fit), or pass a checkpoint path")
    return bests[-1]


def read_metrics_rows(path: Path, last_epoch: int) -> list[dict[str, Any]]:
    """The rows of a metrics.csv logged in epochs <= last_epoch, as numbers."""
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            values = {k: float(v) for k, v in row.items() if v not in ("", None)}
            if "epoch" in values and values["epoch"] > last_epoch:
                continue
            for key in ("step", "epoch"):
                if key in values:
                    values[key] = int(values[key])
            rows.append(values)
    return rows
