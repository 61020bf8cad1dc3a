"""Sequence samples, their collate function and samplers: what the DataModule's loaders
(and the serving API) are built from."""

from __future__ import annotations

from typing import Iterator, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from llada_rec.data.dataset import PAD_ITEM
from llada_rec.data.samples import Samples

class SequenceSamples(Dataset):
    """(user, history, target) triples of one split; ``target`` is 0 when unknown (predict).
    ``samples``: :class:`Samples` arrays (or tuples, converted to them)."""

    def __init__(self, samples: Union[Samples, Sequence[tuple[int, list[int], int]]]) -> None:
        self.samples = samples if isinstance(samples, Samples) else Samples.from_rows(list(samples))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[int, int, list[int], int]:
        user, history, target = self.samples[index]
        return index, user, history, target


def collate_sequences(rows: list[tuple[int, int, list[int], int]]) -> dict[str, torch.Tensor]:
    """Left-pad histories with item 0 to the longest history in the batch."""
    length = max(1, max(len(r[2]) for r in rows))
    history = torch.full((len(rows), length), PAD_ITEM, dtype=torch.long)
    for i, (_, _, items, _) in enumerate(rows):
        if items:
            history[i, length - len(items) :] = torch.as_tensor(items, dtype=torch.long)
    return {
        "sample": torch.tensor([r[0] for r in rows], dtype=torch.long),
        "user": torch.tensor([r[1] for r in rows], dtype=torch.long),
        "history": history,  # [B, L]
        "target": torch.tensor([r[3] for r in rows], dtype=torch.long),
    }


class EpochShuffleSampler(Sampler[int]):
    """Training order: a permutation seeded by (seed, epoch), so a run resumed at an epoch
    boundary sees the same order as an uninterrupted one (Lightning calls ``set_epoch``)."""

    def __init__(self, dataset: Dataset, seed: int = 0) -> None:
        self.size = len(dataset)  # type: ignore[arg-type]
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())


class LengthBucketSampler(EpochShuffleSampler):
    """Training order with little padding: the epoch's permutation (seeded by (seed, epoch))
    cut into pools of ``pool_batches`` batches, each pool sorted by history length and cut
    into batches, and the batches shuffled.  Every sample is visited once per epoch, as with
    :class:`EpochShuffleSampler`; a batch's histories are about equally long, so dynamic
    padding removes most of the padded tokens (Scientific: history slots per real item 5.2
    with a plain shuffle, 1.4 with pools of 8 batches, 1.05 with 50).
    The DataLoader's ``batch_size`` must equal ``batch_size`` here.  (Under DDP, Lightning
    deals the indices out to the processes in turn, so a process's batch spans two buckets.)
    """

    def __init__(self, dataset: "SequenceSamples", batch_size: int, seed: int = 0, pool_batches: int = 8) -> None:
        super().__init__(dataset, seed)
        self.lengths = torch.as_tensor(dataset.samples.history_lengths)
        self.batch_size = batch_size
        self.pool_batches = pool_batches

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator)
        pool = self.batch_size * self.pool_batches
        batches: list[torch.Tensor] = []
        for start in range(0, self.size, pool):
            chunk = order[start : start + pool]
            chunk = chunk[self.lengths[chunk].argsort(stable=True)]
            batches.extend(chunk.split(self.batch_size))
        # pools hold whole batches, so only the very last batch can be short: it stays last, or
        # it would shift the DataLoader's batch boundaries off the buckets' for the rest of the epoch
        full = len(batches) - (1 if batches and len(batches[-1]) < self.batch_size else 0)
        shuffled = torch.randperm(full, generator=generator).tolist() + list(range(full, len(batches)))
        return iter(torch.cat([batches[i] for i in shuffled]).tolist() if batches else [])


class EvalDistributedSampler(DistributedSampler):
    """Evaluation order: samples sorted by history length, split across processes.

    Unlike ``DistributedSampler`` it adds no repeated samples to even out the processes, so
    every user is counted exactly once.  Sorting by length makes each batch's histories
    about equally long, so little time goes into padding (results do not depend on order).
    Being a ``DistributedSampler``, Lightning leaves it in place.
    """

    def __init__(self, dataset: SequenceSamples, num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        lengths = dataset.samples.history_lengths
        by_length = np.argsort(lengths, kind="stable").tolist()
        self.indices = by_length[rank::num_replicas]
        self.num_samples = len(self.indices)
        self.total_size = len(lengths)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)
