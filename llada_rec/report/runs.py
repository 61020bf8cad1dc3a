"""Run discovery and loading: the run directories below some paths, each run's
``metrics.json`` and ``config.yaml``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from llada_rec.utils import UserError

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

