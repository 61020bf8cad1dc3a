"""The optimisation recipe every neural model here shares (SPEC §4): AdamW with decay on
Linear weights only, linear warm-up, then a cosine decay per step."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
import torch.nn as nn


def warmup_cosine(step: int, total_steps: int, warmup_steps: int) -> float:
    """Learning-rate factor: linear warm-up to 1 over ``warmup_steps``, then cosine to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def adamw_warmup_cosine(module: nn.Module, trainer: L.Trainer, lr: float, weight_decay: float, warmup_ratio: float) -> dict[str, Any]:
    """AdamW (decay on Linear weights only) with linear warm-up then cosine decay per step.

    The same optimisation recipe as LLaDA-Rec, so the neural baselines differ from it only
    in the model.
    """
    decay, no_decay = [], []
    for sub in module.modules():
        for name, param in sub.named_parameters(recurse=False):
            if param.requires_grad:
                (decay if isinstance(sub, nn.Linear) and name == "weight" else no_decay).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )
    total_steps = trainer.estimated_stepping_batches
    if not math.isfinite(total_steps):
        raise ValueError("the cosine schedule needs a finite number of steps: set max_epochs or max_steps")
    total_steps = int(total_steps)
    warmup_steps = max(1, int(warmup_ratio * total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, total_steps, warmup_steps))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
