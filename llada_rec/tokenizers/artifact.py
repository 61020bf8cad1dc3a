"""The semantic-ID artifact: a directory a tokenizer writes and a recommender reads.

    <dir>/codes.npy          [N, M] int64, row i - 1 = item i, values in [0, K), all rows unique
    <dir>/item_ids.json      [N] original item ids, aligned with the rows
    <dir>/tokenizer.yaml     class_path + init_args of the tokenizer that made it
    <dir>/embeddings.sha256  content hash of the [N, D] embeddings it was made from
    <dir>/stats.json         items, num_heads, codebook_size, collisions_before/after,
                             items_moved, usage_per_head, quantization errors, train time, ...

The directory is written under a temporary name and renamed, so a reader never sees half
of one.  ``SemanticIds.load`` checks every file and ``check_compatible`` compares an
artifact with the data a recommender is about to use.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import yaml

from llada_rec.utils import UserError



class ArtifactError(UserError, ValueError):
    """A semantic-ID artifact that is missing, malformed or made for other data."""


FILES = ("codes.npy", "item_ids.json", "tokenizer.yaml", "embeddings.sha256", "stats.json")


def usage_per_head(codes: np.ndarray, codebook_size: int) -> list[float]:
    """Fraction of each head's K codes used by at least one item: [N, M] -> M floats."""
    return [len(np.unique(codes[:, m])) / codebook_size for m in range(codes.shape[1])]


