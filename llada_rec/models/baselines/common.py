"""Pieces the baselines share: full-ranking top-k, the wiring of the neural models that
score every item, and the wiring of count-based models.

Count models (most popular, item transitions) have nothing to learn by gradient: their
statistics are computed once from the training split when ``fit`` starts and kept as
buffers, so a checkpoint predicts alone and ``lightning test``/``predict`` work like for any
neural model.
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from llada_rec.data.dataset import SequenceData
from llada_rec.models.base import DataInfo, SequentialRecommender, TrainedRecommender
from llada_rec.models.configs import ConfigurableModel

log = logging.getLogger(__name__)


def top_k_items(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Best ``k`` items from full-ranking scores.

    scores: [B, N], column ``i - 1`` belongs to item ``i``; ``-inf`` marks items that must
    not be returned.  Returns 1-based ``items`` [B, k] and their ``scores`` [B, k]; slots
    beyond the available items hold item 0 and score ``-inf``.
    """
    batch, num_items = scores.shape
    top_scores, top_columns = scores.topk(min(k, num_items), dim=-1)  # [B, k'] (ties: input dtype)
    top_scores = top_scores.float()
    items = torch.where(torch.isfinite(top_scores), top_columns + 1, torch.zeros_like(top_columns))
    if top_columns.shape[1] < k:
        pad = k - top_columns.shape[1]
        items = torch.cat([items, items.new_zeros(batch, pad)], dim=1)
        top_scores = torch.cat([top_scores, top_scores.new_full((batch, pad), float("-inf"))], dim=1)
    return items, top_scores


class FullRankingRecommender(ConfigurableModel, TrainedRecommender):
    """Base of the neural models that score every item (SASRec, BERT4Rec, GRU4Rec, RPG).

    A subclass implements ``full_scores(history [B, L]) -> [B, N]`` (float32, column
    ``i - 1`` = item ``i``) and ``loss(batch) -> scalar``, and saves ``lr``,
    ``weight_decay`` and ``warmup_ratio`` among its hyperparameters; training (the shared
    AdamW recipe) and top-k recommendation live here once.
    """

    def full_scores(self, history: Tensor) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def recommend(self, history: Tensor, k: int, stage: str) -> tuple[Tensor, Tensor]:
        return top_k_items(self.full_scores(history), k)


def training_parts(data: SequenceData) -> list[list[int]]:
    """Each user's training part ``seq[:-2]`` (validation and test targets removed)."""
    return [seq[:-2] for seq in data.sequences]


def item_counts(sequences: list[list[int]], num_items: int) -> np.ndarray:
    """[N + 1] float64 occurrences of each item (index 0, the padding item, stays 0)."""
    flat = np.fromiter((i for seq in sequences for i in seq), dtype=np.int64)
    return np.bincount(flat, minlength=num_items + 1).astype(np.float64)


class CountRecommender(SequentialRecommender):
    """Base of models whose state is statistics of the training split.

    Subclasses register their buffers in ``build`` and fill them in :meth:`fit_statistics`
    (at the start of ``fit``, or of ``test``/``predict`` when no checkpoint was loaded).
    ``fit`` runs one training step that changes nothing, then validates and stops (whatever
    ``max_epochs`` says), so that checkpointing, validation and ``test`` work as for the
    neural models.
    """

    def __init__(self, top_k: int = 10, metric_ks: Sequence[int] = (1, 5, 10)) -> None:
        super().__init__(top_k=top_k, metric_ks=metric_ks)
        self.save_hyperparameters()  # a subclass's own arguments too (Lightning walks the __init__ frames)
        self.automatic_optimization = False

    def build(self, info: DataInfo, item_codes: Optional[Tensor] = None) -> None:
        # 1 once the statistics are computed (saved with the checkpoint).
        self.register_buffer("fitted", torch.zeros((), dtype=torch.long))

    def fit_statistics(self, data: SequenceData) -> None:
        raise NotImplementedError

    def setup(self, stage: str) -> None:
        # DDP refuses a module without trainable parameters; counting needs no second process.
        if stage == "fit" and self.trainer.world_size > 1:
            raise ValueError(
                f"{type(self).__name__} has nothing to train: fit it in one process (--trainer.devices 1); "
                "test and predict may run on several"
            )
        super().setup(stage)

    def _ensure_fitted(self) -> None:
        if int(self.fitted) == 0:
            data = self.trainer.datamodule.data
            self.fit_statistics(data)
            self.fitted.fill_(1)

    def on_fit_start(self) -> None:
        self._ensure_fitted()

    def on_validation_start(self) -> None:
        self._ensure_fitted()

    def on_test_start(self) -> None:
        if int(self.fitted) == 0:
            log.warning("%s: no fitted statistics (no checkpoint); computing them from the training split", type(self).__name__)
        self._ensure_fitted()

    def on_predict_start(self) -> None:
        self.on_test_start()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.optimizers().step()  # changes nothing; counts the step (see configure_optimizers)
        self.trainer.should_stop = True  # nothing to train: stop after this step's validation

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # Nothing is trained, but ModelCheckpoint skips saving while the global step is 0:
        # a no-op optimizer over an empty tensor makes each training step count.
        return torch.optim.SGD([torch.zeros(0, requires_grad=True)], lr=0.0)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        # Statistics have data-dependent sizes (e.g. sparse counts): take the checkpoint's.
        state = checkpoint.get("state_dict", {})
        for name, buffer in list(self.named_buffers(recurse=False)):
            saved = state.get(name)
            if saved is not None and saved.shape != buffer.shape:
                self.register_buffer(name, torch.empty_like(saved, device=buffer.device))
