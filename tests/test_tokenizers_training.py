"""Tokenizers under a real ``lightning.Trainer``, and the automatic (cached) stage."""

import lightning as L
import numpy as np
import pytest
import torch
import yaml

from llada_rec.data.items import ItemDataModule
from llada_rec.tokenizers import OPQ, RQVAE, MultiHeadVQVAE, RQKMeans, SemanticIds
from llada_rec.tokenizers.collisions import resolve_collisions
from llada_rec.tokenizers.stage import build_semantic_ids, cache_key, load_tokenizer_config
from llada_rec.utils import ConfigError

QUIET = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)


def _clustered(n: int = 240, dim: int = 12, clusters: int = 30, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)) * 3
    return (centres[rng.integers(0, clusters, n)] + rng.normal(size=(n, dim)) * 0.3).astype(np.float32)


def _item_data(embeddings: np.ndarray, batch_size: int = 64) -> ItemDataModule:
    n = len(embeddings)
    return ItemDataModule(embeddings, [f"it{i}" for i in range(n)], np.arange(1, n - 19), batch_size=batch_size)


def _fit(model, data, tmp_path, max_epochs: int = 2) -> SemanticIds:
    torch.manual_seed(0)
    trainer = L.Trainer(max_epochs=max_epochs, default_root_dir=tmp_path, **QUIET)
    trainer.fit(model, datamodule=data)
    return SemanticIds.load(model.artifact_path)


def test_multihead_vqvae_fit_writes_unique_artifact_from_best_state(tmp_path):
    embeddings = _clustered()
    data = _item_data(embeddings)
    model = MultiHeadVQVAE(num_heads=3, codebook_size=16, code_dim=4, hidden_dims=(32,), keep_state="lowest_collision_rate")
    ids = _fit(model, data, tmp_path, max_epochs=3)
    assert model.artifact_path == tmp_path / "semantic_ids"  # default: <log dir>/semantic_ids
    assert ids.codes.shape == (240, 3) and len(np.unique(ids.codes, axis=0)) == 240
    ids.check_compatible(data.item_ids, num_heads=3, codebook_size=16)
    stats = ids.stats
    assert stats["tokenizer"] == "MultiHeadVQVAE" and stats["train_items"] == 220
    assert stats["collisions_after"] == 0 and stats["items_moved"] == stats["collisions_before"]
    # the codes come from the state with the lowest validation collision rate
    assert stats["collisions_before"] == round(stats["best_val_collision_rate"] * 240)
    assert len(stats["usage_per_head"]) == 3 and all(0 < u <= 1 for u in stats["usage_per_head"])
    assert ids.tokenizer["class_path"].endswith("MultiHeadVQVAE")
    assert ids.tokenizer["init_args"]["num_heads"] == 3


@pytest.mark.parametrize("keep_state", ["last", "lowest_collision_rate"])
def test_keep_state_picks_the_weights_that_code_the_items(tmp_path, keep_state):
    states: dict[int, dict[str, torch.Tensor]] = {}

    class RecordStates(L.Callback):
        def on_validation_epoch_end(self, trainer, pl_module):
            states[trainer.current_epoch] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    model = MultiHeadVQVAE(num_heads=3, codebook_size=16, code_dim=4, hidden_dims=(32,), keep_state=keep_state)
    torch.manual_seed(0)
    trainer = L.Trainer(max_epochs=4, default_root_dir=tmp_path, callbacks=[RecordStates()], **QUIET)
    trainer.fit(model, datamodule=_item_data(_clustered()))
    chosen = 3 if keep_state == "last" else model.best_epoch
    assert sorted(states) == [0, 1, 2, 3] and model.best_epoch is not None  # validated either way
    final = model.state_dict()
    assert all(torch.equal(final[k], v) for k, v in states[chosen].items())
    ids = SemanticIds.load(model.artifact_path)
    assert ids.stats["best_epoch"] == model.best_epoch


def test_keep_state_is_checked():
    with pytest.raises(ValueError, match="keep_state"):
        MultiHeadVQVAE(keep_state="best")


@pytest.mark.parametrize(
    "model",
    [
        RQVAE(num_heads=3, codebook_size=16, code_dim=4, hidden_dims=(32,)),
        RQKMeans(num_heads=3, codebook_size=16),
        OPQ(num_heads=3, codebook_size=16),  # D=10 is not a multiple of M=3: padded rotation
    ],
    ids=lambda m: type(m).__name__,
)
def test_ablation_tokenizers_write_unique_artifacts(tmp_path, model):
    embeddings = _clustered(dim=10)
    ids = _fit(model, _item_data(embeddings), tmp_path, max_epochs=3)
    assert ids.codes.shape == (240, 3) and len(np.unique(ids.codes, axis=0)) == 240
    assert ids.stats["tokenizer"] == type(model).__name__
    # the artifact holds the tokenizer's own codes, except for the items moved off a collision
    codes, _ = model.tokenize(torch.as_tensor(embeddings))
    assert (codes == ids.codes).all(1).sum() == 240 - ids.stats["items_moved"]
    assert ids.stats["quantization_error_after"] >= ids.stats["quantization_error_before"]
    if not isinstance(model, RQVAE):
        assert ids.stats["epochs_run"] == 1  # fitted in on_fit_start, one epoch whatever max_epochs says


def test_opq_requires_power_of_two_codebook():
    with pytest.raises(ValueError, match="2\\^nbits"):
        OPQ(codebook_size=100)


