"""BERT4Rec (Sun et al., 2019): a bidirectional Transformer over item ids, cloze-trained.

Training sequence of a sample: ``[history ; target]`` (left-padded).  The target is always
replaced by [MASK] and every history item independently with probability ``mask_prob``;
each masked position predicts its item with a softmax over all items (cross-entropy, mean
over the masked positions of the batch).  Always masking the last element folds in the
paper's extra "mask only the last item" samples, which match how it recommends: the
history with one [MASK] appended, scored at that position over every item (full ranking).
Since the DataModule's training samples are every prefix of every training sequence,
every item is the (masked) last element of one sample.

The network is SASRec's without the causal mask (:class:`ItemIdTransformer`), with one
more embedding row for [MASK] and one more position for the appended slot.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from llada_rec.data.dataset import PAD_ITEM
from llada_rec.models.base import DataInfo
from llada_rec.models.baselines.common import FullRankingRecommender
from llada_rec.models.baselines.sequence_encoder import ItemIdTransformer
from llada_rec.config_groups import resolve_configs
from llada_rec.models.transformer import TransformerConfig


def cloze_mask(items: Tensor, mask_prob: float, generator: Optional[torch.Generator] = None) -> Tensor:
    """Which positions of items [B, S] (left-padded, 0 = padding) to mask: [B, S] bool.

    The last position is always masked, every other non-padding one independently with
    probability ``mask_prob``; padding never is.
    """
    draw = torch.rand(items.shape, device=items.device, generator=generator) < mask_prob
    draw[:, -1] = True
    return draw & (items != PAD_ITEM)


class BERT4Rec(FullRankingRecommender):
    """Bidirectional self-attention with a cloze objective; recommends from an appended [MASK].

    Args:
        network: the bidirectional Transformer's sizes.
        mask_prob: share of history items masked in training (the target always is).
        lr, weight_decay, warmup_ratio: AdamW with linear warm-up then cosine decay.
    """

    def __init__(
        self,
        network: TransformerConfig = TransformerConfig(d_model=64, num_layers=2, num_attention_heads=2, dropout=0.2),
        mask_prob: float = 0.2,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.05,
        top_k: int = 10,
        metric_ks: Sequence[int] = (1, 5, 10),
    ) -> None:
        super().__init__(top_k=top_k, metric_ks=metric_ks)
        if not 0.0 <= mask_prob <= 1.0:
            raise ValueError(f"mask_prob must lie in [0, 1], got {mask_prob}")
        self.save_hyperparameters()
        (self.network_config,) = resolve_configs(self, network=network)
        self.network: Optional[ItemIdTransformer] = None

    def build(self, info: DataInfo, item_codes: Optional[Tensor] = None) -> None:
        self.network = ItemIdTransformer(info.num_items, info.max_history + 1, self.network_config, causal=False, mask_token=True)

    def with_mask_slot(self, history: Tensor) -> Tensor:
        """history [B, L] -> [B, L + 1] with [MASK] appended."""
        return torch.cat([history, torch.full_like(history[:, :1], self.network.mask_item)], dim=1)

    def full_scores(self, history: Tensor) -> Tensor:
        """[B, N] float32 score of every item (column i - 1 = item i) at the appended [MASK]."""
        hidden = self.network(self.with_mask_slot(history))[:, -1]  # [B, D]
        return self.network.item_logits(hidden).float()

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Cloze cross-entropy over all items at the masked positions of [history ; target]."""
        items = torch.cat([batch["history"], batch["target"][:, None]], dim=1)  # [B, L + 1]
        masked = cloze_mask(items, self.hparams.mask_prob)
        hidden = self.network(items.masked_fill(masked, self.network.mask_item))  # [B, L + 1, D]
        logits = self.network.item_logits(hidden[masked]).float()  # [P, N], P masked positions
        return F.cross_entropy(logits, items[masked] - 1)
