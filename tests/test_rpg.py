"""RPG: exact ranking against a brute-force sum of per-head log-probabilities, valid and
distinct items, causal history encoding, and the per-head loss."""

import torch
import torch.nn.functional as F

from llada_rec.models.baselines import RPG
from llada_rec.models.baselines.rpg import item_log_probs

from toy_models import TINY_NETWORK, semantic_id_model


def tiny_rpg(num_items: int = 9, num_heads: int = 3, codebook_size: int = 4) -> RPG:
    torch.manual_seed(0)
    return semantic_id_model(RPG(network=TINY_NETWORK, temperature=0.5, top_k=5, metric_ks=(1, 5)), num_items, num_heads, codebook_size)


def brute_force_scores(model: RPG, history: torch.Tensor) -> torch.Tensor:
    """[B, N]: for each user and item, sum over heads of log softmax(head logits)[code]."""
    with torch.no_grad():
        logits = model.network(model.item_code_table[history], history == 0)  # [B, M, K]
    codes = model.item_code_table[1:].tolist()
    scores = torch.zeros(history.shape[0], len(codes))
    for b in range(history.shape[0]):
        for i, item_codes in enumerate(codes):
            scores[b, i] = sum(float(F.log_softmax(logits[b, m].double(), dim=-1)[c]) for m, c in enumerate(item_codes))
    return scores


def test_item_log_probs_gathers_each_heads_code():
    log_probs = torch.arange(2 * 2 * 3, dtype=torch.float32).view(2, 2, 3)  # [B=2, M=2, K=3]
    codes = torch.tensor([[0, 2], [1, 1]])
    assert item_log_probs(log_probs, codes).tolist() == [[0 + 5, 1 + 4], [6 + 11, 7 + 10]]


def test_exact_ranking_equals_brute_force_sum_of_head_log_probs():
    model = tiny_rpg()
    history = torch.tensor([[1, 2, 3], [0, 4, 5], [0, 0, 9]])
    brute = brute_force_scores(model, history)
    with torch.no_grad():
        torch.testing.assert_close(model.full_scores(history), brute, rtol=1e-5, atol=1e-5)
        items, scores = model.recommend(history, 9, "test")
    expected = brute.sort(dim=1, descending=True)
    assert items.tolist() == (expected.indices + 1).tolist()
    torch.testing.assert_close(scores, expected.values, rtol=1e-5, atol=1e-5)
    assert float(brute.exp().sum(1).max()) < 1.0  # a distribution over all K^M tuples, items a part of it


def test_returned_items_are_valid_and_distinct():
    model = tiny_rpg(num_items=9)
    history = torch.tensor([[1, 2, 3], [0, 4, 5], [0, 0, 9]])
    items, scores = model.recommend(history, 5, "test")
    for row in items.tolist():
        assert len(set(row)) == 5 and all(1 <= i <= 9 for i in row)
    assert bool(torch.isfinite(scores).all()) and bool((scores[:, :-1] >= scores[:, 1:]).all())
    items, scores = model.recommend(history, 12, "test")  # more than the catalogue: padded, never repeated
    assert items[:, 9:].eq(0).all() and torch.isinf(scores[:, 9:]).all()
    assert all(sorted(row[:9]) == list(range(1, 10)) for row in items.tolist())


def test_history_is_read_causally_and_padding_is_ignored():
    model = tiny_rpg()
    codes, padding = model.item_code_table[torch.tensor([[0, 1, 2, 3]])], torch.tensor([[True, False, False, False]])
    with torch.no_grad():
        inputs = model.network.item_inputs(codes, padding)
        assert bool(inputs[0, 0].eq(0).all())  # padding contributes nothing
        base = model.network.encode(inputs, padding)
        changed = inputs.clone()
        changed[0, 3] += 1.0  # the last item changes ...
        other = model.network.encode(changed, padding)
    torch.testing.assert_close(base[:, 1:3], other[:, 1:3])  # ... earlier positions do not (causal)
    assert not torch.allclose(base[:, 3], other[:, 3])
    with torch.no_grad():  # the same history at another padded length scores the same
        torch.testing.assert_close(
            model.full_scores(torch.tensor([[0, 0, 4, 5]])), model.full_scores(torch.tensor([[4, 5]])), rtol=1e-5, atol=1e-5
        )


def test_loss_is_mean_per_head_cross_entropy_and_decreases():
    model = tiny_rpg()
    batch = {"history": torch.tensor([[1, 2, 3], [0, 4, 5], [0, 0, 9], [0, 6, 7]]), "target": torch.tensor([4, 6, 1, 8])}
    with torch.no_grad():
        log_probs = model.code_log_probs(batch["history"])  # [B, M, K]
        target_codes = model.item_code_table[batch["target"]]  # [B, M]
        expected = -log_probs.gather(2, target_codes[..., None]).mean()
        torch.testing.assert_close(model.loss(batch), expected)
    model.train()
    first = float(model.loss(batch).detach())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(80):
        optimizer.zero_grad()
        model.loss(batch).backward()
        optimizer.step()
    model.eval()
    assert float(model.loss(batch).detach()) < 0.3 * first  # cosine / 0.5 bounds the logits: no loss near 0
    items, _ = model.recommend(batch["history"], 1, "test")
    assert items[:, 0].tolist() == batch["target"].tolist()
