"""`llada_rec.report` run discovery and description: loading, variant labels and families, bad input."""

from __future__ import annotations
from llada_rec.report.cli import write_report
from llada_rec.report.runs import ReportError
from llada_rec.report.variants import load_runs

import json
from pathlib import Path

import pytest

from report_fixtures import PAPER, by_name, runs_root, write_run  # noqa: F401  (runs_root: a fixture)


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
