"""The DataModule's settings, in three groups (``--data.dataset.*``, ``--data.items.*``,
``--data.loaders.*``); each value is checked here, once, when its group is made."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional, get_args

from llada_rec.data.embeddings import DEFAULT_EMBEDDING_MODEL
from llada_rec.data.readers import FORMATS
from llada_rec.data.text import DEFAULT_TEXT_FIELDS
from llada_rec.utils import ConfigError

Repeats = Literal["first", "keep"]
TrainOrder = Literal["shuffle", "length_buckets"]


def check_at_least(option: str, value: Optional[int], low: int) -> None:
    """ConfigError ``--data.<option>=<value>: must be >= <low>`` (None passes)."""
    if value is not None and value < low:
        raise ConfigError(f"--data.{option}={value}: must be >= {low}")


def check_choice(option: str, value: Any, choices: tuple) -> None:
    """ConfigError ``--data.<option>=<value>: must be one of ...``."""
    if value not in choices:
        raise ConfigError(f"--data.{option}={value}: must be one of {', '.join(map(str, choices))}")


@dataclass(frozen=True)
class DatasetConfig:
    """Which interactions, where the files are, how they are filtered.

    Args:
        format: ``amazon2023`` (raw reviews + metadata), ``amazon2023-benchmark`` (the official
            5-core leave-one-out split files + metadata), ``lcrec`` or ``recbole``.
        path: directory holding the files.
        category: which category's files in ``path`` (needed when there are several).
        download: fetch missing Amazon 2023 files of ``category`` from ``base_url``.
        base_url: where ``download`` fetches from (default: the Amazon Reviews 2023 site).
        generate_demo: write the embedded, seeded demo data set into ``path`` when missing.
        source: where the files come from and how to get them; the error says it when
            ``path`` does not exist (configs that need external files set it).
        kcore: iterated k-core filter (users and items with fewer interactions dropped).
        repeats: ``first`` keeps a user's earliest interaction with an item, ``keep`` all.
    """

    format: str = "amazon2023"
    path: str = "data/demo"
    category: Optional[str] = None
    download: bool = False
    base_url: Optional[str] = None
    generate_demo: bool = False
    source: Optional[str] = None
    kcore: int = 5
    repeats: Repeats = "first"

    def __post_init__(self) -> None:
        check_choice("dataset.format", self.format, FORMATS)
        check_at_least("dataset.kcore", self.kcore, 0)
        check_choice("dataset.repeats", self.repeats, get_args(Repeats))


@dataclass(frozen=True)
class ItemsConfig:
    """Item text, its embeddings and the items' semantic IDs.

    Args:
        text_fields: metadata fields joined into an item's text, in this order.
        max_text_chars: an item's text is cut to this many characters.
        embedding_model: sentence-transformers name or path; the default is the packaged
            all-MiniLM-L6-v2 (no download); the paper uses sentence-transformers/sentence-t5-base.
        embedding_batch_size: texts per embedding batch.
        pca_dim: whitened PCA of the embeddings to this size (the authors use 128).
        semantic_ids: directory of a tokenizer artifact to use as the items' semantic IDs.
        tokenizer_config: a tokenizer YAML (experiments/tokenizer/*.yaml); when no
            ``semantic_ids`` is given, the tokenizer is trained on first use and cached.
        tokenizer_overrides: YAML files layered on ``tokenizer_config`` in order, e.g.
            ``experiments/tokenizer/rqvae.yaml`` to use RQ-VAE codes (TIGER, Table 4).
        cache_dir: where embeddings and trained semantic IDs are cached, by content.
    """

    text_fields: list[str] = field(default_factory=lambda: list(DEFAULT_TEXT_FIELDS))
    max_text_chars: int = 1000
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    embedding_batch_size: int = 64
    pca_dim: Optional[int] = None
    semantic_ids: Optional[str] = None
    tokenizer_config: Optional[str] = None
    tokenizer_overrides: list[str] = field(default_factory=list)
    cache_dir: str = ".cache/llada_rec"

    def __post_init__(self) -> None:
        check_at_least("items.max_text_chars", self.max_text_chars, 1)
        check_at_least("items.embedding_batch_size", self.embedding_batch_size, 1)
        check_at_least("items.pca_dim", self.pca_dim, 1)


@dataclass(frozen=True)
class LoadersConfig:
    """Batches, training order, and which users evaluation and prediction cover.

    Args:
        batch_size: training samples per batch.
        eval_batch_size: users per validation / test / predict batch.
        item_batch_size: items per batch of the tokenizer view.
        num_workers: DataLoader worker processes.
        train_order: ``length_buckets`` batches training samples of about equal history
            length (shuffled pools sorted by length, batches shuffled), so less padding;
            ``shuffle`` is a plain permutation.
        bucket_pool_batches: batches per length-sorted pool of ``length_buckets`` (1 = no
            sorting; more = batches of more equal lengths).  The measurements behind both
            defaults: docs/DECISIONS.md, "Length-bucketed training batches".
        val_max_users: validate on a fixed random subset of this many users (cheap
            per-epoch validation on large data).
        test_max_users: the same for test (budgeted benchmarks only: the figures then
            cover a subset; with equal sizes val and test keep the same users).
        predict_histories: JSONL file of ``{"user": ..., "history": [item ids]}`` to
            recommend for; by default ``predict`` uses the test users' histories.
    """

    batch_size: int = 256
    eval_batch_size: int = 256
    item_batch_size: int = 2048
    num_workers: int = 0
    train_order: TrainOrder = "length_buckets"
    bucket_pool_batches: int = 8
    val_max_users: Optional[int] = None
    test_max_users: Optional[int] = None
    predict_histories: Optional[str] = None

    def __post_init__(self) -> None:
        for name in ("batch_size", "eval_batch_size", "item_batch_size", "bucket_pool_batches", "val_max_users", "test_max_users"):
            check_at_least(f"loaders.{name}", getattr(self, name), 1)
        check_at_least("loaders.num_workers", self.num_workers, 0)
        check_choice("loaders.train_order", self.train_order, get_args(TrainOrder))
