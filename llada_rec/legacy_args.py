"""Command lines and config files written before the DataModule's settings groups
(``--data.batch_size``, ``data: {batch_size: 256}``) still run: their flat settings are moved
into the groups (``--data.loaders.batch_size``) by the one migration of old settings,
:func:`llada_rec.config_groups.nest_flat_hparams`, with a note naming the new spelling."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from llada_rec.config_groups import nest_flat_hparams
from llada_rec.datamodule.recommendation import RecDataModule


def data_group_of(name: str) -> Optional[str]:
    """The DataModule group holding the setting ``name`` (None: a top-level or unknown one)."""
    nested = nest_flat_hparams(RecDataModule, {name: None})
    return next((group for group, value in nested.items() if isinstance(value, dict) and name in value), None)


def migrate_config_text(text: str) -> Optional[str]:
    """A config's YAML with a flat ``data`` section nested into groups; None when nothing moves."""
    config = yaml.safe_load(text)
    data = config.get("data") if isinstance(config, dict) else None
    if not isinstance(data, dict) or not any(data_group_of(key) for key in data):
        return None
    config["data"] = nest_flat_hparams(RecDataModule, data)
    return yaml.safe_dump(config, sort_keys=False)


def migrate_args(args: Sequence[str]) -> list[str]:
    """``args`` with old flat ``--data.<name>`` flags and ``--config`` files migrated; one note
    on stderr lists what moved."""
    out: list[str] = []
    moved: list[str] = []
    args = list(args)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--data.") and "." not in arg.split("=", 1)[0][len("--data."):]:
            name, eq, value = arg[len("--data."):].partition("=")
            group = data_group_of(name)
            if group is not None:
                arg = f"--data.{group}.{name}{eq}{value}"
                moved.append(f"--data.{name} -> --data.{group}.{name}")
        elif arg == "--config" and i + 1 < len(args) or arg.startswith("--config="):
            path = arg.split("=", 1)[1] if "=" in arg else args[i + 1]
            migrated = migrate_config_text(Path(path).read_text(encoding="utf-8")) if Path(path).is_file() else None
            if migrated is not None:
                moved.append(f"{path}: data settings into their groups")
                out.append(f"--config={migrated}")
                i += 1 if "=" in arg else 2
                continue
        out.append(arg)
        i += 1
    if moved:
        print(f"note: settings of an older version, read in their new groups ({'; '.join(moved)}); "
              "docs/DECISIONS.md, 'Settings groups'", file=sys.stderr)
    return out


def migrated_cli_args(args: Optional[Any]) -> Optional[Any]:
    """The CLI's ``args`` (or ``sys.argv``'s) migrated; dicts and namespaces pass unchanged."""
    if args is None:
        return migrate_args(sys.argv[1:]) if any(a.startswith(("--data.", "--config")) for a in sys.argv[1:]) else None
    return migrate_args(args) if isinstance(args, (list, tuple)) else args
