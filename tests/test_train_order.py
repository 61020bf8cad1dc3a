"""Training order: length-bucketed batches visit every sample once and cut padding."""

from __future__ import annotations

import random

import torch
from torch.utils.data import DataLoader

from llada_rec.data.batches import EpochShuffleSampler, LengthBucketSampler, SequenceSamples, collate_sequences


def samples(n: int = 2000, seed: int = 0) -> SequenceSamples:
    rng = random.Random(seed)
    rows = []
    for user in range(n):
        length = min(20, int(rng.expovariate(1 / 4)) + 1)  # mostly short, a few long: like Amazon histories
        rows.append((user, [rng.randint(1, 50) for _ in range(length)], rng.randint(1, 50)))
    return SequenceSamples(rows)


def padded_slots(dataset: SequenceSamples, sampler, batch_size: int) -> int:
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_sequences)
    return sum(batch["history"].numel() for batch in loader)


def test_buckets_visit_every_sample_once_and_cut_padding():
    dataset = samples()
    bucketed = LengthBucketSampler(dataset, batch_size=64, seed=3, pool_batches=10)
    order = list(bucketed)
    assert sorted(order) == list(range(len(dataset)))  # a permutation: every sample once per epoch
    real = sum(len(h) for _, h, _ in dataset.samples)
    shuffled_slots = padded_slots(dataset, EpochShuffleSampler(dataset, seed=3), 64)
    bucketed_slots = padded_slots(dataset, bucketed, 64)
    assert bucketed_slots < 0.5 * shuffled_slots, (bucketed_slots, shuffled_slots)
    assert bucketed_slots < 1.3 * real  # little padding left


def test_bucket_order_is_seeded_by_epoch_and_mixes_lengths_across_batches():
    dataset = samples()
    a, b = LengthBucketSampler(dataset, 64, seed=3), LengthBucketSampler(dataset, 64, seed=3)
    assert list(a) == list(b)  # same (seed, epoch): same order, so a resumed run replays it
    a.set_epoch(1)
    first, second = list(b), list(a)
    assert first != second and sorted(first) == sorted(second)
    lengths = torch.tensor([len(dataset.samples[i][1]) for i in second])
    batch_lengths = lengths[: len(lengths) // 64 * 64].view(-1, 64).float().mean(dim=1)
    assert not bool((batch_lengths[1:] >= batch_lengths[:-1]).all())  # batches shuffled, not sorted overall
