"""Automatic tokenizer stage: semantic IDs on demand, cached by content.

A recommender config may name a tokenizer config (``data.items.tokenizer_config``) instead of a
ready artifact.  ``build_semantic_ids`` then looks for the artifact under
``<cache_dir>/semantic_ids-<key>``, where the key hashes everything the result depends on
(the embeddings, the item ids, the training items, the tokenizer config's ``model``,
``trainer`` and ``seed_everything`` after defaults are filled in; display and logging
settings of the trainer excepted).  A valid artifact is
reused; a missing or corrupt one is (re)built by training the config's tokenizer with the
config's trainer settings on an in-memory ``ItemDataModule`` (the config's ``data`` section
is ignored: the caller supplies the data).  Configs are parsed by jsonargparse exactly as
``lightning fit --config`` parses them (several files merge in order); no text is evaluated.
"""

from __future__ import annotations

import json
import os
import random
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import lightning as L
import numpy as np
import torch
from jsonargparse import ActionConfigFile
from lightning.pytorch.cli import LightningArgumentParser

from llada_rec.data.items import ItemDataModule
from llada_rec.data.embeddings import embeddings_hash
from llada_rec.tokenizers.artifact import SemanticIds
from llada_rec.tokenizers.base import SemanticIdTokenizer
from llada_rec.utils import ConfigError, sha256_hex

STAGE_VERSION = "llada-rec-semantic-ids-v1"  # bump to invalidate every cached artifact
ConfigPaths = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]
#: Trainer settings that change what is shown or where logs go, never the codes: not in the key.
COSMETIC_TRAINER_KEYS = ("enable_progress_bar", "enable_model_summary", "log_every_n_steps", "logger", "default_root_dir")


