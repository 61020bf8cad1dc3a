"""Checks the command line makes before any data work: ranges of model, data and trainer
options, the model class a checkpoint names (looked up among the project's classes,
never imported), and the model names its help lists."""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional

import lightning as L

from llada_rec.tokenizers.artifact import SemanticIds
from llada_rec.tokenizers.stage import load_tokenizer_config
from llada_rec.utils import ConfigError

#: Ranges of model init arguments, by name (the DataModule's groups check their own): checked before
#: anything is built, so a bad value fails in a second with the option named.
ARG_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "lr": (lambda v: v > 0, "> 0"),
    "weight_decay": (lambda v: v >= 0, ">= 0"),
    "dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "alpha": (lambda v: v >= 0, ">= 0"),
    "temperature": (lambda v: v > 0, "> 0"),
    "warmup_ratio": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "beam_size": (lambda v: v >= 1, ">= 1"),
    "val_beam_size": (lambda v: v >= 1, ">= 1"),
    "num_steps": (lambda v: v >= 1, ">= 1"),
    "top_k": (lambda v: v >= 1, ">= 1"),
    "d_model": (lambda v: v >= 1, ">= 1"),
    "num_layers": (lambda v: v >= 1, ">= 1"),
    "num_attention_heads": (lambda v: v >= 1, ">= 1"),
    "chunk_size": (lambda v: v >= 1, ">= 1"),
    "num_heads": (lambda v: v >= 1, ">= 1"),
    "codebook_size": (lambda v: v >= 2, ">= 2"),
}


def check_ranges(values: Any, prefix: str) -> None:
    """Raise ConfigError naming ``prefix.<name>`` for the first value outside its ARG_RULES range
    (settings groups too: ``prefix.network.d_model``)."""
    for name, value in dict(values or {}).items():  # a Namespace flattens groups to "network.d_model"
        if isinstance(value, dict):
            check_ranges(value, f"{prefix}.{name}")
            continue
        rule = ARG_RULES.get(name.rsplit(".", 1)[-1])
        if rule is None or value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        ok, required = rule
        if not ok(value):
            raise ConfigError(f"{prefix}.{name}={value}: must be {required}")


def expected_num_heads(items: Any) -> Optional[int]:
    """M from the data's ``items`` settings without touching the data: the artifact's codes or
    the tokenizer config."""
    if items.get("semantic_ids"):
        ids = SemanticIds.load(items["semantic_ids"])
        return ids.num_heads
    if items.get("tokenizer_config"):
        config = load_tokenizer_config([items["tokenizer_config"], *(items.get("tokenizer_overrides") or [])])
        return config.model.init_args.get("num_heads")
    return None

#: Trainer options our code depends on, with the values it works with (``None``: the default).
TRAINER_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "max_epochs": (lambda v: v >= 1 or v == -1, ">= 1 (or -1, no limit, with --trainer.max_steps N)"),
    "max_steps": (lambda v: v >= 1 or v == -1, ">= 1 (or -1, no limit)"),
    "min_epochs": (lambda v: v >= 0, ">= 0"),
    "min_steps": (lambda v: v >= 0, ">= 0"),
    "check_val_every_n_epoch": (lambda v: v >= 1, ">= 1"),
    "accumulate_grad_batches": (lambda v: v >= 1, ">= 1"),
    "gradient_clip_val": (lambda v: v >= 0, ">= 0"),
    "log_every_n_steps": (lambda v: v >= 1, ">= 1"),
    "num_sanity_val_steps": (lambda v: v >= -1, ">= -1"),
    "val_check_interval": (lambda v: v > 0, "> 0"),
    "limit_train_batches": (lambda v: v > 0, "> 0 (a count, or a fraction up to 1.0)"),
    "limit_val_batches": (lambda v: v >= 0, ">= 0 (a count, or a fraction up to 1.0)"),
    "limit_test_batches": (lambda v: v > 0, "> 0 (a count, or a fraction up to 1.0)"),
    "limit_predict_batches": (lambda v: v > 0, "> 0 (a count, or a fraction up to 1.0)"),
}


def check_trainer(trainer: Any, subcommand: Optional[str]) -> None:
    """Raise ConfigError naming ``--trainer.<option>`` for the first value our code cannot run with."""
    values = dict(trainer or {})
    for name, (ok, required) in TRAINER_RULES.items():
        value = values.get(name)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not ok(value) or (isinstance(value, float) and name.startswith("limit_") and value > 1):
            raise ConfigError(f"--trainer.{name}={value}: must be {required}")
    max_steps = values.get("max_steps")
    if subcommand == "fit" and values.get("max_epochs") == -1 and (max_steps is None or max_steps < 1):
        raise ConfigError("--trainer.max_epochs=-1: the learning-rate schedule needs an end; "
                          "give --trainer.max_steps N, or max_epochs >= 1")


# ---------------------------------------------------------------------------------------
# Model classes: which a config or a checkpoint may name
# ---------------------------------------------------------------------------------------
def project_model_classes() -> dict[str, type]:
    """Every LightningModule class the project defines, by each dotted path a config may use
    (the defining module and the packages that re-export it), from modules already imported."""
    classes: dict[str, type] = {}
    for module_name, module in list(sys.modules.items()):
        if module is None or not (module_name == "llada_rec" or module_name.startswith("llada_rec.")):
            continue
        for attr, value in list(vars(module).items()):
            if isinstance(value, type) and issubclass(value, L.LightningModule) and value.__module__.startswith("llada_rec."):
                classes[f"{module_name}.{attr}"] = value
    return classes


def model_names() -> list[str]:
    """The names of the project's concrete models (classes no other project class derives from)."""
    classes = set(project_model_classes().values())
    bases = {base for cls in classes for base in cls.__mro__[1:]}
    return sorted({cls.__name__ for cls in classes - bases}, key=str.lower)


def loaded_class(class_path: str) -> Optional[type]:
    """The LightningModule ``class_path`` names if its module is already imported (never imports)."""
    module_name, _, name = class_path.rpartition(".")
    value = getattr(sys.modules.get(module_name), name, None) if module_name else None
    return value if isinstance(value, type) and issubclass(value, L.LightningModule) else None


def checkpoint_model_class(hparams: dict[str, Any], configured: Optional[str], ckpt: str) -> Optional[type]:
    """The model class a checkpoint's ``_class_path`` (or else the config's class path) names.

    The checkpoint's name is looked up among the project's classes and the class the config
    names (which the config's parser imported); anything else is refused without importing it."""
    named = hparams.get("_class_path")
    if named is None:
        return loaded_class(configured) if isinstance(configured, str) else None
    if not isinstance(named, str):
        raise ConfigError(f"--ckpt_path {ckpt}: its model class {named!r} is not a class path")
    known = project_model_classes()
    found = known.get(named) or (loaded_class(named) if named == configured else None)
    if found is None:
        raise ConfigError(f"--ckpt_path {ckpt}: names the model class {named!r}, which is not one of this "
                          f"project's models ({', '.join(model_names())}); it is not loaded")
    return found
