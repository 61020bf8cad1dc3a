"""Collision-free semantic IDs: every item gets its own tuple of M codes (SPEC §3).

A trained tokenizer can give several items the same tuple; the recommender could then not
tell them apart.  The method here moves as few items as possible, each as little as possible:

1. **Who moves.** Items are grouped by tuple.  In a group of k items the one closest to its
   codes (smallest quantization error) keeps the tuple and the other k - 1 move.  No method
   can move fewer items: at least ``sum(k - 1) = N - distinct tuples`` must change.
2. **Where to.** A moving item changes *one* head to another code.  The cost of a move
   (head m, code k) is the increase of that head's squared distance,
   ``distances[i, m, k] - distances[i, m, codes[i, m]]``, i.e. how much further the item's
   quantized vector ends up from its encoder output.  All candidate moves of all moving
   items are taken globally cheapest first (a heap holding each item's next-cheapest move);
   a move onto a tuple already in use, by any item, is skipped for that item's next one.
3. **Fallback.** An item whose M(K-1) one-head neighbours are all taken (only when the
   code space is nearly full) takes the free tuple of least total cost over several heads,
   found by best-first enumeration of code combinations.

``distances`` [N, M, K] is the squared distance of what head m quantized to each of its
codes.  It may instead be a function giving those rows for the items asked for (then the
per-item quantization ``errors`` and ``codebook_size`` are passed too): only the moving items'
rows are ever needed, so at 1M items the [N, M, K] table (4 GiB at M=4, K=256) need never
exist (``SemanticIdTokenizer.unique_codes`` computes them in chunks).  For parallel heads (Multi-Head VQ-VAE, OPQ) the costs are exact; for residual
quantizers (RQ-VAE, RQ-KMeans) a move on an early level would change the later residuals,
so its cost is the first-order (that level only) estimate.
"""

from __future__ import annotations

import heapq
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional, Union

import numpy as np


@dataclass
class CollisionReport:
    """What the resolution did; goes into the artifact's ``stats.json``."""

    items: int
    collisions_before: int  # N - distinct tuples before (= the fewest items that must move)
    collisions_after: int  # N - distinct tuples after (0)
    colliding_items: int  # items whose tuple was shared before
    items_moved: int
    multi_head_moves: int  # moved items that needed the fallback (changed more than one head)
    quantization_error_before: float  # mean over items of sum_m distances[i, m, codes[i, m]]
    quantization_error_after: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_collisions(codes: np.ndarray) -> int:
    """Items that must change for all tuples to be unique: N - number of distinct tuples."""
    if len(codes) == 0:
        return 0
    return int(len(codes) - len(np.unique(codes, axis=0)))


def collision_rate(codes: np.ndarray) -> float:
    """``count_collisions / N`` (the rate the authors select their checkpoint by)."""
    return count_collisions(codes) / max(1, len(codes))