def _config(path, model_class="llada_rec.tokenizers.MultiHeadVQVAE", **trainer):
    config = {
        "seed_everything": 3,
        "model": {"class_path": model_class, "init_args": {"num_heads": 3, "codebook_size": 16, "code_dim": 4, "hidden_dims": [16]}},
        "data": {"format": "ignored", "path": "nowhere"},
        "trainer": {"max_epochs": 2, **QUIET, **trainer},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_stage_reuses_valid_artifact_and_rebuilds_on_change(tmp_path, monkeypatch):
    fits = []
    original_fit = L.Trainer.fit

    def spy_fit(self, *args, **kwargs):
        fits.append(1)
        return original_fit(self, *args, **kwargs)

    monkeypatch.setattr(L.Trainer, "fit", spy_fit)
    config = _config(tmp_path / "tok.yaml")
    embeddings = _clustered(n=120)
    item_ids = [f"it{i}" for i in range(120)]
    train_items = np.arange(1, 101)
    cache = tmp_path / "cache"

    torch.manual_seed(123)
    first = build_semantic_ids(config, embeddings, item_ids, train_items, cache)
    after_stage = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after_stage, torch.rand(3))  # the caller's random stream is untouched
    assert len(fits) == 1 and SemanticIds.load(first).num_items == 120
    assert first.parent == cache and first.name.startswith("semantic_ids-")

    assert build_semantic_ids(config, embeddings, item_ids, train_items, cache) == first
    assert len(fits) == 1  # reused, no training
    quieter = _config(tmp_path / "quieter.yaml", log_every_n_steps=7)  # display only: same artifact
    assert build_semantic_ids(quieter, embeddings, item_ids, train_items, cache) == first
    assert len(fits) == 1
    longer = load_tokenizer_config(_config(tmp_path / "longer.yaml", max_epochs=3))
    assert cache_key(longer, embeddings, item_ids, train_items, 2048) != cache_key(
        load_tokenizer_config(config), embeddings, item_ids, train_items, 2048
    )

    changed = embeddings.copy()
    changed[0, 0] += 1.0
    second = build_semantic_ids(config, changed, item_ids, train_items, cache)
    assert len(fits) == 2 and second != first
    assert SemanticIds.load(second).embeddings_hash != SemanticIds.load(first).embeddings_hash

    (first / "codes.npy").unlink()  # corrupt: rebuilt in place
    assert build_semantic_ids(config, embeddings, item_ids, train_items, cache) == first
    assert len(fits) == 3 and SemanticIds.load(first).num_items == 120


def test_stage_merges_configs_like_the_cli(tmp_path):
    base = _config(tmp_path / "base.yaml")
    override = tmp_path / "rqkmeans.yaml"
    override.write_text(yaml.safe_dump({"model": {"class_path": "llada_rec.tokenizers.RQKMeans", "init_args": {"num_heads": 2}}}))
    embeddings = _clustered(n=100)
    path = build_semantic_ids([base, override], embeddings, [str(i) for i in range(100)], np.arange(1, 90), tmp_path / "c")
    ids = SemanticIds.load(path)
    assert ids.tokenizer["class_path"].endswith("RQKMeans")
    assert ids.num_heads == 2 and ids.codebook_size == 16  # K kept from the base config
    with pytest.raises(ConfigError, match="no such file"):
        build_semantic_ids(tmp_path / "missing.yaml", embeddings, [str(i) for i in range(100)], np.arange(1, 90), tmp_path / "c")


def test_checkpoint_rebuilds_network_and_keeps_best_state(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    data = _item_data(_clustered())
    model = MultiHeadVQVAE(num_heads=2, codebook_size=16, code_dim=4, hidden_dims=(16,), keep_state="lowest_collision_rate")
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val/collision_rate", mode="min", save_last=True)
    trainer = L.Trainer(max_epochs=3, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[checkpoint])
    trainer.fit(model, datamodule=data)
    restored = MultiHeadVQVAE.load_from_checkpoint(tmp_path / "ckpt" / "last.ckpt")
    assert restored.in_dim == 12 and restored.best_epoch == model.best_epoch
    restored.load_state_dict(restored._best_state)
    codes, _ = restored.tokenize(data.item_embeddings)
    ids = SemanticIds.load(model.artifact_path)
    assert (codes == ids.codes).all(1).sum() == 240 - ids.stats["items_moved"]


def test_chunked_unique_codes_equal_the_unchunked_ones():
    """unique_codes in chunks of 7 rows gives the codes and report of one [N, M, K] table
    (the quantization errors up to float32 rounding: a chunk's distances are another matmul)."""
    embeddings = torch.as_tensor(_clustered(dim=10))
    model = RQKMeans(num_heads=2, codebook_size=16, kmeans_iters=5)  # 256 tuples, 240 items: collisions
    model.build(10)
    model.fit_codes(embeddings[:120])
    codes_all, distances_all = model.assign_codes(embeddings)
    expected, expected_report = resolve_collisions(codes_all.numpy(), distances_all.numpy())
    before, unique, report = model.unique_codes(embeddings, batch_size=7)
    assert (before == codes_all.numpy()).all()
    assert report.collisions_before > 0 and report.items_moved > 0
    assert (unique == expected).all()
    for key, value in expected_report.as_dict().items():
        assert getattr(report, key) == pytest.approx(value, rel=1e-6), key
