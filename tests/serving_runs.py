"""Tiny trained runs for the serving tests: LC-Rec files, a semantic-ID artifact, and
`llada-rec fit` (then `predict` on chosen histories) for LLaDA-Rec, TIGER, SASRec, MostPopular."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from llada_rec.cli import main
from llada_rec.datamodule.recommendation import RecDataModule
from llada_rec.datamodule.settings import DatasetConfig, ItemsConfig
from llada_rec.data.embeddings import embeddings_hash
from llada_rec.tokenizers.artifact import SemanticIds

from lcrec_files import write_lcrec_files

NETWORK = {"d_model": 16, "num_layers": 1, "num_attention_heads": 2}
MODELS = {
    "LLaDARec": ("llada_rec.models.LLaDARec", {"network": NETWORK, "decoding": {"beam_size": 12, "val_beam_size": 2, "num_steps": 2}}),
    "TIGER": ("llada_rec.models.baselines.TIGER", {"network": NETWORK, "decoding": {"beam_size": 12, "val_beam_size": 2}}),
    "SASRec": ("llada_rec.models.baselines.SASRec", {"network": NETWORK}),
    "MostPopular": ("llada_rec.models.baselines.MostPopular", {}),
}
MAX_HISTORY = 4
#: Histories to predict and serve: short, longer than the window (newest 4 count), repeats.
HISTORIES = [["i1"], ["i3", "i0"], ["i0", "i1", "i2", "i3", "i4", "i5", "i6"], ["i11", "i7", "i11"], ["i5", "i9", "i2", "i8"]]


def write_data(root: Path) -> Path:
    """12 items i0..i11, 40 users; semantic IDs M=4, K=4 (unique); a config for every model."""
    rng = np.random.default_rng(0)
    inter = {f"u{u}": [f"i{j}" for j in rng.choice(12, size=5 + u % 4, replace=False)] for u in range(40)}
    write_lcrec_files(root / "data", inter, {f"i{i}": f"item number {i}" for i in range(12)})
    dm = RecDataModule(dataset=DatasetConfig(format="lcrec", path=str(root / "data"), kcore=0), items=ItemsConfig(cache_dir=str(root / "cache")))
    n = len(dm.item_ids)
    codes = np.stack([np.arange(n) % 4, np.arange(n) // 4, np.arange(n) % 2, np.arange(n) % 3], axis=1)  # unique by the first two
    SemanticIds(codes, 4, dm.item_ids, embeddings_hash(dm.embeddings)).save(root / "ids")
    (root / "histories.jsonl").write_text("".join(json.dumps({"user": f"h{i}", "history": h}) + "\n" for i, h in enumerate(HISTORIES)))
    return root


def config(root: Path, name: str) -> Path:
    class_path, init_args = MODELS[name]
    cfg = {
        "seed_everything": 0,
        "model": {"class_path": class_path, "init_args": init_args},
        "data": {"format": "lcrec", "path": str(root / "data"), "kcore": 0, "max_history": MAX_HISTORY, "semantic_ids": str(root / "ids"),
                 "cache_dir": str(root / "cache"), "batch_size": 8, "eval_batch_size": 3},
        "trainer": {
            "max_epochs": 2, "accelerator": "cpu", "devices": 1, "enable_progress_bar": False, "enable_model_summary": False,
            "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(root / "runs"), "name": name}},
            "callbacks": [{"class_path": "llada_rec.callbacks.ResumableCheckpoint",
                           "init_args": {"monitor": "val/ndcg@10", "mode": "max", "filename": "best-epoch{epoch}", "auto_insert_metric_name": False}}],
        },
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def fit_and_predict(root: Path, name: str) -> Path:
    """`fit`, then `predict --ckpt_path best` on HISTORIES; returns the run directory."""
    cfg = config(root, name)
    main(["fit", "--config", str(cfg)])
    main(["predict", "--config", str(cfg), "--ckpt_path", "best", "--data.loaders.predict_histories", str(root / "histories.jsonl")])
    [run] = (root / "runs" / name).iterdir()
    return run


def predictions(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
