"""CI smoke test: the demo pipeline end to end through the real CLI, at tiny size.

fit tokenizer -> `llada-rec sweep run` (fit + test the recommender, CSV + offline W&B
logging) -> predict -> report, all in-process via ``llada_rec.cli.main`` on a tiny
synthetic data set in tmp_path.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from llada_rec.report.variants import load_runs
from llada_rec.cli import main
from llada_rec.report.plots import FIGURE_DPI, bar_figure, overview_panels

pytestmark = pytest.mark.slow  # see pyproject.toml; `make test-fast` skips these

REPO = Path(__file__).resolve().parents[1]
CATEGORY = "Demo_Electronics"
CODEBOOK_SIZE = 16
METRIC_KEYS = {f"test/{m}@{k}" for m in ("recall", "ndcg") for k in (1, 5, 10)} | {"test/valid_unique"}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from llada_rec.demo.store import write_demo_dataset

    root = tmp_path_factory.mktemp("smoke")
    experiments = REPO / "experiments"
    cwd = os.getcwd()
    os.chdir(root)  # relative outputs (runs/, W&B's files) land in tmp_path
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("WANDB_MODE", "offline")  # W&B logging without an account or network
            env.setenv("WANDB_SILENT", "true")
            write_demo_dataset(root / "data", category=CATEGORY, num_users=120, num_items=60)
            data = ["--data.dataset.path", str(root / "data"), "--data.dataset.generate_demo=false", "--data.items.cache_dir", str(root / "cache")]
            main([
                "fit", "--config", str(experiments / "tokenizer" / "demo.yaml"), *data,
                "--data.items.pca_dim=null", f"--model.init_args.codebook_size={CODEBOOK_SIZE}",
                "--trainer.max_epochs=10", "--trainer.check_val_every_n_epoch=5",
                "--trainer.default_root_dir", str(root / "tokenizer"), "--trainer.enable_progress_bar=false",
            ])  # fmt: skip
            [artifact] = (root / "tokenizer").rglob("semantic_ids")
            recommender = [
                "--config", str(experiments / "demo.yaml"), *data,
                "--data.items.semantic_ids", str(artifact), "--data.items.tokenizer_config=null",
                "--model.init_args.network.d_model=32", "--model.init_args.network.num_layers=1", "--model.init_args.network.num_attention_heads=2",
                "--model.init_args.decoding.beam_size=10", "--model.init_args.decoding.val_beam_size=5",
                "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
                "--trainer.logger.init_args.save_dir=runs", "--trainer.logger.init_args.version=smoke",
            ]  # fmt: skip
            # fit, then test the best checkpoint; CSV + W&B (offline) logging
            main(["sweep", "run", *recommender, "--config", str(experiments / "loggers" / "wandb.yaml")])
            run_dir = root / "runs" / "demo" / "smoke"
            [checkpoint] = run_dir.rglob("best*.ckpt")
            main(["predict", *recommender, "--ckpt_path", str(checkpoint)])
            main(["report", "runs", "--out", "report"])
    finally:
        os.chdir(cwd)
    return {"root": root, "artifact": artifact, "run_dir": run_dir, "checkpoint": checkpoint, "recommender": recommender}  # type: ignore[dict-item]


def test_tokenizer_artifact_has_unique_codes(pipeline: dict) -> None:
    artifact = pipeline["artifact"]
    codes = np.load(artifact / "codes.npy")
    item_ids = json.loads((artifact / "item_ids.json").read_text())
    stats = json.loads((artifact / "stats.json").read_text())
    assert codes.shape == (len(item_ids), 4) and len(item_ids) >= 50
    assert len(np.unique(codes, axis=0)) == len(codes)  # every item its own tuple
    assert codes.min() >= 0 and codes.max() < CODEBOOK_SIZE
    assert stats["collisions_after"] == 0 and stats["codebook_size"] == CODEBOOK_SIZE


def test_metrics_json_and_the_predicted_lists_agree(pipeline: dict) -> None:
    """metrics.json (test) and predictions.jsonl (predict) come from the same checkpoint and
    decoding. predict leaves the user's history out of the list and test ranks it as the paper
    does, so a target can only move up: each metric computed from its definition on the
    predicted lists is at least metrics.json's, and equal when no history item outranks it."""
    metrics = json.loads((pipeline["run_dir"] / "metrics.json").read_text())
    assert set(metrics) == METRIC_KEYS
    rows = [json.loads(line) for line in (pipeline["run_dir"] / "predictions.jsonl").read_text().splitlines()]
    ranks = [row["items"].index(row["target"]) + 1 if row["target"] in row["items"] else None for row in rows]
    for k in (1, 5, 10):
        hits = [r for r in ranks if r is not None and r <= k]
        assert len(hits) / len(rows) >= metrics[f"test/recall@{k}"] - 1e-6, k
        assert sum(1 / math.log2(r + 1) for r in hits) / len(rows) >= metrics[f"test/ndcg@{k}"] - 1e-6, k
    assert metrics["test/recall@1"] <= metrics["test/recall@5"] <= metrics["test/recall@10"]
    assert 0 < metrics["test/recall@10"] and metrics["test/ndcg@10"] <= metrics["test/recall@10"]
    assert metrics["test/valid_unique"] == 1.0
    assert (pipeline["run_dir"] / "config.yaml").is_file()


