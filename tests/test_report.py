"""`llada-rec report`: run discovery, variant labels, Table 3 / Table 4 layout, PNG figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from llada_rec import report
from llada_rec.report import ReportError, load_runs, table3, table4, write_report

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


def by_name(runs: list[report.Run]) -> dict[str, report.Run]:
    return {f"{r.path.parent.name}/{r.path.name}": r for r in runs}


def table_row(table: str, first_cell: str) -> list[str]:
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == first_cell:
            return cells[1:]
    raise AssertionError(f"no row {first_cell!r} in\n{table}")


def test_variants_are_named_from_config_differences(runs_root: Path) -> None:
    runs = by_name(load_runs([runs_root]))
    assert len(runs) == 14
    expected = {
        "scientific/version_0": ("LLaDA-Rec", None),
        "scientific/version_1": ("SASRec (CE)", None),
        "scientific/version_2": ("TIGER", None),  # RQ-VAE is TIGER's own tokenizer
        "scientific/rqvae": ("RQ-VAE", "tokenizer"),
        "scientific/no_history_mask": ("w/o L_His-Mask", "training"),
        "scientific/greedy": ("w/o beam search", "inference"),
        "scientific/causal": ("Causal", "attention"),
        "scientific/steps_2": ("T=2", "steps"),
        "scientific/version_3": ("α=1", "alpha"),
        "scientific/version_4": ("α=5", "alpha"),
        "scientific/version_5": ("Causal, α=1", "other"),
        "instrument/causal": ("Causal", "attention"),
    }
    for name, (label, family) in expected.items():
        assert (runs[name].label, runs[name].family) == (label, family), name
    assert {runs[n].dataset for n in runs} == {"Scientific", "Instrument"}
    # two identical configs: both reference runs, told apart by their run directory
    assert {runs["instrument/version_0"].label, runs["instrument/version_1"].label} == {"LLaDA-Rec [version_0]", "LLaDA-Rec [version_1]"}


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


@pytest.mark.slow
def test_report_writes_markdown_json_and_nontrivial_pngs(runs_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    report.main([str(runs_root / "scientific"), str(runs_root / "instrument" / "causal"), str(runs_root / "instrument" / "version_0"), "--out", str(out)])
    markdown = (out / "report.md").read_text()
    assert "## Table 3" in markdown and "## Table 4" in markdown and "![attention](attention.png)" in markdown
    assert "scientific/greedy" in markdown  # the all-runs table says where each run is
    rows = json.loads((out / "report.json").read_text())
    assert len(rows) == 13 and {r["family"] for r in rows} >= {"alpha", "attention", "steps", None}
    import matplotlib.image

    for name in ("overview", "tokenizer", "training", "inference", "attention", "steps", "alpha"):
        png = out / f"{name}.png"
        assert png.stat().st_size > 10_000, name
        pixels = matplotlib.image.imread(png)[..., :3]
        colours = np.unique((pixels.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
        assert pixels.shape[0] >= 300 and len(colours) > 20, name  # drawn bars, text, not blank
    assert not (out / "order.png").exists()  # no generation-order variant among the runs
    assert not list(out.glob(".*.tmp"))


def test_numeric_family_plots_x_by_value(runs_root: Path) -> None:
    runs = load_runs([runs_root / "scientific"])
    family = next(f for f in report.FAMILIES if f.name == "alpha")
    members = report.family_members(runs, family)
    members.sort(key=lambda r: report._numeric_value(r, family))
    assert [report._member_label(r, family) for r in members] == ["α=1", "α=3.5", "α=5"]


def test_bad_input_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no metrics.json"):
        load_runs([tmp_path])
    with pytest.raises(ReportError, match="no such file"):
        load_runs([tmp_path / "missing"])
    run = write_run(tmp_path / "bad", "Scientific", "SASRec", PAPER[("Scientific", "SASRec")])
    (run / "metrics.json").write_text('{"test/recall@10": "high"}')
    with pytest.raises(ReportError, match=r"metrics.json: metric 'test/recall@10'"):
        load_runs([run])
    (run / "metrics.json").write_text("{not json")
    with pytest.raises(ReportError, match=r"bad/metrics.json: cannot read"):
        load_runs([run])


def test_run_without_config_still_reported(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "mystery"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"test/recall@10": 0.5, "test/ndcg@10": 0.25}))
    [loaded] = load_runs([tmp_path / "runs"])
    assert (loaded.dataset, loaded.model, loaded.family) == ("runs", "unknown", None)
    written = write_report([loaded], tmp_path / "out")
    assert "0.5000" in written["report.md"].read_text()


def test_metrics_table_keeps_the_demo_layout() -> None:
    text = report.metrics_table({"most-popular": {"test/recall@10": 0.1}, "LLaDA-Rec": {"test/recall@10": 0.25, "test/ndcg@5": 0.125}})
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
