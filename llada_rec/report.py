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
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import yaml

from llada_rec.utils import UserError, atomic_path, atomic_write_text

TABLE_COLUMNS = ("recall@1", "recall@5", "recall@10", "ndcg@5", "ndcg@10")
FIGURE_METRICS = ("recall@5", "ndcg@5")  # the paper's Table 4 and Figures 3-6
REPO = Path(__file__).resolve().parents[1]

DATASET_NAMES = {
    "Industrial_and_Scientific": "Scientific",
    "Musical_Instruments": "Instrument",
    "Video_Games": "Game",
    "Demo_Electronics": "Demo",
}
MODEL_NAMES = {  # in the paper's Table 3 order
    "MostPopular": "MostPop",
    "ItemTransitions": "Transitions",
    "GRU4Rec": "GRU4Rec",
    "SASRec": "SASRec",
    "BERT4Rec": "BERT4Rec",
    "TIGER": "TIGER",
    "RPG": "RPG",
    "LLaDARec": "LLaDA-Rec",
}
#: SASRec's name says its loss: full-softmax cross-entropy, or the original BCE with one sampled negative
SASREC_LOSS_NAMES = {"ce": "SASRec (CE)", "bce": "SASRec (BCE)"}
TOKENIZER_NAMES = {"MultiHeadVQVAE": "MH-VQVAE", "RQVAE": "RQ-VAE", "RQKMeans": "RQ-KMeans", "OPQ": "OPQ"}
TOKENIZER_FILE_STEMS = {"rqvae": "RQVAE", "rqkmeans": "RQKMeans", "opq": "OPQ"}
#: the tokenizer each semantic-ID model is defined with; another one is a variant
DEFAULT_TOKENIZER = {"LLaDARec": "MultiHeadVQVAE", "TIGER": "RQVAE", "RPG": "MultiHeadVQVAE"}
ATTENTION_NAMES = {"causal": "Causal", "inter_item_causal": "Inter-item causal", "intra_item_causal": "Intra-item causal"}
ORDER_NAMES = {"left_to_right": "Left2Right", "right_to_left": "Right2Left"}
DEFAULT_NUM_STEPS = 4  # T = M = 4 (SPEC §5)

#: settings that never define a variant: where files are, speed knobs, what is evaluated
IGNORED_MODEL_ARGS = {"decode_chunk_size", "top_k", "metric_ks"}
VARIANT_DATA_ARGS = ("kcore", "repeats", "max_history", "text_fields", "max_text_chars", "embedding_model", "pca_dim", "batch_size")
#: settings :func:`named_variant` reads (not compared as plain hyperparameters)
#: history / item loss modes other than the default, as a report names them
HISTORY_MASK_NAMES = {"history_token": "L_His on history only (paper formula)", "history_per_item": "L_His on history only, per item"}
ITEM_MASK_NAMES = {"count": "L_Item k-subset (authors)"}
NAMED_SETTINGS = {"history_mask", "item_mask", "beam_size", "attention", "order", "num_steps"}
SHORT_NAMES = {"alpha": "α", "seed_everything": "seed", "max_epochs": "epochs"}
#: settings that tell seeds of one variant apart: never a variant, averaged over (mean ± spread)
REPLICATE_SETTINGS = {"seed_everything"}
NO_HISTORY_MASK, NO_ITEM_MASK, NO_BEAM = "w/o L_His-Mask", "w/o L_Item-Mask", "w/o beam search"
VERDICT_METRIC = "ndcg@10"  # the orderings' verdicts (and the ablation runner's extra seeds)


@dataclass(frozen=True)
class Family:
    """A group of variants compared against the full model (a Table 4 section, a figure)."""

    name: str
    title: str
    keys: frozenset[str]
    reference_label: Callable[["Run"], str]
    numeric: bool = False  # x axis = the varied value (steps, alpha) instead of variants


