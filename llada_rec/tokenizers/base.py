"""``SemanticIdTokenizer``: what every tokenizer shares, from item embeddings to an artifact.

A tokenizer is a LightningModule with ``data_view = "items"``: it trains (or fits) on the
embeddings of the training-split items, measures at every validation the collision rate
over *all* items, keeps the state with the lowest rate (as the authors select their
checkpoint), and at the end of ``fit`` assigns codes to every item from that state, makes
them unique (``collisions.resolve_collisions``) and writes the artifact (rank 0).

Subclasses build their network in :meth:`build` (the embedding size comes from the data)
and map embeddings to codes in :meth:`assign_codes`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Optional

import lightning as L
import numpy as np
import torch
from torch import Tensor

from llada_rec.data.embeddings import embeddings_hash
from llada_rec.tokenizers.artifact import SemanticIds, usage_per_head
from llada_rec.tokenizers.collisions import CollisionReport, collision_rate, quantization_error, resolve_collisions
from llada_rec.tokenizers.quantizers import perplexity
from llada_rec.utils import destroy_process_group_at_exit, run_dir


class SemanticIdTokenizer(L.LightningModule):
    """Base class: item embeddings [N, D] -> unique semantic IDs [N, M] in ``[0, K)``.

    Args:
        num_heads: M, codes per item.
        codebook_size: K, codes per head.
        artifact_dir: where the artifact goes; default ``<trainer.log_dir>/semantic_ids``.
    """

    data_view = "items"
    #: which trained state codes the items: "lowest_collision_rate" (validated epochs) or "last"
    keep_state = "last"

    def __init__(self, num_heads: int, codebook_size: int, artifact_dir: Optional[str] = None) -> None:
        super().__init__()
        if num_heads < 1:
            raise ValueError(f"num_heads must be >= 1, got {num_heads}")
        if codebook_size < 2:
            raise ValueError(f"codebook_size must be >= 2, got {codebook_size}")
        self.num_heads = num_heads
        self.codebook_size = codebook_size
        self.artifact_dir = artifact_dir
        self.in_dim: Optional[int] = None
        self.artifact_path: Optional[Path] = None  # set at the end of fit
        self.best_collision_rate = math.inf
        self.best_epoch: Optional[int] = None
        self._best_state: Optional[dict[str, Tensor]] = None
        self._val_items: list[Tensor] = []
        self._val_codes: list[Tensor] = []
        self._fit_started = 0.0

    # -- to implement ---------------------------------------------------------------------
    def build(self, in_dim: int) -> None:
        """Create the network / buffers for embeddings of size ``in_dim``."""
        raise NotImplementedError

    def assign_codes(self, embeddings: Tensor) -> tuple[Tensor, Tensor]:
        """embeddings [B, D] -> (codes [B, M] long, squared distances to every code [B, M, K])."""
        raise NotImplementedError

    # -- set-up and checkpoints -----------------------------------------------------------
    def setup(self, stage: str) -> None:
        destroy_process_group_at_exit()  # under DDP: a clean gloo exit (see the function)
        if self.in_dim is None:
            self.in_dim = int(self._datamodule().item_embeddings.shape[1])
            self.build(self.in_dim)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["in_dim"] = self.in_dim
        checkpoint["tokenizer_best"] = {  # a resumed run still ends with the best state
            "collision_rate": self.best_collision_rate,
            "epoch": self.best_epoch,
            "state": self._best_state,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.in_dim is None and checkpoint.get("in_dim"):
            self.in_dim = int(checkpoint["in_dim"])
            self.build(self.in_dim)
        best = checkpoint.get("tokenizer_best")
        if best:  # keep_state="last" saves no state, but the lowest rate and its epoch still count
            self.best_collision_rate, self.best_epoch, self._best_state = best["collision_rate"], best["epoch"], best.get("state")

    def _datamodule(self) -> Any:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "item_embeddings"):
            raise RuntimeError(
                f"{type(self).__name__} needs a DataModule with the item view "
                "(item_embeddings, item_ids, train_items), e.g. RecDataModule or ItemDataModule"
            )
        return dm

    def train_embeddings(self) -> Tensor:
        """Embeddings of the training-split items [N_train, D], on this module's device."""
        dm = self._datamodule()
        items = torch.as_tensor(np.asarray(dm.train_items), dtype=torch.long)
        if len(items) == 0:
            raise ValueError("no training-split items to fit the tokenizer on")
        return torch.as_tensor(dm.item_embeddings, dtype=torch.float32)[items - 1].to(self.device)

    def _from_rank_zero(self, tensor: Tensor) -> Tensor:
        """The same values on every process (k-means and re-seeding sample randomly)."""
        if self.trainer.world_size > 1:
            tensor.copy_(self.trainer.strategy.broadcast(tensor, src=0))
        return tensor

    # -- tokenizing -----------------------------------------------------------------------
    @torch.no_grad()
    def tokenize(self, embeddings: Tensor, batch_size: int = 8192) -> tuple[np.ndarray, np.ndarray]:
        """Codes of all rows, in eval mode and chunks: [N, D] -> (codes [N, M] int64,
        quantization errors [N] float64, the summed squared distance to the chosen codes),
        before collision resolution.  Only one chunk's [B, M, K] distances exist at a time."""
        was_training = self.training
        self.eval()
        codes, errors = [], []
        for chunk in torch.as_tensor(embeddings, dtype=torch.float32).split(batch_size):
            c, d = self.assign_codes(chunk.to(self.device))
            c = c.cpu().numpy().astype(np.int64)
            codes.append(c)
            errors.append(quantization_error(c, d.float().cpu().numpy()))
        self.train(was_training)
        return np.concatenate(codes), np.concatenate(errors)

    @torch.no_grad()
    def distances(self, embeddings: Tensor, batch_size: int = 8192) -> np.ndarray:
        """Squared distances to every code [n, M, K] float32 of a few rows (in chunks)."""
        was_training = self.training
        self.eval()
        rows = [
            self.assign_codes(chunk.to(self.device))[1].float().cpu().numpy()
            for chunk in torch.as_tensor(embeddings, dtype=torch.float32).split(batch_size)
        ]
        self.train(was_training)
        return np.concatenate(rows) if rows else np.zeros((0, self.num_heads, self.codebook_size), np.float32)

    def unique_codes(self, embeddings: Tensor, batch_size: int = 8192) -> tuple[np.ndarray, np.ndarray, CollisionReport]:
        """(codes before, unique codes, report) of all rows: codes in chunks, then the
        collision resolution, which needs the distances of the moving items only."""
        embeddings = torch.as_tensor(embeddings, dtype=torch.float32)
        codes, errors = self.tokenize(embeddings, batch_size)
        unique, report = resolve_collisions(
            codes,
            lambda rows: self.distances(embeddings[torch.as_tensor(rows)], batch_size),
            errors=errors,
            codebook_size=self.codebook_size,
        )
        return codes, unique, report

    # -- validation: collision rate over all items, best state ------------------------------
    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        codes, _ = self.assign_codes(batch["embedding"])
        self._val_items.append(batch["item"])
        self._val_codes.append(codes)

    def on_validation_epoch_end(self) -> None:
        if not self._val_items:
            return
        items, codes = torch.cat(self._val_items), torch.cat(self._val_codes)
        self._val_items, self._val_codes = [], []
        if self.trainer.sanity_checking:
            return  # a few batches of an untrained model: nothing to select by
        if self.trainer.world_size > 1:
            items, codes = self.all_gather(items).reshape(-1), self.all_gather(codes).reshape(-1, self.num_heads)
        order = torch.argsort(items)
        keep = torch.ones_like(order, dtype=torch.bool)  # a sampler may repeat items: count once
        keep[1:] = items[order][1:] != items[order][:-1]
        table = codes[order][keep].cpu().numpy()  # [N, M], by item
        rate = collision_rate(table)
        self.log("val/collision_rate", rate, prog_bar=True, sync_dist=False)
        counts = torch.zeros(self.num_heads, self.codebook_size)
        counts.scatter_add_(1, torch.as_tensor(table.T), torch.ones(table.T.shape))
        for m, (ppl, used) in enumerate(zip(perplexity(counts), (counts > 0).float().mean(1))):
            self.log(f"val/perplexity_h{m}", float(ppl), sync_dist=False)
            self.log(f"val/usage_h{m}", float(used), sync_dist=False)
        if rate <= self.best_collision_rate:  # ties: the later, longer-trained state
            self.best_collision_rate = rate
            self.best_epoch = self.current_epoch
            if self.keep_state == "lowest_collision_rate":
                self._best_state = {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}

    # -- end of fit: codes for every item, unique, artifact ------------------------------------
    def on_fit_start(self) -> None:
        self._fit_started = time.perf_counter()

    def on_fit_end(self) -> None:
        train_time = time.perf_counter() - self._fit_started
        if self._best_state is not None:
            self.load_state_dict(self._best_state)
        dm = self._datamodule()
        embeddings = torch.as_tensor(dm.item_embeddings, dtype=torch.float32)
        codes, unique_codes, report = self.unique_codes(embeddings)
        stats = {
            "tokenizer": type(self).__name__,
            **report.as_dict(),
            "usage_per_head": usage_per_head(unique_codes, self.codebook_size),
            "usage_per_head_before": usage_per_head(codes, self.codebook_size),
            "train_items": int(len(dm.train_items)),
            "best_epoch": self.best_epoch,
            "best_val_collision_rate": None if self._best_state is None else self.best_collision_rate,
            "epochs_run": int(self.current_epoch),
            "train_time_s": round(train_time, 3),
        }
        artifact = SemanticIds(
            codes=unique_codes,
            codebook_size=self.codebook_size,
            item_ids=list(dm.item_ids),
            embeddings_hash=embeddings_hash(embeddings),
            stats=stats,
            tokenizer={"class_path": f"{type(self).__module__}.{type(self).__name__}", "init_args": dict(self.hparams)},
        )
        directory = Path(self.artifact_dir) if self.artifact_dir else self._default_artifact_dir()
        if self.trainer.is_global_zero:
            artifact.save(directory)
            print(
                f"semantic IDs: {report.items} items, M={self.num_heads}, K={self.codebook_size}; "
                f"collisions {report.collisions_before} -> {report.collisions_after}, "
                f"{report.items_moved} items moved; quantization error {report.quantization_error_before:.4f} -> "
                f"{report.quantization_error_after:.4f}; wrote {directory}"
            )
        self.artifact_path = directory

    def _default_artifact_dir(self) -> Path:
        return run_dir(self.trainer) / "semantic_ids"
