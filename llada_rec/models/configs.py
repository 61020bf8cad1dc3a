"""Model classes with settings groups: ``load_from_checkpoint`` reads old flat checkpoints
through the one migration in :mod:`llada_rec.config_groups`."""

from __future__ import annotations

import os
from typing import Any

import torch

from llada_rec.config_groups import config_parameters, nest_flat_hparams


class ConfigurableModel:
    """Mixin of LightningModules with config arguments: ``load_from_checkpoint`` also reads
    checkpoints whose hyperparameters are flat (saved before the configs)."""

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(checkpoint_path, (str, os.PathLike)) and os.path.isfile(checkpoint_path):
            hparams = torch.load(checkpoint_path, map_location="cpu", weights_only=True).get("hyper_parameters") or {}
            nested = nest_flat_hparams(cls, hparams)
            kwargs = {**{k: v for k, v in nested.items() if k in config_parameters(cls) and k not in hparams}, **kwargs}
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)  # type: ignore[misc]
