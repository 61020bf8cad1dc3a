"""Baselines: exact rankings of the count models, SASRec's causality and padding, TIGER's
constrained decoding against brute force, and the Trainer flow (fit, test, predict, reload)."""

import dataclasses
import json
import math
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from llada_rec.callbacks import output_writers
from llada_rec.data.dataset import SequenceData
from llada_rec.models.base import DataInfo
from llada_rec.models.baselines import BERT4Rec, GRU4Rec, RPG, SASRec, TIGER, ItemTransitions, MostPopular
from llada_rec.models.baselines.common import top_k_items
from llada_rec.models.baselines.sasrec import other_items
from llada_rec.decoding import DecodingConfig
from llada_rec.models.transformer import TransformerConfig
from llada_rec.datamodule.recommendation import RecDataModule
from llada_rec.datamodule.settings import DatasetConfig, ItemsConfig, LoadersConfig

from lcrec_files import write_lcrec_files
from toy_models import TINY_NETWORK, assert_full_ranking, assert_learns_cycle, built, semantic_id_model


def sequence_data(sequences: list[list[int]], num_items: int) -> SequenceData:
    return SequenceData(
        user_ids=[f"u{i}" for i in range(len(sequences))],
        item_ids=[f"i{i}" for i in range(1, num_items + 1)],
        sequences=sequences,
        item_meta=[{} for _ in range(num_items)],
    )


def fitted(model, data: SequenceData):
    info = DataInfo(num_items=data.num_items, max_history=20)
    model.data_info = info
    model.build(info)
    model.fit_statistics(data)
    return model


# -- top-k helper -----------------------------------------------------------------------
def test_top_k_items_is_one_based_and_pads_missing_slots():
    scores = torch.tensor([[0.1, 0.9, float("-inf")], [0.5, 0.2, 0.3]])
    items, top = top_k_items(scores, 4)
    assert items.tolist() == [[2, 1, 0, 0], [1, 3, 2, 0]]
    assert top[0, :2].tolist() == pytest.approx([0.9, 0.1])
    assert torch.isinf(top[0, 2:]).all() and torch.isinf(top[1, 3])


# -- most popular -----------------------------------------------------------------------
POPULARITY_SEQUENCES = [
    [1, 2, 3, 4, 5],  # training part 1 2 3
    [2, 3, 2, 5, 4],  # training part 2 3 2
    [3, 2, 1, 4, 5],  # training part 3 2 1 ; items 4 and 5 occur only as val/test targets
]


def test_most_popular_counts_training_parts_only():
    model = fitted(MostPopular(), sequence_data(POPULARITY_SEQUENCES, 5))
    # counts: item 2 -> 4, item 3 -> 3, item 1 -> 2, items 4, 5 -> 0 (ties by index)
    items, scores = model.recommend(torch.tensor([[0, 1], [3, 2]]), 7, "test")
    assert items.tolist() == [[2, 3, 1, 4, 5, 0, 0]] * 2
    assert scores[0, :5].tolist() == [4.0, 3.0, 2.0, 0.0, 0.0]
    assert torch.isinf(scores[:, 5:]).all()


# -- item transitions -------------------------------------------------------------------
TRANSITION_SEQUENCES = [
    [1, 2, 3, 1, 2, 6, 6],  # training part 1 2 3 1 2: 1->2 (twice), 2->3, 3->1
    [1, 4, 2, 5, 5],  # training part 1 4 2: 1->4, 4->2
    [2, 3, 4, 6, 6],  # training part 2 3 4: 2->3, 3->4
]
# P(.|1) = {2: 2/3, 4: 1/3}, P(.|2) = {3: 1}, P(.|3) = {1: 1/2, 4: 1/2}, P(.|4) = {2: 1}
# popularity in the training parts: 2 -> 4, 1 -> 3, 3 -> 3, 4 -> 2, 5 and 6 -> 0


def test_transitions_last_item_with_popularity_tie_break():
    model = fitted(ItemTransitions(window=1, num_recent=1), sequence_data(TRANSITION_SEQUENCES, 6))
    items, scores = model.recommend(torch.tensor([[0, 0, 1], [2, 1, 3]]), 4, "test")
    assert items[0, :2].tolist() == [2, 4]  # 2/3, 1/3
    assert set(items[0, 2:].tolist()) == {1, 3}  # then the most popular of the rest (equal counts)
    assert scores[0, :2].tolist() == pytest.approx([2 / 3, 1 / 3], abs=1e-5)
    # last item 3: 1 and 4 tie at 1/2, popularity puts 1 (3) before 4 (2); then 2 (4), 3 (3)
    assert items[1].tolist() == [1, 4, 2, 3]