def test_predictions_one_row_per_test_user_with_valid_items(pipeline: dict) -> None:
    from llada_rec.data.dataset import preprocess
    from llada_rec.data.readers import read_source

    data = preprocess(read_source("amazon2023", pipeline["root"] / "data", CATEGORY, show_progress=False))
    rows = [json.loads(line) for line in (pipeline["run_dir"] / "predictions.jsonl").read_text().splitlines()]
    assert sorted(r["user"] for r in rows) == sorted(data.user_ids)
    known = set(data.item_ids)
    for row in rows:
        assert 1 <= len(row["items"]) <= 10 and len(set(row["items"])) == len(row["items"])
        assert set(row["items"]) <= known and row["target"] in known
        assert row["scores"] == sorted(row["scores"], reverse=True)


def test_wandb_offline_run_logged_metrics(pipeline: dict) -> None:
    [record] = (pipeline["root"] / "runs" / "wandb").glob("offline-run-*/run-*.wandb")
    content = record.read_bytes()
    for key in (b"best/val/ndcg@1", b"test/recall@10", b"val/ndcg@10", b"alpha", b"semantic_ids"):
        assert key in content, key  # metrics, the model's and the DataModule's arguments


def test_report_lists_the_run(pipeline: dict) -> None:
    out = pipeline["root"] / "report"
    markdown = (out / "report.md").read_text()
    assert "`runs/demo/smoke`" in markdown and "| Demo | LLaDA-Rec | (reference) |" in markdown
    metrics = json.loads((pipeline["run_dir"] / "metrics.json").read_text())
    assert f"{metrics['test/recall@10']:.4f}" in markdown
    # overview.png is the overview figure of the runs, whose only group is this run with its metrics as bars
    runs = load_runs([pipeline["root"] / "runs"])
    panels, errors = overview_panels(runs)
    assert panels == {"Demo": (["LLaDA-Rec"], {"R@10": [metrics["test/recall@10"]], "N@10": [metrics["test/ndcg@10"]]})}
    fig = bar_figure(panels, "All runs (test)", stacked=True, errors=errors)
    pixels = matplotlib.image.imread(out / "overview.png")
    assert pixels.shape[:2] == (round(fig.get_figheight() * FIGURE_DPI), round(fig.get_figwidth() * FIGURE_DPI))
    assert sorted(t.get_text() for t in fig.axes[0].texts) == sorted(f"{metrics[k]:.4f}" for k in ("test/recall@10", "test/ndcg@10"))


def test_inference_ablation_on_a_trained_checkpoint(pipeline: dict) -> None:
    """`test --config ablations/greedy.yaml --ckpt_path CKPT` decodes greedily: one item per user."""
    cwd = os.getcwd()
    os.chdir(pipeline["root"])
    try:
        greedy = str(REPO / "experiments" / "ablations" / "greedy.yaml")
        main(["test", *pipeline["recommender"], "--config", greedy, "--ckpt_path", str(pipeline["checkpoint"])])
    finally:
        os.chdir(cwd)
    metrics = json.loads((pipeline["run_dir"].parent / "greedy" / "metrics.json").read_text())
    assert metrics["test/recall@10"] == metrics["test/recall@1"]
    assert metrics["test/valid_unique"] == 1.0  # the one returned item per user is a real item