def config_parser() -> LightningArgumentParser:
    """The ``fit`` parser's ``model`` / ``trainer`` / ``seed_everything`` keys; ``data`` is
    accepted and ignored."""
    parser = LightningArgumentParser(parser_mode="omegaconf", exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_lightning_class_args(SemanticIdTokenizer, "model", subclass_mode=True)
    parser.add_lightning_class_args(L.Trainer, "trainer")
    parser.add_argument("--seed_everything", type=Union[bool, int], default=0)
    parser.add_argument("--data", type=Optional[dict], default=None)
    parser.add_argument("--ckpt_path", type=Optional[str], default=None)
    return parser


def load_tokenizer_config(tokenizer_config: ConfigPaths) -> Any:
    """Parse one or several YAML files (later ones override) into a jsonargparse Namespace."""
    paths = [tokenizer_config] if isinstance(tokenizer_config, (str, os.PathLike)) else list(tokenizer_config)
    if not paths:
        raise ConfigError("no tokenizer config given")
    args = []
    for path in paths:
        if not Path(path).is_file():
            raise ConfigError(f"tokenizer config {path}: no such file")
        args += ["--config", str(path)]
    try:
        return config_parser().parse_args(args)
    except Exception as err:  # jsonargparse raises argparse errors with the key at fault
        raise ConfigError(f"tokenizer config {', '.join(map(str, paths))}: {err}") from err


def cache_key(config: Any, embeddings: np.ndarray, item_ids: Sequence[str], train_items: np.ndarray, batch_size: int) -> str:
    """Content key of an artifact: data + the settings that shape training."""
    trainer = {k: v for k, v in config.trainer.as_dict().items() if k not in COSMETIC_TRAINER_KEYS}
    settings = {
        "model": config.model.as_dict(),
        "trainer": trainer,
        "seed_everything": config.seed_everything,
        "batch_size": batch_size,
    }
    settings["model"].get("init_args", {}).pop("artifact_dir", None)  # where, not what
    return sha256_hex(
        STAGE_VERSION,
        embeddings_hash(embeddings),
        json.dumps([str(i) for i in item_ids]),
        np.ascontiguousarray(train_items, dtype=np.int64).tobytes(),
        json.dumps(settings, sort_keys=True, default=str),
    )


def build_semantic_ids(
    tokenizer_config: ConfigPaths,
    embeddings: np.ndarray,
    item_ids: list[str],
    train_items: np.ndarray,
    cache_dir: str | os.PathLike,
    batch_size: int = 2048,
) -> Path:
    """The artifact directory for these items under ``cache_dir``, reused or built.

    embeddings: [N, D] (row i - 1 = item i); item_ids: N ids; train_items: 1-based indices
    of the training-split items (the tokenizer trains on them, then codes every item).
    The tokenizer trains on one device (this may run inside another run's process).
    """
    embeddings = np.asarray(embeddings, dtype=np.float32)
    train_items = np.asarray(train_items, dtype=np.int64)
    if embeddings.ndim != 2 or len(embeddings) != len(item_ids):
        raise ValueError(f"embeddings must be [N, D] with N = {len(item_ids)} items, got shape {embeddings.shape}")
    if len(train_items) == 0 or train_items.min() < 1 or train_items.max() > len(item_ids):
        raise ValueError(f"train_items must be non-empty 1-based item indices in [1, {len(item_ids)}]")
    config = load_tokenizer_config(tokenizer_config)
    key = cache_key(config, embeddings, item_ids, train_items, batch_size)
    directory = Path(cache_dir) / f"semantic_ids-{key[:16]}"
    name = config.model.class_path.rsplit(".", 1)[-1]
    init_args = config.model.init_args
    problem = _reuse_problem(directory, item_ids, embeddings, init_args.num_heads, init_args.codebook_size)
    if problem is None:
        print(f"semantic IDs: reusing {directory} ({name}, {len(item_ids)} items)")
        return directory
    print(f"semantic IDs: {problem}; training {name} on {len(train_items)} of {len(item_ids)} items -> {directory}")
    _train(config, directory, embeddings, item_ids, train_items, batch_size, key)
    ids = SemanticIds.load(directory)
    ids.check_compatible(item_ids, init_args.num_heads, init_args.codebook_size, embeddings_hash(embeddings))
    return directory


def _reuse_problem(directory: Path, item_ids: Sequence[str], embeddings: np.ndarray, num_heads: int, codebook_size: int) -> Optional[str]:
    """Why the cached artifact cannot be used, or None when it can."""
    if not directory.exists():
        return "no cached artifact"
    try:
        ids = SemanticIds.load(directory)
        ids.check_compatible(item_ids, num_heads, codebook_size, embeddings_hash(embeddings))
    except ValueError as err:
        return f"rebuilding, the cached one is unusable ({err})"
    return None


def _train(config: Any, directory: Path, embeddings: np.ndarray, item_ids: list[str], train_items: np.ndarray, batch_size: int, key: str) -> None:
    config.model.init_args.artifact_dir = str(directory)
    parser = config_parser()
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes
    seed = config.seed_everything
    seed = 0 if isinstance(seed, bool) else int(seed)
    with _preserved_random_state():
        L.seed_everything(seed, verbose=False)
        init = instantiate(config)
        trainer_kwargs = {k: v for k, v in init.trainer.items()}
        trainer_kwargs["default_root_dir"] = trainer_kwargs.get("default_root_dir") or str(directory.parent / "logs" / key[:16])
        trainer_kwargs.update(devices=1, num_nodes=1, strategy="auto")  # nested in a run: never spawn processes
        trainer = L.Trainer(**trainer_kwargs)
        trainer.fit(init.model, datamodule=ItemDataModule(embeddings, item_ids, train_items, batch_size))


@contextmanager
def _preserved_random_state() -> Iterator[None]:
    """Seed the tokenizer's training without disturbing the caller's random streams."""
    py_state, np_state = random.getstate(), np.random.get_state()
    env_seed = os.environ.get("PL_GLOBAL_SEED")
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        if env_seed is None:
            os.environ.pop("PL_GLOBAL_SEED", None)
        else:
            os.environ["PL_GLOBAL_SEED"] = env_seed
