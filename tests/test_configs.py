"""Every YAML under experiments/ parses with the project's CLI parser, alone or composed with
its dataset config as documented (nothing is instantiated, nothing downloaded)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

import llada_rec.models
from llada_rec.sweep import grid, load_sweep, parse_cli_args, trial_args
from llada_rec.tokenizers.stage import load_tokenizer_config

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"
DATASETS = ["demo", "scientific", "instrument", "game"]
DATASET_CONFIGS = [f"experiments/{d}.yaml" for d in DATASETS]
TOKENIZER_DATASET_CONFIGS = [f"experiments/tokenizer/{d}.yaml" for d in DATASETS]
TOKENIZER_MODEL_CONFIGS = ["experiments/tokenizer/rqvae.yaml", "experiments/tokenizer/rqkmeans.yaml", "experiments/tokenizer/opq.yaml"]
#: stand-alone CPU-sized configs (benchmark runs on ../shared/data)
CPU_CONFIGS = ["experiments/amazon18_scientific_cpu.yaml", "experiments/tokenizer/cpu.yaml"]


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


BASELINES = sorted(rel(p) for p in (EXPERIMENTS / "baselines").glob("*.yaml"))
ABLATIONS = sorted(rel(p) for p in (EXPERIMENTS / "ablations").glob("*.yaml"))
LOGGERS = sorted(rel(p) for p in (EXPERIMENTS / "loggers").glob("*.yaml"))
SWEEPS = sorted(rel(p) for p in (EXPERIMENTS / "sweeps").glob("*.yaml"))
RECIPES = sorted(rel(p) for p in (EXPERIMENTS / "recipes").glob("*.yaml"))

#: each combination: the argument list and the config files it composes (in order)
COMBINATIONS: list[list[str]] = (
    [[c] for c in DATASET_CONFIGS + TOKENIZER_DATASET_CONFIGS + CPU_CONFIGS]
    + [[t, m] for t in TOKENIZER_DATASET_CONFIGS for m in TOKENIZER_MODEL_CONFIGS]
    + [[d, b] for d in DATASET_CONFIGS for b in BASELINES]
    + [[d, a] for d in DATASET_CONFIGS for a in ABLATIONS]
    + [[d, log] for d in DATASET_CONFIGS for log in LOGGERS]
    + [["experiments/scientific.yaml", a, log] for a in ABLATIONS for log in LOGGERS]
    + [[d, r] for d in DATASET_CONFIGS + CPU_CONFIGS[:1] for r in RECIPES]
)


@pytest.fixture(scope="module")
def parsed() -> dict[tuple[str, ...], dict[str, Any]]:
    """Every combination parsed once (one parser), as plain dicts."""
    cwd = os.getcwd()
    os.chdir(REPO)  # configs name each other relative to the repository root
    try:
        configs = parse_cli_args([[arg for c in combo for arg in ("--config", c)] for combo in COMBINATIONS])
    finally:
        os.chdir(cwd)
    plain = {tuple(combo): config.as_dict() for combo, config in zip(COMBINATIONS, configs)}
    for config in plain.values():
        config.pop("config", None)  # the list of files read, not a setting
    return plain


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> {"a.b.c": leaf}; lists are leaves."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def loggers(config: dict[str, Any]) -> list[dict[str, Any]]:
    logger = config["trainer"]["logger"]
    return logger if isinstance(logger, list) else [logger]


def test_every_experiment_yaml_is_covered() -> None:
    covered = set(DATASET_CONFIGS + TOKENIZER_DATASET_CONFIGS + CPU_CONFIGS + TOKENIZER_MODEL_CONFIGS + BASELINES + ABLATIONS + LOGGERS + SWEEPS + RECIPES)
    on_disk = {rel(p) for p in EXPERIMENTS.rglob("*.yaml")}
    assert on_disk - covered == set(), "new experiment YAML: add it to a category in tests/test_configs.py"
    assert len(ABLATIONS) >= 14 and LOGGERS == ["experiments/loggers/wandb.yaml"]


def test_every_combination_parses(parsed: dict) -> None:
    assert len(parsed) == len(COMBINATIONS)
    for combo, config in parsed.items():
        assert config["model"]["class_path"], combo


def test_ablations_override_only_what_they_declare(parsed: dict) -> None:
    run_dirs: dict[str, set[str]] = {}
    for ablation in ABLATIONS:
        declared = flatten(yaml.safe_load((REPO / ablation).read_text()))
        assert "model.init_args.attention" in declared or len(declared) >= 2, ablation  # a change and a run name
        for dataset in DATASET_CONFIGS:
            base, composed = flatten(parsed[(dataset,)]), flatten(parsed[(dataset, ablation)])
            changed = {k for k in set(base) | set(composed) if base.get(k) != composed.get(k)}
            assert changed and changed <= set(declared), (ablation, dataset, changed - set(declared))
            for key, value in declared.items():
                assert composed[key] == value, (ablation, dataset, key)
            logger = parsed[(dataset, ablation)]["trainer"]["logger"]["init_args"]
            run_dirs.setdefault(dataset, set()).add(f"{logger['save_dir']}/{logger['name']}/{logger['version']}")
    for dataset, dirs in run_dirs.items():  # runs of different ablations never share a directory
        assert len(dirs) == len(ABLATIONS), dataset


def test_recipes_change_only_the_model_settings_they_name(parsed: dict) -> None:
    assert RECIPES == ["experiments/recipes/cached_draws.yaml"]
    for recipe in RECIPES:
        declared = flatten(yaml.safe_load((REPO / recipe).read_text()))
        for dataset in DATASET_CONFIGS + CPU_CONFIGS[:1]:
            base, composed = flatten(parsed[(dataset,)]), flatten(parsed[(dataset, recipe)])
            changed = {k for k in set(base) | set(composed) if base.get(k) != composed.get(k)}
            assert changed and changed <= set(declared), (recipe, dataset, changed - set(declared))
            assert all(composed[k] == v for k, v in declared.items()), (recipe, dataset)
    model = parsed[(CPU_CONFIGS[0], RECIPES[0])]["model"]["init_args"]
    assert (model["attention"], model["item_mask_draws"], model["alpha"]) == ("cached_history", 16, 1.0)
    assert model["network"]["d_model"] == 128  # the base's size is kept
    logger = parsed[(CPU_CONFIGS[0], RECIPES[0])]["trainer"]["logger"]["init_args"]
    assert logger["name"] == "amazon18_scientific_cpu" and logger["version"] == "cached_draws"


def test_ablation_values_reach_the_model(parsed: dict) -> None:
    expected = {
        "causal.yaml": ("attention", "causal"),
        "inter_item_causal.yaml": ("attention", "inter_item_causal"),
        "intra_item_causal.yaml": ("attention", "intra_item_causal"),
        "left_to_right.yaml": ("order", "left_to_right"),
        "right_to_left.yaml": ("order", "right_to_left"),
        "steps_1.yaml": ("num_steps", 1),
        "steps_2.yaml": ("num_steps", 2),
        "greedy.yaml": ("beam_size", 1),
        "no_history_mask.yaml": ("history_mask", "none"),
        "per_item_history_mask.yaml": ("history_mask", "history_per_item"),
        "history_only_loss.yaml": ("history_mask", "history_token"),
        "no_item_mask.yaml": ("item_mask", "none"),
    }
    for name, (key, value) in expected.items():
        model = parsed[("experiments/scientific.yaml", f"experiments/ablations/{name}")]["model"]
        model["init_args"] = {**model["init_args"], **model["init_args"]["decoding"]}  # decoding settings: their group
        assert model["class_path"] == "llada_rec.models.LLaDARec" and model["init_args"][key] == value, name


def test_tokenizer_ablations_compose_in_the_tokenizer_stage(parsed: dict) -> None:
    """The recommender's tokenizer_overrides layer onto the dataset's tokenizer config."""
    for name, class_name in (("rqvae", "RQVAE"), ("rqkmeans", "RQKMeans"), ("opq", "OPQ")):
        for dataset in DATASETS:
            data = parsed[(f"experiments/{dataset}.yaml", f"experiments/ablations/{name}.yaml")]["data"]["items"]
            files = [str(REPO / f) for f in [data["tokenizer_config"], *data["tokenizer_overrides"]]]
            config = load_tokenizer_config(files)
            assert config.model.class_path == f"llada_rec.tokenizers.{class_name}", (name, dataset)
            assert config.model.init_args.num_heads == 4


def test_wandb_logger_keeps_the_csv_run_dir(parsed: dict) -> None:
    """loggers/wandb.yaml last: [CSV, W&B]; the CSV run dir is the one without W&B."""
    for ablation in ABLATIONS:
        alone = loggers(parsed[("experiments/scientific.yaml", ablation)])
        with_wandb = loggers(parsed[("experiments/scientific.yaml", ablation, "experiments/loggers/wandb.yaml")])
        assert [l["class_path"].rsplit(".", 1)[-1] for l in with_wandb] == ["CSVLogger", "WandbLogger"]
        assert with_wandb[0]["init_args"] == alone[0]["init_args"], ablation
        wandb_args = with_wandb[1]["init_args"]
        assert wandb_args["project"] == "llada-rec" and wandb_args["log_model"] is False
        assert wandb_args["version"] is None and wandb_args["id"] is None  # the run id is W&B's, never the ablation name


def test_every_sweep_trial_builds_the_model_with_its_values(monkeypatch) -> None:
    """Each trial of each sweep file parses with the CLI parser as `sweep run` would run it, its
    metric is the one a trial logs (``best/<checkpoint monitor>``), every
    swept value arrives at the key it names (not overridden by the composed configs), and the
    model class accepts the trial's settings (its own range checks run)."""
    trials = [(sweep, params) for sweep in SWEEPS for params in grid(load_sweep(REPO / sweep))]
    assert len(trials) >= 2 * len(SWEEPS)  # every sweep sweeps something
    monkeypatch.chdir(REPO)  # sweep commands name configs relative to the repository root
    configs = parse_cli_args([trial_args(load_sweep(REPO / sweep), params) for sweep, params in trials])
    for (sweep, params), config in zip(trials, configs):
        monitors = {c["init_args"]["monitor"] for c in config.as_dict()["trainer"]["callbacks"] if c["class_path"].endswith("Checkpoint")}
        assert {f"best/{m}" for m in monitors} == {load_sweep(REPO / sweep).metric}, sweep  # the metric a trial logs
        model = config.as_dict()["model"]
        flat = flatten(model, "model")
        for key, value in params.items():
            assert flat[key] == value, (sweep, key)
        model_class = getattr(llada_rec.models, model["class_path"].rsplit(".", 1)[-1])
        built = model_class(**model["init_args"])
        for key, value in params.items():
            assert flatten(dict(built.hparams), "model.init_args")[key] == value, (sweep, key)
