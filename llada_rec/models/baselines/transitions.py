"""Item-to-item transitions: a first-order Markov recommender with popularity back-off.

``P(b | a)`` is estimated from how often item ``b`` follows item ``a`` in the training
parts of the sequences (optionally up to ``window`` steps later, with weight
``decay ** (gap - 1)``).  A user is scored from the last ``num_recent`` items of the
history, the most recent weighted most::

    score(b) = sum_r recency_decay ** r * P(b | a_r) + popularity_weight * count(b) / max count

where ``a_0`` is the last item.  The popularity term is a back-off for histories whose items
have no known successor and otherwise only breaks ties (keep it below the smallest
transition score).  Counts are a CSR matrix in three buffers; scoring gathers the rows of
the batch's recent items at once (no Python loop over users).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from llada_rec.data.dataset import PAD_ITEM, SequenceData
from llada_rec.models.base import DataInfo
from llada_rec.models.baselines.common import CountRecommender, item_counts, top_k_items, training_parts


def transition_counts(
    sequences: list[list[int]], num_items: int, window: int = 1, decay: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted counts of item ``b`` following item ``a`` within ``window`` steps, as CSR.

    Returns ``(crow [N + 2], col [nnz], weight [nnz])`` of the matrix ``C[a, b]`` with rows and
    columns indexed by item (0 = padding, empty); a pair ``gap`` steps apart adds
    ``decay ** (gap - 1)``.
    """
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    flat = np.fromiter((i for s in sequences for i in s), dtype=np.int64, count=int(lengths.sum()))
    owner = np.repeat(np.arange(len(sequences)), lengths)  # [T] sequence of each position
    keys, weights = [], []
    for gap in range(1, window + 1):
        same = owner[:-gap] == owner[gap:]  # pairs inside one sequence
        keys.append(flat[:-gap][same] * (num_items + 1) + flat[gap:][same])
        weights.append(np.full(int(same.sum()), decay ** (gap - 1)))
    unique, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    weight = np.bincount(inverse, weights=np.concatenate(weights)).astype(np.float64)
    rows, col = np.divmod(unique, num_items + 1)  # sorted by row, then column
    crow = np.zeros(num_items + 2, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=num_items + 1), out=crow[1:])
    return crow, col, weight


class ItemTransitions(CountRecommender):
    """First-order Markov chain over items, scored from the user's last few items.

    Args:
        window: pairs up to this many steps apart count as transitions.
        decay: weight of a pair ``gap`` steps apart is ``decay ** (gap - 1)``.
        num_recent: how many of the last history items vote.
        recency_decay: the r-th most recent item (r = 0 is the last) votes with this ** r.
        popularity_weight: weight of the normalised popularity (back-off and tie-break).
        exclude_history: never recommend an item already in the history.
    """

    def __init__(
        self,
        window: int = 1,
        decay: float = 0.5,
        num_recent: int = 3,
        recency_decay: float = 0.5,
        popularity_weight: float = 1e-6,
        exclude_history: bool = False,
        top_k: int = 10,
        metric_ks: Sequence[int] = (1, 5, 10),
    ) -> None:
        super().__init__(top_k=top_k, metric_ks=metric_ks)
        if window < 1 or num_recent < 1:
            raise ValueError(f"window ({window}) and num_recent ({num_recent}) must be >= 1")

    def build(self, info: DataInfo, item_codes: Optional[Tensor] = None) -> None:
        super().build(info, item_codes)
        n = info.num_items
        # Row-normalised transitions P(b | a) in CSR form; the sizes come from the data.
        self.register_buffer("transition_crow", torch.zeros(n + 2, dtype=torch.long))  # [N + 2]
        self.register_buffer("transition_col", torch.zeros(0, dtype=torch.long))  # [nnz]
        self.register_buffer("transition_prob", torch.zeros(0, dtype=torch.float64))  # [nnz]
        self.register_buffer("popularity", torch.zeros(n + 1, dtype=torch.float64))  # [N + 1] in [0, 1]

    def fit_statistics(self, data: SequenceData) -> None:
        parts = training_parts(data)
        crow, col, weight = transition_counts(parts, data.num_items, self.hparams.window, self.hparams.decay)
        rows = np.repeat(np.arange(data.num_items + 1), np.diff(crow))  # [nnz] row of each entry
        prob = weight / np.bincount(rows, weights=weight, minlength=data.num_items + 1)[rows]
        counts = item_counts(parts, data.num_items)
        device = self.transition_crow.device
        self.transition_crow = torch.from_numpy(crow).to(device)
        self.transition_col = torch.from_numpy(col).to(device)
        self.transition_prob = torch.from_numpy(prob).to(device)
        self.popularity = torch.from_numpy(counts / max(counts.max(), 1.0)).to(device)

    def item_scores(self, history: Tensor) -> Tensor:
        """[B, N + 1] float64 scores of every item (column 0, the padding item, is -inf)."""
        hp = self.hparams
        batch = history.shape[0]
        n_cols = self.popularity.shape[0]
        recent = history[:, -hp.num_recent :]  # [B, R], last item last
        r = recent.shape[1]
        weight = hp.recency_decay ** torch.arange(r - 1, -1, -1, device=history.device, dtype=torch.float64)
        weight = weight.expand(batch, r) * (recent != PAD_ITEM)  # [B, R]
        # Gather every CSR row of the recent items in one go.
        rows, weight = recent.reshape(-1), weight.reshape(-1)  # [B * R]
        start = self.transition_crow[rows]
        length = self.transition_crow[rows + 1] - start  # [B * R]
        vote = torch.repeat_interleave(torch.arange(rows.numel(), device=history.device), length)  # [E]
        first = torch.cumsum(length, 0) - length  # where each vote's entries begin
        entry = start[vote] + torch.arange(vote.numel(), device=history.device) - first[vote]  # [E]
        target = (vote // r) * n_cols + self.transition_col[entry]  # flat [B * (N + 1)] index
        scores = torch.zeros(batch * n_cols, dtype=torch.float64, device=history.device)
        scores.index_add_(0, target, weight[vote] * self.transition_prob[entry])
        scores = scores.view(batch, n_cols) + hp.popularity_weight * self.popularity
        if hp.exclude_history:
            scores.scatter_(1, history, float("-inf"))
        scores[:, PAD_ITEM] = float("-inf")
        return scores

    def recommend(self, history: Tensor, k: int, stage: str) -> tuple[Tensor, Tensor]:
        return top_k_items(self.item_scores(history)[:, 1:], k)
