"""Tables and plots from finished runs: the paper's Table 3 / Table 4 and Figures 3-6.

    llada-rec report RUN_DIR_OR_PARENT... [--out DIR] [--metrics recall@5 ndcg@5]

A run directory holds the ``metrics.json`` a recommender writes at the end of ``test`` and the
``config.yaml`` LightningCLI saves next to it; a parent directory is searched below.  Runs are
grouped by dataset (``data.category``, else the data directory's name) and model
(``model.class_path``).  A run's *variant* is what its config changes relative to the paper's
LLaDA-Rec (tokenizer, masks, beam search, attention, order, steps) plus every hyperparameter
that differs from the most common value among the runs of its dataset and model (alpha in
Figure 6, lr in a sweep, ...).  Variants then fall into the paper's ablation *families*
(Table 4 sections, one figure each for Figures 3-6).

Writes ``report.md`` (Table 3: metrics x models per dataset; Table 4: variants x datasets; all
runs), ``report.json`` and PNG bar charts: ``overview.png`` and one per ablation family.

Modules, bottom to top: ``runs`` (finding and reading run directories), ``variants`` (what a
run is: dataset, model, hyperparameters, variant, family), ``cells`` (seeds of one variant, the
seed spread), ``tables``, ``plots``, ``orderings`` (the paper's claims and their verdicts) and
``cli`` (:func:`write_report` and the command).  Every public name is importable from here.
"""

from __future__ import annotations

from llada_rec.report.runs import (
    ReportError,
    Run,
    find_run_dirs,
    load_run,
)
from llada_rec.report.variants import (
    ATTENTION_NAMES,
    DATASET_NAMES,
    DEFAULT_NUM_STEPS,
    DEFAULT_TOKENIZER,
    FAMILIES,
    HISTORY_MASK_NAMES,
    IGNORED_MODEL_ARGS,
    ITEM_MASK_NAMES,
    MODEL_NAMES,
    NAMED_SETTINGS,
    NO_BEAM,
    NO_HISTORY_MASK,
    NO_ITEM_MASK,
    ORDER_NAMES,
    REPLICATE_SETTINGS,
    REPO,
    SASREC_LOSS_NAMES,
    SHORT_NAMES,
    TOKENIZER_FILE_STEMS,
    TOKENIZER_NAMES,
    VARIANT_DATA_ARGS,
    Family,
    dataset_name,
    describe_runs,
    family_members,
    family_of,
    fmt_value,
    load_runs,
    model_class,
    model_name,
    named_variant,
    run_settings,
    tokenizer_class,
    tokenizer_label,
)
from llada_rec.report.cells import (
    VERDICT_METRIC,
    Cell,
    cells,
    seed_spread,
    unresolved,
    within_noise,
)
from llada_rec.report.tables import (
    FIGURE_METRICS,
    TABLE_COLUMNS,
    dataset_order,
    metrics_table,
    print_metrics_table,
    runs_table,
    short_metric,
    table3,
    table4,
)
from llada_rec.report.plots import (
    FIGURE_DPI,
    MIN_FIGURE_INCHES,
    bar_panels,
    family_figure,
    family_plot,
    overview_plot,
)
from llada_rec.report.orderings import (
    MIDDLE_ALPHA,
    ORDERINGS,
    Ordering,
    orderings,
    orderings_table,
    verdict,
)
from llada_rec.report.cli import (
    main,
    write_report,
)

__all__ = [
    "ReportError",
    "Run",
    "find_run_dirs",
    "load_run",
    "REPO",
    "DATASET_NAMES",
    "MODEL_NAMES",
    "SASREC_LOSS_NAMES",
    "TOKENIZER_NAMES",
    "TOKENIZER_FILE_STEMS",
    "DEFAULT_TOKENIZER",
    "ATTENTION_NAMES",
    "ORDER_NAMES",
    "DEFAULT_NUM_STEPS",
    "IGNORED_MODEL_ARGS",
    "VARIANT_DATA_ARGS",
    "HISTORY_MASK_NAMES",
    "ITEM_MASK_NAMES",
    "NAMED_SETTINGS",
    "SHORT_NAMES",
    "REPLICATE_SETTINGS",
    "NO_HISTORY_MASK",
    "NO_ITEM_MASK",
    "NO_BEAM",
    "Family",
    "FAMILIES",
    "load_runs",
    "dataset_name",
    "model_class",
    "tokenizer_class",
    "tokenizer_label",
    "fmt_value",
    "run_settings",
    "model_name",
    "named_variant",
    "describe_runs",
    "family_of",
    "family_members",
    "VERDICT_METRIC",
    "Cell",
    "cells",
    "seed_spread",
    "within_noise",
    "unresolved",
    "TABLE_COLUMNS",
    "FIGURE_METRICS",
    "short_metric",
    "metrics_table",
    "print_metrics_table",
    "dataset_order",
    "table3",
    "table4",
    "runs_table",
    "FIGURE_DPI",
    "MIN_FIGURE_INCHES",
    "bar_panels",
    "family_figure",
    "family_plot",
    "overview_plot",
    "Ordering",
    "ORDERINGS",
    "MIDDLE_ALPHA",
    "verdict",
    "orderings",
    "orderings_table",
    "write_report",
    "main",
]
