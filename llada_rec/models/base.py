"""Evaluation, metrics and prediction wiring shared by every next-item recommender.

A subclass builds its network in :meth:`build` (the sizes come from the data, which the
DataModule knows only after ``setup``) and ranks items in :meth:`recommend`; everything else
(Recall/NDCG logged in test and validation, predictions returned by ``predict_step``, DDP
bookkeeping) lives here once.  The files (``metrics.json``, ``predictions.jsonl``) are written
by callbacks the entry points register (:func:`llada_rec.callbacks.output_writers`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Optional, Sequence

import lightning as L
import torch
from torch import Tensor
from torchmetrics import MetricCollection

from llada_rec.callbacks import TrainingClock
from llada_rec.data.info import DataInfo  # noqa: F401  (re-exported: models import it from here)
from llada_rec.metrics import NDCGAtK, RecallAtK
from llada_rec.models.optim import adamw_warmup_cosine
from llada_rec.utils import destroy_process_group_at_exit


class SequentialRecommender(L.LightningModule):
    """Base class: ``recommend(history) -> (items, scores)`` plus all the shared wiring."""

    data_view = "sequences"
    #: True for models over semantic IDs: ``build`` then receives the item codes.
    needs_semantic_ids = False

    def __init__(self, top_k: int = 10, metric_ks: Sequence[int] = (1, 5, 10)) -> None:
        super().__init__()
        self.top_k = top_k
        self.metric_ks = tuple(sorted(set(metric_ks)))
        if max(self.metric_ks) > top_k:
            raise ValueError(f"metric_ks {self.metric_ks} exceed top_k={top_k}")
        self.data_info: Optional[DataInfo] = None
        self.val_metrics = ranking_metrics(self.metric_ks, prefix="val/")
        self.test_metrics = ranking_metrics(self.metric_ks, prefix="test/")
        self._valid_unique = [0, 0]  # [valid-and-unique returned items, returned items]

    # -- to implement -------------------------------------------------------------------
    def build(self, info: DataInfo, item_codes: Optional[Tensor] = None) -> None:
        """Create the network for these data sizes. ``item_codes``: [N, M] semantic IDs."""
        raise NotImplementedError

    def recommend(self, history: Tensor, k: int, stage: str) -> tuple[Tensor, Tensor]:
        """Rank items for each history.

        history: [B, L] item indices, left-padded with 0.  Returns ``items`` [B, k] (0 where
        fewer than k valid items were found) and ``scores`` [B, k], best first.  ``stage``
        is "val", "test" or "predict" so a model may use a cheaper decoder in validation.
        """
        raise NotImplementedError

    def configure_callbacks(self) -> list[L.Callback]:
        """Every run logs validation's share of the training time (``time/val_share``); a
        clock the trainer already has (passed in, or added by an earlier fit) is kept."""
        if any(isinstance(c, TrainingClock) for c in self.trainer.callbacks):
            return []
        return [TrainingClock()]

    # -- set-up and checkpoints ---------------------------------------------------------
    def setup(self, stage: str) -> None:
        destroy_process_group_at_exit()  # under DDP: a clean gloo exit (see the function)
        if self.data_info is not None:
            return
        dm = self.trainer.datamodule
        info, item_codes = dm.data_info(self.needs_semantic_ids)
        self.data_info = info
        self.build(info, item_codes)
        stats = getattr(dm, "semantic_id_stats", None)
        if stats:  # the tokenizer's figures (collisions, usage) beside the run's metrics
            for logger in self.loggers:
                logger.log_hyperparams({"tokenizer_stats": stats})

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["data_info"] = asdict(self.data_info)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.data_info is None and "data_info" in checkpoint:
            self.data_info = DataInfo(**checkpoint["data_info"])
            self.build(self.data_info, None)  # buffers (codes, counts) come from the state dict

    # -- evaluation ---------------------------------------------------------------------
    def _evaluate(self, batch: dict[str, Tensor], stage: str) -> None:
        items, scores = self.recommend(batch["history"], self.top_k, stage)
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        metrics.update(items, batch["target"])
        self._count_valid_unique(items, scores)
        self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=items.shape[0])

    def _count_valid_unique(self, items: Tensor, scores: Tensor) -> None:
        """Count returned entries (finite score; -inf marks padding when fewer than k were
        found) and those among them that are an item (> 0) not returned earlier in the row."""
        returned = torch.isfinite(scores)
        items = torch.where(returned, items, torch.full_like(items, -1))
        sorted_items, _ = items.sort(dim=-1)
        duplicate = torch.zeros_like(items, dtype=torch.bool)
        duplicate[:, 1:] = sorted_items[:, 1:] == sorted_items[:, :-1]
        good = (sorted_items > 0) & ~duplicate
        self._valid_unique[0] += int(good.sum())
        self._valid_unique[1] += int(returned.sum())

    def _log_valid_unique(self, stage: str) -> None:
        counts = torch.tensor(self._valid_unique, dtype=torch.float64, device=self.device)
        counts = self.all_gather(counts)
        if counts.dim() > 1:
            counts = counts.sum(0)
        self.log(f"{stage}/valid_unique", float(counts[0] / counts[1].clamp(min=1)), sync_dist=False)
        self._valid_unique = [0, 0]

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self._log_valid_unique("val")

    def on_test_epoch_end(self) -> None:
        self._log_valid_unique("test")

    # -- prediction ---------------------------------------------------------------------
    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """``{"sample": [B], "items": [B, k], "scores": [B, k]}``: the batch's recommendations
        (:class:`llada_rec.callbacks.PredictionsWriter` writes them)."""
        items, scores = self.recommend_new_items(batch["history"], self.top_k)
        return {"sample": batch["sample"], "items": items, "scores": scores}

    @torch.no_grad()
    def recommend_new_items(self, history: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """The best ``k`` items that are not in the history: what ``predict`` and the serving API
        (``llada_rec.serving``) return.  history [B, L] (left-padded with 0) -> items [B, k]
        (0 = none) and scores [B, k] (-inf = none), best first.

        Asks :meth:`recommend` (stage "predict") for ``k + L`` items, so up to L history items
        can be dropped and k remain; a beam search with fewer beams returns fewer.
        """
        items, scores = self.recommend(history, k + history.shape[1], "predict")
        seen = (items[:, :, None] == history[:, None, :]).any(dim=-1)
        keep = ~seen & (items > 0) & torch.isfinite(scores)
        order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices[:, :k]  # kept first, in rank order
        kept = keep.gather(1, order)
        items = items.gather(1, order).masked_fill(~kept, 0)
        scores = scores.gather(1, order).masked_fill(~kept, float("-inf"))
        if items.shape[1] < k:  # fewer than k items in the model at all
            pad = k - items.shape[1]
            items = torch.cat([items, items.new_zeros(items.shape[0], pad)], dim=1)
            scores = torch.cat([scores, scores.new_full((scores.shape[0], pad), float("-inf"))], dim=1)
        return items, scores


class TrainedRecommender(SequentialRecommender):
    """Base of the models trained by gradient descent: a subclass defines its losses only.

    ``loss(batch) -> scalar`` for one loss, or ``losses(batch) -> {"loss": joint, name:
    term, ...}`` for several; every entry is logged as ``train/<name>``.  The optimiser is
    the shared recipe (:func:`llada_rec.models.optim.adamw_warmup_cosine`) over the
    subclass's ``lr``, ``weight_decay`` and ``warmup_ratio`` hyperparameters.
    """

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError

    def losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"loss": self.loss(batch)}

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        losses = self.losses(batch)
        batch_size = batch["target"].shape[0]
        for name, value in losses.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss", batch_size=batch_size)
        return losses["loss"]

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        return adamw_warmup_cosine(self, self.trainer, hp.lr, hp.weight_decay, hp.warmup_ratio)


def ranking_metrics(ks: Sequence[int], prefix: str) -> MetricCollection:
    """Recall@k and NDCG@k for each k, named like ``test/recall@10``.

    ``compute_groups=False``: torchmetrics would otherwise merge metrics whose states are
    equal after the first batch (recall@5 and recall@10 often are), sharing one state.
    """
    metrics = {}
    for k in ks:
        metrics[f"recall@{k}"] = RecallAtK(k)
        metrics[f"ndcg@{k}"] = NDCGAtK(k)
    return MetricCollection(metrics, prefix=prefix, compute_groups=False)

