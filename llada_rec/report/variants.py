"""What a run is: dataset, model, tokenizer, the hyperparameters it is compared on, its
variant (what it changes relative to the paper's model) and ablation family."""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import yaml

from llada_rec.report.runs import Run, find_run_dirs, load_run

REPO = Path(__file__).resolve().parents[2]

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
IGNORED_MODEL_ARGS = {"chunk_size", "decode_chunk_size", "top_k", "metric_ks"}  # decode_chunk_size: runs before DecodingConfig
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


def load_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Load and describe every run found at or below ``paths``."""
    runs = [load_run(path) for path in find_run_dirs(paths)]
    describe_runs(runs)
    return runs


def _section(config: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key)
    return value if isinstance(value, dict) else {}


def by_field_name(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings with their groups' fields lifted to the top (``network.d_model`` -> ``d_model``),
    so grouped runs and flat runs of older versions compare alike."""
    return {**{k: v for k, v in settings.items() if not isinstance(v, dict)},
            **{f: v for group in settings.values() if isinstance(group, dict) for f, v in group.items()}}


def flat_data_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """A run config's data settings by field name (dataset, items, loaders lifted)."""
    return by_field_name(_section(config, "data"))


def dataset_name(config: Mapping[str, Any], fallback: str) -> str:
    """The data's own name: the category, else the stem of the one interactions file in the
    data folder (``Scientific.inter.json`` -> Scientific), else the folder's name."""
    data = flat_data_settings(config)
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
    data = flat_data_settings(config)
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
    model_args = by_field_name(_section(_section(config, "model"), "init_args"))  # network, decoding lifted
    settings = {k: v for k, v in model_args.items() if k not in IGNORED_MODEL_ARGS}
    data = flat_data_settings(config)
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

