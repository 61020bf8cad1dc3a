"""The run's output files as callbacks (``metrics.json``, ``predictions.jsonl``) and the one
run-directory helper every writer of run files uses."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from llada_rec.callbacks import MetricsWriter, PredictionsWriter, output_writers
from llada_rec.lightning_cli import LLaDARecCLI
from llada_rec.utils import run_dir


class Toy(L.LightningModule):
    """Logs test metrics (and one other key), predicts item ``sample % 3`` with score -sample."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def test_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.log("test/hits", batch.float().mean(), batch_size=len(batch))
        self.log("test/count", float(len(batch)), reduce_fx="sum", batch_size=len(batch))
        self.log("other/seen", 1.0)

    def predict_step(self, batch: torch.Tensor, batch_idx: int) -> dict[str, torch.Tensor]:
        return {"sample": batch, "items": (batch % 3).unsqueeze(1), "scores": -batch.double().unsqueeze(1) / 3}


class ToyData(L.LightningDataModule):
    """Samples 0..n-1 (a repeated sample when ``repeat``); describes a prediction like RecDataModule."""

    def __init__(self, n: int = 5, repeat: bool = False, describe: bool = True) -> None:
        super().__init__()
        self.samples = list(range(n)) + ([1] if repeat else [])
        if describe:
            self.describe_prediction = lambda s, items, scores: {"user": f"u{s}", "items": [f"i{i}" for i in items], "scores": scores}

    def test_dataloader(self) -> DataLoader:
        return DataLoader(torch.tensor(self.samples), batch_size=2)

    predict_dataloader = test_dataloader


def trainer(root: Path, callbacks: list, logger=False) -> L.Trainer:
    return L.Trainer(default_root_dir=root, logger=logger, callbacks=callbacks, accelerator="cpu", devices=1,
                     enable_progress_bar=False, enable_model_summary=False)


def test_metrics_writer_writes_the_logged_test_metrics(tmp_path):
    [logged] = trainer(tmp_path, [MetricsWriter()]).test(Toy(), datamodule=ToyData(), verbose=False)
    text = (tmp_path / "metrics.json").read_text()
    metrics = json.loads(text)
    assert metrics == {"test/count": 5.0, "test/hits": 2.0}  # test/ keys only: other/seen is not a result
    assert metrics == {k: v for k, v in logged.items() if k.startswith("test/")}
    assert text == json.dumps(metrics, indent=2, sort_keys=True) + "\n"
    assert not list(tmp_path.glob(".*.tmp"))  # written under a temporary name, then renamed


def test_without_the_callbacks_nothing_is_written(tmp_path):
    t = trainer(tmp_path, [])
    t.test(Toy(), datamodule=ToyData(), verbose=False)
    t.predict(Toy(), datamodule=ToyData())
    assert list(tmp_path.iterdir()) == []


def test_predictions_writer_one_line_per_sample_described_by_the_datamodule(tmp_path, capsys):
    out = tmp_path / "elsewhere"
    t = trainer(tmp_path, [PredictionsWriter(output_dir=str(out))])
    t.predict(Toy(), datamodule=ToyData(n=5, repeat=True))
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["user"] for r in rows] == ["u0", "u1", "u2", "u3", "u4"]  # sample order; the repeated sample once
    assert rows[4] == {"user": "u4", "items": ["i1"], "scores": [-1.333333]}  # rounded to 6 decimals
    assert not (tmp_path / "predictions.jsonl").exists()
    assert f"wrote 5 recommendations to {out / 'predictions.jsonl'}" in capsys.readouterr().out


def test_predictions_without_describe_prediction_are_written_as_returned(tmp_path):
    trainer(tmp_path, [PredictionsWriter()]).predict(Toy(), datamodule=ToyData(n=3, describe=False))
    rows = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert rows == [{"sample": s, "items": [s % 3], "scores": [round(-s / 3, 6)]} for s in range(3)]


def test_writers_follow_the_logger_run_dir_and_the_output_dir(tmp_path):
    logger = CSVLogger(tmp_path, name="toy", version=0)
    trainer(tmp_path, output_writers(), logger=logger).test(Toy(), datamodule=ToyData(), verbose=False)
    assert (tmp_path / "toy" / "version_0" / "metrics.json").is_file()
    writer = MetricsWriter(output_dir=str(tmp_path / "chosen"))
    trainer(tmp_path, [writer], logger=CSVLogger(tmp_path, name="toy", version=1)).test(Toy(), datamodule=ToyData(), verbose=False)
    assert (tmp_path / "chosen" / "metrics.json").is_file() and not (tmp_path / "toy" / "version_1" / "metrics.json").exists()


def test_run_dir_prefers_output_dir_then_log_dir_then_root_dir(tmp_path):
    fake = SimpleNamespace(log_dir=str(tmp_path / "runs" / "version_3"), default_root_dir=str(tmp_path))
    assert run_dir(fake) == tmp_path / "runs" / "version_3"
    assert run_dir(fake, tmp_path / "out") == tmp_path / "out"
    assert run_dir(fake, None) == run_dir(fake, "") == tmp_path / "runs" / "version_3"
    assert run_dir(SimpleNamespace(log_dir=None, default_root_dir=str(tmp_path))) == tmp_path
    real = L.Trainer(logger=CSVLogger(tmp_path, name="x", version=2), default_root_dir=tmp_path / "root")
    assert run_dir(real) == tmp_path / "x" / "version_2"
    assert run_dir(L.Trainer(logger=False, default_root_dir=tmp_path / "root")) == tmp_path / "root"


def test_the_cli_registers_the_writers_once(tmp_path):
    cli = LLaDARecCLI(args=["--model", "MostPopular", "--data.dataset.format", "lcrec", "--data.dataset.path", str(tmp_path),
                            "--trainer.default_root_dir", str(tmp_path), "--trainer.logger=false"], run=False)
    kinds = [type(c) for c in cli.trainer.callbacks]
    assert kinds.count(MetricsWriter) == 1 and kinds.count(PredictionsWriter) == 1
