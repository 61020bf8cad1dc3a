"""GRU4Rec (Hidasi et al., 2016) in its modern form: a GRU over item embeddings, trained
with full-softmax cross-entropy over all items, full ranking.

The GRU reads each history's real items only (left padding is packed away, so a history
gives the same scores at any padded length); its last hidden state, projected to the
embedding size, scores every item by a dot product with the (tied) item embeddings.  The
loss is taken at each training sample's last position, like SASRec's: the DataModule's
samples already are every prefix of every training sequence.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence

from llada_rec.data.dataset import PAD_ITEM
from llada_rec.models.base import DataInfo
from llada_rec.models.baselines.common import FullRankingRecommender


def left_align(history: Tensor) -> tuple[Tensor, Tensor]:
    """Left-padded history [B, L] -> (the same items right-padded [B, L], lengths [B])."""
    length = history.shape[1]
    lengths = (history != PAD_ITEM).sum(1)
    index = (torch.arange(length, device=history.device) + (length - lengths)[:, None]) % length
    return history.gather(1, index), lengths


class GRU4RecNetwork(nn.Module):
    """history [B, L] (left-padded item ids) -> user state [B, D] after the last item."""

    def __init__(self, num_items: int, d_model: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.item_embedding = nn.Embedding(num_items + 1, d_model, padding_idx=PAD_ITEM)  # row 0 = padding
        self.embedding_dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(d_model, d_model, num_layers=num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0)
        self.output = nn.Linear(d_model, d_model)
        nn.init.normal_(self.item_embedding.weight, std=0.02)
        with torch.no_grad():
            self.item_embedding.weight[PAD_ITEM].zero_()

    def forward(self, history: Tensor) -> Tensor:
        items, lengths = left_align(history)
        x = self.embedding_dropout(self.item_embedding(items))  # [B, L, D]
        # an empty history reads one padding step (a zero vector)
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed)  # [layers, B, D], in the batch's order
        return self.output(last[-1])

    def item_logits(self, state: Tensor) -> Tensor:
        """state [..., D] -> logits [..., N] over items 1..N (tied item embeddings)."""
        return state @ self.item_embedding.weight[1:].T


class GRU4Rec(FullRankingRecommender):
    """Recurrent next-item model with full ranking over all items.

    Args:
        d_model: embedding and hidden size; num_layers: stacked GRU layers; dropout: on
            the item embeddings (and between GRU layers).
        lr, weight_decay, warmup_ratio: AdamW with linear warm-up then cosine decay.
    """

    def __init__(
        self,
        d_model: int = 64,
        num_layers: int = 1,
        dropout: float = 0.2,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.05,
        top_k: int = 10,
        metric_ks: Sequence[int] = (1, 5, 10),
    ) -> None:
        super().__init__(top_k=top_k, metric_ks=metric_ks)
        self.save_hyperparameters()
        self.network: Optional[GRU4RecNetwork] = None

    def build(self, info: DataInfo, item_codes: Optional[Tensor] = None) -> None:
        hp = self.hparams
        self.network = GRU4RecNetwork(info.num_items, hp.d_model, hp.num_layers, hp.dropout)

    def full_scores(self, history: Tensor) -> Tensor:
        """[B, N] float32 score of every item (column i - 1 = item i)."""
        return self.network.item_logits(self.network(history)).float()

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Full-softmax cross-entropy of the target after each sample's history."""
        return F.cross_entropy(self.full_scores(batch["history"]), batch["target"] - 1)
