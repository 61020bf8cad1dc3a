"""Write a tiny data set in the LC-Rec json format (``<name>.inter.json`` + ``<name>.item.json``)."""

from __future__ import annotations

import json
from pathlib import Path


def write_lcrec_files(path: Path, sequences: dict, titles: dict, name: str = "toy") -> None:
    """sequences {user: [item, ... oldest first]}, titles {item: title}, under ``path`` (created)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / f"{name}.inter.json").write_text(json.dumps(sequences))
    (path / f"{name}.item.json").write_text(json.dumps({item: {"title": title} for item, title in titles.items()}))
