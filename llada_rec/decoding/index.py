"""Valid-item constraint index over a semantic-ID code table.

The beam search must only spell tuples that are items. Given a partial tuple (some heads
filled, the rest ``MASKED``) and a position, :meth:`ItemCodeIndex.allowed_codes` returns the
codes at that position that at least one item consistent with the partial tuple has.

How (tensors only, so it runs on any device without per-row Python):

* For every subset S of heads, the distinct S-tuples of the items are numbered by a dense
  rank, ``rank_S``, built incrementally: ``rank_S`` is the rank of the pair
  ``(rank_{S - h}, code_h)`` with ``h = max(S)``. Ranks are < N, so every key below fits in
  int64 whatever K^M is.
* For every subset S and head p not in S, table ``(S, p)`` holds the sorted distinct keys
  ``rank_S * K + code_p`` over the items. All tables live in one flat sorted int64 tensor,
  table ``t = S * M + p`` offset by ``t * N * K``, so one ``torch.searchsorted`` serves rows
  whose filled sets differ.
* A query first walks the filled heads in increasing order to get the partial's ``rank_S``
  (``rank_{S+h}`` is the position of ``(rank_S, code_h)`` inside table ``(S, h)``; a miss
  means no item agrees). The allowed codes at p are then the keys of table ``(S, p)`` in
  ``[rank_S * K, rank_S * K + K)``: a range of at most K entries, turned into a ``[R, K]``
  mask by one gather and one scatter.

Memory: sum over head subsets S' of |S'| * (distinct S'-tuples) keys of 8 bytes plus their
2-byte codes, at most ``M * 2^(M-1) * N * 10`` bytes (M = 4, N = 25k: <= 8 MB, measured
5.9 MiB; M = 8, N = 100k: <= 1 GB). Building takes M * 2^(M-1) sorts of N keys.
"""

from __future__ import annotations

import copy
from typing import Union

import torch
from torch import Tensor

#: Code of an unfilled target position in partial tuples.
MASKED = -1

#: 2^M subsets are tabulated; beyond this the tables would not fit in memory.
MAX_HEADS = 12


