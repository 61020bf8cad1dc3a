"""`llada_rec.report` figures and the command: report files and non-trivial PNGs, numeric families."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llada_rec.report import plots
from llada_rec.report.cli import main
from llada_rec.report.plots import overview_plot
from llada_rec.report.variants import FAMILIES, family_members, load_runs
from llada_rec.report.plots import FIGURE_DPI, bar_figure, overview_panels
from llada_rec.report.variants import _member_label, _numeric_value
from report_fixtures import runs_root  # noqa: F401  (a fixture)


@pytest.mark.slow
def test_report_writes_markdown_json_and_nontrivial_pngs(runs_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    main([str(runs_root / "scientific"), str(runs_root / "instrument" / "causal"), str(runs_root / "instrument" / "version_0"), "--out", str(out)])
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
    family = next(f for f in FAMILIES if f.name == "alpha")
    members = family_members(runs, family)
    members.sort(key=lambda r: _numeric_value(r, family))
    assert [_member_label(r, family) for r in members] == ["α=1", "α=3.5", "α=5"]



def drawn_bars(ax) -> dict[str, list[tuple[float, float]]]:
    """{series: [(x centre, height)]} of the bar series an Axes shows."""
    return {c.get_label(): [(b.get_x() + b.get_width() / 2, b.get_height()) for b in c.patches]
            for c in ax.containers if hasattr(c, "patches")}


def test_bar_figure_draws_every_value_as_a_labelled_bar() -> None:
    panels = {
        "Scientific": (["LLaDA-Rec", "TIGER", "SASRec"], {"R@10": [0.12, 0.1, None], "N@10": [0.07, 0.05, 0.06]}),
        "Games": (["LLaDA-Rec"], {"R@10": [0.2], "N@10": [float("nan")]}),
    }
    fig = bar_figure(panels, "All runs", stacked=True)
    assert fig._suptitle.get_text() == "All runs" and len(fig.axes) == 2
    for ax, (name, (groups, series)) in zip(fig.axes, panels.items()):
        assert ax.get_title() == name
        assert [t.get_text() for t in ax.get_xticklabels()] == groups
        bars = drawn_bars(ax)
        for label, values in series.items():  # a bar per finite value, at its group, of its height
            shown = [(round(x), h) for x, h in bars.get(label, [])]
            assert shown == [(i, pytest.approx(v)) for i, v in enumerate(values) if v is not None and v == v], (name, label)
        value_labels = sorted(t.get_text() for t in ax.texts)
        assert value_labels == sorted(f"{v:.4f}" for vs in series.values() for v in vs if v is not None and v == v)
    plots._pyplot().close(fig)


def test_overview_png_shows_every_run(runs_root: Path, tmp_path: Path) -> None:
    """overview.png is the overview figure: each run a labelled group whose bars are its test metrics."""
    runs = load_runs([runs_root / "scientific", runs_root / "instrument"])
    overview_plot(runs, tmp_path)
    panels, errors = overview_panels(runs)
    assert sorted(panels) == ["Instrument", "Scientific"]
    labels, series = panels["Scientific"]
    for run in (r for r in runs if r.dataset == "Scientific"):  # each run a group, its metrics the bars
        at = labels.index(run.label)
        assert (series["R@10"][at], series["N@10"][at]) == (run.metrics["test/recall@10"], run.metrics["test/ndcg@10"])
    assert sum(len(panel[0]) for panel in panels.values()) == len(runs)
    fig = bar_figure(panels, "All runs (test)", stacked=True, errors=errors)
    assert sum(len(v) for ax in fig.axes for v in drawn_bars(ax).values()) == 2 * sum(len(p[0]) for p in panels.values())
    import matplotlib.image

    pixels = matplotlib.image.imread(tmp_path / "overview.png")
    assert pixels.shape[:2] == (round(fig.get_figheight() * FIGURE_DPI), round(fig.get_figwidth() * FIGURE_DPI))
    plots._pyplot().close(fig)
