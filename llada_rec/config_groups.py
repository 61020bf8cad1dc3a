"""Typed settings groups as ``__init__`` arguments (a model's network and decoding, the
DataModule's dataset, items and loaders).

A class takes each group as one frozen dataclass argument (``network: TransformerConfig``),
whose default in the signature is the class's default; LightningCLI shows the fields as
nested options (``--model.network.d_model``, ``--data.loaders.batch_size``).  In the
hyperparameters (so in checkpoints) a group is a plain dict, so checkpoints load with
``weights_only=True``; a dict argument is read onto the signature's default.

The one migration: checkpoints and configs written before the groups existed hold the
settings flat (``d_model``, ``beam_size``, ``decode_chunk_size``, ``batch_size``):
:func:`nest_flat_hparams` moves them into their groups; ``load_from_checkpoint``, the CLI's
``--ckpt_path`` and the CLI's reading of ``--config`` files apply it.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import os
import typing
from typing import Any, Mapping

#: flat names of old checkpoints that a group spells differently
LEGACY_NAMES = {"decode_chunk_size": "chunk_size"}


def config_parameters(cls: type) -> dict[str, Any]:
    """``{argument: default config}`` of the dataclass-typed arguments of ``cls.__init__``."""
    for klass in cls.__mro__:  # the __init__ that declares the arguments
        if "__init__" in vars(klass):
            init = vars(klass)["__init__"]
            break
    else:
        return {}
    try:
        hints = typing.get_type_hints(init)
    except (NameError, TypeError):  # annotations this module cannot resolve: no config arguments
        return {}
    params = inspect.signature(init).parameters
    return {name: params[name].default for name, hint in hints.items()
            if name in params and dataclasses.is_dataclass(hint) and isinstance(hint, type)}


def as_config(value: Any, default: Any, name: str) -> Any:
    """``value`` as an instance of ``type(default)``: itself, or a dict read onto ``default``."""
    config_type = type(default)
    if isinstance(value, config_type):
        return value
    if isinstance(value, Mapping):
        known = {f.name for f in dataclasses.fields(config_type)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise TypeError(f"{name}: unknown {config_type.__name__} setting(s) {unknown}; known: {sorted(known)}")
        return dataclasses.replace(default, **value)
    raise TypeError(f"{name} must be a {config_type.__name__} or a dict, got {type(value).__name__}")


def resolve_configs(module: Any, **values: Any) -> list[Any]:
    """The module's config arguments as dataclasses (in the order given), stored as plain
    dicts in its hyperparameters; call after ``save_hyperparameters()``."""
    defaults = config_parameters(type(module))
    configs = []
    for name, value in values.items():
        config = as_config(value, defaults[name], name)
        plain = dataclasses.asdict(config)
        module.hparams[name] = plain
        module._hparams_initial[name] = copy.deepcopy(plain)  # what loggers record
        configs.append(config)
    return configs


def nest_flat_hparams(cls: type, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """Hyperparameters of ``cls`` with flat settings of an old checkpoint (``d_model``,
    ``beam_size``, ...) moved into their config dicts; nested ones are returned unchanged."""
    params = config_parameters(cls)
    init_names = set(inspect.signature(cls.__init__).parameters)
    out = dict(hparams)
    for name, default in params.items():
        fields = {f.name for f in dataclasses.fields(default)}
        moved = {}
        for key in list(out):
            target = LEGACY_NAMES.get(key, key)
            if key not in init_names and target in fields:
                moved[target] = out.pop(key)
        if moved:
            out[name] = {**dict(out.get(name) or {}), **moved}
    return out