@dataclass
class SemanticIds:
    """One unique tuple of M codes (values in ``[0, codebook_size)``) per item."""

    codes: np.ndarray  # [N, M] int64
    codebook_size: int
    item_ids: list[str]
    embeddings_hash: str
    stats: dict[str, Any] = field(default_factory=dict)
    tokenizer: dict[str, Any] = field(default_factory=dict)  # {"class_path": ..., "init_args": {...}}
    path: Optional[Path] = None  # where it was loaded from / saved to (for messages)

    def __post_init__(self) -> None:
        self.codes = np.asarray(self.codes)
        self.item_ids = [str(i) for i in self.item_ids]
        self.validate()

    @property
    def num_items(self) -> int:
        return int(self.codes.shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.codes.shape[1])

    @property
    def name(self) -> str:
        return f"semantic-ID artifact {self.path}" if self.path else "semantic-ID artifact"

    def validate(self) -> None:
        """Raise ``ValueError`` naming the artifact and the broken field."""
        codes = self.codes
        if codes.ndim != 2 or codes.shape[1] < 1:
            raise ArtifactError(f"{self.name}: codes.npy must be [items, heads], got shape {codes.shape}")
        if not np.issubdtype(codes.dtype, np.integer):
            raise ArtifactError(f"{self.name}: codes.npy must hold integers, got {codes.dtype}")
        if self.codebook_size < 2:
            raise ArtifactError(f"{self.name}: codebook_size must be >= 2, got {self.codebook_size}")
        if codes.size and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise ArtifactError(
                f"{self.name}: codes must lie in [0, {self.codebook_size}), got [{codes.min()}, {codes.max()}]"
            )
        if len(self.item_ids) != codes.shape[0]:
            raise ArtifactError(f"{self.name}: {codes.shape[0]} code rows but {len(self.item_ids)} item ids")
        if len(set(self.item_ids)) != len(self.item_ids):
            raise ArtifactError(f"{self.name}: item_ids.json repeats item ids")
        duplicates = codes.shape[0] - len(np.unique(codes, axis=0)) if codes.size else 0
        if duplicates:
            raise ArtifactError(f"{self.name}: {duplicates} items share a tuple with another item; codes must be unique")

    # -- files ----------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        """Write into a temporary sibling directory, then rename it to ``directory``
        (replacing an older artifact there)."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
        try:
            with open(tmp / "codes.npy", "wb") as f:
                np.save(f, self.codes.astype(np.int64), allow_pickle=False)
            (tmp / "item_ids.json").write_text(json.dumps(self.item_ids) + "\n", encoding="utf-8")
            (tmp / "tokenizer.yaml").write_text(yaml.safe_dump(_plain(self.tokenizer), sort_keys=False), encoding="utf-8")
            (tmp / "embeddings.sha256").write_text(self.embeddings_hash + "\n", encoding="utf-8")
            stats = {**_plain(self.stats), "items": self.num_items, "num_heads": self.num_heads, "codebook_size": self.codebook_size}
            (tmp / "stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
            old = None
            if directory.exists():
                old = directory.with_name(f".{directory.name}.old-{uuid.uuid4().hex[:8]}")
                os.replace(directory, old)
            os.replace(tmp, directory)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self.path = directory
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "SemanticIds":
        """Read and check an artifact; ``ValueError`` names the file that is missing or bad."""
        directory = Path(directory)
        name = f"semantic-ID artifact {directory}"
        if not directory.is_dir():
            raise ArtifactError(f"{name}: no such directory")
        missing = [f for f in FILES if not (directory / f).is_file()]
        if missing:
            raise ArtifactError(f"{name}: missing {', '.join(missing)}")
        try:
            codes = np.load(directory / "codes.npy", allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise ArtifactError(f"{name}: codes.npy is unreadable ({err})") from err
        item_ids = _read_json(directory / "item_ids.json", name, list)
        stats = _read_json(directory / "stats.json", name, dict)
        try:
            tokenizer = yaml.safe_load((directory / "tokenizer.yaml").read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ArtifactError(f"{name}: tokenizer.yaml is not valid YAML ({err})") from err
        if not isinstance(tokenizer, dict):
            raise ArtifactError(f"{name}: tokenizer.yaml must be a mapping")
        digest = (directory / "embeddings.sha256").read_text(encoding="utf-8").strip()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ArtifactError(f"{name}: embeddings.sha256 is not a sha256 hex digest")
        if not isinstance(stats.get("codebook_size"), int):
            raise ArtifactError(f"{name}: stats.json has no integer codebook_size")
        return cls(codes, stats["codebook_size"], item_ids, digest, stats, tokenizer, path=directory)

    # -- compatibility ---------------------------------------------------------------------
    def check_compatible(
        self,
        item_ids: Sequence[str],
        num_heads: Optional[int] = None,
        codebook_size: Optional[int] = None,
        embeddings_hash: Optional[str] = None,
    ) -> None:
        """Refuse an artifact made for other data or another model shape (``ValueError``)."""
        item_ids = [str(i) for i in item_ids]
        if len(item_ids) != self.num_items:
            raise ArtifactError(f"{self.name}: made for {self.num_items} items, but the data has {len(item_ids)} items")
        if item_ids != self.item_ids:
            i = next(i for i, (a, b) in enumerate(zip(self.item_ids, item_ids)) if a != b)
            raise ArtifactError(
                f"{self.name}: item ids differ from the data's: item {i + 1} is {self.item_ids[i]!r} "
                f"in the artifact but {item_ids[i]!r} in the data"
            )
        if num_heads is not None and num_heads != self.num_heads:
            raise ArtifactError(f"{self.name}: has M={self.num_heads} codes per item, the model expects M={num_heads}")
        if codebook_size is not None and codebook_size != self.codebook_size:
            raise ArtifactError(f"{self.name}: has codebook size K={self.codebook_size}, the model expects K={codebook_size}")
        if embeddings_hash is not None and embeddings_hash != self.embeddings_hash:
            raise ArtifactError(
                f"{self.name}: made from other embeddings (sha256 {self.embeddings_hash[:12]}..., "
                f"data {embeddings_hash[:12]}...)"
            )


def _read_json(path: Path, name: str, kind: type) -> Any:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"{name}: {path.name} is not valid JSON ({err})") from err
    if not isinstance(value, kind):
        raise ArtifactError(f"{name}: {path.name} must hold a JSON {kind.__name__}")
    return value


def _plain(value: Any) -> Any:
    """Tuples -> lists, numpy scalars -> Python, so YAML/JSON can write it."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
