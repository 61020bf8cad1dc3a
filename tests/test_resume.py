"""`fit --ckpt_path last` after a SIGINT continues the run in place and ends where an
uninterrupted run ends: same weights, same validation metrics, one run directory."""

from __future__ import annotations

import csv
import os
import signal
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from llada_rec.cli import main
from llada_rec.datamodule.recommendation import RecDataModule
from llada_rec.datamodule.settings import DatasetConfig, ItemsConfig, LoadersConfig
from llada_rec.models.transformer import TransformerConfig
from llada_rec.data.embeddings import embeddings_hash
from llada_rec.tokenizers.artifact import SemanticIds

from lcrec_files import write_lcrec_files

pytestmark = pytest.mark.slow  # see pyproject.toml; `make test-fast` skips these

REPO = Path(__file__).resolve().parents[1]


class SigintAt(L.Callback):
    """Send this process a real SIGINT before training batch ``batch`` of epoch ``epoch``."""

    def __init__(self, epoch: int = 1, batch: int = 1) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGINT)


def write_lcrec(path: Path, num_users: int = 40, num_items: int = 12) -> None:
    rng = np.random.default_rng(0)
    inter = {f"u{u}": [f"i{j}" for j in rng.choice(num_items, size=5 + u % 4, replace=False)] for u in range(num_users)}
    write_lcrec_files(path, inter, {f"i{i}": f"item number {i}" for i in range(num_items)})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("resume")
    write_lcrec(root / "data")
    cache = root / "cache"
    dm = RecDataModule(dataset=DatasetConfig(format="lcrec", path=str(root / "data"), kcore=0), items=ItemsConfig(cache_dir=str(cache)))
    n = len(dm.item_ids)
    codes = np.stack([np.arange(n) % 4, np.arange(n) // 4], axis=1)  # M = 2, K = 4, unique
    SemanticIds(codes, 4, dm.item_ids, embeddings_hash(dm.embeddings)).save(root / "ids")
    return [
        "--config", str(REPO / "experiments" / "demo.yaml"),
        "--data.dataset.format=lcrec", "--data.dataset.path", str(root / "data"), "--data.dataset.category=null", "--data.dataset.kcore=0",
        "--data.dataset.generate_demo=false", "--data.items.cache_dir", str(cache), "--data.loaders.batch_size=8",
        "--data.items.semantic_ids", str(root / "ids"), "--data.items.tokenizer_config=null",
        "--model.init_args.network.d_model=16", "--model.init_args.network.num_layers=1", "--model.init_args.network.num_attention_heads=2",
        "--model.init_args.decoding.beam_size=4", "--model.init_args.decoding.val_beam_size=4", "--model.init_args.decoding.num_steps=2",
        "--trainer.max_epochs=3", "--trainer.log_every_n_steps=1", "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
    ]  # fmt: skip


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def val_rows(rows: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(r["epoch"], r["val/ndcg@10"]) for r in rows if r.get("val/ndcg@10")]


def test_interrupted_and_resumed_run_equals_uninterrupted(tiny_run: list[str], tmp_path: Path) -> None:
    full, broken = tmp_path / "full", tmp_path / "broken"
    main(["fit", *tiny_run, f"--trainer.logger.init_args.save_dir={full}"])
    interrupted = [*tiny_run, f"--trainer.logger.init_args.save_dir={broken}"]
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the interrupt below needs the default handler
    try:
        with pytest.raises(SystemExit) as exit_info:  # graceful shutdown
            main(["fit", *interrupted, "--trainer.callbacks+=test_resume.SigintAt"])
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning leaves SIGINT ignored
    assert exit_info.value.code == 130  # the shell convention for SIGINT
    [run] = (broken / "demo").iterdir()
    last = run / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 0  # the last completed epoch
    before = csv_rows(run / "metrics.csv")

    main(["fit", *interrupted, "--ckpt_path", "last"])
    assert [p.name for p in (broken / "demo").iterdir()] == [run.name]  # no new version directory
    [reference] = (full / "demo").iterdir()
    resumed_rows, full_rows = csv_rows(run / "metrics.csv"), csv_rows(reference / "metrics.csv")
    assert resumed_rows[: len([r for r in before if r["epoch"] == "0"])] == [r for r in before if r["epoch"] == "0"]
    assert val_rows(resumed_rows) == val_rows(full_rows) and len(val_rows(full_rows)) == 3  # exact, every epoch
    assert [r.get("train/loss") for r in resumed_rows] == [r.get("train/loss") for r in full_rows]

    a = torch.load(last, weights_only=True)
    b = torch.load(reference / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2 and a["global_step"] == b["global_step"]
    for key, value in b["state_dict"].items():
        assert torch.equal(a["state_dict"][key], value), key  # bit-identical on CPU
    best = [v for k, v in a["callbacks"].items() if k.startswith("ResumableCheckpoint")][0]
    best_ref = [v for k, v in b["callbacks"].items() if k.startswith("ResumableCheckpoint")][0]
    assert Path(best["best_model_path"]).name == Path(best_ref["best_model_path"]).name  # best tracking continued
    assert float(best["best_model_score"]) == float(best_ref["best_model_score"])
    early = [v for k, v in a["callbacks"].items() if k.startswith("EarlyStopping")][0]
    early_ref = [v for k, v in b["callbacks"].items() if k.startswith("EarlyStopping")][0]
    assert early["wait_count"] == early_ref["wait_count"]


def test_last_checkpoint_is_written_every_epoch_without_a_new_best(tmp_path: Path) -> None:
    """Lightning 2.6's save_last follows only new bests; a constant metric has one best (epoch 0)."""
    from llada_rec.callbacks import ResumableCheckpoint
    from llada_rec.models.baselines import SASRec

    write_lcrec(tmp_path / "data", num_users=10, num_items=10)
    callback = ResumableCheckpoint(monitor="val/ndcg@10", mode="max", filename="best-epoch{epoch}", auto_insert_metric_name=False)
    trainer = L.Trainer(max_epochs=3, default_root_dir=tmp_path, callbacks=[callback], logger=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    model = SASRec(network=TransformerConfig(d_model=8, num_layers=1, num_attention_heads=2, dropout=0.0), lr=1e-12)  # the ranking, so the metric, never changes
    trainer.fit(model, datamodule=RecDataModule(dataset=DatasetConfig(format="lcrec", path=str(tmp_path / "data"), kcore=0), loaders=LoadersConfig(batch_size=4)))
    directory = Path(callback.dirpath)
    assert [p.name for p in directory.glob("best-*.ckpt")] == ["best-epoch0.ckpt"]  # no new best after epoch 0
    assert torch.load(directory / "last.ckpt", weights_only=True)["epoch"] == 2
    assert not list(directory.glob("*.tmp"))


def test_every_training_config_saves_a_resumable_last_checkpoint() -> None:
    import yaml

    for path in sorted(REPO.glob("experiments/**/*.yaml")):
        callbacks = ((yaml.safe_load(path.read_text()) or {}).get("trainer") or {}).get("callbacks") or []
        for callback in callbacks if isinstance(callbacks, list) else [callbacks]:
            if "Checkpoint" in str(callback.get("class_path", "")):
                assert callback["class_path"] == "llada_rec.callbacks.ResumableCheckpoint", path
                assert callback.get("init_args", {}).get("save_last", True) is True, path
