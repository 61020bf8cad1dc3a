import torch

from llada_rec.models.base import ranking_metrics


def test_metric_collection_keeps_each_k_separate():
    # After the first batch recall@5 == recall@10 (both hit); a collection that merged
    # metrics with equal states would then report recall@10 for recall@5.
    metrics = ranking_metrics((1, 5, 10), prefix="test/")
    ranked = torch.arange(1, 11).unsqueeze(0)  # items 1..10, best first
    metrics.update(ranked, torch.tensor([3]))  # rank 3: in top 5 and top 10
    metrics.update(ranked, torch.tensor([7]))  # rank 7: only in top 10
    result = {k: float(v) for k, v in metrics.compute().items()}
    assert result["test/recall@10"] == 1.0
    assert result["test/recall@5"] == 0.5
    assert result["test/recall@1"] == 0.0
    expected_ndcg10 = (1 / torch.log2(torch.tensor(4.0)) + 1 / torch.log2(torch.tensor(8.0))) / 2
    assert abs(result["test/ndcg@10"] - float(expected_ndcg10)) < 1e-6


def test_valid_unique_counts_returned_entries_only():
    from llada_rec.models.base import SequentialRecommender

    model = SequentialRecommender(top_k=4, metric_ks=(1, 4))
    inf = float("inf")
    items = torch.tensor([[5, 0, 5, 0], [3, 4, 0, 0]])
    scores = torch.tensor([[-1.0, -2.0, -3.0, -inf], [-1.0, -2.0, -inf, -inf]])
    model._count_valid_unique(items, scores)
    # row 0: 3 returned, item 0 (no item) and a repeated 5 are bad; row 1: 2 returned, both good
    assert model._valid_unique == [1 + 2, 3 + 2]
