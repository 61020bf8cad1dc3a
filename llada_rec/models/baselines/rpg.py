"""RPG (Hou et al., KDD 2025): all M codes of the next item's parallel semantic ID in one step.

Network: a causal Transformer over the history items (:class:`ItemSequenceEncoder`), where
an item's input vector is the mean of its M code embeddings (one embedding per (head, code),
heads do not share them).  From the last position, M residual heads ``h_m = x + SiLU(W_m x)``
each predict one code: logits over head m's K codes are the cosine similarities of ``h_m``
with head m's code embeddings (tied to the input ones), divided by ``temperature``.  The
codes are predicted independently given the history, so

    log p(item | history) = sum_m log p_m(c_m(item) | history),

trained as the mean over heads of each head's cross-entropy.

Ranking is **exact**: every item is scored by the sum of its M codes' log-probabilities and
the top-k taken (``M`` gathers from the [B, M, K] log-probs, [B, N] scores).  RPG itself
decodes with a graph-constrained search instead, because its long IDs (M = 16..64) make it
aim at catalogues where scoring every item is costly: it starts from sampled items, moves
along a k-nearest-neighbour graph of items (similarity of their codes) and keeps the best
visited ones by the same score.  That search only ever returns items it visited, ranked by
the score used here, so its j-th item's score is at most the exact j-th score for every j:
exact ranking is the search with no search error, the upper bound it approximates (equal to
it once the search visits every item).  The catalogues here are small enough for exact
ranking.  See docs/DECISIONS.md for what the bound does and does not say about metrics.

Semantic IDs: any parallel tokenizer's artifact -- the Multi-Head VQ-VAE of the dataset
config by default, OPQ (RPG's own) with ``experiments/ablations/opq.yaml``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from llada_rec.data.dataset import PAD_ITEM
from llada_rec.models.base import DataInfo
from llada_rec.models.baselines.common import FullRankingRecommender
from llada_rec.models.baselines.sequence_encoder import ItemSequenceEncoder
from llada_rec.config_groups import resolve_configs
from llada_rec.models.semantic_ids import SemanticIdRecommender
from llada_rec.models.transformer import TransformerConfig


def item_log_probs(code_log_probs: Tensor, item_codes: Tensor) -> Tensor:
    """Exact score of every item: code_log_probs [B, M, K], item_codes [N, M] -> [B, N],
    the sum over heads m of ``code_log_probs[b, m, item_codes[i, m]]``."""
    batch, num_heads, _ = code_log_probs.shape
    index = item_codes.T[None].expand(batch, num_heads, item_codes.shape[0])  # [B, M, N]
    return code_log_probs.gather(2, index).sum(1)


class RPGNetwork(ItemSequenceEncoder):
    """history codes [B, L, M] + padding [B, L] -> per-head code logits [B, M, K] for the next item."""

    def __init__(
        self,
        num_heads: int,
        codebook_size: int,
        max_history: int,
        network: TransformerConfig,
        temperature: float,
    ) -> None:
        super().__init__(max_history, network, causal=True)
        d_model = network.d_model
        self.num_heads = num_heads  # M
        self.codebook_size = codebook_size  # K
        self.temperature = temperature
        self.code_embedding = nn.Embedding(num_heads * codebook_size, d_model)  # id m*K + k
        self.head_projection = nn.Linear(d_model, num_heads * d_model)  # the M residual heads' W_m, stacked
        nn.init.normal_(self.code_embedding.weight, std=0.02)

    def item_inputs(self, history_codes: Tensor, padding: Tensor) -> Tensor:
        """Mean of each item's M code embeddings [B, L, D] (zero at padding)."""
        offset = torch.arange(self.num_heads, device=history_codes.device) * self.codebook_size
        inputs = self.code_embedding(history_codes + offset).mean(-2)  # [B, L, D]
        return inputs.masked_fill(padding[..., None], 0.0)

    def forward(self, history_codes: Tensor, padding: Tensor) -> Tensor:
        hidden = self.encode(self.item_inputs(history_codes, padding), padding)[:, -1]  # [B, D]
        heads = hidden[:, None] + F.silu(self.head_projection(hidden)).view(-1, self.num_heads, hidden.shape[-1])  # [B, M, D]
        codes = self.code_embedding.weight.view(self.num_heads, self.codebook_size, -1)  # [M, K, D]
        cosine = torch.einsum("bmd,mkd->bmk", F.normalize(heads, dim=-1), F.normalize(codes, dim=-1))
        return cosine / self.temperature


class RPG(SemanticIdRecommender, FullRankingRecommender):
    """Parallel next-item semantic-ID prediction with exact full ranking.

    Args:
        network: the causal Transformer's sizes.
        temperature: divides the heads' cosine logits (RPG's default 0.07).
        lr, weight_decay, warmup_ratio: AdamW with linear warm-up then cosine decay.
    """

    def __init__(
        self,
        network: TransformerConfig = TransformerConfig(d_model=64, num_layers=2, num_attention_heads=2),
        temperature: float = 0.07,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.05,
        top_k: int = 10,
        metric_ks: Sequence[int] = (1, 5, 10),
    ) -> None:
        super().__init__(top_k=top_k, metric_ks=metric_ks)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.save_hyperparameters()
        (self.network_config,) = resolve_configs(self, network=network)
        self.network: Optional[RPGNetwork] = None

    def build(self, info: DataInfo, item_codes: Optional[Tensor] = None) -> None:
        """Network plus the codes as buffer ``item_code_table`` [N + 1, M] (row 0 = padding)."""
        self.register_code_table(info, item_codes)
        self.network = RPGNetwork(info.num_heads, info.codebook_size, info.max_history, self.network_config, self.hparams.temperature)

    def code_log_probs(self, history: Tensor) -> Tensor:
        """[B, M, K] float32 log p_m(code | history) of the next item, per head."""
        logits = self.network(self.item_code_table[history], history == PAD_ITEM)
        return F.log_softmax(logits.float(), dim=-1)

    def full_scores(self, history: Tensor) -> Tensor:
        """[B, N] float32 log-probability of every item (column i - 1 = item i)."""
        return item_log_probs(self.code_log_probs(history), self.item_code_table[1:])

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Cross-entropy of the target's M codes, mean over heads and batch."""
        logits = self.network(self.item_code_table[batch["history"]], batch["history"] == PAD_ITEM)  # [B, M, K]
        return F.cross_entropy(logits.float().flatten(0, 1), self.item_code_table[batch["target"]].flatten())
