"""The LLaDA-Rec mask predictor: a Transformer encoder over [history codes ; target codes].

Layout (SPEC §4): item j of the history occupies tokens j*M .. j*M+M-1, the target item the
last M tokens; history is left-padded by whole items.  A token's id is m*K + k (head m,
code k).  Each token also gets

- an item-position embedding shared by the item's M tokens, counted back from the target
  (target = 0, last history item = 1, ...);
- a within-item head embedding (m).

Why this layout: ``docs/DECISIONS.md``, "Token layout".

The output at a token of head m scores only head m's K codes: logits are the dot products
with head m's [K, D] output matrix, plus a per-(head, code) bias.  ``output_layer="tied"``
uses head m's slice of the token embedding as that matrix, ``"untied"`` a matrix of its own.

Code convention shared with ``llada_rec.decoding``: a code of -1 (``MASKED``) means
[MASK]; padding is given by a separate boolean mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, get_args

import torch
import torch.nn as nn
from torch import Tensor

from llada_rec.models.transformer import TransformerConfig, TransformerEncoder, attention_mask

OutputLayer = Literal["tied", "untied"]
InitScheme = Literal["gpt", "default"]
INIT_SCHEMES: tuple[str, ...] = get_args(InitScheme)
AttentionKind = Literal["bidirectional", "causal", "inter_item_causal", "intra_item_causal", "cached_history"]
ATTENTION_KINDS: tuple[str, ...] = get_args(AttentionKind)
MASKED_CODE = -1  # same value as llada_rec.decoding.MASKED


def structure_mask(kind: str, num_items: int, num_heads: int, device: Optional[torch.device] = None) -> Optional[Tensor]:
    """[S, S] bool (query, key) pattern of an attention variant (paper Figure 3); None = all.

    S = num_items * num_heads tokens, item i owning tokens i*M .. i*M+M-1.
    - causal: token-level causal (a token sees itself and earlier tokens);
    - inter_item_causal: an item's tokens see its own tokens and earlier items;
    - intra_item_causal: causal inside an item, bidirectional across items;
    - cached_history: the last item's (the target's) tokens see everything, the other
      items' tokens see only those items (bidirectional among themselves), so the history's
      states do not depend on the target and decoding can cache their keys and values.
    """
    if kind not in ATTENTION_KINDS:
        raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {kind!r}")
    if kind == "bidirectional":
        return None
    position = torch.arange(num_items * num_heads, device=device)
    item = position // num_heads
    query, key = position[:, None], position[None, :]
    if kind == "causal":
        return key <= query
    if kind == "inter_item_causal":
        return item[None, :] <= item[:, None]
    if kind == "cached_history":
        return (item[None, :] < num_items - 1) | (item[:, None] == num_items - 1)
    return (item[None, :] != item[:, None]) | (key <= query)


def selected_rows(selected: Tensor) -> tuple[Tensor, list[int]]:
    """selected [B, I, M] bool -> (rows [N]: indices of the selected positions in the
    flattened [B * I * M] token order, head 0's first, then head 1's, ...; each head's count).

    The order lets one matrix product per head score the selected positions
    (:meth:`MaskPredictor.grouped_head_logits`); gather targets and weights with the same rows.
    """
    batch_size, num_items, num_heads = selected.shape
    head, row, item = selected.permute(2, 0, 1).nonzero(as_tuple=True)
    counts = torch.bincount(head, minlength=num_heads).tolist()
    return (row * num_items + item) * num_heads + head, counts


class MaskPredictor(nn.Module):
    """Predicts the code at every position of [history ; target] from the visible tokens.

    forward(tokens [B, S], padding_mask [B, S]) -> logits [B, S, K], S a multiple of M,
    where the logits at a token of head m range over head m's K codes.
    """

    def __init__(
        self,
        num_heads: int,
        codebook_size: int,
        max_items: int,
        network: TransformerConfig = TransformerConfig(),
        attention: AttentionKind = "bidirectional",
        output_layer: OutputLayer = "tied",
        init: InitScheme = "gpt",
    ) -> None:
        """``network``: the Transformer's sizes.  ``init``: "gpt" draws every Linear and
        Embedding weight from N(0, 0.02) (small initial logits); "default" keeps PyTorch's
        (embeddings N(0, 1), Linear Kaiming-uniform), as the authors' code."""
        super().__init__()
        if num_heads < 1 or codebook_size < 1 or max_items < 1:
            raise ValueError(f"num_heads, codebook_size and max_items must be >= 1, got {num_heads}, {codebook_size}, {max_items}")
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {attention!r}")
        if output_layer not in ("tied", "untied"):
            raise ValueError(f"output_layer must be 'tied' or 'untied', got {output_layer!r}")
        if init not in INIT_SCHEMES:
            raise ValueError(f"init must be one of {INIT_SCHEMES}, got {init!r}")
        self.num_heads = num_heads  # M
        self.codebook_size = codebook_size  # K
        self.max_items = max_items  # history items + the target
        self.attention = attention
        self.pad_token = num_heads * codebook_size
        self.mask_token = num_heads * codebook_size + 1
        d_model = network.d_model
        self.token_embedding = nn.Embedding(num_heads * codebook_size + 2, d_model)
        self.item_position_embedding = nn.Embedding(max_items, d_model)
        self.head_embedding = nn.Embedding(num_heads, d_model)
        self.embedding_dropout = nn.Dropout(network.dropout)
        self.encoder = TransformerEncoder(network)
        # untied: head m's [K, D] output matrix; tied: a view of the token embedding (see output_weight)
        self.untied_output = (
            nn.Linear(d_model, num_heads * codebook_size, bias=False) if output_layer == "untied" else None
        )
        self.output_bias = nn.Parameter(torch.zeros(num_heads, codebook_size))
        if init == "gpt":
            self.apply(_init_weights)

    # -- tokens -------------------------------------------------------------------------
    def code_tokens(self, codes: Tensor) -> Tensor:
        """Semantic-ID codes [..., M] (values in [0, K), or -1 = masked) -> token ids [..., M]."""
        if codes.shape[-1] != self.num_heads:
            raise ValueError(f"codes have {codes.shape[-1]} heads in the last dim, expected M={self.num_heads}")
        head = torch.arange(self.num_heads, device=codes.device)
        tokens = head * self.codebook_size + codes
        return torch.where(codes == MASKED_CODE, torch.full_like(tokens, self.mask_token), tokens)

    def history_tokens(self, history_codes: Tensor, history_padding: Tensor) -> tuple[Tensor, Tensor]:
        """history_codes [B, L, M] + history_padding [B, L] bool -> tokens, padding [B, L*M]."""
        batch_size, length, _ = history_codes.shape
        tokens = self.code_tokens(history_codes).masked_fill(history_padding[..., None], self.pad_token)
        padding = history_padding[..., None].expand(batch_size, length, self.num_heads)
        return tokens.reshape(batch_size, -1), padding.reshape(batch_size, -1)

    def sequence(
        self, history_tokens: Tensor, history_padding: Tensor, target_codes: Optional[Tensor]
    ) -> tuple[Tensor, Tensor]:
        """Append the target's M tokens to history tokens [B, L*M] -> tokens, padding [B, (L+1)*M].

        target_codes [B, M] (-1 = masked); None leaves the target slot as padding (the
        target is absent but every history item keeps its position).
        """
        batch_size = history_tokens.shape[0]
        if target_codes is None:
            target = torch.full((batch_size, self.num_heads), self.pad_token, dtype=torch.long, device=history_tokens.device)
            target_padding = torch.ones(batch_size, self.num_heads, dtype=torch.bool, device=history_tokens.device)
        else:
            target = self.code_tokens(target_codes)
            target_padding = torch.zeros(batch_size, self.num_heads, dtype=torch.bool, device=history_tokens.device)
        return torch.cat([history_tokens, target], dim=1), torch.cat([history_padding, target_padding], dim=1)

    # -- network ------------------------------------------------------------------------
    def embed(self, tokens: Tensor, item_position: Tensor) -> Tensor:
        """tokens [B, I*M] + each item's position [I] -> token + item-position + head embeddings [B, I*M, D]."""
        head = torch.arange(self.num_heads, device=tokens.device).repeat(item_position.shape[0])  # [I*M]
        return self.token_embedding(tokens) + self.item_position_embedding(item_position.repeat_interleave(self.num_heads)) + self.head_embedding(head)

    def encode(
        self, tokens: Tensor, padding_mask: Tensor, num_outputs: Optional[int] = None, unpadded: bool = False, rows: Optional[Tensor] = None
    ) -> Tensor:
        """tokens [B, S] long, padding_mask [B, S] bool (True = pad) -> hidden states [B, S, D]
        (only the last ``num_outputs`` positions' states when given; only ``rows`` of those,
        flattened, [N, D], when given).  ``unpadded``: the caller guarantees no padding, so a
        bidirectional model attends without a mask."""
        batch_size, seq_len = tokens.shape
        if seq_len % self.num_heads != 0:
            raise ValueError(f"sequence length {seq_len} is not a multiple of M={self.num_heads}")
        num_items = seq_len // self.num_heads
        if num_items > self.max_items:
            raise ValueError(f"sequence has {num_items} items, more than max_items={self.max_items} (max_history + 1)")
        device = tokens.device
        x = self.embed(tokens, torch.arange(num_items - 1, -1, -1, device=device))  # the target at position 0
        structure = structure_mask(self.attention, num_items, self.num_heads, device)
        mask = None if unpadded and structure is None else attention_mask(padding_mask, structure)
        return self.encoder(self.embedding_dropout(x), mask, num_outputs, rows)

    def output_weight(self) -> Tensor:
        """Per-head output matrices [M, K, D]: the token embedding's code rows (tied) or the
        untied layer's weight."""
        source = self.token_embedding.weight[: self.pad_token] if self.untied_output is None else self.untied_output.weight
        return source.view(self.num_heads, self.codebook_size, -1)

    def head_logits(self, hidden: Tensor) -> Tensor:
        """hidden [B, S', D] whose first token is head 0 (S' multiple of M) -> logits [B, S', K]."""
        batch_size, seq_len, d_model = hidden.shape
        per_item = hidden.reshape(batch_size, seq_len // self.num_heads, self.num_heads, d_model)  # [B, I, M, D]
        logits = torch.einsum("bimd,mkd->bimk", per_item, self.output_weight()) + self.output_bias  # [B, I, M, K]
        return logits.reshape(batch_size, seq_len, self.codebook_size)

    def grouped_head_logits(self, hidden: Tensor, counts: list[int]) -> Tensor:
        """hidden [N, D] of positions grouped by head (``counts[m]`` of head m, in order, as
        :func:`selected_rows` gives them) -> logits [N, K], one matrix product per head."""
        weight = self.output_weight()
        parts = [part @ weight[m].T + self.output_bias[m] for m, part in enumerate(hidden.split(counts)) if counts[m]]
        return torch.cat(parts) if parts else hidden.new_zeros(0, self.codebook_size)

    def forward(self, tokens: Tensor, padding_mask: Tensor, selected: Optional[Tensor] = None) -> Tensor:
        """Logits [B, S, K]; ``selected`` [B, S/M, M] bool: only those positions' logits
        [N, K], in :func:`selected_rows` order (the last layer's MLP runs only there)."""
        if selected is None:
            return self.head_logits(self.encode(tokens, padding_mask))
        rows, counts = selected_rows(selected)
        return self.grouped_head_logits(self.encode(tokens, padding_mask, rows=rows), counts)

    def target_logits(
        self, history_tokens: Tensor, history_padding: Tensor, target_codes: Tensor, unpadded: bool = False, selected: Optional[Tensor] = None
    ) -> Tensor:
        """Logits [B, M, K] at the target's positions given history tokens [B, L*M] and
        target_codes [B, M]; ``unpadded`` as in :meth:`encode`; ``selected`` [B, M] bool:
        only those positions' logits [N, K], in :func:`selected_rows` order."""
        tokens, padding = self.sequence(history_tokens, history_padding, target_codes)
        if selected is None:
            return self.head_logits(self.encode(tokens, padding, num_outputs=self.num_heads, unpadded=unpadded))
        rows, counts = selected_rows(selected[:, None])
        return self.grouped_head_logits(self.encode(tokens, padding, self.num_heads, unpadded, rows), counts)

    def shared_history_target_logits(
        self, history_tokens: Tensor, history_padding: Tensor, target_codes: Tensor, selected: Optional[Tensor] = None
    ) -> Tensor:
        """Logits [B, n, M, K] of n partial targets per user, target_codes [B, n, M] (-1 =
        masked), in one pass over [history ; target_1 .. target_n] (``cached_history`` only):
        the history attends to itself, target j to the history and to itself, so each equals
        :meth:`target_logits` of that target alone while the history runs once.
        ``selected`` [B, n, M] bool: only those positions' logits [N, K], in
        :func:`selected_rows` order."""
        if self.attention != "cached_history":
            raise ValueError(f"sharing the history between targets needs attention='cached_history', this model has {self.attention!r}")
        batch_size, draws, num_heads = target_codes.shape
        history_items = history_tokens.shape[1] // num_heads
        if history_items + 1 > self.max_items:
            raise ValueError(f"history of {history_items} items, more than max_items - 1 = {self.max_items - 1}")
        device = history_tokens.device
        tokens = torch.cat([history_tokens, self.code_tokens(target_codes).reshape(batch_size, -1)], dim=1)
        padding = torch.cat([history_padding, history_padding.new_zeros(batch_size, draws * num_heads)], dim=1)
        slot = torch.arange(history_items + draws, device=device)  # history items, then the targets
        x = self.embed(tokens, (history_items - slot).clamp(min=0))  # history counted back from the target, every target 0
        item = slot.repeat_interleave(num_heads)  # [S]
        structure = (item[None, :] < history_items) | (item[None, :] == item[:, None])  # [S, S] (query, key)
        mask = attention_mask(padding, structure)
        if selected is not None:
            rows, counts = selected_rows(selected)
            return self.grouped_head_logits(self.encoder(self.embedding_dropout(x), mask, draws * num_heads, rows), counts)
        hidden = self.encoder(self.embedding_dropout(x), mask, draws * num_heads)
        return self.head_logits(hidden).view(batch_size, draws, num_heads, -1)

    # -- decoding with a history cache (attention="cached_history") ----------------------
    def history_cache(self, history_tokens: Tensor, history_padding: Tensor) -> HistoryCache:
        """Every layer's keys and values of the history, computed once per user.

        history_tokens, history_padding [U, L*M] (as from :meth:`history_tokens`).  Exact for
        ``attention="cached_history"`` only, where history tokens never attend to the target.
        """
        if self.attention != "cached_history":
            raise ValueError(f"a history cache needs attention='cached_history', this model has {self.attention!r}")
        users, seq_len = history_tokens.shape
        num_items = seq_len // self.num_heads + 1  # + the target
        if seq_len % self.num_heads or num_items > self.max_items:
            raise ValueError(f"history of {seq_len} tokens: expected a multiple of M={self.num_heads} and at most {self.max_items - 1} items")
        device = history_tokens.device
        x = self.embed(history_tokens, torch.arange(num_items - 1, 0, -1, device=device))  # the target's slot left out
        layers = self.encoder.key_value_cache(self.embedding_dropout(x), attention_mask(history_padding))
        return HistoryCache(layers, history_padding)

    def cached_target_logits(self, cache: HistoryCache, users: Tensor, target_codes: Tensor, length: int, only_masked: bool = False) -> Tensor:
        """Logits [G, b, M, K] of b partial targets per user given the cached history.

        users [G] (rows of the cache), target_codes [G, b, M] (-1 = masked); ``length``: the
        users' history length in tokens, all equal (the last ``length`` cached tokens are
        used and must hold no padding).  Only the M target tokens run through the layers;
        a group's b rows share its history keys and values (never copied per row).
        ``only_masked``: when every row has the same number of masked positions, the last
        layer computes only theirs, and the logits at filled positions are meaningless.
        """
        groups, rows, num_heads = target_codes.shape
        first = cache.padding.shape[1] - length
        if first < 0 or bool(cache.padding[users, first:].any()):
            raise ValueError(f"cached_target_logits: the users' last {length} history tokens must all be real (no padding)")
        heads = torch.arange(num_heads, device=target_codes.device)
        x = self.token_embedding(self.code_tokens(target_codes)) + self.item_position_embedding.weight[0] + self.head_embedding(heads)
        layers = [(keys[users, :, first:], values[users, :, first:]) for keys, values in cache.layers]  # [G, H, P, D/H]
        queries = None
        if only_masked and target_codes.numel():
            masked = target_codes == MASKED_CODE
            count = int(masked[0, 0].sum())
            if 0 < count < num_heads and bool((masked.sum(dim=-1) == count).all()):
                queries = masked.nonzero()[:, 2].view(groups, rows, count)  # [G, b, n], in position order
        hidden = self.encoder.forward_cached(self.embedding_dropout(x), layers, queries)  # [G, b, n or M, D]
        if queries is not None:
            hidden = hidden.new_zeros(groups, rows, num_heads, hidden.shape[-1]).scatter_(2, queries[..., None].expand(-1, -1, -1, hidden.shape[-1]), hidden)
        return self.head_logits(hidden.reshape(groups * rows, num_heads, -1)).view(groups, rows, num_heads, -1)


@dataclass
class HistoryCache:
    """Per-layer history keys and values [U, H, L*M, D/H] and the history padding [U, L*M]."""

    layers: list[tuple[Tensor, Tensor]]
    padding: Tensor


def _init_weights(module: nn.Module) -> None:
    """GPT-style init: small normal weights keep the tied output logits near zero at start."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