def test_transitions_recent_items_vote_with_recency_weights():
    model = fitted(ItemTransitions(window=1, num_recent=2, recency_decay=0.5), sequence_data(TRANSITION_SEQUENCES, 6))
    # history ... 1, 3: P(.|3) + 0.5 P(.|1) -> 4: 2/3, 1: 1/2, 2: 1/3; the earlier item 5 is out of reach
    items, scores = model.recommend(torch.tensor([[5, 1, 3]]), 4, "test")
    assert items.tolist() == [[4, 1, 2, 3]]
    assert scores[0, :3].tolist() == pytest.approx([2 / 3, 1 / 2, 1 / 3], abs=1e-5)


def test_transitions_window_counts_later_items_with_decay():
    model = fitted(ItemTransitions(window=2, decay=0.5, num_recent=1), sequence_data(TRANSITION_SEQUENCES, 6))
    # from item 1: 1->2 twice at gap 1, once at gap 2 (user 1: 1 4 2) = 2.5; 1->4 = 1; 1->3 at gap 2 = 0.5
    items, scores = model.recommend(torch.tensor([[1]]), 4, "test")
    assert items.tolist() == [[2, 4, 3, 1]]
    assert scores[0, :3].tolist() == pytest.approx([0.625, 0.25, 0.125], abs=1e-5)


def test_transitions_exclude_history():
    model = fitted(ItemTransitions(num_recent=1, exclude_history=True), sequence_data(TRANSITION_SEQUENCES, 6))
    items, _ = model.recommend(torch.tensor([[2, 3]]), 6, "test")
    assert items[0, :2].tolist() == [1, 4]
    assert set(items[0, 2:4].tolist()) == {5, 6}  # 2 and 3 (history) never come back
    assert items[0, 4:].tolist() == [0, 0]


# -- SASRec -----------------------------------------------------------------------------
def tiny_sasrec(num_items: int = 12, max_history: int = 6, dropout: float = 0.0, loss: str = "ce") -> SASRec:
    torch.manual_seed(0)
    model = SASRec(network=dataclasses.replace(TINY_NETWORK, dropout=dropout), loss=loss)
    return built(model, DataInfo(num_items=num_items, max_history=max_history))


def test_sasrec_is_causal():
    model = tiny_sasrec()
    history = torch.tensor([[3, 7, 1, 9, 4, 2]])
    changed = history.clone()
    changed[0, 3] = 11  # a later item changes ...
    with torch.no_grad():
        before, after = model.network(history), model.network(changed)
    torch.testing.assert_close(before[:, :3], after[:, :3])  # ... earlier outputs do not
    assert not torch.allclose(before[:, 3:], after[:, 3:])


def test_sasrec_full_ranking_shape_and_padding():
    assert_full_ranking(tiny_sasrec(num_items=12), k=5)


@pytest.mark.parametrize("loss", ["ce", "bce"])
def test_sasrec_loss_decreases_and_learns_a_cycle(loss):
    assert_learns_cycle(tiny_sasrec(num_items=8, max_history=4, loss=loss), steps=60 if loss == "ce" else 150)


def test_sasrec_bce_negatives_are_uniform_over_other_items():
    torch.manual_seed(0)
    target = torch.tensor([1, 4, 5]).repeat(4000)
    negative = other_items(target, 5)
    assert bool((negative != target).all()) and int(negative.min()) == 1 and int(negative.max()) == 5
    counts = torch.bincount(negative[target == 4], minlength=6)[1:].float()  # items 1, 2, 3, 5 each about 1/4
    assert counts[3] == 0 and bool(((counts[[0, 1, 2, 4]] / counts.sum() - 0.25).abs() < 0.03).all())


def test_sasrec_bce_loss_is_positive_against_one_negative():
    model = tiny_sasrec(num_items=6, loss="bce")
    batch = {"history": torch.tensor([[0, 1, 2], [3, 4, 5]]), "target": torch.tensor([3, 6])}
    with torch.no_grad():
        scores = model.full_scores(batch["history"])  # [B, N]
        torch.manual_seed(7)
        negative = other_items(batch["target"], 6)
        positive = scores.gather(1, batch["target"][:, None] - 1)[:, 0]
        sampled = scores.gather(1, negative[:, None] - 1)[:, 0]
        expected = (-F.logsigmoid(positive) - F.logsigmoid(-sampled)).mean()
        torch.manual_seed(7)  # the same negatives inside the loss
        torch.testing.assert_close(model.loss(batch), expected)


# -- TIGER ------------------------------------------------------------------------------
def tiny_tiger(beam_size: int, num_items: int = 7, num_heads: int = 3, codebook_size: int = 3) -> TIGER:
    torch.manual_seed(0)
    model = TIGER(network=TINY_NETWORK, decoding=DecodingConfig(beam_size=beam_size, val_beam_size=beam_size),
                  top_k=min(beam_size, 10), metric_ks=(1,))
    return semantic_id_model(model, num_items, num_heads, codebook_size)


