"""The Python recommend API: a trained run or checkpoint in, ranked original item ids out.

    from llada_rec.serving import Recommender
    rec = Recommender.load("runs/demo/version_0")            # a run directory or a .ckpt
    [top] = rec.recommend([["B0001", "B0002"]], k=10)
    top.items, top.scores                                     # original ids, best first

It loads the model (its class from the checkpoint), the item id map and semantic IDs of the
run (``item_map.json``, checked against the checkpoint) and the decoding settings (the
checkpoint's, or overrides), and ranks with
:meth:`llada_rec.models.base.SequentialRecommender.recommend_new_items`, the method
``predict`` uses: the same history gets the same top-k from both, and from the server.
"""

from __future__ import annotations

import dataclasses
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from llada_rec.data.batches import collate_sequences
from llada_rec.data.item_map import ITEM_MAP_FILE, ItemMap
from llada_rec.lightning_cli import checkpoint_model_class, checkpoint_run_dir
from llada_rec.models.base import SequentialRecommender
from llada_rec.serving.requests import MAX_K, Query, RequestError, parse_query
from llada_rec.utils import UserError

PRECISIONS = ("32", "bf16")


@dataclass
class Recommendation:
    """One history's answer: original item ids and scores, best first, and the unknown ids skipped."""

    items: list[str]
    scores: list[float]
    unknown: list[str]


def run_checkpoint(run: Path) -> Path:
    """A run directory's checkpoint to serve: its best (by the name the checkpoint callback
    recorded, looked up in this directory, so a copied run works), else ``last.ckpt``."""
    checkpoints = run / "checkpoints"
    last = checkpoints / "last.ckpt"
    if last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=True).get("callbacks", {})
        for key, value in state.items():
            best = value.get("best_model_path") if "Checkpoint" in key and isinstance(value, dict) else None
            if best and (checkpoints / Path(best).name).is_file():
                return checkpoints / Path(best).name
    bests = sorted(checkpoints.glob("best*.ckpt"), key=lambda p: p.stat().st_mtime)
    if bests:
        return bests[-1]
    if last.is_file():
        return last
    raise UserError(f"{run}: no checkpoints/last.ckpt or checkpoints/best*.ckpt in this run directory")


def item_map_path(ckpt: Path) -> Path:
    """``item_map.json`` of the checkpoint's run (``<run>/checkpoints/x.ckpt``), else beside it."""
    run = checkpoint_run_dir(ckpt)
    return (run if run is not None else ckpt.parent) / ITEM_MAP_FILE


def load_model(ckpt: Path, decoding: Optional[dict[str, Any]] = None) -> SequentialRecommender:
    """The recommender a checkpoint holds (class from its hyperparameters), in eval mode on CPU."""
    try:
        hparams = torch.load(ckpt, map_location="cpu", weights_only=True).get("hyper_parameters") or {}
    except Exception as err:
        raise UserError(f"{ckpt}: not a readable checkpoint ({type(err).__name__}: {str(err).splitlines()[0][:200]})") from err
    model_class = checkpoint_model_class(hparams, None, str(ckpt))
    if model_class is None or not issubclass(model_class, SequentialRecommender):
        raise UserError(f"{ckpt}: not a recommender checkpoint (model class {hparams.get('_class_path')!r})")
    overrides: dict[str, Any] = {}
    if decoding:
        if "decoding" not in hparams:
            raise UserError(f"{ckpt}: {model_class.__name__} has no decoding settings; drop {sorted(decoding)}")
        saved = hparams["decoding"]
        saved = dataclasses.asdict(saved) if dataclasses.is_dataclass(saved) else dict(saved)
        overrides["decoding"] = {**saved, **decoding}
    try:
        model = model_class.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True, **overrides)
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise UserError(f"{ckpt}: does not load as {model_class.__name__} ({first})") from err
    if model.data_info is None:
        raise UserError(f"{ckpt}: no data sizes (data_info) in the checkpoint; it was not saved by a fit")
    return model.eval()


