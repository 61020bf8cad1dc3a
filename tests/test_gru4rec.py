"""GRU4Rec: full-ranking shape, left padding packed away, learning a toy sequence rule."""

import torch

from llada_rec.models.base import DataInfo
from llada_rec.models.baselines import GRU4Rec
from llada_rec.models.baselines.gru4rec import left_align

from toy_models import assert_full_ranking, assert_learns_cycle, built


def tiny_gru4rec(num_items: int = 12, num_layers: int = 1, max_history: int = 6) -> GRU4Rec:
    torch.manual_seed(0)
    return built(GRU4Rec(d_model=16, num_layers=num_layers, dropout=0.0), DataInfo(num_items=num_items, max_history=max_history))


def test_left_align_moves_padding_to_the_right():
    items, lengths = left_align(torch.tensor([[0, 0, 5, 8], [1, 2, 3, 4], [0, 0, 0, 7]]))
    assert items.tolist() == [[5, 8, 0, 0], [1, 2, 3, 4], [7, 0, 0, 0]]
    assert lengths.tolist() == [2, 4, 1]


def test_full_ranking_shape_and_padding_invariance():
    model = tiny_gru4rec(num_items=12, num_layers=2)
    scores = assert_full_ranking(model, k=12)  # every item ranked
    with torch.no_grad():
        assert not torch.allclose(scores[0], model.full_scores(torch.tensor([[8, 5]]))[0])  # order matters


def test_loss_decreases_and_learns_a_cycle():
    assert_learns_cycle(tiny_gru4rec(num_items=8, max_history=4), steps=60)
