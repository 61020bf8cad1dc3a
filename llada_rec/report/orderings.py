"""The paper's orderings (variant A beats variant B): reproduced, reversed or within noise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from llada_rec.report.cells import VERDICT_METRIC, Cell, cells, seed_spread, within_noise
from llada_rec.report.runs import Run
from llada_rec.report.tables import dataset_order, short_metric
from llada_rec.report.variants import (
    ATTENTION_NAMES,
    DEFAULT_NUM_STEPS,
    FAMILIES,
    NO_BEAM,
    NO_HISTORY_MASK,
    NO_ITEM_MASK,
    ORDER_NAMES,
    TOKENIZER_NAMES,
    _member_label,
    _numeric_value,
)


@dataclass(frozen=True)
class Ordering:
    """A claim of the paper: variant ``better`` beats variant ``worse`` (as :func:`named_variant`
    names them; an empty one is the full model)."""

    source: str
    claim: str
    better: tuple[tuple[str, str], ...]
    worse: tuple[tuple[str, str], ...]


ORDERINGS = (
    Ordering("Figure 3", "bidirectional > inter-item causal", (), (("attention", ATTENTION_NAMES["inter_item_causal"]),)),
    Ordering("Figure 3", "intra-item causal > causal", (("attention", ATTENTION_NAMES["intra_item_causal"]),), (("attention", ATTENTION_NAMES["causal"]),)),
    Ordering("Figure 4", "adaptive > left-to-right", (), (("order", ORDER_NAMES["left_to_right"]),)),
    Ordering("Figure 4", "adaptive > right-to-left", (), (("order", ORDER_NAMES["right_to_left"]),)),
    Ordering("Figure 5", "more steps: T=2 > T=1", (("num_steps", "T=2"),), (("num_steps", "T=1"),)),
    Ordering("Figure 5", f"more steps: T={DEFAULT_NUM_STEPS} > T=2", (), (("num_steps", "T=2"),)),
    Ordering("Table 4", "Multi-Head VQ-VAE > RQ-VAE", (), (("tokenizer", TOKENIZER_NAMES["RQVAE"]),)),
    Ordering("Table 4", "RQ-VAE > RQ-KMeans", (("tokenizer", TOKENIZER_NAMES["RQVAE"]),), (("tokenizer", TOKENIZER_NAMES["RQKMeans"]),)),
    Ordering("Table 4", "RQ-VAE > OPQ", (("tokenizer", TOKENIZER_NAMES["RQVAE"]),), (("tokenizer", TOKENIZER_NAMES["OPQ"]),)),
    Ordering("Table 4", "the L_His mask helps", (), (("history_mask", NO_HISTORY_MASK),)),
    Ordering("Table 4", "the L_Item mask helps", (), (("item_mask", NO_ITEM_MASK),)),
    Ordering("Table 4", "beam search is essential", (), (("beam", NO_BEAM),)),
)
MIDDLE_ALPHA = ("Figure 6", "a middle α is best")


def verdict(difference: Optional[float], spread: Optional[float]) -> str:
    """reproduced / reversed when the difference exceeds twice the seed spread, else within noise."""
    if difference is None:
        return "not run"
    if spread is None:
        return "no spread (one seed)"
    if within_noise(difference, spread):
        return "within noise"
    return "reproduced" if difference > 0 else "reversed"


def _ordering_row(source: str, claim: str, better: Optional[Cell], worse: Optional[Cell], metric: str, spread: Optional[float]) -> dict[str, Any]:
    means = [c.mean(metric) if c is not None else None for c in (better, worse)]
    difference = means[0] - means[1] if None not in means else None
    return {
        "source": source, "claim": claim, "metric": metric,
        "better": better.label if better else None, "better_mean": means[0], "better_seeds": better.n if better else 0,
        "worse": worse.label if worse else None, "worse_mean": means[1], "worse_seeds": worse.n if worse else 0,
        "difference": difference, "spread": spread, "verdict": verdict(difference, spread),
    }


def _middle_alpha(group: Sequence[Cell], reference: Cell, metric: str, spread: Optional[float]) -> dict[str, Any]:
    """The best middle α against the better end of the α range."""
    family = next(f for f in FAMILIES if f.name == "alpha")
    points = sorted([reference] + [c for c in group if set(c.variant) == {"alpha"} and c.mean(metric) is not None], key=lambda c: _numeric_value(c, family))
    if len(points) < 3:
        return _ordering_row(*MIDDLE_ALPHA, None, None, metric, spread)
    middle = max(points[1:-1], key=lambda c: c.mean(metric))
    end = max((points[0], points[-1]), key=lambda c: c.mean(metric))
    row = _ordering_row(*MIDDLE_ALPHA, middle, end, metric, spread)
    row["better"], row["worse"] = _member_label(middle, family), _member_label(end, family)
    return row


def orderings(runs: Sequence[Run], metric: str = VERDICT_METRIC) -> list[dict[str, Any]]:
    """Every paper ordering for each (dataset, LLaDA-Rec) group with variants: the two means,
    their seeds, the difference, the group's seed spread and the verdict."""
    rows = []
    all_cells = cells(runs)
    for dataset in dataset_order(runs):
        group = [c for c in all_cells if c.dataset == dataset and c.model_class == "LLaDARec"]
        reference = next((c for c in group if c.family is None), None)
        if reference is None or all(c.family is None for c in group):
            continue
        spread = seed_spread(group, metric)

        def find(variant: tuple[tuple[str, str], ...]) -> Optional[Cell]:
            return reference if not variant else next((c for c in group if c.variant == dict(variant)), None)

        found = [_ordering_row(o.source, o.claim, find(o.better), find(o.worse), metric, spread) for o in ORDERINGS]
        found.append(_middle_alpha(group, reference, metric, spread))
        rows += [{"dataset": dataset, "model": reference.model, **row} for row in found]
    return rows


def orderings_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: one row per (dataset, claim)."""
    if not rows:
        return "(no LLaDA-Rec variants)"
    metric = short_metric(rows[0]["metric"])

    def side(row: Mapping[str, Any], key: str) -> str:
        return f"{row[key]}: {row[f'{key}_mean']:.4f} ({row[f'{key}_seeds']})" if row[f"{key}_mean"] is not None else "-"

    lines = [f"| source | claim | dataset | better ({metric}, seeds) | worse | Δ {metric} | 2 × spread | verdict |", "|---|---|---|---|---|---:|---:|---|"]
    for row in rows:
        difference = f"{row['difference']:+.4f}" if row["difference"] is not None else "-"
        noise = f"{2 * row['spread']:.4f}" if row["spread"] is not None else "-"
        lines.append(f"| {row['source']} | {row['claim']} | {row['dataset']} | {side(row, 'better')} | {side(row, 'worse')} | {difference} | {noise} | **{row['verdict']}** |")
    return "\n".join(lines)