def brute_force_log_probs(model: TIGER, history: Tensor) -> Tensor:
    """[B, N] total log-prob of every item's code tuple, teacher-forced."""
    codes = model.item_code_table[1:]  # [N, M]
    tokens, padding = model.history_tokens(history)
    b, n = history.shape[0], codes.shape[0]
    with torch.no_grad():
        logits = model.network.target_logits(
            tokens.repeat_interleave(n, 0), padding.repeat_interleave(n, 0), codes.repeat(b, 1)
        )  # [B * N, M, K]
    log_probs = torch.log_softmax(logits.float(), -1).gather(-1, codes.repeat(b, 1)[..., None]).squeeze(-1)
    return log_probs.sum(-1).view(b, n)


def test_tiger_next_code_depends_only_on_earlier_codes():
    model = tiny_tiger(beam_size=7)
    tokens, padding = model.history_tokens(torch.tensor([[1, 2, 3]]))
    target = torch.tensor([[0, 1, 2]])
    with torch.no_grad():
        base = model.network.target_logits(tokens, padding, target)
        for m in range(3):
            changed = target.clone()
            changed[0, m] = (changed[0, m] + 1) % 3
            other = model.network.target_logits(tokens, padding, changed)
            torch.testing.assert_close(base[:, : m + 1], other[:, : m + 1])  # code m feeds positions > m only
            if m < 2:
                assert not torch.allclose(base[:, m + 1 :], other[:, m + 1 :])


def test_tiger_trie_decoding_equals_brute_force_top_k():
    model = tiny_tiger(beam_size=7)  # beam >= items: nothing pruned, so exact
    history = torch.tensor([[1, 2, 3], [0, 4, 5], [0, 0, 7]])
    items, scores = model.recommend(history, 7, "test")
    expected = brute_force_log_probs(model, history).sort(dim=1, descending=True)
    assert items.tolist() == (expected.indices + 1).tolist()
    torch.testing.assert_close(scores, expected.values, rtol=1e-5, atol=1e-5)


def test_tiger_small_beam_returns_distinct_valid_items_with_their_scores():
    model = tiny_tiger(beam_size=3)
    history = torch.tensor([[1, 2, 3], [0, 4, 5]])
    items, scores = model.recommend(history, 3, "test")
    brute = brute_force_log_probs(model, history)
    for row in range(2):
        assert len(set(items[row].tolist())) == 3 and bool((items[row] >= 1).all())
        torch.testing.assert_close(scores[row], brute[row, items[row] - 1], rtol=1e-5, atol=1e-5)
    assert bool((scores[:, :-1] >= scores[:, 1:]).all())


# -- Trainer flow -----------------------------------------------------------------------
def write_lcrec(path: Path) -> None:
    """Item ids 0..6 (indices 1..7), no repeats; training-part counts: id 1 -> 4, id 2 -> 3,
    ids 0, 3, 6 -> 2, ids 4, 5 -> 0, so the ranking (ties by index) is 1 2 0 3 6 4 5."""
    sequences = {"0": [0, 1, 2, 3, 4], "1": [1, 2, 3, 5, 0], "2": [1, 2, 6, 4, 3], "3": [0, 1, 5, 2], "4": [3, 6, 5, 1]}
    write_lcrec_files(path, sequences, {str(i): f"item {i}" for i in range(7)}, name="Tiny")


def tiny_trainer(root: Path, max_epochs: int = 1) -> L.Trainer:
    return L.Trainer(
        max_epochs=max_epochs, default_root_dir=root, logger=False, accelerator="cpu", devices=1,
        enable_progress_bar=False, enable_model_summary=False, callbacks=output_writers(),
    )


def test_most_popular_fit_test_predict_with_trainer(tmp_path):

    write_lcrec(tmp_path)
    datamodule = RecDataModule(dataset=DatasetConfig(format="lcrec", path=str(tmp_path), kcore=0), loaders=LoadersConfig(batch_size=2, eval_batch_size=2))
    trainer = tiny_trainer(tmp_path / "run")
    trainer.fit(MostPopular(), datamodule=datamodule)
    trainer.test(MostPopular(), datamodule=datamodule, ckpt_path=trainer.checkpoint_callback.best_model_path)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # test targets: user 0 -> id 4 (rank 6), 1 -> 0 (rank 3), 2 -> 3 (rank 4), 3 -> 2 (rank 2), 4 -> 1 (rank 1)
    assert metrics["test/recall@1"] == pytest.approx(1 / 5)
    assert metrics["test/recall@5"] == pytest.approx(4 / 5)
    assert metrics["test/recall@10"] == pytest.approx(1.0)
    assert metrics["test/ndcg@5"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(5)) / 5, rel=1e-6)
    assert metrics["test/valid_unique"] == 1.0  # 7 distinct items; the 3 padded slots (-inf) do not count

    trainer.predict(MostPopular(), datamodule=datamodule, ckpt_path=trainer.checkpoint_callback.best_model_path)
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert [r["user"] for r in rows] == ["0", "1", "2", "3", "4"]
    # predict leaves out the history's items (3, 6, 5): the rest of the popularity order
    assert rows[4]["items"] == ["1", "2", "0", "4"] and rows[4]["target"] == "1"
    assert rows[4]["history"] == ["3", "6", "5"]


