"""benchmarks/compare.py resumes an interrupted study and stops early by validation NDCG@1."""

from __future__ import annotations

import json
import random
from pathlib import Path

import lightning as L
import pytest

from lcrec_files import write_lcrec_files
from llada_rec.utils import UserError


def tiny_study(tmp_path: Path, *extra: str) -> list[str]:
    rng = random.Random(0)
    sequences = {str(u): rng.sample(range(15), rng.randint(5, 9)) for u in range(24)}
    write_lcrec_files(tmp_path / "data", sequences, {str(i): f"item {i}" for i in range(15)}, name="Tiny")
    return ["--format", "lcrec", "--path", str(tmp_path / "data"), "--kcore", "0", "--batch-size", "8", "--d-model", "16",
            "--layers", "1", "--heads", "1", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out"), *extra]


class Interrupt(L.Callback):
    """Stands for a kill: raises when epoch ``epoch`` starts (epochs before it are saved in last.ckpt)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("killed")


@pytest.mark.slow
def test_rerun_reads_finished_models_back_and_resumes_the_interrupted_one(tmp_path, compare, monkeypatch):
    argv = tiny_study(tmp_path, "--models", "sasrec", "gru4rec", "--max-epochs", "4")
    make_trainer = compare.make_trainer
    interrupt = {"gru4rec": Interrupt(2)}

    def trainer_with_interrupt(args, model, logger, overrides):
        trainer = make_trainer(args, model, logger, overrides)
        if logger.name in interrupt:
            trainer.callbacks.append(interrupt.pop(logger.name))
        return trainer

    monkeypatch.setattr(compare, "make_trainer", trainer_with_interrupt)
    with pytest.raises(RuntimeError, match="killed"):
        compare.main(argv)
    out = tmp_path / "out"
    assert (out / "sasrec" / "result.json").exists() and not (out / "gru4rec" / "result.json").exists()
    assert (out / "gru4rec" / "run" / "checkpoints" / "last.ckpt").exists()
    sasrec_result = (out / "sasrec" / "result.json").read_text()

    fitted = []
    fit_and_test = compare.fit_and_test
    monkeypatch.setattr(compare, "fit_and_test", lambda name, *a, **k: fitted.append(name) or fit_and_test(name, *a, **k))
    rows = compare.main(argv)
    assert fitted == ["gru4rec"]  # SASRec was not retrained
    assert [r["model"] for r in rows] == ["SASRec (CE)", "GRU4Rec"]
    assert (out / "sasrec" / "result.json").read_text() == sasrec_result
    gru = rows[1]
    assert gru["resumed"] and gru["epochs"] == 4  # two epochs before the kill, two after
    assert [p["epoch"] for p in gru["learning_curve"]] == [0, 1, 2, 3]  # the curve kept the first session's points
    table = (out / "results.md").read_text()
    assert "SASRec (CE)" in table and "GRU4Rec" in table
    assert len(json.loads((out / "results.json").read_text())["rows"]) == 2

    with pytest.raises(UserError, match="--max-epochs"):  # other settings in the same --out are refused
        compare.main(tiny_study(tmp_path, "--models", "sasrec", "--max-epochs", "5"))


@pytest.mark.slow
def test_patience_stops_a_model_that_stops_improving_and_tests_the_best(tmp_path, compare):
    """At lr 0 every validation equals the first: with patience 2 the run stops after 3 of 20
    epochs, and the tested checkpoint is epoch 0's."""
    rows = compare.main(tiny_study(tmp_path, "--models", "sasrec", "--max-epochs", "20", "--patience", "2", "--lr", "0"))
    row = rows[0]
    assert row["stopped_early"] and row["epochs"] == 3
    assert row["best_epoch"] == 0 and Path(row["best_checkpoint"]).name == "best-epoch0.ckpt"
    assert [p["epoch"] for p in row["learning_curve"]] == [0, 1, 2]
    assert all("val/ndcg@1" in p for p in row["learning_curve"])
