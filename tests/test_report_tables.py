"""`llada_rec.report` tables: Table 3 / Table 4 layout, the demo's metrics table."""

from __future__ import annotations

from pathlib import Path

import yaml

from llada_rec.report.tables import metrics_table, table3, table4
from llada_rec.report.variants import load_runs
from report_fixtures import CLASS, runs_root, table_row, write_run  # noqa: F401  (runs_root: a fixture)


def test_table3_is_metrics_by_models_per_dataset_with_best_bold(runs_root: Path) -> None:
    text = table3(load_runs([runs_root]))
    scientific = text.split("**Instrument**")[0]
    header = [c.strip() for c in scientific.splitlines()[2].strip("|").split("|")]
    assert header == ["metric", "SASRec (CE)", "TIGER", "LLaDA-Rec"]
    assert table_row(scientific, "R@5") == ["0.0240", "0.0282", "**0.0310**"]
    assert table_row(scientific, "N@10") == ["0.0197", "0.0236", "**0.0256**"]
    assert "Causal" not in scientific and "α=" not in scientific  # variants belong to Table 4


def test_table4_rows_are_variants_and_columns_datasets(runs_root: Path) -> None:
    text = table4(load_runs([runs_root]))
    header = [c.strip() for c in text.splitlines()[2].strip("|").split("|")]
    assert header == ["variant", "Scientific R@5", "Scientific N@5", "Instrument R@5", "Instrument N@5"]
    assert table_row(text, "RQ-VAE") == ["0.0293", "0.0191", "-", "-"]
    assert table_row(text, "w/o beam search") == ["0.0077", "0.0077", "-", "-"]
    assert table_row(text, "Causal") == ["0.0217", "0.0142", "0.0244", "0.0161"]
    assert table_row(text, "α=5") == ["0.0294", "0.0193", "-", "-"]
    assert "Reference runs: Scientific α=3.5." in text  # what the reference row's varied values are
    lines = text.splitlines()
    # paper order: reference, tokenizer, training, inference, then Figures 3-6, then the rest
    order = [next(i for i, line in enumerate(lines) if line.startswith(f"| {key}")) for key in ("LLaDA-Rec", "RQ-VAE", "w/o L_His", "w/o beam", "Causal", "T=2", "α=1 |", "Causal, α=1")]
    assert order == sorted(order)



def test_metrics_table_keeps_the_demo_layout() -> None:
    text = metrics_table({"most-popular": {"test/recall@10": 0.1}, "LLaDA-Rec": {"test/recall@10": 0.25, "test/ndcg@5": 0.125}})
    assert text.splitlines()[0] == "| model | R@1 | R@5 | R@10 | N@5 | N@10 |"
    assert table_row(text, "LLaDA-Rec") == ["-", "-", "0.2500", "0.1250", "-"]


def test_table3_names_both_sasrec_losses_and_orders_the_baselines_as_the_paper(tmp_path: Path) -> None:
    classes = {
        "GRU4Rec": "llada_rec.models.baselines.GRU4Rec", "BERT4Rec": "llada_rec.models.baselines.BERT4Rec",
        "RPG": "llada_rec.models.baselines.RPG", **CLASS,
    }
    runs = [("LLaDA-Rec", {}, {}), ("RPG", {}, {}), ("RPG", {}, {"tokenizer_overrides": ["experiments/tokenizer/opq.yaml"]}),
            ("TIGER", {}, {"tokenizer_overrides": ["experiments/tokenizer/rqvae.yaml"]}), ("BERT4Rec", {}, {}),
            ("SASRec", {"loss": "bce"}, {}), ("SASRec", {}, {}), ("GRU4Rec", {}, {})]
    for i, (model, init_args, data) in enumerate(runs):
        directory = write_run(tmp_path / f"version_{i}", "Scientific", "SASRec", (0.01 * (i + 1),) * 5, init_args, data)
        config = yaml.safe_load((directory / "config.yaml").read_text(encoding="utf-8"))
        config["model"]["class_path"] = classes[model]
        (directory / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    loaded = load_runs([tmp_path])
    header = [c.strip() for c in table3(loaded).splitlines()[2].strip("|").split("|")]
    assert header == ["metric", "GRU4Rec", "SASRec (BCE)", "SASRec (CE)", "BERT4Rec", "TIGER", "RPG", "LLaDA-Rec"]
    opq = next(r for r in loaded if r.path.name == "version_2")
    assert (opq.model, opq.label, opq.family) == ("RPG", "OPQ", "tokenizer")  # RPG's own tokenizer, a variant here