FAMILIES = (
    Family("tokenizer", "Tokenizer", frozenset({"tokenizer"}), lambda r: tokenizer_label(r.tokenizer)),
    Family("training", "Training", frozenset({"history_mask", "item_mask"}), lambda r: r.model),
    Family("inference", "Inference", frozenset({"beam"}), lambda r: r.model),
    Family("attention", "Attention mechanism (Figure 3)", frozenset({"attention"}), lambda r: "Bidirectional"),
    Family("order", "Generation order (Figure 4)", frozenset({"order"}), lambda r: "Adaptive"),
    Family("steps", "Generation steps T (Figure 5)", frozenset({"num_steps"}), lambda r: f"T={r.settings.get('num_steps')}", numeric=True),
    Family("alpha", "Loss weight α (Figure 6)", frozenset({"alpha"}), lambda r: f"α={fmt_value(r.settings.get('alpha'))}", numeric=True),
)


class ReportError(UserError, ValueError):
    """Bad input to the report: names the file or directory at fault."""


@dataclass
class Run:
    """One finished run: where, what it measured, and what it was."""

    path: Path
    metrics: dict[str, float]
    config: dict[str, Any]
    dataset: str = ""
    model_class: str = ""
    model: str = ""
    tokenizer: Optional[str] = None
    settings: dict[str, Any] = field(default_factory=dict)  # comparable hyperparameters
    variant: dict[str, str] = field(default_factory=dict)  # key -> label part, what differs
    label: str = ""
    varied: dict[str, str] = field(default_factory=dict)  # hyperparameters that vary in its group, as "α=3.5"
    family: Optional[str] = None  # None: the reference run (belongs to every family)

    @property
    def name(self) -> str:
        return self.path.name


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------
def find_run_dirs(paths: Sequence[str | Path]) -> list[Path]:
    """Run directories (holding ``metrics.json``) at or below each path, sorted, no repeats."""
    found: dict[Path, None] = {}
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise ReportError(f"{path}: no such file or directory")
        if path.is_file():
            path = path.parent
        if (path / "metrics.json").is_file():
            found[path.resolve()] = None
        for metrics_file in sorted(path.rglob("metrics.json")):
            found[metrics_file.parent.resolve()] = None
    if not found:
        raise ReportError(f"no metrics.json found in or below {', '.join(map(str, paths))} (runs write it at the end of `test`)")
    return list(found)


def load_run(path: Path) -> Run:
    """Read ``metrics.json`` (required) and ``config.yaml`` (optional) of one run directory."""
    metrics_file = path / "metrics.json"
    try:
        metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ReportError(f"{metrics_file}: cannot read metrics ({err})") from err
    if not isinstance(metrics, dict):
        raise ReportError(f"{metrics_file}: expected a JSON object of metric -> number")
    for key, value in metrics.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ReportError(f"{metrics_file}: metric {key!r} is {value!r}, not a number")
    config: dict[str, Any] = {}
    config_file = path / "config.yaml"
    if config_file.is_file():
        try:
            config = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ReportError(f"{config_file}: not valid YAML ({err})") from err
        if not isinstance(config, dict):
            raise ReportError(f"{config_file}: expected a mapping at the top level")
    return Run(path=path, metrics={k: float(v) for k, v in metrics.items()}, config=config)


def load_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Load and describe every run found at or below ``paths``."""
    runs = [load_run(path) for path in find_run_dirs(paths)]
    describe_runs(runs)
    return runs


# ---------------------------------------------------------------------------------------
# What a run is: dataset, model, settings, variant
# ---------------------------------------------------------------------------------------
def _section(config: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key)
    return value if isinstance(value, dict) else {}


def dataset_name(config: Mapping[str, Any], fallback: str) -> str:
    """The data's own name: the category, else the stem of the one interactions file in the
    data folder (``Scientific.inter.json`` -> Scientific), else the folder's name."""
    data = _section(config, "data")
    raw = data.get("category") or (_data_file_stem(Path(str(data["path"]))) if data.get("path") else None) or fallback
    return DATASET_NAMES.get(str(raw), str(raw))


def _data_file_stem(folder: Path) -> str:
    for candidate in (folder, REPO / folder):
        if candidate.is_dir():
            stems = {re.sub(r"\.(inter\.json|inter|jsonl)(\.gz)?$", "", p.name) for p in candidate.iterdir()
                     if re.search(r"\.(inter\.json|inter|jsonl)(\.gz)?$", p.name) and not p.name.startswith("meta_")}
            if len(stems) == 1:
                return stems.pop()
    return folder.name


def model_class(config: Mapping[str, Any]) -> str:
    class_path = _section(config, "model").get("class_path")
    return str(class_path).rsplit(".", 1)[-1] if class_path else "unknown"


