"""SASRec (Kang & McAuley, 2018): a causal Transformer over item ids, full ranking.

The network reads the history left to right (causal mask) and scores every item from the
last position by a dot product with the (tied) item embeddings.  Two losses (``loss``):

- ``"ce"`` (default): full-softmax cross-entropy over all items, the strong modern variant;
- ``"bce"``: the original paper's binary cross-entropy of the target against one sampled
  negative, ``-log s(pos) - log(1 - s(neg))``; what most papers' SASRec rows (LLaDA-Rec's
  Table 3 included) used.  The negative is uniform over the items other than the target.

Either loss is taken at each training sample's **last position only**: the DataModule's
training samples already are every prefix of every training sequence, so this sees each
(history, next item) pair -- each position of the original per-position loss -- exactly
once, the same data LLaDA-Rec trains on.
"""

from __future__ import annotations

from typing import Literal, Optional, Sequence, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from llada_rec.models.base import DataInfo
from llada_rec.models.baselines.common import FullRankingRecommender
from llada_rec.models.baselines.sequence_encoder import ItemIdTransformer
from llada_rec.config_groups import resolve_configs
from llada_rec.models.transformer import TransformerConfig

SASRecLoss = Literal["ce", "bce"]
SASREC_LOSSES: tuple[str, ...] = get_args(SASRecLoss)


def other_items(target: Tensor, num_items: int) -> Tensor:
    """One item per target [B], uniform over items 1..N other than the target (N >= 2)."""
    shift = torch.randint(1, num_items, target.shape, device=target.device)  # in [1, N - 1]
    return (target - 1 + shift) % num_items + 1


class SASRec(FullRankingRecommender):
    """Causal self-attention next-item model with full ranking over all items.

    Args:
        network: the causal Transformer's sizes.
        loss: "ce" (full softmax over all items) or "bce" (the original: one sampled
            negative per position).
        lr, weight_decay, warmup_ratio: AdamW with linear warm-up then cosine decay
            (weight decay on Linear weights only).
    """

    def __init__(
        self,
        network: TransformerConfig = TransformerConfig(d_model=64, num_layers=2, num_attention_heads=2, dropout=0.2),
        loss: SASRecLoss = "ce",
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.05,
        top_k: int = 10,
        metric_ks: Sequence[int] = (1, 5, 10),
    ) -> None:
        super().__init__(top_k=top_k, metric_ks=metric_ks)
        if loss not in SASREC_LOSSES:
            raise ValueError(f"loss must be one of {SASREC_LOSSES}, got {loss!r}")
        self.save_hyperparameters()
        (self.network_config,) = resolve_configs(self, network=network)
        self.network: Optional[ItemIdTransformer] = None

    def build(self, info: DataInfo, item_codes: Optional[Tensor] = None) -> None:
        hp = self.hparams
        if hp.loss == "bce" and info.num_items < 2:
            raise ValueError("the BCE loss samples a negative item other than the target: it needs at least 2 items")
        self.network = ItemIdTransformer(info.num_items, info.max_history, self.network_config, causal=True)

    def full_scores(self, history: Tensor) -> Tensor:
        """[B, N] float32 score of every item (column i - 1 = item i) from the last position."""
        hidden = self.network(history)[:, -1]  # [B, D]
        return self.network.item_logits(hidden).float()

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """The target's loss at each sample's last position: full-softmax CE, or BCE
        against one sampled negative (mean over the batch)."""
        if self.hparams.loss == "ce":
            return F.cross_entropy(self.full_scores(batch["history"]), batch["target"] - 1)
        target = batch["target"]
        hidden = self.network(batch["history"])[:, -1]  # [B, D]
        items = torch.stack([target, other_items(target, self.data_info.num_items)], dim=1)  # [B, 2]: positive, negative
        logits = (self.network.item_embedding(items) * hidden[:, None]).sum(-1).float()  # [B, 2]
        labels = torch.tensor([1.0, 0.0], device=logits.device).expand_as(logits)
        return F.binary_cross_entropy_with_logits(logits, labels, reduction="sum") / target.shape[0]
