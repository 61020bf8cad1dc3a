"""Recall@K / NDCG@K against hand computations, and DDP (gloo, 2 processes) = one process."""

from __future__ import annotations

import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from llada_rec.metrics import NDCGAtK, RecallAtK, target_rank

# Five users, ranked lists of 10 items; targets at rank 1, 3, 6, absent, 10.
RANKED = torch.tensor(
    [
        [7, 1, 2, 3, 4, 5, 6, 8, 9, 10],
        [1, 2, 7, 3, 4, 5, 6, 8, 9, 10],
        [1, 2, 3, 4, 5, 7, 6, 8, 9, 10],
        [1, 2, 3, 4, 5, 6, 8, 9, 10, 11],
        [1, 2, 3, 4, 5, 6, 8, 9, 10, 7],
    ]
)
TARGET = torch.full((5,), 7)


def disc(rank: int) -> float:
    return 1.0 / math.log2(rank + 1)


# rank 1 -> 1; rank 3 -> 1/log2(4) = 0.5; rank 6 -> 1/log2(7); rank 10 -> 1/log2(11)
EXPECTED = {
    ("recall", 1): 1 / 5,
    ("recall", 5): 2 / 5,
    ("recall", 10): 4 / 5,
    ("ndcg", 1): 1 / 5,
    ("ndcg", 5): (1.0 + 0.5) / 5,
    ("ndcg", 10): (1.0 + 0.5 + disc(6) + disc(10)) / 5,
}


def test_target_rank():
    assert target_rank(RANKED, TARGET).tolist() == [1, 3, 6, 0, 10]


@pytest.mark.parametrize("name,k", sorted(EXPECTED))
def test_hand_computed_values(name: str, k: int):
    metric = RecallAtK(k) if name == "recall" else NDCGAtK(k)
    metric.update(RANKED[:2], TARGET[:2])  # accumulation over batches
    metric.update(RANKED[2:], TARGET[2:])
    assert metric.compute().item() == pytest.approx(EXPECTED[(name, k)], abs=1e-6)


def test_ndcg_at_one_equals_recall_at_one_and_short_lists():
    ranked = torch.tensor([[3, 0], [5, 3]])
    target = torch.tensor([3, 3])
    assert NDCGAtK(1)(ranked, target).item() == RecallAtK(1)(ranked, target).item() == 0.5
    # a list shorter than k (and padded with 0) is fine; 0 never matches a real target
    assert RecallAtK(5)(ranked, target).item() == 1.0
    assert NDCGAtK(5)(ranked, target).item() == pytest.approx((1.0 + 1 / math.log2(3)) / 2)


def test_invalid_k():
    with pytest.raises(ValueError):
        RecallAtK(0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world_size: int, port: int, ranked: torch.Tensor, target: torch.Tensor, out_path: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        shard = slice(rank, None, world_size)  # each process sees half the users
        metrics = [RecallAtK(k) for k in (1, 5, 10)] + [NDCGAtK(k) for k in (1, 5, 10)]
        for metric in metrics:
            metric.update(ranked[shard], target[shard])
        values = torch.stack([metric.compute() for metric in metrics])  # synced across processes
        if rank == 0:
            torch.save(values, out_path)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    g = torch.Generator().manual_seed(0)
    ranked = torch.stack([torch.randperm(30, generator=g)[:10] + 1 for _ in range(41)])  # odd: unequal shards
    target = torch.randint(1, 31, (41,), generator=g)
    metrics = [RecallAtK(k) for k in (1, 5, 10)] + [NDCGAtK(k) for k in (1, 5, 10)]
    single = torch.stack([metric(ranked, target) for metric in metrics])
    assert single[2] > 0  # the data exercise the metrics
    half = torch.stack([type(m)(m.k)(ranked[0::2], target[0::2]) for m in metrics])
    assert not torch.allclose(half, single)  # an unsynced process would be caught

    out_path = str(tmp_path / "ddp.pt")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_ddp_worker, args=(2, _free_port(), ranked, target, out_path), nprocs=2, join=True)
    distributed = torch.load(out_path, weights_only=True)
    torch.testing.assert_close(distributed, single)


def test_ranking_collection_keeps_each_k_apart():
    """A first batch where @5 and @10 agree must not merge their states (torchmetrics compute groups)."""
    from llada_rec.models.base import ranking_metrics

    collection = ranking_metrics((1, 5, 10), prefix="val/")
    target = torch.tensor([1, 1])
    filler = list(range(10, 19))
    collection.update(torch.tensor([[1] + filler, filler[:2] + [1] + filler[2:]]), target)  # ranks 1, 3
    collection.update(torch.tensor([filler[:7] + [1] + filler[7:], [5] * 10]), target)  # rank 8, absent
    values = {name: value.item() for name, value in collection.compute().items()}
    assert values["val/recall@1"] == pytest.approx(1 / 4)
    assert values["val/recall@5"] == pytest.approx(2 / 4)
    assert values["val/recall@10"] == pytest.approx(3 / 4)
    assert values["val/ndcg@5"] == pytest.approx((1 + 0.5) / 4)
    assert values["val/ndcg@10"] == pytest.approx((1 + 0.5 + disc(8)) / 4)
