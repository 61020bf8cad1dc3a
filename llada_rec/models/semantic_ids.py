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
        scorer = LengthSortedScorer(predictor, self.item_code_table[history], history == 0, lengths[by_length],
                                    chunk_size=chunk_size, temperature=temperature, use_cache=use_cache)
        result = diffusion_beam_search(
            scorer,
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


class LengthSortedScorer:
    """The beam search's ``log_prob_fn`` for one batch of histories sorted by length.

    Called with ``rows`` [R] (users of the sorted batch) and ``target`` [R, M] (-1 =
    unfilled), returns float32 log-probabilities [R, M, K].  Rows are scored in chunks of at
    most ``chunk_size`` rows, each of one history length and cut to it.
    """

    def __init__(self, predictor: MaskPredictor, history_codes: Tensor, history_padding: Tensor, lengths: Tensor, *,
                 chunk_size: int, temperature: float, use_cache: bool) -> None:
        # history_codes [B, L, M], history_padding [B, L], lengths [B] non-decreasing
        self.predictor = predictor
        self.num_users = history_codes.shape[0]
        self.tokens, self.padding = predictor.history_tokens(history_codes, history_padding)
        self.token_lengths = lengths * predictor.num_heads  # [B], non-decreasing
        self.cached = use_cache and predictor.attention == "cached_history"
        self.cache = predictor.history_cache(self.tokens, self.padding) if self.cached else None
        self.chunk_size = chunk_size
        self.temperature = temperature

    def __call__(self, rows: Tensor, target: Tensor) -> Tensor:
        users, targets, per_user = self._user_groups(rows, target)
        group_lengths, group_counts = torch.unique_consecutive(self.token_lengths[users], return_counts=True)
        per_chunk = max(1, self.chunk_size // per_user)
        chunks, start = [], 0
        for length, count in zip(group_lengths.tolist(), group_counts.tolist()):  # one history length at a time
            for begin in range(start, start + count, per_chunk):
                end = min(begin + per_chunk, start + count)
                logits = self._logits(users[begin:end], targets[begin:end], length)
                num_heads = self.predictor.num_heads
                chunks.append(F.log_softmax(logits.float().reshape(-1, num_heads, logits.shape[-1]) / self.temperature, dim=-1))
            start += count
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks)

    def _user_groups(self, rows: Tensor, target: Tensor) -> tuple[Tensor, Tensor, int]:
        """(users, targets [U, b, M], b): with the history cache and every present user holding
        the same b consecutive rows, each user's rows form one group sharing its cached history;
        otherwise every row is a group of one."""
        if self.cached:
            counts = torch.bincount(rows, minlength=self.num_users)
            present = counts.nonzero().flatten()
            beams = int(counts[present[0]])
            if bool((counts[present] == beams).all()) and torch.equal(rows, present.repeat_interleave(beams)):
                return present, target.view(-1, beams, self.predictor.num_heads), beams
        return rows, target[:, None], 1

    def _logits(self, users: Tensor, targets: Tensor, length: int) -> Tensor:
        """Target logits for ``users`` (all with ``length`` history tokens)."""
        if self.cached:
            return self.predictor.cached_target_logits(self.cache, users, targets, length, only_masked=True)
        first = self.tokens.shape[1] - length
        return self.predictor.target_logits(self.tokens[users, first:], self.padding[users, first:], targets[:, 0], unpadded=True)
