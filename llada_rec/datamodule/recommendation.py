"""RecDataModule: raw files -> item embeddings (tokenizer view) and sequence batches
(recommender view)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from llada_rec.config_groups import resolve_configs
from llada_rec.data.batches import (
    EpochShuffleSampler,
    EvalDistributedSampler,
    LengthBucketSampler,
    SequenceSamples,
    collate_sequences,
)
from llada_rec.data.dataset import PAD_ITEM, DataError, SequenceData, preprocess
from llada_rec.data.download import DEFAULT_BASE_URL, download_category
from llada_rec.data.embeddings import embed_texts, embeddings_hash
from llada_rec.data.info import DataInfo
from llada_rec.data.item_map import ItemMap
from llada_rec.data.items import ItemDataModule
from llada_rec.data.readers import read_source
from llada_rec.data.samples import Samples
from llada_rec.data.text import item_texts
from llada_rec.datamodule.settings import DatasetConfig, ItemsConfig, LoadersConfig, check_at_least
from llada_rec.demo.store import DEMO_CATEGORY, write_demo_dataset
from llada_rec.tokenizers.artifact import SemanticIds
from llada_rec.tokenizers.stage import build_semantic_ids

log = logging.getLogger(__name__)


class RecDataModule(L.LightningDataModule):
    """Amazon reviews (or LC-Rec / RecBole files) in, batches for the tokenizer or recommender out.

    Args:
        dataset: which interactions, where the files are, how they are filtered.
        items: item text, its embeddings, the items' semantic IDs.
        loaders: batches, training order, which users evaluation and prediction cover.
        max_history: items of history kept before each target (the paper: 20).
        seed: the training order's and the evaluation subsets' seed.

    Which view a run gets (item embeddings or sequences) follows the LightningModule's
    ``data_view`` class attribute, so one ``data:`` block serves every model.
    """

    def __init__(
        self,
        dataset: DatasetConfig = DatasetConfig(),
        items: ItemsConfig = ItemsConfig(),
        loaders: LoadersConfig = LoadersConfig(),
        max_history: int = 20,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.dataset, self.items, self.loaders = resolve_configs(self, dataset=dataset, items=items, loaders=loaders)
        check_at_least("max_history", max_history, 1)
        self.max_history = max_history
        self.seed = seed
        self.cache_dir = Path(self.items.cache_dir)
        self.max_users = {"val": self.loaders.val_max_users, "test": self.loaders.test_max_users}
        self._data: Optional[SequenceData] = None
        self._embeddings: Optional[np.ndarray] = None
        self._item_codes: Optional[np.ndarray] = None
        self.semantic_id_stats: dict[str, Any] = {}  # the tokenizer artifact's stats.json
        self._codebook_size = 0
        self._splits: dict[str, SequenceSamples] = {}

    # -- loading (each piece once per process, on first use) ----------------------------
    @property
    def data(self) -> SequenceData:
        if self._data is None:
            self._ensure_files()
            if self.dataset.source and not Path(self.dataset.path).exists():
                raise DataError(f"{self.dataset.path}: no such directory; {self.dataset.source}")
            raw = read_source(self.dataset.format, self.dataset.path, self.dataset.category)
            self._data = preprocess(raw, kcore=self.dataset.kcore, repeats=self.dataset.repeats, meta_fields=self.items.text_fields)
            for reason, count in sorted(self._data.skipped.items()):
                log.info("%s: skipped %d (%s)", self.dataset.path, count, reason)
        return self._data

    def _ensure_files(self) -> None:
        if self.dataset.generate_demo:
            write_demo_dataset(self.dataset.path, category=self.dataset.category or DEMO_CATEGORY)
        if self.dataset.download:
            if not self.dataset.category:
                raise DataError("download needs --data.dataset.category (e.g. Industrial_and_Scientific)")
            kinds = ("meta", "benchmark") if self.dataset.format == "amazon2023-benchmark" else ("reviews", "meta")
            download_category(self.dataset.category, Path(self.dataset.path), self.dataset.base_url or DEFAULT_BASE_URL, kinds=kinds)

    @property
    def item_ids(self) -> list[str]:
        return self.data.item_ids

    @property
    def train_items(self) -> np.ndarray:
        return self.data.train_items()

    def item_texts(self) -> list[str]:
        texts, fallback = item_texts(self.data.item_ids, self.data.item_meta, self.items.text_fields, self.items.max_text_chars)
        if fallback:
            log.warning("%d of %d items have no text in fields %s; they use a fallback text", fallback, len(texts), self.items.text_fields)
        return texts

    @property
    def embeddings(self) -> np.ndarray:
        """[N, D] float32 item text embeddings (cached on disk by model and texts)."""
        if self._embeddings is None:
            self._embeddings = embed_texts(
                self.item_texts(),
                model=self.items.embedding_model,
                cache_dir=self.cache_dir / "embeddings",
                batch_size=self.items.embedding_batch_size,
                pca_dim=self.items.pca_dim,
            )
        return self._embeddings

    @property
    def item_embeddings(self) -> torch.Tensor:
        return torch.as_tensor(self.embeddings)

    def item_codes(self) -> tuple[np.ndarray, int]:
        """([N, M] semantic-ID codes, codebook size K), from an artifact or the automatic stage."""
        if self._item_codes is None:
            path = self.items.semantic_ids
            if path is None:
                if self.items.tokenizer_config is None:
                    raise DataError(
                        "this model needs semantic IDs: set --data.items.semantic_ids ARTIFACT_DIR "
                        "(made by `llada-rec fit --config experiments/tokenizer/...`) or "
                        "--data.items.tokenizer_config experiments/tokenizer/<x>.yaml to build them"
                    )
                path = build_semantic_ids(
                    [self.items.tokenizer_config, *self.items.tokenizer_overrides],
                    self.embeddings,
                    self.item_ids,
                    self.train_items,
                    self.cache_dir / "semantic_ids",
                    batch_size=self.loaders.item_batch_size,
                )
            ids = SemanticIds.load(path)
            ids.check_compatible(self.item_ids, embeddings_hash=embeddings_hash(self.embeddings))
            self.semantic_id_stats = {"path": str(path), **ids.stats}
            self._item_codes, self._codebook_size = ids.codes, ids.codebook_size
        return self._item_codes, self._codebook_size

    def data_info(self, with_semantic_ids: bool):
        """Sizes (and codes) a recommender builds itself from; see ``SequentialRecommender``."""
        info = DataInfo(num_items=self.data.num_items, max_history=self.max_history)
        if not with_semantic_ids:
            return info, None
        codes, codebook_size = self.item_codes()
        info.num_heads, info.codebook_size = int(codes.shape[1]), int(codebook_size)
        return info, torch.as_tensor(codes, dtype=torch.long)

    # -- Lightning hooks ------------------------------------------------------------------
    def _view(self) -> str:
        module = self.trainer.lightning_module if self.trainer is not None else None
        return getattr(module, "data_view", "sequences")

    def _needs_semantic_ids(self) -> bool:
        module = self.trainer.lightning_module if self.trainer is not None else None
        return bool(getattr(module, "needs_semantic_ids", False))

    def prepare_data(self) -> None:
        """One process: files, embeddings and the tokenizer stage, all cached on disk."""
        self.data
        if self._view() == "items":
            self.embeddings
        elif self._needs_semantic_ids():
            self.item_codes()

    def setup(self, stage: str) -> None:
        self.data  # every process reads (cheap); caches written by prepare_data are reused

    def split(self, name: str) -> SequenceSamples:
        if name not in self._splits:
            if name == "predict":
                samples = self._predict_samples()
            else:
                samples = self.data.samples(name, self.max_history)
            max_users = self.max_users.get(name)
            if max_users is not None and max_users < len(samples):  # one sample per user, user order
                keep = np.random.default_rng(self.seed).choice(len(samples), max_users, replace=False)
                samples = samples.subset(np.sort(keep))
            self._splits[name] = SequenceSamples(samples)
        return self._splits[name]

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        dataset = self.split(name)
        if shuffle and self.loaders.train_order == "length_buckets":
            sampler: Sampler = LengthBucketSampler(dataset, self.loaders.batch_size, self.seed, self.loaders.bucket_pool_batches)
        elif shuffle:
            sampler = EpochShuffleSampler(dataset, self.seed)
        else:
            trainer = self.trainer
            replicas, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
            sampler = EvalDistributedSampler(dataset, replicas, rank)
        return DataLoader(
            dataset,
            batch_size=self.loaders.batch_size if shuffle else self.loaders.eval_batch_size,
            sampler=sampler,
            generator=torch.Generator().manual_seed(self.seed),  # workers' seeds; not the global RNG
            collate_fn=collate_sequences,
            num_workers=self.loaders.num_workers,
            persistent_workers=self.loaders.num_workers > 0,
        )

    def _item_module(self) -> ItemDataModule:
        return ItemDataModule(self.embeddings, self.item_ids, self.train_items, self.loaders.item_batch_size)

    def train_dataloader(self) -> DataLoader:
        if self._view() == "items":
            return self._item_module().item_train_dataloader()
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        if self._view() == "items":
            return self._item_module().item_val_dataloader()
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", shuffle=False)

    # -- prediction inputs and outputs ------------------------------------------------
    @property
    def item_map(self) -> ItemMap:
        """Original ids <-> item indices, with this run's history window (what serving uses too)."""
        if getattr(self, "_item_map", None) is None:
            self._item_map = ItemMap(self.data.item_ids, self.max_history)
        return self._item_map

    def _predict_samples(self) -> Samples:
        if self.loaders.predict_histories is None:
            return self.data.samples("test", self.max_history)
        item_map = self.item_map
        users = {u: i for i, u in enumerate(self.data.user_ids)}
        self._predict_users: list[str] = []
        samples = []
        path = Path(self.loaders.predict_histories)
        if not path.exists():
            raise DataError(f"{path}: predict_histories file not found")
        with path.open(encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    user, history = str(row["user"]), [str(i) for i in row["history"]]
                except (json.JSONDecodeError, KeyError, TypeError) as err:
                    raise DataError(f'{path}:{line_no}: expected {{"user": ..., "history": [...]}} ({err})') from err
                items, unknown = item_map.encode(history)
                if unknown:
                    raise DataError(f"{path}:{line_no}: unknown item ids {unknown[:5]} (not in the filtered data)")
                self._predict_users.append(user)
                samples.append((users.get(user, -1), items, PAD_ITEM))
        if not samples:
            raise DataError(f"{path}: no histories to predict for")
        return Samples.from_rows(samples)

    def describe_prediction(self, sample: int, items: list[int], scores: list[float]) -> dict[str, Any]:
        """One output row, in original ids: user, history, target (if known), items, scores."""
        user, history, target = self.split("predict").samples[sample]
        user_id = self._predict_users[sample] if self.loaders.predict_histories is not None else self.data.user_ids[user]
        item_ids, item_scores = self.item_map.decode(items, scores)
        row: dict[str, Any] = {
            "user": user_id,
            "history": [self.data.item_ids[i - 1] for i in history],
            "items": item_ids,
            "scores": item_scores,
        }
        if target > 0:
            row["target"] = self.data.item_ids[target - 1]
        return row
