"""Finished runs on disk, as LightningCLI and the metrics callback leave them, for the
``llada_rec.report`` tests (a helper module, not a test module)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from llada_rec.report.runs import Run


# paper Table 3 / Table 4 numbers (R@1, R@5, R@10, N@5, N@10) make the expected cells obvious
PAPER = {
    ("Scientific", "LLaDA-Rec"): (0.0098, 0.0310, 0.0474, 0.0203, 0.0256),
    ("Scientific", "SASRec"): (0.0063, 0.0240, 0.0379, 0.0152, 0.0197),
    ("Scientific", "TIGER"): (0.0084, 0.0282, 0.0446, 0.0183, 0.0236),
    ("Instrument", "LLaDA-Rec"): (0.0128, 0.0406, 0.0623, 0.0268, 0.0337),
}
CATEGORY = {"Scientific": "Industrial_and_Scientific", "Instrument": "Musical_Instruments"}
CLASS = {"LLaDA-Rec": "llada_rec.models.LLaDARec", "SASRec": "llada_rec.models.baselines.SASRec", "TIGER": "llada_rec.models.baselines.TIGER"}
LLADA_DEFAULTS = {"attention": "bidirectional", "alpha": 3.5, "history_mask": "sequence_per_item", "item_mask": "ratio", "beam_size": 50, "num_steps": 4, "order": "adaptive", "lr": 0.003}


def write_run(
    directory: Path, dataset: str, model: str, values: tuple[float, ...], init_args: dict | None = None, data: dict | None = None
) -> Path:
    """A finished run as LightningCLI + SequentialRecommender leave it: config.yaml + metrics.json."""
    directory.mkdir(parents=True)
    args = dict(LLADA_DEFAULTS) if model == "LLaDA-Rec" else {"lr": 0.001}
    args.update(init_args or {})
    data_section = {"format": "amazon2023-benchmark", "category": CATEGORY[dataset], "tokenizer_config": f"experiments/tokenizer/{dataset.lower()}.yaml", "tokenizer_overrides": []}
    data_section.update(data or {})
    config = {
        "seed_everything": 0,
        "trainer": {"max_epochs": 150, "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "runs", "name": dataset.lower(), "version": directory.name}}},
        "model": {"class_path": CLASS[model], "init_args": args},
        "data": data_section,
        "ckpt_path": None,
    }
    (directory / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    r1, r5, r10, n5, n10 = values
    metrics = {"test/recall@1": r1, "test/ndcg@1": r1, "test/recall@5": r5, "test/recall@10": r10, "test/ndcg@5": n5, "test/ndcg@10": n10, "test/valid_unique": 1.0}
    (directory / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return directory


def scaled(values: tuple[float, ...], factor: float) -> tuple[float, ...]:
    return tuple(round(v * factor, 4) for v in values)


@pytest.fixture
def runs_root(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    sci, ins = PAPER[("Scientific", "LLaDA-Rec")], PAPER[("Instrument", "LLaDA-Rec")]
    write_run(root / "scientific" / "version_0", "Scientific", "LLaDA-Rec", sci)
    write_run(root / "scientific" / "version_1", "Scientific", "SASRec", PAPER[("Scientific", "SASRec")])
    write_run(root / "scientific" / "version_2", "Scientific", "TIGER", PAPER[("Scientific", "TIGER")], data={"tokenizer_overrides": ["experiments/tokenizer/rqvae.yaml"]})
    write_run(root / "scientific" / "rqvae", "Scientific", "LLaDA-Rec", (0.009, 0.0293, 0.045, 0.0191, 0.024), data={"tokenizer_overrides": ["experiments/tokenizer/rqvae.yaml"]})
    write_run(root / "scientific" / "no_history_mask", "Scientific", "LLaDA-Rec", (0.008, 0.0255, 0.04, 0.0169, 0.021), {"history_mask": "none"})
    write_run(root / "scientific" / "greedy", "Scientific", "LLaDA-Rec", (0.0077,) * 5, {"beam_size": 1})
    write_run(root / "scientific" / "causal", "Scientific", "LLaDA-Rec", scaled(sci, 0.7), {"attention": "causal"})
    write_run(root / "scientific" / "steps_2", "Scientific", "LLaDA-Rec", scaled(sci, 0.9), {"num_steps": 2})
    write_run(root / "scientific" / "version_3", "Scientific", "LLaDA-Rec", scaled(sci, 0.8), {"alpha": 1.0})
    write_run(root / "scientific" / "version_4", "Scientific", "LLaDA-Rec", scaled(sci, 0.95), {"alpha": 5.0})
    write_run(root / "scientific" / "version_5", "Scientific", "LLaDA-Rec", scaled(sci, 0.5), {"alpha": 1.0, "attention": "causal"})
    write_run(root / "instrument" / "version_0", "Instrument", "LLaDA-Rec", ins, {"alpha": 4.0})
    write_run(root / "instrument" / "causal", "Instrument", "LLaDA-Rec", scaled(ins, 0.6), {"alpha": 4.0, "attention": "causal"})
    write_run(root / "instrument" / "version_1", "Instrument", "LLaDA-Rec", scaled(ins, 0.9), {"alpha": 4.0})  # a re-run
    return root


def by_name(runs: list[Run]) -> dict[str, Run]:
    return {f"{r.path.parent.name}/{r.path.name}": r for r in runs}


def table_row(table: str, first_cell: str) -> list[str]:
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == first_cell:
            return cells[1:]
    raise AssertionError(f"no row {first_cell!r} in\n{table}")


