"""Recall@K and NDCG@K for next-item recommendation with one target per user (SPEC §1).

States are sums (summed across processes under DDP), so the metric is exact as long as
every user is evaluated once; the DataModule's evaluation sampler guarantees that.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric


def target_rank(ranked_items: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1-based rank of ``target`` [B] within ``ranked_items`` [B, L]; 0 where absent."""
    hits = ranked_items == target.unsqueeze(-1)  # [B, L]
    positions = torch.arange(1, ranked_items.shape[-1] + 1, device=ranked_items.device)
    return (hits * positions).amax(dim=-1)


class _TopKMetric(Metric):
    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, k: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = k
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, ranked_items: torch.Tensor, target: torch.Tensor) -> None:
        """ranked_items: [B, L] best first (L >= k or shorter); target: [B]."""
        rank = target_rank(ranked_items[:, : self.k], target)
        self.total += self._gain(rank).sum(dtype=torch.float64)
        self.count += target.numel()

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp(min=1)).float()

    def _gain(self, rank: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class RecallAtK(_TopKMetric):
    """Share of users whose target is among the top k."""

    def _gain(self, rank: torch.Tensor) -> torch.Tensor:
        return (rank > 0).double()


class NDCGAtK(_TopKMetric):
    """1 / log2(rank + 1) when the target is at rank <= k, else 0."""

    def _gain(self, rank: torch.Tensor) -> torch.Tensor:
        rank = rank.double()
        return torch.where(rank > 0, 1.0 / torch.log2(rank + 1.0), torch.zeros_like(rank))
