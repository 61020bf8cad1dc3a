"""TIGER (Rajput et al., 2023): autoregressive generation of an item's semantic ID.

Decoder-only variant: one causal Transformer reads the history's code tokens, then the
target's codes shifted right behind a start token, and predicts the target's code at head
m from the history and the codes of heads < m.  Training is teacher-forced cross-entropy on
the M target codes; recommendation is a left-to-right beam search over the codes,
constrained to tuples that are items (prefix-trie constraint), with the project's decoder.

The network is LLaDA-Rec's mask predictor with token-level causal attention and a shifted
target slot: its input at target position m is the token of code m-1 ([MASK] stands for
the start token at m = 0) and its output there scores head m's codes.  So TIGER and
LLaDA-Rec share embeddings, Transformer blocks and output layer, and differ in what is
modelled: p(c_m | history, c_<m) against p(masked codes | history, visible codes).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from llada_rec.decoding import DecodingConfig
from llada_rec.models.base import DataInfo
from llada_rec.config_groups import resolve_configs
from llada_rec.models.mask_predictor import MaskPredictor
from llada_rec.models.semantic_ids import SemanticIdRecommender
from llada_rec.models.transformer import TransformerConfig


class CausalCodePredictor(MaskPredictor):
    """Next-code model: logits at target position m are p(c_m | history, c_<m).

    ``target_logits(history_tokens, history_padding, target_codes [B, M])`` works as in the
    mask predictor; codes of heads >= m never influence position m, so unfilled codes
    (``MASKED`` = -1) may sit there.
    """

    def __init__(self, num_heads: int, codebook_size: int, max_items: int, network: TransformerConfig) -> None:
        super().__init__(num_heads, codebook_size, max_items, network, attention="causal")

    def sequence(self, history_tokens: Tensor, history_padding: Tensor, target_codes: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        if target_codes is None:
            raise ValueError("the causal code predictor always has a target slot")
        tokens = self.code_tokens(target_codes)  # [B, M], head m's code -> its own token id
        start = torch.full_like(tokens[:, :1], self.mask_token)  # start token
        shifted = torch.cat([start, tokens[:, :-1]], dim=1)  # position m reads code m-1
        padding = torch.zeros_like(shifted, dtype=torch.bool)
        return torch.cat([history_tokens, shifted], dim=1), torch.cat([history_padding, padding], dim=1)


class TIGER(SemanticIdRecommender):
    """Generative retrieval over semantic IDs with an autoregressive Transformer.

    Args:
        network: the causal Transformer's sizes.
        lr: peak AdamW learning rate (warm-up, then cosine decay, as LLaDA-Rec).
        weight_decay: AdamW weight decay (Linear weights only).
        warmup_ratio: share of the steps in linear warm-up.
        decoding: beams in test/predict and in validation (fewer than top_k: fewer items,
            0-padded; validation is greedy by default, as LLaDARec); TIGER always decodes one
            code per step, left to right (num_steps and order stay at their defaults).
        top_k: items recommended per user.
        metric_ks: the k of Recall@k and NDCG@k.
    """

    def __init__(
        self,
        network: TransformerConfig = TransformerConfig(d_model=128, num_attention_heads=4),
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        warmup_ratio: float = 0.05,
        decoding: DecodingConfig = DecodingConfig(),
        top_k: int = 10,
        metric_ks: Sequence[int] = (1, 5, 10),
    ) -> None:
        super().__init__(top_k=top_k, metric_ks=metric_ks)
        self.save_hyperparameters()
        self.network_config, self.decoding = resolve_configs(self, network=network, decoding=decoding)
        fixed = DecodingConfig()
        if (self.decoding.num_steps, self.decoding.order) != (fixed.num_steps, fixed.order):
            raise ValueError("TIGER decodes left to right, one code per step: leave decoding.num_steps and decoding.order at their defaults")
        self.network: Optional[CausalCodePredictor] = None

    def build(self, info: DataInfo, item_codes: Optional[Tensor] = None) -> None:
        """Network plus the codes as buffer ``item_code_table`` [N + 1, M] (row 0 = padding)."""
        self.register_code_table(info, item_codes)
        self.network = CausalCodePredictor(info.num_heads, info.codebook_size, info.max_history + 1, self.network_config)

    def history_tokens(self, history: Tensor) -> tuple[Tensor, Tensor]:
        """history [B, L] items -> code tokens and padding [B, L*M]."""
        return self.network.history_tokens(self.item_code_table[history], history == 0)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Teacher-forced cross-entropy over the target's M codes (mean over codes and batch)."""
        tokens, padding = self.history_tokens(batch["history"])
        target_codes = self.item_code_table[batch["target"]]  # [B, M]
        logits = self.network.target_logits(tokens, padding, target_codes)  # [B, M, K]
        return F.cross_entropy(logits.float().flatten(0, 1), target_codes.flatten())

    def recommend(self, history: Tensor, k: int, stage: str) -> tuple[Tensor, Tensor]:
        """Top-k items [B, k] (0 = none) and their total log-probabilities [B, k], best first:
        left to right, one code per step, each step constrained to prefixes of items (a trie)."""
        left_to_right = {"num_steps": self.data_info.num_heads, "order": "left_to_right"}
        return self.decode(self.network, history, k, **{**self.decoding.decode_args(stage), **left_to_right})