def quantization_error(codes: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Per item, the summed squared distance to its chosen codes: [N, M], [N, M, K] -> [N]."""
    return np.take_along_axis(distances, codes[:, :, None], axis=2)[:, :, 0].astype(np.float64).sum(1)


DistanceRows = Callable[[np.ndarray], np.ndarray]  # item rows [n] -> their distances [n, M, K]


def _check_inputs(codes: np.ndarray, distances: Union[np.ndarray, DistanceRows], k: Optional[int]) -> None:
    if callable(distances):
        if codes.ndim != 2 or k is None:
            raise ValueError(f"expected codes [N, M] and codebook_size with a distance function; got {codes.shape}, {k}")
    elif codes.ndim != 2 or distances.ndim != 3 or distances.shape[:2] != codes.shape:
        raise ValueError(f"expected codes [N, M] and distances [N, M, K]; got {codes.shape} and {distances.shape}")
    if not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"codes must be integers, got {codes.dtype}")
    n, m = codes.shape
    k = k if callable(distances) else distances.shape[2]
    assert k is not None
    if n and (codes.min() < 0 or codes.max() >= k):
        raise ValueError(f"codes must lie in [0, {k}), got range [{codes.min()}, {codes.max()}]")
    if n > k**m:  # Python ints: no overflow
        raise ValueError(f"{n} items cannot all have unique tuples: only K^M = {k}^{m} = {k**m} exist")


def _choose_movers(codes: np.ndarray, error: np.ndarray) -> np.ndarray:
    """Indices of the items that give up their tuple: all but the closest of each group."""
    _, group = np.unique(codes, axis=0, return_inverse=True)
    group = group.reshape(-1)
    order = np.lexsort((np.arange(len(codes)), error, group))  # by group, then error, then index
    sorted_group = group[order]
    first_of_group = np.r_[True, sorted_group[1:] != sorted_group[:-1]]
    return np.sort(order[~first_of_group])


def _one_head_moves(codes: np.ndarray, distances: np.ndarray, movers: np.ndarray, taken: set[bytes]) -> list[int]:
    """Move each mover on one head, globally cheapest first; updates ``codes`` and ``taken``.
    ``distances`` [n, M, K]: the movers' rows.

    Returns the movers that found no free one-head neighbour.
    """
    n, num_heads = len(movers), codes.shape[1]
    k = distances.shape[2]
    mover_codes = codes[movers]  # [n, M]
    delta = distances - np.take_along_axis(distances, mover_codes[:, :, None], axis=2)  # [n, M, K]
    rows, heads = np.arange(n)[:, None], np.arange(num_heads)[None, :]
    delta[rows, heads, mover_codes] = np.inf  # staying is not a move
    flat = delta.reshape(n, num_heads * k)
    ranked = np.argsort(flat, axis=1, kind="stable")  # [n, M*K] candidate moves, cheapest first
    heap = [(float(flat[j, ranked[j, 0]]), j, 0) for j in range(n)]
    heapq.heapify(heap)
    stuck = []
    while heap:
        cost, j, rank = heapq.heappop(heap)
        if not np.isfinite(cost):
            stuck.append(j)
            continue
        head, code = divmod(int(ranked[j, rank]), k)
        candidate = mover_codes[j].copy()
        candidate[head] = code
        key = candidate.tobytes()
        if key in taken:
            heapq.heappush(heap, (float(flat[j, ranked[j, rank + 1]]), j, rank + 1))  # inf entries end each row
            continue
        taken.add(key)
        codes[movers[j]] = candidate
    return stuck


def _nearest_free_tuple(distances: np.ndarray, taken: set[bytes]) -> np.ndarray:
    """Free tuple of least total distance for one item (distances [M, K]), best-first over
    combinations of per-head codes sorted by distance."""
    num_heads, k = distances.shape
    order = np.argsort(distances, axis=1, kind="stable")  # [M, K]
    sorted_d = np.take_along_axis(distances, order, axis=1)
    heads = np.arange(num_heads)
    start = (0,) * num_heads
    heap = [(float(sorted_d[heads, 0].sum()), start)]
    seen = {start}
    while heap:
        _, ranks = heapq.heappop(heap)
        candidate = order[heads, list(ranks)].astype(np.int64)
        if candidate.tobytes() not in taken:
            return candidate
        for m in range(num_heads):
            if ranks[m] + 1 < k:
                nxt = ranks[:m] + (ranks[m] + 1,) + ranks[m + 1 :]
                if nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, (float(sorted_d[heads, list(nxt)].sum()), nxt))
    raise RuntimeError("no free tuple left")  # unreachable: _check_inputs ensures N <= K^M


def resolve_collisions(
    codes: np.ndarray,
    distances: Union[np.ndarray, DistanceRows],
    errors: Optional[np.ndarray] = None,
    codebook_size: Optional[int] = None,
) -> tuple[np.ndarray, CollisionReport]:
    """Unique tuples for all items. codes [N, M] int, distances [N, M, K] (or a function of
    item rows, with ``errors`` [N] = ``quantization_error(codes, distances)`` and
    ``codebook_size``) -> (new codes [N, M] int64, report).  Items that already have a tuple
    of their own never change."""
    _check_inputs(codes, distances, codebook_size)
    if callable(distances) and errors is None:
        raise ValueError("a distance function needs the items' quantization errors")
    codes = np.ascontiguousarray(codes, dtype=np.int64).copy()
    if not callable(distances):
        table = np.asarray(distances)
        distances = table.__getitem__
        errors = quantization_error(codes, table)
    error_before = np.asarray(errors, dtype=np.float64)
    collisions_before = count_collisions(codes)
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    colliding_items = int((counts[inverse.reshape(-1)] > 1).sum()) if len(codes) else 0

    movers = _choose_movers(codes, error_before) if collisions_before else np.zeros(0, np.int64)
    mover_distances = np.asarray(distances(movers)) if len(movers) else np.zeros((0, 1, 1), np.float32)
    taken = {row.tobytes() for row in codes}  # a mover's old tuple stays with its group's keeper
    stuck = _one_head_moves(codes, mover_distances, movers, taken) if len(movers) else []
    for j in stuck:
        i = movers[j]
        codes[i] = _nearest_free_tuple(mover_distances[j], taken)
        taken.add(codes[i].tobytes())
    error_after = error_before.copy()
    if len(movers):
        error_after[movers] = quantization_error(codes[movers], mover_distances)

    report = CollisionReport(
        items=len(codes),
        collisions_before=collisions_before,
        collisions_after=count_collisions(codes),
        colliding_items=colliding_items,
        items_moved=len(movers),
        multi_head_moves=len(stuck),
        quantization_error_before=float(error_before.mean()) if len(codes) else 0.0,
        quantization_error_after=float(error_after.mean()) if len(codes) else 0.0,
    )
    return codes, report
