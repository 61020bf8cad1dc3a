"""The report as files (``report.md``, ``report.json``, ``figures.json``, PNGs) and the
``llada-rec report`` command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional, Sequence

from llada_rec.report.cells import VERDICT_METRIC
from llada_rec.report.orderings import orderings, orderings_table
from llada_rec.report.plots import family_figure, family_plot, overview_plot
from llada_rec.report.runs import ReportError, Run
from llada_rec.report.tables import FIGURE_METRICS, TABLE_COLUMNS, runs_table, short_metric, table3, table4
from llada_rec.report.variants import FAMILIES, load_runs
from llada_rec.utils import atomic_write_text


def write_report(runs: Sequence[Run], out: str | Path, metrics: Sequence[str] = FIGURE_METRICS, verdict_metric: str = VERDICT_METRIC) -> dict[str, Path]:
    """``report.md``, ``report.json``, ``figures.json`` (every figure's numbers and the
    orderings' verdicts) and the PNGs into ``out``; returns name -> path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {"overview": overview_plot(runs, out)}
    figure_data = {}
    for family in FAMILIES:
        if any(r.family == family.name for r in runs):
            written[family.name] = family_plot(runs, family, out, metrics)
            figure_data[family.name] = family_figure(runs, family, metrics)
    ordering_rows = orderings(runs, verdict_metric)
    figures = "\n\n".join(f"![{name}]({path.name})" for name, path in written.items())
    text = "\n\n".join(
        [
            f"# Results of {len(runs)} run(s)",
            "Test-split metrics (`metrics.json`); variants are named by what their `config.yaml` "
            "changes relative to the paper's model and to the other runs of their dataset.",
            "## Table 3: models", table3(runs),
            f"## Table 4: variants ({', '.join(short_metric(m) for m in metrics)})", table4(runs, metrics),
            f"## The paper's orderings ({short_metric(verdict_metric)})",
            "A difference larger than twice the seed-to-seed spread (the pooled sample standard deviation "
            "over the variants with two or more seeds) is resolved: *reproduced* or *reversed*; "
            "a smaller one is *within noise*.",
            orderings_table(ordering_rows),
            "## All runs", runs_table(runs, root=out.parent),
            "## Figures", figures,
        ]
    )
    atomic_write_text(out / "report.md", text + "\n")
    rows = [
        {
            "dataset": r.dataset, "model": r.model, "label": r.label, "family": r.family,
            "variant": r.variant, "run_dir": str(r.path), "metrics": r.metrics,
        }
        for r in runs
    ]
    atomic_write_text(out / "report.json", json.dumps(rows, indent=2) + "\n")
    figures_json = {"metrics": list(metrics), "figures": figure_data, "orderings": ordering_rows}
    atomic_write_text(out / "figures.json", json.dumps(figures_json, indent=2) + "\n")
    written["report.md"] = out / "report.md"
    written["report.json"] = out / "report.json"
    written["figures.json"] = out / "figures.json"
    return written


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="llada-rec report", description="Tables (paper Tables 3-4) and bar charts (Figures 3-6) from finished runs.")
    parser.add_argument("runs", nargs="+", help="run directories (with metrics.json and config.yaml) or directories to search below")
    parser.add_argument("--out", default="runs/report", help="output directory (default runs/report)")
    parser.add_argument("--metrics", nargs="+", default=list(FIGURE_METRICS), choices=list(TABLE_COLUMNS), help="metrics of Table 4 and the figures (default: recall@5 ndcg@5, as the paper)")
    parser.add_argument("--verdict-metric", default=VERDICT_METRIC, choices=list(TABLE_COLUMNS), help=f"metric of the orderings' verdicts (default {VERDICT_METRIC})")
    opts = parser.parse_args(argv)
    try:
        runs = load_runs(opts.runs)
    except ReportError as err:
        parser.error(str(err))
    written = write_report(runs, opts.out, opts.metrics, opts.verdict_metric)
    print(runs_table(runs))
    print(f"\nwrote {', '.join(str(p) for p in written.values())}")
