"""GRU4Rec: full-ranking shape, left padding packed away, learning a toy sequence rule."""

import torch

from llada_rec.models.base import DataInfo
from llada_rec.models.baselines import GRU4Rec
from llada_rec.models.baselines.gru4rec import left_align


def tiny_gru4rec(num_items: int = 12, num_layers: int = 1) -> GRU4Rec:
    torch.manual_seed(0)
    model = GRU4Rec(d_model=16, num_layers=num_layers, dropout=0.0)
    model.data_info = DataInfo(num_items=num_items, max_history=6)
    model.build(model.data_info)
    return model.eval()


def test_left_align_moves_padding_to_the_right():
    items, lengths = left_align(torch.tensor([[0, 0, 5, 8], [1, 2, 3, 4], [0, 0, 0, 7]]))
    assert items.tolist() == [[5, 8, 0, 0], [1, 2, 3, 4], [7, 0, 0, 0]]
    assert lengths.tolist() == [2, 4, 1]


def test_full_ranking_shape_and_padding_invariance():
    model = tiny_gru4rec(num_items=12, num_layers=2)
    short = torch.tensor([[5, 8], [0, 3]])
    padded = torch.tensor([[0, 0, 0, 5, 8], [0, 0, 0, 0, 3]])
    with torch.no_grad():
        scores = model.full_scores(short)
        assert scores.shape == (2, 12) and scores.dtype == torch.float32
        torch.testing.assert_close(scores, model.full_scores(padded), rtol=1e-5, atol=1e-5)
        assert not torch.allclose(scores[0], model.full_scores(torch.tensor([[8, 5]]))[0])  # order matters
        items, top = model.recommend(padded, 12, "test")
    assert items.shape == (2, 12) and sorted(items[0].tolist()) == list(range(1, 13))
    expected = scores.topk(12, dim=1)
    assert items.tolist() == (expected.indices + 1).tolist()
    torch.testing.assert_close(top, expected.values, rtol=1e-5, atol=1e-5)


def test_loss_decreases_and_learns_a_cycle():
    model = tiny_gru4rec(num_items=8)
    model.train()
    histories, targets = [], []  # next item = previous item + 1 (cyclic over 1..8)
    for start in range(1, 9):
        for length in range(1, 5):
            seq = [(start + i - 1) % 8 + 1 for i in range(length + 1)]
            histories.append([0] * (4 - length) + seq[:-1])
            targets.append(seq[-1])
    batch = {"history": torch.tensor(histories), "target": torch.tensor(targets)}
    first = float(model.loss(batch).detach())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        optimizer.zero_grad()
        model.loss(batch).backward()
        optimizer.step()
    model.eval()
    assert float(model.loss(batch).detach()) < 0.2 * first
    items, _ = model.recommend(batch["history"], 1, "test")
    assert (items[:, 0] == batch["target"]).float().mean() > 0.9
