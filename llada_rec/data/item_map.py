"""The map between original item ids and the 1-based item indices a model uses, and the run
file that carries it (``item_map.json``), so a trained run recommends without its data files.

``item_map.json`` holds the original ids in index order (row ``i - 1`` is item ``i``), the
history window, and, for models over semantic IDs, the codes ``[N, M]`` and codebook size
(the serving API checks them against the checkpoint's code table).  ``ItemMapWriter`` writes
it when ``fit`` starts training, beside the checkpoints' run directory.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import lightning as L
from lightning.pytorch.callbacks import Callback

from llada_rec.utils import UserError, atomic_write_text, run_dir

ITEM_MAP_FILE = "item_map.json"
FORMAT_VERSION = 1


@dataclass
class ItemMap:
    """Original item ids in index order, the history window and (optionally) semantic IDs."""

    item_ids: list[str]
    max_history: int
    codes: Optional[list[list[int]]] = None  # [N, M] semantic IDs, row i - 1 = item i
    codebook_size: int = 0

    def __post_init__(self) -> None:
        self.index = {item: i + 1 for i, item in enumerate(self.item_ids)}

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    def encode(self, history: Sequence[str]) -> tuple[list[int], list[str]]:
        """Item indices of the newest ``max_history`` known items (oldest first) and the
        unknown ids (in the order given); unknown ids are skipped before the window is cut."""
        known = [self.index[item] for item in history if item in self.index]
        unknown = [item for item in history if item not in self.index]
        return known[-self.max_history :], unknown

    def decode(self, items: Sequence[int], scores: Sequence[float]) -> tuple[list[str], list[float]]:
        """Original ids and scores of the returned entries (item 0 or a non-finite score marks none)."""
        keep = [(self.item_ids[i - 1], float(s)) for i, s in zip(items, scores) if i > 0 and math.isfinite(s)]
        return [item for item, _ in keep], [score for _, score in keep]

    def to_json(self) -> str:
        return json.dumps({"version": FORMAT_VERSION, "item_ids": self.item_ids, "max_history": self.max_history,
                           "codes": self.codes, "codebook_size": self.codebook_size})

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        atomic_write_text(path, self.to_json() + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ItemMap":
        """Read ``item_map.json``; a missing or malformed file is a one-line UserError."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: no item id map; a run writes {ITEM_MAP_FILE} when `fit` starts training "
                            "(runs trained before it have none: fit again, or copy the run's directory whole)")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            item_ids = [str(i) for i in raw["item_ids"]]
            max_history = int(raw["max_history"])
            codes = raw.get("codes")
            codes = [[int(c) for c in row] for row in codes] if codes is not None else None
            codebook_size = int(raw.get("codebook_size") or 0)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise UserError(f"{path}: not an item id map ({type(err).__name__}: {err})") from err
        if len(set(item_ids)) != len(item_ids):
            raise UserError(f"{path}: item ids repeat")
        if codes is not None and len(codes) != len(item_ids):
            raise UserError(f"{path}: {len(codes)} rows of semantic IDs for {len(item_ids)} items")
        return cls(item_ids, max_history, codes, codebook_size)


def item_map_of(datamodule: Any, module: Any) -> Optional[ItemMap]:
    """The item map of a fitted run: the DataModule's ids, the model's window and code table
    (None when the DataModule has no item ids or the model no ``data_info``)."""
    item_ids = getattr(datamodule, "item_ids", None)
    info = getattr(module, "data_info", None)
    if item_ids is None or info is None:
        return None
    table = getattr(module, "item_code_table", None)
    codes = table[1:].tolist() if table is not None else None
    return ItemMap(list(item_ids), int(info.max_history), codes, int(info.codebook_size) if codes is not None else 0)


class ItemMapWriter(Callback):
    """Writes ``item_map.json`` into the run directory when ``fit`` starts training, so every
    checkpoint of the run can be served alone (``llada_rec.serving``).  Rank 0 writes."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        path = run_dir(trainer) / ITEM_MAP_FILE  # every rank asks (a collective call under DDP)
        item_map = item_map_of(trainer.datamodule, pl_module)
        if trainer.is_global_zero and item_map is not None:
            item_map.save(path)