def _resolve(path: str) -> Optional[Path]:
    for candidate in (Path(path), REPO / path):
        if candidate.is_file():
            return candidate
    return None


def tokenizer_class(config: Mapping[str, Any]) -> Optional[str]:
    """The tokenizer class behind a run's semantic IDs, or None when it cannot be told."""
    data = _section(config, "data")
    if data.get("semantic_ids"):
        artifact = Path(str(data["semantic_ids"])) / "tokenizer.yaml"
        try:
            class_path = (yaml.safe_load(artifact.read_text(encoding="utf-8")) or {}).get("class_path")
        except (OSError, yaml.YAMLError, AttributeError):
            return None
        return str(class_path).rsplit(".", 1)[-1] if class_path else None
    files = [data.get("tokenizer_config"), *(data.get("tokenizer_overrides") or [])]
    for file in reversed([str(f) for f in files if f]):  # the last file naming a model wins
        resolved = _resolve(file)
        if resolved is not None:
            try:
                class_path = _section(yaml.safe_load(resolved.read_text(encoding="utf-8")) or {}, "model").get("class_path")
            except yaml.YAMLError:
                class_path = None
            if class_path:
                return str(class_path).rsplit(".", 1)[-1]
        elif Path(file).stem in TOKENIZER_FILE_STEMS:
            return TOKENIZER_FILE_STEMS[Path(file).stem]
    return None


def tokenizer_label(name: Optional[str]) -> str:
    return TOKENIZER_NAMES.get(name or "", name or "?")


def fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(fmt_value(v) for v in value) + "]"
    return str(value)


def run_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters runs are compared on (flat; model init args, seed, epochs, data)."""
    model_args = _section(_section(config, "model"), "init_args")
    settings = {k: v for k, v in model_args.items() if k not in IGNORED_MODEL_ARGS}
    data = _section(config, "data")
    settings.update({f"data.{k}": data[k] for k in VARIANT_DATA_ARGS if k in data})
    trainer = _section(config, "trainer")
    if "max_epochs" in trainer:
        settings["max_epochs"] = trainer["max_epochs"]
    if "seed_everything" in config:
        settings["seed_everything"] = config["seed_everything"]
    return settings


def model_name(model_class: str, config: Mapping[str, Any]) -> str:
    """A run's model as the tables name it (SASRec with its loss)."""
    if model_class == "SASRec":
        loss = _section(_section(config, "model"), "init_args").get("loss", "ce")
        return SASREC_LOSS_NAMES.get(str(loss), f"SASRec ({loss})")
    return MODEL_NAMES.get(model_class, model_class)


def named_variant(run: Run) -> dict[str, str]:
    """What differs from the paper's model in the named ablation settings (Table 4, Figs 3-5)."""
    s = run.settings
    variant: dict[str, str] = {}
    default_tokenizer = DEFAULT_TOKENIZER.get(run.model_class)
    if default_tokenizer and run.tokenizer and run.tokenizer != default_tokenizer:
        variant["tokenizer"] = tokenizer_label(run.tokenizer)
    if s.get("history_mask") == "none":
        variant["history_mask"] = NO_HISTORY_MASK
    elif s.get("history_mask") in HISTORY_MASK_NAMES:
        variant["history_mask"] = HISTORY_MASK_NAMES[s["history_mask"]]
    if s.get("item_mask") == "none":
        variant["item_mask"] = NO_ITEM_MASK
    elif s.get("item_mask") in ITEM_MASK_NAMES:
        variant["item_mask"] = ITEM_MASK_NAMES[s["item_mask"]]
    if s.get("beam_size") == 1:
        variant["beam"] = NO_BEAM
    if s.get("attention", "bidirectional") != "bidirectional":
        variant["attention"] = ATTENTION_NAMES.get(s["attention"], str(s["attention"]))
    if s.get("order", "adaptive") != "adaptive":
        variant["order"] = ORDER_NAMES.get(s["order"], str(s["order"]))
    if "num_steps" in s and s["num_steps"] != DEFAULT_NUM_STEPS:
        variant["num_steps"] = f"T={s['num_steps']}"
    return variant


