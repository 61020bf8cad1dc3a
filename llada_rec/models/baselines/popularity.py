"""Most popular: the same ranking for every user, the floor every model must beat."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import Tensor

from llada_rec.data.dataset import SequenceData
from llada_rec.models.base import DataInfo
from llada_rec.models.baselines.common import CountRecommender, item_counts, training_parts


class MostPopular(CountRecommender):
    """Ranks items by how often they occur in the training split, ties by item index.

    The count of an item is its number of occurrences in the users' training parts
    ``seq[:-2]``: every item a training sample uses as target or history (the first item of
    a sequence occurs only as history), each occurrence once.  Validation and test targets
    are not counted.  Nothing is excluded, not even items of the user's history.
    """

    def build(self, info: DataInfo, item_codes: Optional[Tensor] = None) -> None:
        super().build(info, item_codes)
        self.register_buffer("counts", torch.zeros(info.num_items + 1))  # [N + 1], item 0 unused
        self.register_buffer("ranking", torch.arange(1, info.num_items + 1))  # [N] items, best first

    def fit_statistics(self, data: SequenceData) -> None:
        counts = item_counts(training_parts(data), data.num_items)
        items = np.arange(1, data.num_items + 1)
        ranking = items[np.lexsort((items, -counts[1:]))]  # by count desc, then item index
        self.counts.copy_(torch.from_numpy(counts))
        self.ranking.copy_(torch.from_numpy(ranking))

    def recommend(self, history: Tensor, k: int, stage: str) -> tuple[Tensor, Tensor]:
        top = self.ranking[:k]  # [k'] (k' < k only when there are fewer than k items)
        items = torch.zeros(history.shape[0], k, dtype=torch.long, device=history.device)
        scores = torch.full((history.shape[0], k), float("-inf"), device=history.device)
        items[:, : top.numel()] = top
        scores[:, : top.numel()] = self.counts[top].float()
        return items, scores
