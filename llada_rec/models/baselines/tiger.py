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

from llada_rec.models.base import DataInfo
from llada_rec.models.mask_predictor import MaskPredictor
from llada_rec.models.semantic_ids import SemanticIdRecommender


class CausalCodePredictor(MaskPredictor):
    """Next-code model: logits at target position m are p(c_m | history, c_<m).

    ``target_logits(history_tokens, history_padding, target_codes [B, M])`` works as in the
    mask predictor; codes of heads >= m never influence position m, so unfilled codes
    (``MASKED`` = -1) may sit there.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(attention="causal", **kwargs)

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
        d_model, num_layers, num_attention_heads, ffn_ratio, dropout: network size.
        lr, weight_decay, warmup_ratio: AdamW with warm-up and cosine decay (as LLaDA-Rec).
        beam_size, val_beam_size: beams in test/predict and in validation (fewer than top_k:
            fewer items, 0-padded; validation is greedy by default, as LLaDARec).
        decode_chunk_size: rows (user x beam) per network call while decoding.
    """

    def __init__(
        self,
        d_model: int = 128,
        num_layers: int = 4,
        num_attention_heads: int = 4,
        ffn_ratio: int = 4,
        dropout: float = 0.1,
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        warmup_ratio: float = 0.05,
        beam_size: int = 50,
        val_beam_size: int = 1,
        decode_chunk_size: int = 4096,
        top_k: int = 10,
        metric_ks: Sequence[int] = (1, 5, 10),
    ) -> None:
        super().__init__(top_k=top_k, metric_ks=metric_ks)
        self.save_hyperparameters()
        if min(beam_size, val_beam_size) < 1:  # as LLaDARec: fewer beams than top_k return fewer items (0-padded)
            raise ValueError(f"beam_size={beam_size} and val_beam_size={val_beam_size} must be >= 1")
        self.network: Optional[CausalCodePredictor] = None

    def build(self, info: DataInfo, item_codes: Optional[Tensor] = None) -> None:
        """Network plus the codes as buffer ``item_code_table`` [N + 1, M] (row 0 = padding)."""
        self.register_code_table(info, item_codes)
        hp = self.hparams
        self.network = CausalCodePredictor(
            num_heads=info.num_heads,
            codebook_size=info.codebook_size,
            max_items=info.max_history + 1,
            d_model=hp.d_model,
            num_layers=hp.num_layers,
            num_attention_heads=hp.num_attention_heads,
            ffn_ratio=hp.ffn_ratio,
            dropout=hp.dropout,
        )

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
        hp = self.hparams
        beam_size = hp.val_beam_size if stage == "val" else hp.beam_size
        return self.decode(
            self.network,
            history,
            k,
            beam_size=beam_size,
            num_steps=self.data_info.num_heads,
            order="left_to_right",
            chunk_size=hp.decode_chunk_size,
        )
