"""DDP training: 2 CPU processes (gloo) fit a tiny SASRec to the end, save one set of
checkpoints, and reach the weights and validation metrics of 1 process with the same global batch.

The two runs sum each gradient in a different order (48 samples in one process; 24 + 24 and an
all-reduce in two), so their weights agree only up to rounding. Both run in float64
(``precision="64-true"``) so that the bound can be derived rather than guessed: the rounding
drift of a fixed computation is, to first order, its amplification factor times the unit
roundoff u (Adam's update is Lipschitz in the gradient, so no step turns a rounding difference
into anything larger than a constant times it). Measured on this test in float32
(u = 2**-24 = 6.0e-8) the largest weight difference was 2.8e-5, an amplification factor of
about 470; in float64 (u = 2**-53 = 1.1e-16) that predicts 5e-14, and 7.9e-14 was measured.
``WEIGHT_ATOL = 1e-9`` leaves a margin of 10**4 over it (it would take a factor of 9e6 to
reach it), while a real DDP fault (a sample lost or counted twice, an unsynchronised gradient,
a step more or less) moves the weights by the order of the learning rate, 1e-3 per step.
"""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from llada_rec.callbacks import ResumableCheckpoint
from llada_rec.datamodule.recommendation import RecDataModule
from llada_rec.datamodule.settings import DatasetConfig, LoadersConfig
from llada_rec.models.baselines import SASRec
from llada_rec.models.transformer import TransformerConfig

from lcrec_files import write_lcrec_files

pytestmark = pytest.mark.slow  # see pyproject.toml; `make test-fast` skips these

WEIGHT_ATOL = 1e-9  # float64 rounding drift of two summation orders, derived in the module docstring


class SeededSASRec(SASRec):
    """Same initial weights however much RNG the set-up path (1 vs 2 processes) consumed."""

    def build(self, info, item_codes=None) -> None:
        torch.manual_seed(123)
        super().build(info, item_codes)


def write_lcrec(path: Path, num_users: int = 24, num_items: int = 10) -> None:
    rng = np.random.default_rng(1)
    inter = {f"u{u}": [f"i{j}" for j in rng.choice(num_items, size=4 + u % 3, replace=False)] for u in range(num_users)}
    write_lcrec_files(path, inter, {f"i{i}": f"item {i}" for i in range(num_items)})


def fit(root: Path, data: Path, devices: int) -> Path:
    trainer = L.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp_spawn" if devices > 1 else "auto",
        precision="64-true",
        max_epochs=4,
        logger=CSVLogger(root, name="ddp"),
        callbacks=[ResumableCheckpoint(monitor="val/ndcg@10", mode="max", filename="best-epoch{epoch}", auto_insert_metric_name=False)],
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    # the same global batch: all 48 training samples, on one process or 24 on each of two (the
    # two runs order samples differently: Lightning's DDP sampler reshuffles the epoch's order)
    dm = RecDataModule(dataset=DatasetConfig(format="lcrec", path=str(data), kcore=0), loaders=LoadersConfig(batch_size=48 // devices, eval_batch_size=8, train_order="shuffle"))
    trainer.fit(SeededSASRec(network=TransformerConfig(d_model=16, num_layers=1, num_attention_heads=2, dropout=0.0)), datamodule=dm)
    return root / "ddp"


def val_metrics(run: Path) -> list[dict[str, float]]:
    with (run / "metrics.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/ndcg@10")]
    return [{k: float(v) for k, v in r.items() if k.startswith("val/") and v} for r in rows]


def test_two_process_fit_matches_one_process(tmp_path: Path) -> None:
    torch.manual_seed(0)
    write_lcrec(tmp_path / "data")
    L.seed_everything(0)
    one = fit(tmp_path / "one", tmp_path / "data", 1)
    L.seed_everything(0)
    two = fit(tmp_path / "two", tmp_path / "data", 2)
    [run] = two.iterdir()  # one version directory
    single, ddp = val_metrics(one / "version_0"), val_metrics(run)
    assert len(ddp) == len(single) == 4  # ran to the end
    for a, b in zip(single, ddp):
        assert b == pytest.approx(a, abs=1e-6)
    assert len(list((run / "checkpoints").glob("best-*.ckpt"))) == 1 and (run / "checkpoints" / "last.ckpt").is_file()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == sorted(p.name for p in (one / "version_0" / "checkpoints").iterdir())
    wa = torch.load(one / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    wb = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert wa["network.item_embedding.weight"].dtype == torch.float64  # the bound above is float64's
    for key in wa:
        torch.testing.assert_close(wb[key], wa[key], rtol=0.0, atol=WEIGHT_ATOL)
