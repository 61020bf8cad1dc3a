"""`llada_rec.report` figures and the command: report files and non-trivial PNGs, numeric families."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llada_rec import report
from llada_rec.report import load_runs
from llada_rec.report.variants import _member_label, _numeric_value
from report_fixtures import runs_root  # noqa: F401  (a fixture)


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
    members.sort(key=lambda r: _numeric_value(r, family))
    assert [_member_label(r, family) for r in members] == ["α=1", "α=3.5", "α=5"]

