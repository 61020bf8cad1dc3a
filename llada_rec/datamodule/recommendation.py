"""The one DataModule: raw files -> item embeddings (tokenizer view) and sequence batches
(recommender view).

Which view a run gets follows the LightningModule's ``data_view`` class attribute, so one
config block (`data:`) serves the tokenizer, LLaDA-Rec and every baseline alike.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal, Optional

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from llada_rec.data.batches import (
    EpochShuffleSampler,
    EvalDistributedSampler,
    LengthBucketSampler,
    SequenceSamples,
    collate_sequences,
)
from llada_rec.data.dataset import DataError, SequenceData, preprocess
from llada_rec.data.embeddings import DEFAULT_EMBEDDING_MODEL, embeddings_hash
from llada_rec.data.info import DataInfo
from llada_rec.data.item_map import ItemMap
from llada_rec.data.items import ItemDataModule
from llada_rec.data.samples import Samples
from llada_rec.data.text import DEFAULT_TEXT_FIELDS
from llada_rec.demo.store import DEMO_CATEGORY, write_demo_dataset
from llada_rec.tokenizers.artifact import SemanticIds
from llada_rec.tokenizers.stage import build_semantic_ids

log = logging.getLogger(__name__)

class RecDataModule(L.LightningDataModule):
    """Amazon reviews (or LC-Rec / RecBole files) in, batches for the tokenizer or recommender out.

    Args:
        format: ``amazon2023`` (raw reviews + metadata), ``amazon2023-benchmark`` (the official
            5-core leave-one-out split files + metadata), ``lcrec`` or ``recbole``.
        path: directory holding the files.
        category: which category's files in ``path`` (needed when there are several).
        download: fetch missing Amazon 2023 files of ``category`` from ``base_url``.
        generate_demo: write the embedded, seeded demo data set into ``path`` when missing.
        kcore: iterated k-core filter (users and items with fewer interactions dropped).
        repeats: ``first`` keeps a user's earliest interaction with an item, ``keep`` all.
        max_history: items of history kept before each target (the paper: 20).
        text_fields: metadata fields joined into an item's text, in this order.
        embedding_model: sentence-transformers name or path; the default is the packaged
            all-MiniLM-L6-v2 (no download); the paper uses sentence-transformers/sentence-t5-base.
        pca_dim: whitened PCA of the embeddings to this size (the authors use 128).
        semantic_ids: directory of a tokenizer artifact to use as the items' semantic IDs.
        tokenizer_config: a tokenizer YAML (experiments/tokenizer/*.yaml); when no
            ``semantic_ids`` is given, the tokenizer is trained on first use and cached.
        tokenizer_overrides: YAML files layered on ``tokenizer_config`` in order, e.g.
            ``experiments/tokenizer/rqvae.yaml`` to use RQ-VAE codes (TIGER, Table 4).
        predict_histories: JSONL file of ``{"user": ..., "history": [item ids]}`` to
            recommend for; by default ``predict`` uses the test users' histories.
        val_max_users: validate on a fixed random subset of this many users (cheap
            per-epoch validation on large data).
        test_max_users: the same for test (budgeted benchmarks only: the figures then
            cover a subset; with equal sizes val and test keep the same users).
        source: where the files come from and how to get them; the error says it when
            ``path`` does not exist (configs that need external files set it).
        train_order: "length_buckets" (default) batches training samples of about equal
            history length (shuffled pools sorted by length, batches shuffled), so less
            padding; "shuffle" is a plain permutation.
        bucket_pool_batches: batches per length-sorted pool of ``length_buckets`` (1 = no
            sorting; more = batches of more equal lengths). The measurements behind both
            defaults: docs/DECISIONS.md, "Length-bucketed training batches".
    """

    def __init__(
        self,
        format: str = "amazon2023",
        path: str = "data/demo",
        category: Optional[str] = None,
        download: bool = False,
        base_url: Optional[str] = None,
        generate_demo: bool = False,
        kcore: int = 5,
        repeats: str = "first",
        max_history: int = 20,
        text_fields: list[str] = list(DEFAULT_TEXT_FIELDS),
        max_text_chars: int = 1000,
        embedding_model: str = DEFAULT_EMBEDDING_MODEL,
        embedding_batch_size: int = 64,
        pca_dim: Optional[int] = None,
        semantic_ids: Optional[str] = None,
        tokenizer_config: Optional[str] = None,
        tokenizer_overrides: list[str] = [],
        predict_histories: Optional[str] = None,
        cache_dir: str = ".cache/llada_rec",
        batch_size: int = 256,
        eval_batch_size: int = 256,
        val_max_users: Optional[int] = None,
        test_max_users: Optional[int] = None,
        item_batch_size: int = 2048,
        num_workers: int = 0,
        train_order: Literal["shuffle", "length_buckets"] = "length_buckets",
        bucket_pool_batches: int = 8,
        seed: int = 0,
        source: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.source = source
        self.format = format
        self.path = path
        self.category = category
        self.download = download
        self.base_url = base_url
        self.generate_demo = generate_demo
        self.kcore = kcore
        self.repeats = repeats
        self.max_history = max_history
        self.text_fields = list(text_fields)
        self.max_text_chars = max_text_chars
        self.embedding_model = embedding_model
        self.embedding_batch_size = embedding_batch_size
        self.pca_dim = pca_dim
        self.semantic_ids_path = semantic_ids
        self.tokenizer_config = tokenizer_config
        self.tokenizer_overrides = list(tokenizer_overrides)
        self.predict_histories = predict_histories
        self.cache_dir = Path(cache_dir)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.max_users = {"val": val_max_users, "test": test_max_users}
        self.item_batch_size = item_batch_size
        self.num_workers = num_workers
        if train_order not in ("shuffle", "length_buckets"):
            raise ValueError(f"train_order must be 'shuffle' or 'length_buckets', got {train_order!r}")
        self.train_order = train_order
        if bucket_pool_batches < 1:
            raise ValueError(f"bucket_pool_batches must be >= 1, got {bucket_pool_batches}")
        self.bucket_pool_batches = bucket_pool_batches
        self.seed = seed
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
            from llada_rec.data.readers import read_source

            self._ensure_files()
            if self.source and not Path(self.path).exists():
                raise DataError(f"{self.path}: no such directory; {self.source}")
            raw = read_source(self.format, self.path, self.category)
            self._data = preprocess(raw, kcore=self.kcore, repeats=self.repeats, meta_fields=self.text_fields)
            for reason, count in sorted(self._data.skipped.items()):
                log.info("%s: skipped %d (%s)", self.path, count, reason)
        return self._data

    def _ensure_files(self) -> None:
        if self.generate_demo:
            write_demo_dataset(self.path, category=self.category or DEMO_CATEGORY)
        if self.download:
            from llada_rec.data.download import DEFAULT_BASE_URL, download_category

            if not self.category:
                raise DataError("download needs --data.category (e.g. Industrial_and_Scientific)")
            kinds = ("meta", "benchmark") if self.format == "amazon2023-benchmark" else ("reviews", "meta")
            download_category(self.category, Path(self.path), self.base_url or DEFAULT_BASE_URL, kinds=kinds)

    @property
    def item_ids(self) -> list[str]:
        return self.data.item_ids

    @property
    def train_items(self) -> np.ndarray:
        return self.data.train_items()

    def item_texts(self) -> list[str]:
        from llada_rec.data.text import item_texts

        texts, fallback = item_texts(self.data.item_ids, self.data.item_meta, self.text_fields, self.max_text_chars)
        if fallback:
            log.warning("%d of %d items have no text in fields %s; they use a fallback text", fallback, len(texts), self.text_fields)
        return texts

    @property
    def embeddings(self) -> np.ndarray:
        """[N, D] float32 item text embeddings (cached on disk by model and texts)."""
        if self._embeddings is None:
            from llada_rec.data.embeddings import embed_texts

            self._embeddings = embed_texts(
                self.item_texts(),
                model=self.embedding_model,
                cache_dir=self.cache_dir / "embeddings",
                batch_size=self.embedding_batch_size,
                pca_dim=self.pca_dim,
            )
        return self._embeddings

    @property
    def item_embeddings(self) -> torch.Tensor:
        return torch.as_tensor(self.embeddings)

    def item_codes(self) -> tuple[np.ndarray, int]:
        """([N, M] semantic-ID codes, codebook size K), from an artifact or the automatic stage."""
        if self._item_codes is None:
            path = self.semantic_ids_path
            if path is None:
                if self.tokenizer_config is None:
                    raise DataError(
                        "this model needs semantic IDs: set --data.semantic_ids ARTIFACT_DIR "
                        "(made by `llada-rec fit --config experiments/tokenizer/...`) or "
                        "--data.tokenizer_config experiments/tokenizer/<x>.yaml to build them"
                    )
                path = build_semantic_ids(
                    [self.tokenizer_config, *self.tokenizer_overrides],
                    self.embeddings,
                    self.item_ids,
                    self.train_items,
                    self.cache_dir / "semantic_ids",
                    batch_size=self.item_batch_size,
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
        if shuffle and self.train_order == "length_buckets":
            sampler: Sampler = LengthBucketSampler(dataset, self.batch_size, self.seed, self.bucket_pool_batches)
        elif shuffle:
            sampler = EpochShuffleSampler(dataset, self.seed)
        else:
            trainer = self.trainer
            replicas, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
            sampler = EvalDistributedSampler(dataset, replicas, rank)
        return DataLoader(
            dataset,
            batch_size=self.batch_size if shuffle else self.eval_batch_size,
            sampler=sampler,
            generator=torch.Generator().manual_seed(self.seed),  # workers' seeds; not the global RNG
            collate_fn=collate_sequences,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def _item_module(self) -> ItemDataModule:
        return ItemDataModule(self.embeddings, self.item_ids, self.train_items, self.item_batch_size)

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
        if self.predict_histories is None:
            return self.data.samples("test", self.max_history)
        item_map = self.item_map
        users = {u: i for i, u in enumerate(self.data.user_ids)}
        self._predict_users: list[str] = []
        samples = []
        path = Path(self.predict_histories)
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
        user_id = self._predict_users[sample] if self.predict_histories is not None else self.data.user_ids[user]
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
