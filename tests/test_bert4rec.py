"""BERT4Rec: the cloze mask, the appended [MASK] ranking every item, bidirectional attention
(unlike SASRec), and learning a toy sequence rule."""

import torch

from llada_rec.models.base import DataInfo
from llada_rec.models.baselines import BERT4Rec, SASRec
from llada_rec.models.baselines.bert4rec import cloze_mask

from toy_models import TINY_NETWORK, assert_learns_cycle, built


def tiny(model_class, num_items: int = 12, max_history: int = 6, **kwargs):
    torch.manual_seed(0)
    return built(model_class(network=TINY_NETWORK, **kwargs), DataInfo(num_items=num_items, max_history=max_history))


def test_cloze_mask_never_covers_padding_and_always_the_last_item():
    generator = torch.Generator().manual_seed(0)
    items = torch.randint(1, 50, (400, 9), generator=generator)
    lengths = torch.randint(1, 10, (400,), generator=generator)
    items[torch.arange(9)[None, :] < (9 - lengths)[:, None]] = 0  # left padding, 0..8 items of it
    masked = cloze_mask(items, 0.5, generator)
    assert not bool(masked[items == 0].any())
    assert bool(masked[:, -1].all())
    history = masked[:, :-1][items[:, :-1] != 0]
    assert 0.45 < history.float().mean() < 0.55  # the share asked for, on real history items
    assert not bool(cloze_mask(items, 0.0)[:, :-1].any())


def test_loss_targets_only_masked_positions():
    model = tiny(BERT4Rec, mask_prob=0.0)  # only the target is masked
    batch = {"history": torch.tensor([[0, 3, 5], [2, 4, 6]]), "target": torch.tensor([7, 8])}
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model.full_scores(batch["history"]), batch["target"] - 1)
        torch.testing.assert_close(model.loss(batch), expected)  # [history ; MASK] scored at the MASK


def test_appended_mask_scores_rank_all_items():
    model = tiny(BERT4Rec, num_items=12)
    history = torch.tensor([[0, 0, 5, 8], [0, 0, 0, 3], [1, 2, 3, 4]])
    with torch.no_grad():
        hidden = model.network(model.with_mask_slot(history))  # [B, L + 1, D]
        scores = model.full_scores(history)
        items, top = model.recommend(history, 12, "test")
    assert hidden.shape == (3, 5, 16) and scores.shape == (3, 12) and scores.dtype == torch.float32
    torch.testing.assert_close(scores, model.network.item_logits(hidden[:, -1]))  # read at the [MASK] slot
    assert sorted(items[0].tolist()) == list(range(1, 13))  # every item ranked, none twice
    assert items.tolist() == (scores.argsort(dim=1, descending=True) + 1).tolist()
    with torch.no_grad():  # left padding does not change the ranking
        torch.testing.assert_close(model.full_scores(history[:, 2:][:2]), scores[:2], rtol=1e-5, atol=1e-5)


def test_bidirectional_later_item_changes_earlier_outputs_unlike_sasrec():
    history = torch.tensor([[3, 7, 1, 9, 4, 2]])
    changed = history.clone()
    changed[0, 4] = 11  # a later item changes ...
    bert, sasrec = tiny(BERT4Rec), tiny(SASRec)
    with torch.no_grad():
        bert_before, bert_after = bert.network(history), bert.network(changed)
        sas_before, sas_after = sasrec.network(history), sasrec.network(changed)
    for position in range(4):  # ... every earlier position's output moves in BERT4Rec ...
        assert not torch.allclose(bert_before[:, position], bert_after[:, position], atol=1e-4)
    torch.testing.assert_close(sas_before[:, :4], sas_after[:, :4])  # ... and none in SASRec


def test_loss_decreases_and_learns_a_cycle():
    model = tiny(BERT4Rec, num_items=8, max_history=4, mask_prob=0.2)

    def next_item_loss(batch):  # the recommendation's cross-entropy (the cloze loss masks history items too)
        return torch.nn.functional.cross_entropy(model.full_scores(batch["history"]), batch["target"] - 1)

    torch.manual_seed(1)  # the cloze masks
    assert_learns_cycle(model, steps=80, eval_loss=next_item_loss)