@pytest.mark.parametrize("model_class", [MostPopular, ItemTransitions])
def test_count_model_checkpoint_predicts_alone(tmp_path, model_class):

    write_lcrec(tmp_path)
    datamodule = RecDataModule(dataset=DatasetConfig(format="lcrec", path=str(tmp_path), kcore=0), loaders=LoadersConfig(batch_size=2))
    trainer = tiny_trainer(tmp_path / "run")
    model = model_class()
    trainer.fit(model, datamodule=datamodule)
    restored = model_class.load_from_checkpoint(trainer.checkpoint_callback.best_model_path)
    history = torch.tensor([[0, 2], [1, 3], [3, 2]])
    expected_items, expected_scores = model.recommend(history, 5, "test")
    items, scores = restored.recommend(history, 5, "test")
    assert items.tolist() == expected_items.tolist()
    torch.testing.assert_close(scores, expected_scores)
    assert int(restored.fitted) == 1


@pytest.mark.parametrize("model_class", [SASRec, TIGER, BERT4Rec, GRU4Rec, RPG])
def test_neural_model_fit_test_and_reload(tmp_path, model_class):
    from llada_rec.data.embeddings import embeddings_hash
    from llada_rec.tokenizers.artifact import SemanticIds

    write_lcrec(tmp_path)
    datamodule = RecDataModule(dataset=DatasetConfig(format="lcrec", path=str(tmp_path), kcore=0), loaders=LoadersConfig(batch_size=4), items=ItemsConfig(semantic_ids=str(tmp_path / "ids"), cache_dir=str(tmp_path / "cache")))
    codes = torch.cartesian_prod(torch.arange(3), torch.arange(3))[:7].numpy()  # 7 unique tuples, M=2, K=3
    SemanticIds(codes, 3, datamodule.item_ids, embeddings_hash(datamodule.embeddings)).save(tmp_path / "ids")
    size = dict(d_model=16, num_layers=1) if model_class is GRU4Rec else {"network": dict(d_model=16, num_layers=1, num_attention_heads=2)}
    model = model_class(**size, top_k=5, metric_ks=(1, 5), **({"decoding": {"beam_size": 7, "val_beam_size": 7}} if model_class is TIGER else {}))
    trainer = tiny_trainer(tmp_path / "run", max_epochs=2)
    trainer.fit(model, datamodule=datamodule)
    best = trainer.checkpoint_callback.best_model_path
    trainer.test(model, datamodule=datamodule, ckpt_path=best)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test/valid_unique"] == 1.0  # 5 distinct real items for every user
    assert 0.0 <= metrics["test/recall@1"] <= metrics["test/recall@5"] <= 1.0
    restored = model_class.load_from_checkpoint(best).eval()
    history = torch.tensor([[0, 1, 2], [3, 4, 5]])
    model.eval()
    expected_items, expected_scores = model.recommend(history, 5, "test")
    items, scores = restored.recommend(history, 5, "test")
    assert items.tolist() == expected_items.tolist()
    torch.testing.assert_close(scores, expected_scores)


def test_tiger_with_fewer_beams_than_top_k_pads_like_llada_rec():
    """One rule for beam_size < top_k: the found items, then item 0 with score -inf."""
    model = TIGER(network=TransformerConfig(d_model=16, num_layers=1, num_attention_heads=2, dropout=0.0),
                  decoding=DecodingConfig(beam_size=2, val_beam_size=1), top_k=5, metric_ks=(1, 5))
    model.data_info = DataInfo(num_items=6, max_history=4, num_heads=2, codebook_size=3)
    model.build(model.data_info, torch.tensor([[0, 0], [0, 1], [1, 0], [1, 2], [2, 1], [2, 2]]))
    model.eval()
    history = torch.tensor([[0, 1, 2], [3, 4, 5]])
    for stage, found in (("val", 1), ("test", 2)):
        items, scores = model.recommend(history, 5, stage)
        assert items.shape == scores.shape == (2, 5)
        assert (items[:, :found] > 0).all() and (items[:, found:] == 0).all(), stage
        assert torch.isfinite(scores[:, :found]).all() and torch.isinf(scores[:, found:]).all(), stage
    with pytest.raises(ValueError, match="must be >= 1"):
        TIGER(decoding=DecodingConfig(beam_size=0))
