import lightning as L
import pytest
import torch

from llada_rec.models.base import DataInfo, TrainedRecommender, ranking_metrics


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


class TwoLosses(TrainedRecommender):
    """A toy trained recommender with two named loss terms."""

    def __init__(self, lr: float = 0.1, weight_decay: float = 0.0, warmup_ratio: float = 0.0) -> None:
        super().__init__(top_k=1, metric_ks=(1,))
        self.save_hyperparameters()
        self.weight = torch.nn.Parameter(torch.tensor(2.0))

    def losses(self, batch):
        first, second = self.weight**2, (self.weight - 1) ** 2
        return {"loss": first + second, "first": first, "second": second}


def test_trained_recommender_logs_every_named_loss_and_steps_the_shared_recipe(tmp_path):
    from torch.utils.data import DataLoader

    model = TwoLosses()
    model.data_info = DataInfo(num_items=1, max_history=1)  # no DataModule: nothing to build
    batches = [{"history": torch.ones(2, 1, dtype=torch.long), "target": torch.ones(2, dtype=torch.long)}] * 4
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, train_dataloaders=DataLoader(batches, batch_size=None))
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert {"train/loss", "train/first", "train/second"} <= set(logged)
    assert logged["train/loss"] == pytest.approx(logged["train/first"] + logged["train/second"], rel=1e-6)
    assert model.weight.item() < 2.0  # the AdamW recipe stepped on the joint loss
    assert isinstance(trainer.optimizers[0], torch.optim.AdamW)
