"""Semantic-ID artifact: round trip, validation, compatibility errors, atomic replacement."""

import json

import numpy as np
import pytest

from llada_rec.data.embeddings import embeddings_hash

from llada_rec.tokenizers import SemanticIds


def _artifact(n: int = 6, m: int = 3, k: int = 8) -> SemanticIds:
    rng = np.random.default_rng(0)
    codes = np.array(sorted({tuple(rng.integers(0, k, m)) for _ in range(50)})[:n])
    return SemanticIds(
        codes=codes,
        codebook_size=k,
        item_ids=[f"item{i}" for i in range(n)],
        embeddings_hash=embeddings_hash(np.ones((n, 4), dtype=np.float32)),
        stats={"collisions_before": 2, "usage_per_head": (0.5, 0.25, 0.125)},
        tokenizer={"class_path": "llada_rec.tokenizers.MultiHeadVQVAE", "init_args": {"hidden_dims": (8, 4)}},
    )


def test_round_trip(tmp_path):
    ids = _artifact()
    path = ids.save(tmp_path / "sid")
    loaded = SemanticIds.load(path)
    assert (loaded.codes == ids.codes).all() and loaded.codes.dtype == np.int64
    assert loaded.item_ids == ids.item_ids and loaded.codebook_size == 8 and loaded.num_heads == 3
    assert loaded.embeddings_hash == ids.embeddings_hash
    assert loaded.stats["items"] == 6 and loaded.stats["num_heads"] == 3 and loaded.stats["codebook_size"] == 8
    assert loaded.stats["usage_per_head"] == [0.5, 0.25, 0.125]
    assert loaded.tokenizer["init_args"]["hidden_dims"] == [8, 4]
    loaded.check_compatible(ids.item_ids, num_heads=3, codebook_size=8, embeddings_hash=ids.embeddings_hash)


def test_hash_follows_content_not_dtype():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert embeddings_hash(a) == embeddings_hash(a.astype(np.float64))
    b = a.copy()
    b[2, 3] += 1
    assert embeddings_hash(a) != embeddings_hash(b)
    assert embeddings_hash(a) != embeddings_hash(a.reshape(4, 3))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"item_ids": [f"item{i}" for i in range(7)]}, "made for 6 items, but the data has 7"),
        ({"item_ids": ["item0", "item1", "X", "item3", "item4", "item5"]}, "item 3 is 'item2' in the artifact but 'X'"),
        ({"num_heads": 4}, "M=3 codes per item, the model expects M=4"),
        ({"codebook_size": 16}, "K=8, the model expects K=16"),
        ({"embeddings_hash": "0" * 64}, "made from other embeddings"),
    ],
)
def test_mismatch_errors_name_artifact_and_difference(tmp_path, kwargs, message):
    path = _artifact().save(tmp_path / "sid")
    loaded = SemanticIds.load(path)
    args = {"item_ids": loaded.item_ids, **kwargs}
    with pytest.raises(ValueError, match=message) as err:
        loaded.check_compatible(**args)
    assert str(path) in str(err.value)


def test_bad_artifacts_are_refused(tmp_path):
    path = _artifact().save(tmp_path / "sid")
    (path / "stats.json").write_text("{oops")
    with pytest.raises(ValueError, match="stats.json is not valid JSON"):
        SemanticIds.load(path)
    path = _artifact().save(tmp_path / "sid")  # replaces the broken one
    (path / "codes.npy").unlink()
    with pytest.raises(ValueError, match="missing codes.npy"):
        SemanticIds.load(path)
    with pytest.raises(ValueError, match="no such directory"):
        SemanticIds.load(tmp_path / "nothing")
    ids = _artifact()
    with pytest.raises(ValueError, match="share a tuple"):
        SemanticIds(np.array([[1, 2], [1, 2]]), 4, ["a", "b"], ids.embeddings_hash)
    with pytest.raises(ValueError, match="must lie in \\[0, 4\\)"):
        SemanticIds(np.array([[1, 2], [1, 4]]), 4, ["a", "b"], ids.embeddings_hash)
    with pytest.raises(ValueError, match="2 code rows but 3 item ids"):
        SemanticIds(np.array([[1, 2], [1, 3]]), 4, ["a", "b", "c"], ids.embeddings_hash)


def test_save_replaces_atomically_and_leaves_no_temporaries(tmp_path):
    first = _artifact(n=6)
    first.save(tmp_path / "sid")
    second = _artifact(n=4)
    second.save(tmp_path / "sid")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sid"]
    assert SemanticIds.load(tmp_path / "sid").num_items == 4
    assert json.loads((tmp_path / "sid" / "item_ids.json").read_text()) == second.item_ids
