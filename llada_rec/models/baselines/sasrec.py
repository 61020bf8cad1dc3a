"""SASRec (Kang & McAuley, 2018): a causal Transformer over item ids, full-softmax trained.

The network reads the history left to right (causal mask) and scores every item from the
last position by a dot product with the (tied) item embeddings.  Training uses full
softmax cross-entropy over all items (the strong modern variant, not the original
sampled binary loss) on each training sample's **last position only**: the DataModule's
training samples already are every prefix of every training sequence, so this sees each
(history, next item) pair exactly once, the same data LLaDA-Rec trains on.

Positions are counted back from the end (last history item = 0), so left padding never
changes what a position means: the same history gives the same scores at any padded length.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from llada_rec.data.dataset import PAD_ITEM
from llada_rec.models.base import DataInfo, SequentialRecommender
from llada_rec.models.baselines.common import top_k_items
from llada_rec.models.optim import adamw_warmup_cosine
from llada_rec.models.transformer import TransformerEncoder, attention_mask


class SASRecNetwork(nn.Module):
    """history [B, L] (left-padded item ids) -> hidden states [B, L, D], causal."""

    def __init__(
        self, num_items: int, max_history: int, d_model: int, num_layers: int, num_attention_heads: int, dropout: float
    ) -> None:
        super().__init__()
        self.max_history = max_history
        self.item_embedding = nn.Embedding(num_items + 1, d_model, padding_idx=PAD_ITEM)  # row 0 = padding
        self.position_embedding = nn.Embedding(max_history, d_model)  # counted back from the last item
        self.embedding_dropout = nn.Dropout(dropout)
        self.encoder = TransformerEncoder(d_model, num_layers, num_attention_heads, ffn_ratio=4, dropout=dropout)
        nn.init.normal_(self.item_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding.weight, std=0.02)
        with torch.no_grad():
            self.item_embedding.weight[PAD_ITEM].zero_()

    def forward(self, history: Tensor) -> Tensor:
        length = history.shape[1]
        if length > self.max_history:
            raise ValueError(f"history has {length} items, more than max_history={self.max_history}")
        position = torch.arange(length - 1, -1, -1, device=history.device)  # [L], last item = 0
        x = self.item_embedding(history) + self.position_embedding(position)  # [B, L, D]
        causal = torch.ones(length, length, dtype=torch.bool, device=history.device).tril()
        mask = attention_mask(history == PAD_ITEM, causal)  # [B, 1, L, L]
        return self.encoder(self.embedding_dropout(x), mask)

    def item_logits(self, hidden: Tensor) -> Tensor:
        """hidden [..., D] -> logits [..., N] over items 1..N (tied item embeddings)."""
        return hidden @ self.item_embedding.weight[1:].T


class SASRec(SequentialRecommender):
    """Causal self-attention next-item model with full ranking over all items.

    Args:
        d_model, num_layers, num_attention_heads, dropout: network size.
        lr, weight_decay, warmup_ratio: AdamW with linear warm-up then cosine decay
            (weight decay on Linear weights only).
    """

    def __init__(
        self,
        d_model: int = 64,
        num_layers: int = 2,
        num_attention_heads: int = 2,
        dropout: float = 0.2,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.05,
        top_k: int = 10,
        metric_ks: Sequence[int] = (1, 5, 10),
    ) -> None:
        super().__init__(top_k=top_k, metric_ks=metric_ks)
        self.save_hyperparameters()
        self.network: Optional[SASRecNetwork] = None

    def build(self, info: DataInfo, item_codes: Optional[Tensor] = None) -> None:
        hp = self.hparams
        self.network = SASRecNetwork(info.num_items, info.max_history, hp.d_model, hp.num_layers, hp.num_attention_heads, hp.dropout)

    def full_scores(self, history: Tensor) -> Tensor:
        """[B, N] float32 score of every item (column i - 1 = item i) from the last position."""
        hidden = self.network(history)[:, -1]  # [B, D]
        return self.network.item_logits(hidden).float()

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Full-softmax cross-entropy of the target at each sample's last position."""
        return F.cross_entropy(self.full_scores(batch["history"]), batch["target"] - 1)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["target"].shape[0])
        return loss

    def configure_optimizers(self):
        hp = self.hparams
        return adamw_warmup_cosine(self, self.trainer, hp.lr, hp.weight_decay, hp.warmup_ratio)

    @torch.no_grad()
    def recommend(self, history: Tensor, k: int, stage: str) -> tuple[Tensor, Tensor]:
        return top_k_items(self.full_scores(history), k)
