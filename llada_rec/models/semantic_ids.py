"""What every recommender that generates semantic IDs shares: the item code table, the
valid-item index and beam-search decoding over a code predictor (LLaDA-Rec, TIGER)."""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from llada_rec.decoding import ItemCodeIndex, diffusion_beam_search
from llada_rec.models.base import DataInfo, SequentialRecommender
from llada_rec.models.mask_predictor import MaskPredictor


class SemanticIdRecommender(SequentialRecommender):
    """Base class: ``item_code_table`` [N + 1, M] (row 0 = padding), kept as a buffer so a
    checkpoint predicts alone, and :meth:`decode`, the constrained beam search."""

    needs_semantic_ids = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._code_index: Optional[ItemCodeIndex] = None

    def register_code_table(self, info: DataInfo, item_codes: Optional[Tensor]) -> None:
        """Check the codes against the data sizes and keep them; None when rebuilding from a
        checkpoint (the state dict then fills the table)."""
        name = type(self).__name__
        if info.num_heads < 1 or info.codebook_size < 1:
            raise ValueError(f"{name} needs semantic IDs: DataInfo has num_heads={info.num_heads}, codebook_size={info.codebook_size}")
        table = torch.zeros(info.num_items + 1, info.num_heads, dtype=torch.long)
        if item_codes is not None:
            if tuple(item_codes.shape) != (info.num_items, info.num_heads):
                raise ValueError(f"item_codes has shape {tuple(item_codes.shape)}, expected ({info.num_items}, {info.num_heads})")
            if int(item_codes.min()) < 0 or int(item_codes.max()) >= info.codebook_size:
                raise ValueError(
                    f"item_codes values must lie in [0, {info.codebook_size}), got [{int(item_codes.min())}, {int(item_codes.max())}]"
                )
            table[1:] = item_codes.long()
        self.register_buffer("item_code_table", table)
        self._code_index = None

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self._code_index = None  # the restored table replaces the one the index was built from

    def code_index(self) -> ItemCodeIndex:
        """The valid-tuple index of the decoder, built once per device from ``item_code_table``."""
        device = self.item_code_table.device
        if self._code_index is None or self._code_index.device != device:
            self._code_index = ItemCodeIndex(self.item_code_table[1:], self.data_info.codebook_size).to(device)
        return self._code_index

    @torch.no_grad()
    def decode(
        self,
        predictor: MaskPredictor,
        history: Tensor,
        k: int,
        *,
        beam_size: int,
        num_steps: int,
        order: str,
        constrained: bool = True,
        temperature: float = 1.0,
        chunk_size: int = 4096,
        use_cache: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """Top-k items [B, k] (0 = none) and total log-probabilities [B, k] for history [B, L].

        ``predictor`` scores the target's M positions given the history and a partial
        target, over rows (user x beam) in chunks of at most ``chunk_size`` rows.  Users are
        decoded shortest history first and each chunk drops the padding items that none of
        its rows has, so no layer runs over padding that only a longer row in the batch needs
        (results as without: padding is never attended to).  With
        ``attention="cached_history"`` (and ``use_cache``) the history's keys and values are
        computed once per user and only the M target tokens run per row.
        """
        if history.numel() and int(history.max()) >= self.item_code_table.shape[0]:
            raise ValueError(f"history holds item {int(history.max())}, but the model knows items 1..{self.item_code_table.shape[0] - 1}")
        lengths = (history != 0).sum(dim=1)  # [B]
        by_length = torch.argsort(lengths, stable=True)
        longest = max(1, int(lengths.max())) if lengths.numel() else 1
        history = history[by_length][:, max(0, history.shape[1] - longest) :]  # drop columns of padding only
        tokens, padding = predictor.history_tokens(self.item_code_table[history], history == 0)
        num_heads = predictor.num_heads
        if use_cache and predictor.attention == "cached_history":
            cache = predictor.history_cache(tokens, padding)

            def target_logits(users: Tensor, target: Tensor) -> Tensor:
                return predictor.cached_target_logits(cache, users, target)

        else:
            sorted_lengths = lengths[by_length]

            def target_logits(users: Tensor, target: Tensor) -> Tensor:
                keep = int(sorted_lengths[users].max()) * num_heads  # users are sorted: the chunk's longest
                return predictor.target_logits(tokens[users, tokens.shape[1] - keep :], padding[users, padding.shape[1] - keep :], target)

        def log_prob_fn(rows: Tensor, target: Tensor) -> Tensor:
            """rows [R] (user in the sorted batch), target [R, M] (-1 = unfilled) -> [R, M, K] float32."""
            chunks = []
            for start in range(0, rows.shape[0], chunk_size):
                logits = target_logits(rows[start : start + chunk_size], target[start : start + chunk_size])
                chunks.append(F.log_softmax(logits.float() / temperature, dim=-1))
            return chunks[0] if len(chunks) == 1 else torch.cat(chunks)

        result = diffusion_beam_search(
            log_prob_fn,
            history.shape[0],
            self.code_index(),
            beam_size=beam_size,
            num_steps=num_steps,
            top_k=k,
            order=order,
            constrained=constrained,
        )
        restore = torch.argsort(by_length)
        return result.items[restore], result.log_probs[restore]
