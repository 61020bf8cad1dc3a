"""Small models and toy data the model tests share: built as ``setup()`` builds them, from the
typed settings groups users pass (no flat-hyperparameter shim)."""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from llada_rec.models.base import DataInfo, SequentialRecommender
from llada_rec.models.transformer import TransformerConfig

#: the network of most toy models: two small blocks, no dropout (deterministic losses)
TINY_NETWORK = TransformerConfig(d_model=16, num_layers=2, num_attention_heads=2, dropout=0.0)


def built(model: SequentialRecommender, data_info: DataInfo, item_codes: Optional[Tensor] = None) -> SequentialRecommender:
    """``model`` built for ``data_info`` (and the item code table [N, M]), in eval mode."""
    model.data_info = data_info
    model.build(data_info, item_codes)
    return model.eval()


def unique_code_tuples(num_items: int, num_heads: int, codebook_size: int, generator: torch.Generator) -> Tensor:
    """[N, M] distinct code tuples in [0, K)^M, in a scrambled order."""
    all_tuples = torch.cartesian_prod(*[torch.arange(codebook_size)] * num_heads)  # [K^M, M]
    return all_tuples[torch.randperm(len(all_tuples), generator=generator)[:num_items]]


def semantic_id_model(model: SequentialRecommender, num_items: int, num_heads: int, codebook_size: int) -> SequentialRecommender:
    """A semantic-ID model (TIGER, RPG) on random distinct codes, with weights larger than the
    init so that its per-head distributions are distinct and far from uniform (a ranking
    test then has one right answer). ``model`` is constructed after ``torch.manual_seed(0)``."""
    generator = torch.Generator().manual_seed(1)
    codes = unique_code_tuples(num_items, num_heads, codebook_size, generator)
    model = built(model, DataInfo(num_items=num_items, max_history=4, num_heads=num_heads, codebook_size=codebook_size), codes)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.5)
    return model


def cycle_batch(num_items: int = 8, max_history: int = 4) -> dict[str, Tensor]:
    """The toy rule "next item = previous item + 1" (cyclic over 1..N): every start item with
    histories of 1 to ``max_history`` items, left-padded."""
    histories, targets = [], []
    for start in range(1, num_items + 1):
        for length in range(1, max_history + 1):
            seq = [(start + i - 1) % num_items + 1 for i in range(length + 1)]
            histories.append([0] * (max_history - length) + seq[:-1])
            targets.append(seq[-1])
    return {"history": torch.tensor(histories), "target": torch.tensor(targets)}


def assert_learns_cycle(model: SequentialRecommender, steps: int, eval_loss: Optional[Callable[[dict], Tensor]] = None) -> None:
    """Adam on ``model.loss`` over the cycle batch: the evaluation loss (default: the training
    loss) falls below a fifth of its start, and the top-1 item is the rule's for > 90% of users."""
    batch = cycle_batch(model.data_info.num_items, model.data_info.max_history)
    eval_loss = eval_loss or model.loss

    def loss_now() -> float:
        with torch.no_grad():
            return float(eval_loss(batch))

    model.train()
    first = loss_now()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        model.loss(batch).backward()
        optimizer.step()
    model.eval()
    assert loss_now() < 0.2 * first
    items, _ = model.recommend(batch["history"], 1, "test")
    assert (items[:, 0] == batch["target"]).float().mean() > 0.9


def assert_full_ranking(model: SequentialRecommender, k: int) -> Tensor:
    """A full-ranking model: ``full_scores`` is [B, N] float32 and unchanged by extra left
    padding, and ``recommend(k)`` returns its top k (items 1..N). Returns the scores [2, N]."""
    short = torch.tensor([[5, 8], [0, 3]])
    padded = torch.tensor([[0, 0, 0, 5, 8], [0, 0, 0, 0, 3]])
    with torch.no_grad():
        scores = model.full_scores(short)
        assert scores.shape == (2, model.data_info.num_items) and scores.dtype == torch.float32
        torch.testing.assert_close(scores, model.full_scores(padded), rtol=1e-5, atol=1e-5)
        items, top = model.recommend(padded, k, "test")
    expected = scores.topk(k, dim=1)
    assert items.tolist() == (expected.indices + 1).tolist()
    torch.testing.assert_close(top, expected.values, rtol=1e-5, atol=1e-5)
    return scores
