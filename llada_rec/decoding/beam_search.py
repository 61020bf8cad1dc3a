"""Adaptive-order beam search for discrete diffusion over semantic IDs (SPEC §5).

All M target positions start masked, with one beam per user (score 0). Each of the T steps
runs one forward pass over all live beams, picks M/T still-masked positions per beam, then
fills them one at a time: every beam is extended with its best codes at its next chosen
position and the B best (user, tuple) hypotheses are kept. Positions not yet filled stay
masked for the next step's forward pass.

Behaviour a caller can rely on (the reasons: ``docs/DECISIONS.md``, "Decoding"):

* Confidence of a position (``order="adaptive"``) = the largest log-probability over the
  codes allowed there (all of the head's codes when unconstrained), from the model's
  distribution as is, not renormalised over the allowed codes. Allowed sets are those of the
  partial tuple at the start of the step; ties go to the lower position. A step fills its
  positions in decreasing confidence.
* Every kept beam carries its parent's step rows (selected positions, log-probabilities),
  so every T that divides M is correct.
* ``constrained``: the codes allowed at a fill are re-derived from the partial tuple so far
  (this step's earlier fills included), so every finished tuple is an item.
* Duplicate hypotheses (one user, the same filled positions and codes) are merged, keeping
  the highest score (ties: the earlier candidate, i.e. the better parent).
* Scores are float32 sums of float32 log-probabilities; equal scores are broken by
  ``torch.topk``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, get_args

import torch
from torch import Tensor

from llada_rec.decoding.index import MASKED, ItemCodeIndex

Order = Literal["adaptive", "left_to_right", "right_to_left"]
ORDERS: tuple[str, ...] = get_args(Order)

LogProbFn = Callable[[Tensor, Tensor], Tensor]


@dataclass
class BeamSearchResult:
    codes: Tensor  # [U, k, M] long, MASKED-filled rows where fewer than k results
    log_probs: Tensor  # [U, k] float32, -inf where padded; sorted descending
    items: Tensor  # [U, k] long, 1-based item index, 0 = not an item / padding


@torch.no_grad()
def diffusion_beam_search(
    log_prob_fn: LogProbFn,
    num_users: int,
    index: ItemCodeIndex,
    *,
    beam_size: int,
    num_steps: int,
    top_k: int,
    order: str = "adaptive",
    constrained: bool = True,
) -> BeamSearchResult:
    """Decode the top_k semantic-ID tuples per user by T-step masked-diffusion beam search.

    log_prob_fn(rows [R] long user index in the batch, target [R, M] long with MASKED) ->
    [R, M, K] float log-probabilities, normalised per position over that head's K codes.
    ``beam_size`` 1 is greedy decoding. ``constrained`` restricts every fill to codes that
    keep the partial tuple consistent with some item; without it (the public code's
    behaviour, for ablation) any of the head's K codes may be spelled and tuples that are no
    item come back as item 0.
    """
    _check_arguments(num_users, index, beam_size, num_steps, top_k, order)
    num_heads = index.num_heads
    per_step = num_heads // num_steps
    device = index.device
    codes = torch.full((num_users, 1, num_heads), MASKED, dtype=torch.long, device=device)
    scores = torch.zeros(num_users, 1, dtype=torch.float32, device=device)
    if num_users == 0:
        return _finish(codes, scores, index, top_k)
    for _ in range(num_steps):
        step_log_probs, selected = _forward_and_select(
            log_prob_fn, codes, scores, index, per_step, order, constrained
        )  # [U, b, n, K], [U, b, n]
        for j in range(per_step):
            codes, scores, step_log_probs, selected = _expand(
                codes, scores, step_log_probs, selected, j, index, beam_size, constrained
            )
    return _finish(codes, scores, index, top_k)


def _forward_and_select(
    log_prob_fn: LogProbFn,
    codes: Tensor,
    scores: Tensor,
    index: ItemCodeIndex,
    per_step: int,
    order: str,
    constrained: bool,
) -> tuple[Tensor, Tensor]:
    """One forward pass over the live beams; choose each beam's positions for this step.

    codes [U, b, M], scores [U, b] -> the model's log-probs at the chosen positions
    [U, b, n, K] (-inf rows for dead beams; constraints are applied at each fill) and the
    chosen positions [U, b, n], in fill order.
    """
    num_users, beams, num_heads = codes.shape
    users, slots = torch.isfinite(scores).nonzero(as_tuple=True)  # live beams, [R]
    partial = codes[users, slots]  # [R, M]
    log_probs = log_prob_fn(users, partial)
    if log_probs.dim() != 3 or log_probs.shape[:2] != partial.shape:
        raise ValueError(
            f"diffusion_beam_search: log_prob_fn returned shape {tuple(log_probs.shape)} for "
            f"{partial.shape[0]} rows; expected [{partial.shape[0]}, {num_heads}, K]"
        )
    log_probs = log_probs.to(device=codes.device, dtype=torch.float32)  # [R, M, K]
    codebook_size = log_probs.shape[-1]
    if constrained and codebook_size < index.codebook_size:
        raise ValueError(
            f"diffusion_beam_search: log_prob_fn gives {codebook_size} codes per head but "
            f"the item index uses codes up to {index.codebook_size - 1}"
        )
    if order == "adaptive":
        priority = _confidence(log_probs, partial, index if constrained else None)
    else:
        heads = torch.arange(num_heads, dtype=torch.float32, device=codes.device)
        priority = (-heads if order == "left_to_right" else heads).expand(partial.shape[0], -1)
    priority = priority.masked_fill(partial != MASKED, float("-inf"))
    positions = priority.sort(dim=1, descending=True, stable=True).indices[:, :per_step]  # [R, n]
    chosen = log_probs[torch.arange(positions.shape[0], device=codes.device)[:, None], positions]
    if users.numel() == num_users * beams:  # every beam alive: no scatter needed
        return (
            chosen.view(num_users, beams, per_step, codebook_size),
            positions.view(num_users, beams, per_step),
        )
    step_log_probs = torch.full(
        (num_users, beams, per_step, codebook_size), float("-inf"), device=codes.device
    )
    step_log_probs[users, slots] = chosen
    selected = torch.zeros(num_users, beams, per_step, dtype=torch.long, device=codes.device)
    selected[users, slots] = positions
    return step_log_probs, selected


def _confidence(log_probs: Tensor, partial: Tensor, index: ItemCodeIndex | None) -> Tensor:
    """Max log-prob over the (allowed) codes of every position: [R, M, K], [R, M] -> [R, M].

    Clamped to a finite value so that a masked position always outranks a filled one.
    """
    if index is None:
        confidence = log_probs.amax(dim=-1)
    else:
        rows, num_heads, codebook_size = log_probs.shape
        heads = torch.arange(num_heads, device=partial.device).expand(rows, -1)
        row, code = index._allowed_pairs(partial, heads, include_filled=False)  # row = r * M + p
        values = log_probs.reshape(-1, codebook_size)[row, code]
        confidence = torch.full((rows * num_heads,), float("-inf"), device=partial.device)
        confidence = confidence.scatter_reduce(0, row, values, "amax").view(rows, num_heads)
    return confidence.clamp(min=torch.finfo(torch.float32).min)


def _expand(
    codes: Tensor,
    scores: Tensor,
    step_log_probs: Tensor,
    selected: Tensor,
    j: int,
    index: ItemCodeIndex,
    beam_size: int,
    constrained: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Fill every beam's j-th chosen position; keep the B best distinct hypotheses per user.

    codes [U, b, M], scores [U, b], step_log_probs [U, b, n, K], selected [U, b, n] -> the
    same four for the new beams [U, b', ...], b' = min(B, b * K), sorted by score. The
    step's rows are carried to the new beams by parent index (not on the step's last fill,
    after which they are not used).
    """
    num_users, beams, num_heads = codes.shape
    codebook_size = step_log_probs.shape[-1]
    positions = selected[:, :, j]  # [U, b]
    log_probs = step_log_probs[:, :, j]  # [U, b, K]
    if constrained:  # codes that keep the tuple so far (this step's fills included) an item
        row, code = index._allowed_pairs(codes.reshape(-1, num_heads), positions.reshape(-1))
        allowed = codes.new_zeros(num_users * beams, codebook_size, dtype=torch.bool)
        allowed[row, code] = True
        allowed = allowed.view(num_users, beams, codebook_size)
        log_probs = log_probs.masked_fill(~allowed, float("-inf"))
    candidate_scores = scores[:, :, None] + log_probs  # [U, b, K]
    keep = min(beam_size, beams * codebook_size)
    # pick = slot * K + code; a beam's children are distinct, so duplicates are rare (none, in
    # fact: see docs/DECISIONS.md, "Decoding") and the merge only runs when the check finds some.
    new_scores, pick = candidate_scores.view(num_users, -1).topk(keep, dim=1)
    new_codes = _children(codes, positions, pick // codebook_size, pick % codebook_size)
    if _has_duplicates(new_codes, new_scores, codebook_size):
        new_scores, pick = _merged_top(candidate_scores, codes, positions, keep)
        new_codes = _children(codes, positions, pick // codebook_size, pick % codebook_size)
    if j == step_log_probs.shape[2] - 1:
        return new_codes, new_scores, step_log_probs, selected
    parent = pick // codebook_size  # [U, b'] slot of each kept beam's parent
    users = _user_index(parent)
    return new_codes, new_scores, step_log_probs[users, parent], selected[users, parent]


def _merged_top(
    candidate_scores: Tensor, codes: Tensor, positions: Tensor, keep: int
) -> tuple[Tensor, Tensor]:
    """Top ``keep`` candidates after merging duplicates: [U, b, K] -> scores, slot * K + code.

    Only a beam's best ``min(keep, K)`` codes can be among the user's best ``keep`` distinct
    tuples (better ones from the same beam are distinct), so only those are merged.
    """
    num_users, beams, codebook_size = candidate_scores.shape
    per_beam = min(keep, codebook_size)
    top_scores, top_codes = candidate_scores.topk(per_beam, dim=-1)  # [U, b, kk]
    parent = torch.arange(beams, device=codes.device).repeat_interleave(per_beam)
    parent = parent.expand(num_users, -1)  # [U, C]
    top_codes = top_codes.reshape(num_users, -1)
    children = _children(codes, positions, parent, top_codes)  # [U, C, M]
    merged = merge_duplicate_beams(children, top_scores.reshape(num_users, -1))
    new_scores, best = merged.topk(keep, dim=1)
    return new_scores, parent.gather(1, best) * codebook_size + top_codes.gather(1, best)


def _children(codes: Tensor, positions: Tensor, parent: Tensor, code: Tensor) -> Tensor:
    """Each parent's tuple with ``code`` at the parent's position.

    codes [U, b, M], positions [U, b], parent [U, c] (slot), code [U, c] -> [U, c, M].
    """
    users = _user_index(parent)
    children = codes[users, parent]  # [U, c, M] (a copy)
    candidates = torch.arange(parent.shape[1], device=parent.device)
    children[users, candidates, positions[users, parent]] = code
    return children


def _user_index(per_user: Tensor) -> Tensor:
    """[U, c] -> [U, 1] row numbers, to index [U, b, ...] tensors by a per-user slot tensor."""
    return torch.arange(per_user.shape[0], device=per_user.device)[:, None]


def _has_duplicates(codes: Tensor, scores: Tensor, codebook_size: int) -> bool:
    """Whether two live beams of one user hold the same tuple: [U, b, M], [U, b] -> bool."""
    num_users, beams, num_heads = codes.shape
    if beams < 2:
        return False
    live = torch.isfinite(scores)
    if (codebook_size + 1) ** num_heads >= 2**62:  # tuples do not pack into one int64
        same = (codes[:, :, None, :] == codes[:, None, :, :]).all(dim=-1)  # [U, b, b]
        pairs = same & live[:, :, None] & live[:, None, :]
        return bool(torch.triu(pairs, diagonal=1).any())
    digits = (codebook_size + 1) ** torch.arange(num_heads, device=codes.device)
    keys = ((codes + 1) * digits).sum(dim=-1)  # [U, b], MASKED -> digit 0
    dead = -1 - torch.arange(beams, device=codes.device).expand(num_users, -1)
    keys = torch.where(live, keys, dead).sort(dim=1).values
    return bool((keys[:, 1:] == keys[:, :-1]).any())


def merge_duplicate_beams(codes: Tensor, scores: Tensor) -> Tensor:
    """Keep one hypothesis per distinct (user, partial tuple): the highest score, ties to the first.

    codes [U, C, M] (MASKED = unfilled), scores [U, C] -> scores [U, C] with the others -inf.
    Exact (lexicographic stable sorts, no hashing), any K and M.
    """
    num_heads = codes.shape[2]
    order = scores.sort(dim=1, descending=True, stable=True).indices  # best first, ties by index
    for head in reversed(range(num_heads)):  # stable sorts, last key first -> lexicographic
        column = codes[:, :, head].gather(1, order)
        order = order.gather(1, column.sort(dim=1, stable=True).indices)
    sorted_codes = codes.gather(1, order[:, :, None].expand(-1, -1, num_heads))
    repeat = torch.zeros_like(scores, dtype=torch.bool)
    repeat[:, 1:] = (sorted_codes[:, 1:] == sorted_codes[:, :-1]).all(dim=-1)
    duplicate = torch.zeros_like(repeat).scatter_(1, order, repeat)
    return scores.masked_fill(duplicate, float("-inf"))


def _finish(codes: Tensor, scores: Tensor, index: ItemCodeIndex, top_k: int) -> BeamSearchResult:
    """Map the finished beams (sorted by score) to items and pad / cut to top_k."""
    num_users, beams, num_heads = codes.shape
    live = torch.isfinite(scores)
    items = index._lookup(codes.reshape(-1, num_heads)).view(num_users, beams)
    items = items.masked_fill(~live, 0)
    codes = codes.masked_fill(~live[:, :, None], MASKED)
    scores = scores.masked_fill(~live, float("-inf"))
    if beams >= top_k:
        return BeamSearchResult(codes[:, :top_k], scores[:, :top_k], items[:, :top_k])
    pad = top_k - beams
    return BeamSearchResult(
        torch.cat([codes, codes.new_full((num_users, pad, num_heads), MASKED)], dim=1),
        torch.cat([scores, scores.new_full((num_users, pad), float("-inf"))], dim=1),
        torch.cat([items, items.new_zeros(num_users, pad)], dim=1),
    )


def _check_arguments(
    num_users: int, index: ItemCodeIndex, beam_size: int, num_steps: int, top_k: int, order: str
) -> None:
    if not isinstance(index, ItemCodeIndex):
        raise TypeError(f"diffusion_beam_search: index must be an ItemCodeIndex, got {type(index)}")
    if num_users < 0:
        raise ValueError(f"diffusion_beam_search: num_users must be >= 0, got {num_users}")
    if beam_size < 1:
        raise ValueError(f"diffusion_beam_search: beam_size must be >= 1, got {beam_size}")
    if top_k < 1:
        raise ValueError(f"diffusion_beam_search: top_k must be >= 1, got {top_k}")
    if num_steps < 1 or index.num_heads % num_steps:
        raise ValueError(
            f"diffusion_beam_search: num_steps={num_steps} must be a positive divisor of "
            f"the number of heads M={index.num_heads}"
        )
    if order not in ORDERS:
        raise ValueError(f"diffusion_beam_search: order={order!r}; expected one of {ORDERS}")
