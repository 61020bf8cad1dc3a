"""What every recommender that generates semantic IDs shares: the item code table, the
valid-item index and beam-search decoding over a code predictor (LLaDA-Rec, TIGER)."""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from llada_rec.decoding import ItemCodeIndex, diffusion_beam_search
from llada_rec.models.base import DataInfo, TrainedRecommender
from llada_rec.models.configs import ConfigurableModel
from llada_rec.models.mask_predictor import MaskPredictor


class SemanticIdRecommender(ConfigurableModel, TrainedRecommender):
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
        decoded shortest history first and a chunk holds rows of one history length only,
        cut to that length, so no layer runs over padding (results as with padding: it is
        never attended to).  With ``attention="cached_history"`` (and ``use_cache``) the
        history's keys and values are computed once per user and only the M target tokens
        run per row.
        """
        if history.numel() and int(history.max()) >= self.item_code_table.shape[0]:
            raise ValueError(f"history holds item {int(history.max())}, but the model knows items 1..{self.item_code_table.shape[0] - 1}")
        lengths = (history != 0).sum(dim=1)  # [B]
        by_length = torch.argsort(lengths, stable=True)
        longest = max(1, int(lengths.max())) if lengths.numel() else 1
        history = history[by_length][:, max(0, history.shape[1] - longest) :]  # drop columns of padding only
        tokens, padding = predictor.history_tokens(self.item_code_table[history], history == 0)
        num_heads = predictor.num_heads
        token_lengths = lengths[by_length] * num_heads  # [B], non-decreasing
        cached = use_cache and predictor.attention == "cached_history"
        cache = predictor.history_cache(tokens, padding) if cached else None

        def log_prob_fn(rows: Tensor, target: Tensor) -> Tensor:
            """rows [R] (user in the sorted batch), target [R, M] (-1 = unfilled) -> [R, M, K] float32."""
            users, targets, per_user = rows, target[:, None], 1  # groups of b rows sharing a user
            if cached:
                counts = torch.bincount(rows, minlength=history.shape[0])
                present = counts.nonzero().flatten()
                beams = int(counts[present[0]])
                if bool((counts[present] == beams).all()) and torch.equal(rows, present.repeat_interleave(beams)):
                    users, targets, per_user = present, target.view(-1, beams, num_heads), beams
            group_lengths, group_counts = torch.unique_consecutive(token_lengths[users], return_counts=True)
            per_chunk = max(1, chunk_size // per_user)
            chunks, start = [], 0
            for length, count in zip(group_lengths.tolist(), group_counts.tolist()):  # one history length at a time
                for begin in range(start, start + count, per_chunk):
                    end = min(begin + per_chunk, start + count)
                    if cached:
                        logits = predictor.cached_target_logits(cache, users[begin:end], targets[begin:end], length, only_masked=True)
                    else:
                        first = tokens.shape[1] - length
                        logits = predictor.target_logits(tokens[users[begin:end], first:], padding[users[begin:end], first:],
                                                         targets[begin:end, 0], unpadded=True)
                    chunks.append(F.log_softmax(logits.float().reshape(-1, num_heads, logits.shape[-1]) / temperature, dim=-1))
                start += count
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
