"""PNG bar charts in the style of the paper's Figures 3-6: bars per variant, a panel per
dataset, error bars = the seed spread."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from llada_rec.report.cells import Cell, cells
from llada_rec.report.runs import Run
from llada_rec.report.tables import FIGURE_METRICS, _metric, _model_rank, dataset_order, short_metric
from llada_rec.report.variants import Family, _member_label, _numeric_value, family_members
from llada_rec.utils import atomic_path

FIGURE_DPI = 150
MIN_FIGURE_INCHES = 7.0  # >= 1050 px wide at FIGURE_DPI


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


Panels = Mapping[str, tuple[list[str], dict[str, list[Optional[float]]]]]
Errors = Mapping[str, Mapping[str, Sequence[Optional[float]]]]


def bar_panels(panels: Panels, title: str, path: Path, xlabel: str = "", stacked: bool = False, errors: Optional[Errors] = None) -> Path:
    """:func:`bar_figure` written to ``path`` as a PNG (atomically)."""
    fig = bar_figure(panels, title, xlabel, stacked, errors)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=FIGURE_DPI, format="png")
    _pyplot().close(fig)
    return path


def bar_figure(panels: Panels, title: str, xlabel: str = "", stacked: bool = False, errors: Optional[Errors] = None) -> Any:
    """One panel per key of ``panels``: groups on x (labels), one bar per series in each group,
    each bar labelled with its value; returns the matplotlib Figure.

    ``panels[name] = (group_labels, {series: values per group})``; missing values are skipped.
    ``errors[name][series]``: error bars (the seed spread) in the same layout, None for none.
    Panels sit side by side (the paper's figures), or one above the other when ``stacked``.
    """
    plt = _pyplot()
    count = len(panels)
    widest = max(len(groups) * max(1, len(series)) for groups, series in panels.values())  # bars in a panel
    upright = widest <= 8  # few bars: horizontal value labels, else rotated ones
    panel_width = max(4.0, (0.75 if upright else 0.4) * widest + 2.0)
    total_width = max(MIN_FIGURE_INCHES, panel_width if stacked else panel_width * count)
    if stacked:
        fig, axes = plt.subplots(count, 1, figsize=(total_width, 4.2 * count), squeeze=False)
        axes = axes[:, 0]
    else:
        fig, axes = plt.subplots(1, count, figsize=(total_width, 4.6), squeeze=False)
        axes = axes[0]
    for ax, (name, (groups, series)) in zip(axes, panels.items()):
        width = 0.8 / max(1, len(series))
        for j, (label, values) in enumerate(series.items()):
            xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(groups))]
            spreads = (errors or {}).get(name, {}).get(label) or [None] * len(values)
            points = [(x, v, e) for x, v, e in zip(xs, values, spreads) if v is not None and math.isfinite(v)]
            if points:
                yerr = [p[2] if p[2] is not None else math.nan for p in points] if any(p[2] for p in points) else None
                bars = ax.bar([p[0] for p in points], [p[1] for p in points], width=width, label=label, yerr=yerr, capsize=2)
                ax.bar_label(bars, fmt="%.4f", fontsize=9 if upright else 8, rotation=0 if upright else 90, padding=2)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(groups, rotation=20 if max(map(len, groups)) > 8 else 0, ha="right" if max(map(len, groups)) > 8 else "center")
        ax.tick_params(labelsize=10)
        ax.set_title(name, fontsize=12)
        ax.set_xlabel(xlabel, fontsize=10)
        ax.margins(y=0.25)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return fig


def _bars(group: Sequence[Cell], metric: str) -> dict[str, list[Any]]:
    return {"mean": [_metric(c, metric) for c in group], "spread": [c.spread(metric) for c in group], "n": [c.n for c in group]}


def family_figure(runs: Sequence[Run], family: Family, metrics: Sequence[str] = FIGURE_METRICS) -> dict[str, Any]:
    """What one ablation family's figure shows, a panel per dataset (and model, when several
    vary): ``{"title", "panels": {name: {"x": labels, "series": {name: {"mean", "spread", "n"}}}}}``,
    one entry per x label; means and spreads over seeds."""
    members = family_members(cells(runs), family)
    models = {c.model_class for c in members}
    panels: dict[str, dict[str, Any]] = {}
    for dataset in dataset_order(members):
        for model_class in sorted(models):
            group = [c for c in members if c.dataset == dataset and c.model_class == model_class]
            if not group:
                continue
            name = dataset if len(models) == 1 else f"{dataset} ({group[0].model})"
            if family.numeric:  # x = the varied value, a bar per metric (Figures 5-6)
                group.sort(key=lambda c: _numeric_value(c, family))
                panels[name] = {"x": [_member_label(c, family) for c in group], "series": {short_metric(m): _bars(group, m) for m in metrics}}
            else:  # x = the metric, a bar per variant (Figures 3-4)
                series = {
                    _member_label(c, family): {"mean": [_metric(c, m) for m in metrics], "spread": [c.spread(m) for m in metrics], "n": [c.n] * len(metrics)}
                    for c in group
                }
                panels[name] = {"x": [short_metric(m) for m in metrics], "series": series}
    return {"title": family.title, "panels": panels}


def family_plot(runs: Sequence[Run], family: Family, out: Path, metrics: Sequence[str] = FIGURE_METRICS) -> Optional[Path]:
    """Bars for one ablation family (:func:`family_figure`), error bars = the seed spread."""
    figure = family_figure(runs, family, metrics)
    if not figure["panels"]:
        return None
    panels = {name: (p["x"], {s: v["mean"] for s, v in p["series"].items()}) for name, p in figure["panels"].items()}
    errors = {name: {s: v["spread"] for s, v in p["series"].items()} for name, p in figure["panels"].items()}
    return bar_panels(panels, family.title, out / f"{family.name}.png", errors=errors)


OVERVIEW_METRICS = ("recall@10", "ndcg@10")


def overview_plot(runs: Sequence[Run], out: Path, metrics: Sequence[str] = OVERVIEW_METRICS) -> Path:
    """Every run, a panel per dataset: the quick look at a set of runs (``overview.png``)."""
    panels, errors = overview_panels(runs, metrics)
    return bar_panels(panels, "All runs (test)", out / "overview.png", stacked=True, errors=errors)


def overview_panels(runs: Sequence[Run], metrics: Sequence[str] = OVERVIEW_METRICS) -> tuple[Panels, Errors]:
    """The overview's bars: a panel per dataset, a group per run (labelled), a series per metric."""
    panels, errors = {}, {}
    for dataset in dataset_order(runs):
        group = sorted((c for c in cells(runs) if c.dataset == dataset), key=_model_rank)
        labels = [r.label if r.model_class == "LLaDARec" or not r.variant else f"{r.model}: {r.label}" for r in group]
        panels[dataset] = (labels, {short_metric(m): [_metric(r, m) for r in group] for m in metrics})
        errors[dataset] = {short_metric(m): [r.spread(m) for r in group] for m in metrics}
    return panels, errors