def check_item_map(model: SequentialRecommender, item_map: ItemMap, ckpt: Path, path: Path) -> None:
    """The item map must describe the checkpoint's items (count, window, semantic IDs)."""
    info = model.data_info
    if item_map.num_items != info.num_items:
        raise UserError(f"{path}: {item_map.num_items} item ids, but {ckpt.name} was trained on {info.num_items} items")
    if item_map.max_history != info.max_history:
        raise UserError(f"{path}: history window {item_map.max_history}, but {ckpt.name} has {info.max_history}")
    if not model.needs_semantic_ids:
        return
    table = getattr(model, "item_code_table", None)
    if item_map.codes is None or table is None:
        missing = f"{path} has no semantic IDs" if item_map.codes is None else f"{ckpt.name} has no item_code_table"
        raise UserError(f"{missing}; {type(model).__name__} decodes semantic IDs and needs both to agree")
    codes = torch.tensor(item_map.codes, dtype=torch.long)
    if codes.shape != table[1:].shape or not torch.equal(codes, table[1:].cpu()):
        differ = int((codes != table[1:].cpu()).any(dim=1).sum()) if codes.shape == table[1:].shape else "all"
        raise UserError(f"{path}: semantic IDs differ from {ckpt.name}'s code table ({differ} items); not this run's item map")


class Recommender:
    """A trained recommender answering histories of original item ids (see the module docstring).

    Args:
        model: a recommender with its ``data_info`` (built).
        item_map: the run's original ids, window and semantic IDs.
        device: "cpu", "cuda", "cuda:1", ...
        precision: "32" (float32) or "bf16" (bfloat16 autocast; log-probabilities stay float32).
        max_k: the largest k a request may ask for.
        batch_size: histories per model call in :meth:`recommend`.
    """

    def __init__(self, model: SequentialRecommender, item_map: ItemMap, device: str = "cpu", precision: str = "32",
                 max_k: int = MAX_K, batch_size: int = 256) -> None:
        if precision not in PRECISIONS:
            raise UserError(f"precision={precision!r}: must be one of {', '.join(PRECISIONS)}")
        if max_k < 1 or batch_size < 1:
            raise UserError(f"max_k={max_k} and batch_size={batch_size} must be >= 1")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.item_map = item_map
        self.precision = precision
        self.max_k = max_k
        self.batch_size = batch_size
        self.default_k = min(int(getattr(model, "top_k", 10)), max_k)

    @classmethod
    def load(cls, path: str | os.PathLike, decoding: Optional[dict[str, Any]] = None, item_map: Optional[str | os.PathLike] = None,
             **kwargs: Any) -> "Recommender":
        """From a checkpoint file or a run directory (its best checkpoint, else last).

        ``decoding``: settings that replace the checkpoint's (e.g. ``{"beam_size": 20}``);
        ``item_map``: the item map file when it is not in the checkpoint's run directory;
        other keyword arguments go to :class:`Recommender`.
        """
        path = Path(path)
        if not path.exists():
            raise UserError(f"{path}: no such checkpoint or run directory")
        ckpt = run_checkpoint(path) if path.is_dir() else path
        map_path = Path(item_map) if item_map is not None else item_map_path(ckpt)
        model = load_model(ckpt, decoding)
        loaded = ItemMap.load(map_path)
        check_item_map(model, loaded, ckpt, map_path)
        return cls(model, loaded, **kwargs)

    def autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def rank(self, queries: Sequence[Query]) -> list[tuple[list[int], list[float]]]:
        """Item indices and scores (k per query, fewer when the model finds fewer), one model
        call for all: the server's batch goes through here."""
        if not queries:
            return []
        history = collate_sequences([(i, 0, q.items, 0) for i, q in enumerate(queries)])["history"].to(self.device)
        with torch.inference_mode(), self.autocast():
            items, scores = self.model.recommend_new_items(history, max(q.k for q in queries))
        items, scores = items.cpu().tolist(), scores.float().cpu().tolist()
        return [(items[i][: q.k], scores[i][: q.k]) for i, q in enumerate(queries)]

    def answer(self, queries: Sequence[Query]) -> list[Recommendation]:
        """Validated queries -> recommendations in original ids."""
        answers = []
        for start in range(0, len(queries), self.batch_size):
            chunk = queries[start : start + self.batch_size]
            for query, (items, scores) in zip(chunk, self.rank(chunk)):
                ids, kept = self.item_map.decode(items, scores)
                answers.append(Recommendation(ids, kept, query.unknown))
        return answers

    def recommend(self, histories: Sequence[Sequence[str | int]], k: Optional[int] = None) -> list[Recommendation]:
        """Top-k for each history of original item ids (oldest first); the newest
        ``max_history`` known items count, unknown ids are skipped and listed back, the
        history's own items are never recommended.  A bad history raises RequestError."""
        k = self.default_k if k is None else k
        queries = [parse_query({"history": list(h), "k": k}, self.item_map, self.default_k, self.max_k, where=f"[{i}].")
                   for i, h in enumerate(histories)]
        return self.answer(queries)
