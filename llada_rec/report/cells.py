"""Seeds of one variant as one cell, and the seed-to-seed spread that tells a difference
from noise."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from llada_rec.report.runs import Run

VERDICT_METRIC = "ndcg@10"  # the orderings' verdicts (and the ablation runner's extra seeds)


@dataclass
class Cell:
    """The runs of one variant that differ only by seed: what one table cell or bar shows."""

    runs: list[Run]

    def __getattr__(self, name: str) -> Any:  # dataset, model, label, family, variant, settings, ...
        if name == "runs":
            raise AttributeError(name)
        return getattr(self.runs[0], name)

    @property
    def n(self) -> int:
        return len(self.runs)

    def values(self, metric: str) -> list[float]:
        return [r.metrics[f"test/{metric}"] for r in self.runs if f"test/{metric}" in r.metrics]

    def mean(self, metric: str) -> Optional[float]:
        values = self.values(metric)
        return statistics.fmean(values) if values else None

    def spread(self, metric: str) -> Optional[float]:
        """Seed-to-seed sample standard deviation; None with fewer than two seeds."""
        values = self.values(metric)
        return statistics.stdev(values) if len(values) > 1 else None


def cells(runs: Sequence[Run]) -> list[Cell]:
    """Runs grouped by (dataset, model, label): the seeds of each variant, first-seen order."""
    groups: dict[tuple[str, str, str], list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run.dataset, run.model_class, run.label)].append(run)
    return [Cell(group) for group in groups.values()]


def seed_spread(group: Sequence[Cell], metric: str) -> Optional[float]:
    """The seed-to-seed spread of a (dataset, model) group: the pooled sample standard
    deviation of its trained cells with two or more seeds (a cell tested on another run's
    checkpoints, ``ckpt_path`` in its config, repeats that run's seeds); None when none has two."""
    squares = dof = 0.0
    for cell in group:
        if any(r.config.get("ckpt_path") for r in cell.runs):
            continue
        values = cell.values(metric)
        if len(values) > 1:
            squares += (len(values) - 1) * statistics.variance(values)
            dof += len(values) - 1
    return math.sqrt(squares / dof) if dof else None


def within_noise(difference: float, spread: Optional[float]) -> bool:
    """A difference no larger than twice the seed-to-seed spread is noise."""
    return spread is not None and abs(difference) <= 2 * spread


def unresolved(runs: Sequence[Run], metric: str = VERDICT_METRIC) -> list[Cell]:
    """Variants whose mean differs from their reference's by at most twice the spread of
    their (dataset, model) group: the ones that need more seeds."""
    all_cells = cells(runs)
    found = []
    for reference in (c for c in all_cells if c.family is None):
        group = [c for c in all_cells if (c.dataset, c.model_class) == (reference.dataset, reference.model_class)]
        spread, base = seed_spread(group, metric), reference.mean(metric)
        for cell in group:
            value = cell.mean(metric)
            if cell.family is not None and value is not None and base is not None and within_noise(value - base, spread):
                found.append(cell)
    return list({id(c): c for c in found}.values())

