"""TrainingClock: validation's share of the time and the learning-curve points."""

from __future__ import annotations

import time

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from llada_rec.callbacks import TrainingClock
from llada_rec.models.base import DataInfo, TrainedRecommender


class OneWeight(TrainedRecommender):
    """The smallest trained recommender: one weight, one loss, no DataModule needed."""

    def __init__(self, lr: float = 0.1, weight_decay: float = 0.0, warmup_ratio: float = 0.0) -> None:
        super().__init__(top_k=1, metric_ks=(1,))
        self.save_hyperparameters()
        self.weight = torch.nn.Parameter(torch.tensor(2.0))
        self.data_info = DataInfo(num_items=1, max_history=1)

    def loss(self, batch):
        return self.weight**2


class SlowValidation(L.LightningModule):
    """A linear model whose validation sleeps, so validation's share is known to be large."""

    def __init__(self, val_sleep_s: float) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.val_sleep_s = val_sleep_s

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        time.sleep(self.val_sleep_s)
        self.log("val/score", float(self.current_epoch), on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_clock_records_each_validation_and_logs_the_share(tmp_path):
    data = TensorDataset(torch.randn(40, 4))
    clock = TrainingClock()
    trainer = L.Trainer(
        max_epochs=3, callbacks=[clock], logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=2, default_root_dir=tmp_path,
    )
    trainer.fit(SlowValidation(0.05), DataLoader(data, batch_size=8), DataLoader(data, batch_size=20))
    assert [r["epoch"] for r in clock.records] == [0, 1, 2]  # the sanity check is not a point
    assert [r["samples"] for r in clock.records] == [40, 80, 120]
    assert [r["step"] for r in clock.records] == [5, 10, 15]
    assert [r["val/score"] for r in clock.records] == [0.0, 1.0, 2.0]
    assert clock.val_s >= 3 * 2 * 0.05  # two validation batches per epoch, each sleeping
    train = [r["train_s"] for r in clock.records]
    assert train == sorted(train) and train[-1] < clock.val_s  # cumulative; validation excluded
    share = float(trainer.callback_metrics["time/val_share"])
    assert 0.5 < share < 1.0, share  # the sleeping validation dominates each epoch
    assert float(trainer.callback_metrics["time/val_s"]) >= 0.1


def test_a_recommender_adds_one_clock_and_keeps_it_through_test(tmp_path):
    """configure_callbacks adds a TrainingClock once; test after fit keeps the same one (no override warning)."""
    import warnings

    model = OneWeight()
    batches = [{"history": torch.ones(2, 1, dtype=torch.long), "target": torch.ones(2, dtype=torch.long)}] * 2
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, train_dataloaders=DataLoader(batches, batch_size=None))
    clocks = [c for c in trainer.callbacks if isinstance(c, TrainingClock)]
    assert len(clocks) == 1 and clocks[0].samples == 4
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.configure_callbacks()  # what trainer.test would call: the existing clock stays
    assert model.configure_callbacks() == [] and not caught
