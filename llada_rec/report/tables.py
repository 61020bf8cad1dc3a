"""Markdown tables: the paper's Table 3 (models) and Table 4 (variants), every run, and the
demo's metrics table."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

from llada_rec.report.cells import Cell, cells
from llada_rec.report.runs import Run
from llada_rec.report.variants import FAMILIES, MODEL_NAMES

TABLE_COLUMNS = ("recall@1", "recall@5", "recall@10", "ndcg@5", "ndcg@10")
FIGURE_METRICS = ("recall@5", "ndcg@5")  # the paper's Table 4 and Figures 3-6


def short_metric(metric: str) -> str:
    return metric.replace("recall", "R").replace("ndcg", "N")


def metrics_table(results: Mapping[str, Mapping[str, float]], stage: str = "test", columns: Sequence[str] = TABLE_COLUMNS) -> str:
    """A markdown table, one row per run: ``results[name][f"{stage}/{column}"]``."""
    header = "| model | " + " | ".join(short_metric(c) for c in columns) + " |"
    lines = [header, "|---|" + "---:|" * len(columns)]
    for name, metrics in results.items():
        cells = [f"{metrics[f'{stage}/{c}']:.4f}" if f"{stage}/{c}" in metrics else "-" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def print_metrics_table(results: Mapping[str, Mapping[str, float]], stage: str = "test") -> None:
    print(metrics_table(results, stage))


def _cells(values: Sequence[Optional[float]], bold_best: bool = True, spreads: Optional[Sequence[Optional[float]]] = None) -> list[str]:
    """Formatted values, ``mean ± spread`` where a spread is given, the best bold."""
    present = [v for v in values if v is not None]
    best = max(present) if present else None
    texts = []
    for value, spread in zip(values, spreads or [None] * len(values)):
        if value is None:
            texts.append("-")
            continue
        text = f"{value:.4f}" + (f" ± {spread:.4f}" if spread is not None else "")
        texts.append(f"**{text}**" if bold_best and best is not None and len(present) > 1 and value == best else text)
    return texts


def _metric(run: Run | Cell, metric: str) -> Optional[float]:
    """A run's test metric, or a cell's mean over seeds."""
    return run.mean(metric) if isinstance(run, Cell) else run.metrics.get(f"test/{metric}")


def _spread(run: Run | Cell, metric: str) -> Optional[float]:
    return run.spread(metric) if isinstance(run, Cell) else None


def dataset_order(runs: Sequence[Run]) -> list[str]:
    paper = [n for n in ("Scientific", "Instrument", "Game") if any(r.dataset == n for r in runs)]
    return paper + sorted({r.dataset for r in runs} - set(paper))


def _model_index(model_class: str) -> int:
    """Paper order of models: baselines first, LLaDA-Rec last, unknown models after."""
    order = list(MODEL_NAMES)
    return order.index(model_class) if model_class in order else len(order)


def _model_rank(run: Run) -> tuple[int, bool, str]:
    """Models in paper order; a model's reference run before its variants."""
    return (_model_index(run.model_class), bool(run.variant), run.label)


def table3(runs: Sequence[Run], columns: Sequence[str] = TABLE_COLUMNS) -> str:
    """Paper Table 3: per dataset, metrics (rows) x models (columns); the best value bold."""
    blocks = []
    for dataset in dataset_order(runs):
        models = sorted((c for c in cells(runs) if c.dataset == dataset and c.family is None), key=_model_rank)
        if not models:
            continue
        lines = [f"**{dataset}**", "", "| metric | " + " | ".join(r.label for r in models) + " |", "|---|" + "---:|" * len(models)]
        for metric in columns:
            values = _cells([_metric(c, metric) for c in models], spreads=[_spread(c, metric) for c in models])
            lines.append(f"| {short_metric(metric)} | " + " | ".join(values) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) if blocks else "(no reference runs: every run is a variant)"


def table4(runs: Sequence[Run], columns: Sequence[str] = FIGURE_METRICS) -> str:
    """Paper Table 4: per model with variants, variants (rows, by family) x datasets x metrics."""
    blocks = []
    for model_class in sorted({r.model_class for r in runs if r.family is not None}, key=_model_index):
        model_runs = [r for r in runs if r.model_class == model_class]
        model_cells = cells(model_runs)
        seeded = any(c.n > 1 for c in model_cells)  # then a column of seed counts per dataset
        datasets = dataset_order(model_runs)
        width = len(datasets) * len(columns) + seeded
        header = "| variant | " + " | ".join(f"{d} {short_metric(c)}" for d in datasets for c in columns) + (" | seeds" if seeded else "") + " |"
        lines = [header, "|---|" + "---:|" * width]
        sections = [(None, model_runs[0].model)] + [(f.name, f.title) for f in FAMILIES] + [("other", "Other")]
        for family, title in sections:
            members = [c for c in model_cells if c.family == family]
            if not members:
                continue
            if family is not None:
                lines.append(f"| *{title}* |" + " |" * width)
            for label in dict.fromkeys(c.label for c in members):  # first-seen order
                by_dataset = {c.dataset: c for c in members if c.label == label}
                pairs = [(by_dataset[d], c) if d in by_dataset else None for d in datasets for c in columns]
                values = [_metric(*p) if p else None for p in pairs]
                spreads = [_spread(*p) if p else None for p in pairs]
                seeds = [" / ".join(str(by_dataset[d].n) if d in by_dataset else "-" for d in datasets)] if seeded else []
                lines.append(f"| {label} | " + " | ".join(_cells(values, bold_best=False, spreads=spreads) + seeds) + " |")
        contexts = dict.fromkeys(f"{r.dataset} {', '.join(r.varied.values())}" for r in model_runs if r.family is None and r.varied)
        note = f"\n\nReference runs: {'; '.join(contexts)}." if contexts else ""
        if seeded:
            note += "\n\nmean ± seed-to-seed sample standard deviation over the seeds counted in the last column."
        blocks.append(f"**{model_runs[0].model}**\n\n" + "\n".join(lines) + note)
    return "\n\n".join(blocks) if blocks else "(no variants: nothing differs between the runs of a model)"


def runs_table(runs: Sequence[Run], columns: Sequence[str] = TABLE_COLUMNS, root: Optional[Path] = None) -> str:
    """Every run: dataset, model, variant, metrics and where it is."""
    header = "| dataset | model | variant | " + " | ".join(short_metric(c) for c in columns) + " | valid | run |"
    lines = [header, "|---|---|---|" + "---:|" * (len(columns) + 1) + "---|"]
    datasets = dataset_order(runs)
    for run in sorted(runs, key=lambda r: (datasets.index(r.dataset), _model_rank(r), str(r.path))):
        valid = run.metrics.get("test/valid_unique")
        where = _relative(run.path, root)
        cells = _cells([_metric(run, c) for c in columns], bold_best=False) + [f"{valid:.3f}" if valid is not None else "-"]
        variant = run.label if run.variant else "(reference" + (f": {', '.join(run.varied.values())})" if run.varied else ")")
        lines.append(f"| {run.dataset} | {run.model} | {variant} | " + " | ".join(cells) + f" | `{where}` |")
    return "\n".join(lines)


def _relative(path: Path, root: Optional[Path]) -> str:
    for base in (root, Path.cwd()):
        if base is not None:
            try:
                return str(path.resolve().relative_to(base.resolve()))
            except ValueError:
                pass
    return str(path)