def describe_runs(runs: list[Run]) -> None:
    """Fill in dataset, model, variant, label and family of every run (in place)."""
    for run in runs:
        run.dataset = dataset_name(run.config, fallback=run.path.parent.name)
        run.model_class = model_class(run.config)
        run.model = model_name(run.model_class, run.config)
        run.tokenizer = tokenizer_class(run.config) if run.model_class in DEFAULT_TOKENIZER else None
        run.settings = run_settings(run.config)
        run.variant = named_variant(run)
    groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run.dataset, run.model)].append(run)  # the two SASRec losses are two models
    for group in groups.values():
        keys = sorted({k for run in group for k in run.settings if k not in NAMED_SETTINGS | REPLICATE_SETTINGS})
        for key in keys:
            values = [json.dumps(run.settings.get(key), sort_keys=True, default=str) for run in group]
            if len(set(values)) < 2:
                continue
            reference = Counter(values).most_common(1)[0][0]  # ties: the first seen (run dirs sorted)
            short = SHORT_NAMES.get(key, key.removeprefix("data."))
            for run, value in zip(group, values):
                run.varied[key] = f"{short}={fmt_value(run.settings.get(key))}"
                if value != reference:
                    run.variant[key] = run.varied[key]
        for run in group:
            run.label = ", ".join(run.variant.values()) if run.variant else run.model
            run.family = family_of(run)
        counts = Counter((run.label, _seed(run)) for run in group)
        for run in group:  # the same variant and seed twice (re-runs): tell them apart by run dir
            if counts[(run.label, _seed(run))] > 1:
                run.label = f"{run.label} [{run.name}]"


def _seed(run: Run) -> str:
    return json.dumps({k: run.settings.get(k) for k in sorted(REPLICATE_SETTINGS)}, default=str)


def family_of(run: Run) -> Optional[str]:
    """The ablation family of a run: None for the reference, "other" when none fits."""
    if not run.variant:
        return None
    keys = set(run.variant)
    for family in FAMILIES:
        if keys <= family.keys:
            return family.name
    return "other"


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


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------
# Plots (Figures 3-6 style: bars per variant, one panel per dataset)
# ---------------------------------------------------------------------------------------
FIGURE_DPI = 150
MIN_FIGURE_INCHES = 7.0  # >= 1050 px wide at FIGURE_DPI


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def bar_panels(
    panels: Mapping[str, tuple[list[str], dict[str, list[Optional[float]]]]],
    title: str,
    path: Path,
    xlabel: str = "",
    stacked: bool = False,
    errors: Optional[Mapping[str, Mapping[str, Sequence[Optional[float]]]]] = None,
) -> Path:
    """One panel per key of ``panels``: groups on x (labels), one bar per series in each group.

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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=FIGURE_DPI, format="png")
    plt.close(fig)
    return path


def family_members(runs: Sequence[Run], family: Family) -> list[Run]:
    """The runs a family's figure compares: its variants and the reference runs they vary."""
    variants = [r for r in runs if r.family == family.name]
    groups = {(r.dataset, r.model_class) for r in variants}
    references = [r for r in runs if r.family is None and (r.dataset, r.model_class) in groups]
    return references + variants


def _member_label(run: Run, family: Family) -> str:
    return family.reference_label(run) if run.family is None else run.label


def _numeric_value(run: Run, family: Family) -> float:
    key = next(iter(family.keys))
    try:
        return float(run.settings.get(key))
    except (TypeError, ValueError):
        return math.inf


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


def overview_plot(runs: Sequence[Run], out: Path, metrics: Sequence[str] = ("recall@10", "ndcg@10")) -> Path:
    """Every run, a panel per dataset: the quick look at a set of runs."""
    panels, errors = {}, {}
    for dataset in dataset_order(runs):
        group = sorted((c for c in cells(runs) if c.dataset == dataset), key=_model_rank)
        labels = [r.label if r.model_class == "LLaDARec" or not r.variant else f"{r.model}: {r.label}" for r in group]
        panels[dataset] = (labels, {short_metric(m): [_metric(r, m) for r in group] for m in metrics})
        errors[dataset] = {short_metric(m): [r.spread(m) for r in group] for m in metrics}
    return bar_panels(panels, "All runs (test)", out / "overview.png", stacked=True, errors=errors)


# ---------------------------------------------------------------------------------------
# The paper's orderings: reproduced, reversed or within noise
# ---------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------
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