class ItemCodeIndex:
    """Valid-item constraint index over the code table; GPU-friendly (tensors only, ``.to(device)``).

    item_codes: [N, M] long, codes in [0, K); row i-1 belongs to item i; tuples must be unique.
    codebook_size: K; defaults to the largest code + 1 (pass the tokenizer's K when known).
    """

    #: Every tensor the index holds (moved together by :meth:`to`).
    _TENSORS = ("item_codes", "_flat_keys", "_flat_codes", "_table_start", "_rank_to_item")

    def __init__(self, item_codes: Tensor, codebook_size: int | None = None) -> None:
        item_codes = _check_item_codes(item_codes, codebook_size)
        num_items, num_heads = item_codes.shape
        self.num_items: int = num_items
        self.num_heads: int = num_heads
        self.codebook_size: int = (
            int(codebook_size) if codebook_size is not None else int(item_codes.max()) + 1
        )
        self.item_codes = item_codes  # [N, M]
        self._stride = num_items * self.codebook_size  # keys of one table are < N * K
        self._flat_keys, self._table_start, self._rank_to_item = self._build_tables(item_codes)
        # Code part of every key (key % K), small ints: one gather turns a key range into codes.
        code_dtype = torch.int16 if self.codebook_size <= 2**15 else torch.int32
        self._flat_codes = (self._flat_keys % self.codebook_size).to(code_dtype)

    # -- construction -------------------------------------------------------------------
    def _build_tables(self, item_codes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Return (flat sorted keys, start offset of each table, full-tuple rank -> item)."""
        n, m_heads, k = self.num_items, self.num_heads, self.codebook_size
        num_subsets = 1 << m_heads
        ranks: list[Tensor | None] = [None] * num_subsets  # rank_S of every item, [N]
        ranks[0] = torch.zeros(n, dtype=torch.long, device=item_codes.device)
        tables: list[Tensor] = []
        for subset in range(num_subsets):
            rank = ranks[subset]
            top = subset.bit_length()  # heads >= top extend S upwards (they define ranks)
            for head in range(m_heads):
                table_id = subset * m_heads + head
                if subset >> head & 1:
                    continue
                pair_keys = rank * k + item_codes[:, head]  # [N]
                if head >= top:
                    keys, inverse = torch.unique(pair_keys, sorted=True, return_inverse=True)
                    ranks[subset | 1 << head] = inverse
                else:
                    keys = torch.unique(pair_keys, sorted=True)
                tables.append(keys + table_id * self._stride)
            if subset != num_subsets - 1:
                ranks[subset] = None  # only table (S, .) needs rank_S: free it
        full = num_subsets - 1
        if int(ranks[full].max()) + 1 != n:
            _raise_duplicate(item_codes)
        rank_to_item = torch.empty(n, dtype=torch.long, device=item_codes.device)
        rank_to_item[ranks[full]] = torch.arange(1, n + 1, device=item_codes.device)
        flat_keys = torch.cat(tables)
        boundaries = torch.arange(num_subsets * m_heads + 1, device=item_codes.device)
        table_start = torch.searchsorted(flat_keys, boundaries * self._stride)
        return flat_keys, table_start, rank_to_item

    # -- public API ---------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self._flat_keys.device

    @property
    def nbytes(self) -> int:
        """Bytes held by the index tensors (for memory reports)."""
        return sum(t.numel() * t.element_size() for t in self._tensors())

    def to(self, device: Union[str, torch.device]) -> "ItemCodeIndex":
        """A copy of the index on ``device`` (tables are not rebuilt)."""
        moved = copy.copy(self)
        for name in self._TENSORS:
            setattr(moved, name, getattr(self, name).to(device))
        return moved

    def _tensors(self) -> list[Tensor]:
        return [getattr(self, name) for name in self._TENSORS]

    def allowed_codes(self, partial: Tensor, position: Tensor) -> Tensor:
        """Codes c such that some item agrees with ``partial`` on its filled heads and has c at
        ``position``.

        partial: [R, M] long, ``MASKED`` = unfilled; position: [R] long. Returns [R, K] bool.
        A filled ``position`` allows just its own code (if the partial is consistent).
        """
        partial = self._check_partial(partial, "partial")
        if position.shape != partial.shape[:1]:
            raise ValueError(
                f"ItemCodeIndex.allowed_codes: position has shape {tuple(position.shape)}, "
                f"expected [{partial.shape[0]}] (one position per row of partial)"
            )
        position = position.to(self.device, torch.long)
        if bool(((position < 0) | (position >= self.num_heads)).any()):
            raise ValueError(
                f"ItemCodeIndex.allowed_codes: positions must lie in [0, {self.num_heads})"
            )
        return self._allowed(partial, position)

    def lookup(self, codes: Tensor) -> Tensor:
        """[R, M] full tuples -> [R] 1-based item index; 0 if the tuple is no item.

        Any leading shape works ([..., M] -> [...]). Rows with ``MASKED`` or out-of-range
        codes are no item (0).
        """
        if codes.dim() < 1 or codes.shape[-1] != self.num_heads:
            raise ValueError(
                f"ItemCodeIndex.lookup: codes has shape {tuple(codes.shape)}, "
                f"expected [R, {self.num_heads}]"
            )
        flat = codes.reshape(-1, self.num_heads).to(self.device, torch.long)
        return self._lookup(flat).view(codes.shape[:-1])

    # -- vectorised internals (no input checks; used by the beam search) ---------------
    def _ranks(self, partial: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Rank of each partial among the items' tuples over its filled heads.

        partial [R, M] -> (rank [R], subset [R] bitmask of filled heads, consistent [R] bool).
        Out-of-range codes count as inconsistent.
        """
        m_heads, k = self.num_heads, self.codebook_size
        rows = partial.shape[0]
        rank = torch.zeros(rows, dtype=torch.long, device=partial.device)
        subset = torch.zeros_like(rank)
        consistent = torch.ones(rows, dtype=torch.bool, device=partial.device)
        last = self._flat_keys.numel() - 1
        for head in range(m_heads):
            code = partial[:, head]
            filled = code != MASKED
            consistent &= ~filled | ((code >= 0) & (code < k))
            table_id = subset * m_heads + head
            key = table_id * self._stride + rank * k + code.clamp(0, k - 1)
            found_at = torch.searchsorted(self._flat_keys, key)
            hit = self._flat_keys[found_at.clamp(max=last)] == key
            consistent &= ~filled | hit
            new_rank = found_at - self._table_start[table_id]
            rank = torch.where(filled & consistent, new_rank, rank)
            subset = torch.where(filled, subset | (1 << head), subset)
        rank = torch.where(consistent, rank, torch.zeros_like(rank))
        return rank, subset, consistent

    def _allowed(self, partial: Tensor, position: Tensor) -> Tensor:
        """[R, M], [R] -> [R, K] bool (see :meth:`allowed_codes`)."""
        row, code = self._allowed_pairs(partial, position)
        allowed = partial.new_zeros(partial.shape[0], self.codebook_size, dtype=torch.bool)
        allowed[row, code] = True
        return allowed

    def _allowed_pairs(
        self, partial: Tensor, position: Tensor, include_filled: bool = True
    ) -> tuple[Tensor, Tensor]:
        """Sparse form of :meth:`allowed_codes`: the allowed (row [P], code [P]) pairs, unordered.

        Past the first filled head few codes stay allowed, so listing them costs far less
        than a dense [R, K] mask. ``position`` may also be [R, Q] (Q positions per row);
        rows are then numbered ``r * Q + q``. ``include_filled=False`` skips filled positions.
        """
        rank, subset, consistent = self._ranks(partial)
        width = position.shape[1] if position.dim() == 2 else 1
        code_at = partial.gather(1, position.view(partial.shape[0], width)).reshape(-1)  # [R * Q]
        position = position.reshape(-1)
        if width > 1:
            rank, subset, consistent = (t.repeat_interleave(width) for t in (rank, subset, consistent))
        filled = code_at != MASKED
        # Unfilled position: the keys of table (S, p) in [rank * K, rank * K + K).
        base = (subset * self.num_heads + position) * self._stride + rank * self.codebook_size
        lo = torch.searchsorted(self._flat_keys, base)
        hi = torch.searchsorted(self._flat_keys, base + self.codebook_size)
        count = (hi - lo) * (consistent & ~filled)  # [R * Q]
        row = torch.repeat_interleave(torch.arange(count.numel(), device=partial.device), count)
        skip = lo - (count.cumsum(0) - count)  # key index of a pair = its number + skip of its row
        code = self._flat_codes[torch.arange(row.numel(), device=row.device) + skip[row]].long()
        if not include_filled:
            return row, code
        own = torch.nonzero(filled & consistent).flatten()  # filled position: its own code
        return torch.cat([row, own]), torch.cat([code, code_at[own]])

    def _lookup(self, codes: Tensor) -> Tensor:
        rank, subset, consistent = self._ranks(codes)
        is_item = consistent & (subset == (1 << self.num_heads) - 1)
        return torch.where(is_item, self._rank_to_item[rank], torch.zeros_like(rank))

    def _check_partial(self, partial: Tensor, name: str) -> Tensor:
        if partial.dim() != 2 or partial.shape[1] != self.num_heads:
            raise ValueError(
                f"ItemCodeIndex: {name} has shape {tuple(partial.shape)}, "
                f"expected [R, {self.num_heads}]"
            )
        if partial.is_floating_point() or partial.is_complex():
            raise ValueError(f"ItemCodeIndex: {name} must hold integer codes, got {partial.dtype}")
        partial = partial.to(self.device, torch.long)
        bad = (partial < MASKED) | (partial >= self.codebook_size)
        if bool(bad.any()):
            row, head = (int(v) for v in bad.nonzero()[0])
            raise ValueError(
                f"ItemCodeIndex: {name}[{row}, {head}] = {int(partial[row, head])} is neither "
                f"MASKED ({MASKED}) nor a code in [0, {self.codebook_size})"
            )
        return partial


def _check_item_codes(item_codes: Tensor, codebook_size: int | None) -> Tensor:
    if not isinstance(item_codes, Tensor):
        raise TypeError(f"ItemCodeIndex: item_codes must be a Tensor, got {type(item_codes)}")
    if item_codes.dim() != 2 or item_codes.shape[0] == 0 or item_codes.shape[1] == 0:
        raise ValueError(
            f"ItemCodeIndex: item_codes has shape {tuple(item_codes.shape)}, expected [N, M], N, M >= 1"
        )
    if item_codes.is_floating_point() or item_codes.is_complex() or item_codes.dtype == torch.bool:
        raise ValueError(f"ItemCodeIndex: item_codes must be integer codes, got {item_codes.dtype}")
    if item_codes.shape[1] > MAX_HEADS:
        raise ValueError(
            f"ItemCodeIndex: {item_codes.shape[1]} heads; at most {MAX_HEADS} are supported "
            f"(the index tabulates all 2^M head subsets)"
        )
    item_codes = item_codes.long()
    if bool((item_codes < 0).any()):
        row, head = (int(v) for v in (item_codes < 0).nonzero()[0])
        raise ValueError(
            f"ItemCodeIndex: item_codes[{row}, {head}] (item {row + 1}) = "
            f"{int(item_codes[row, head])} is negative"
        )
    if codebook_size is not None:
        if codebook_size < 1:
            raise ValueError(f"ItemCodeIndex: codebook_size must be >= 1, got {codebook_size}")
        too_big = item_codes >= codebook_size
        if bool(too_big.any()):
            row, head = (int(v) for v in too_big.nonzero()[0])
            raise ValueError(
                f"ItemCodeIndex: item_codes[{row}, {head}] (item {row + 1}) = "
                f"{int(item_codes[row, head])} is not below codebook_size={codebook_size}"
            )
    return item_codes.contiguous()


def _raise_duplicate(item_codes: Tensor) -> None:
    """Name the first two items that share one tuple."""
    _, inverse, counts = torch.unique(item_codes, dim=0, return_inverse=True, return_counts=True)
    group = int(torch.nonzero(counts > 1)[0])
    items = (torch.nonzero(inverse == group).flatten()[:2] + 1).tolist()
    raise ValueError(
        f"ItemCodeIndex: items {items[0]} and {items[1]} share the code tuple "
        f"{item_codes[items[0] - 1].tolist()}; semantic IDs must be unique"
    )
