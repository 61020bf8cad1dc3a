"""Tables (and plots) from finished runs."""

from __future__ import annotations

from typing import Mapping, Sequence

TABLE_COLUMNS = ("recall@1", "recall@5", "recall@10", "ndcg@5", "ndcg@10")


def metrics_table(results: Mapping[str, Mapping[str, float]], stage: str = "test", columns: Sequence[str] = TABLE_COLUMNS) -> str:
    """A markdown table, one row per run: ``results[name][f"{stage}/{column}"]``."""
    header = "| model | " + " | ".join(c.replace("recall", "R").replace("ndcg", "N") for c in columns) + " |"
    lines = [header, "|---|" + "---:|" * len(columns)]
    for name, metrics in results.items():
        cells = [f"{metrics[f'{stage}/{c}']:.4f}" if f"{stage}/{c}" in metrics else "-" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def print_metrics_table(results: Mapping[str, Mapping[str, float]], stage: str = "test") -> None:
    print(metrics_table(results, stage))
