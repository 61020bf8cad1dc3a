"""Typed settings groups: TransformerConfig (network sizes) and DecodingConfig, their defaults
in one place, the CLI's nested options, and checkpoints that stay plain (weights_only=True)."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import lightning as L
import pytest
import torch

from llada_rec.decoding import DECODING_FIELDS, DecodingConfig
from llada_rec.lightning_cli import LLaDARecCLI, changed_settings
from llada_rec.models.base import DataInfo
from llada_rec.models.baselines import BERT4Rec, RPG, SASRec, TIGER
from llada_rec.config_groups import nest_flat_hparams
from llada_rec.models.llada_rec import LLaDARec
from llada_rec.models.mask_predictor import MaskPredictor
from llada_rec.models.transformer import TransformerConfig
from llada_rec.report.variants import run_settings

NETWORK_FIELDS = {f.name for f in dataclasses.fields(TransformerConfig)}
M, K, N = 2, 4, 12  # heads, codebook size, items


def tiny_llada(**kwargs) -> LLaDARec:
    torch.manual_seed(0)
    model = LLaDARec(network=TransformerConfig(d_model=16, num_layers=1, num_attention_heads=2, dropout=0.0),
                     decoding=DecodingConfig(beam_size=4, val_beam_size=2, num_steps=2, chunk_size=7),
                     temperature=0.5, top_k=5, metric_ks=(1, 5), **kwargs)
    model.data_info = DataInfo(num_items=N, max_history=3, num_heads=M, codebook_size=K)
    model.build(model.data_info, torch.cartesian_prod(torch.arange(K), torch.arange(K))[:N])
    return model.eval()


def save_checkpoint(model: LLaDARec, path: Path, hparams: dict) -> None:
    """What Lightning saves for a module, with the given hyperparameters."""
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams, "pytorch-lightning_version": L.__version__,
                "data_info": dataclasses.asdict(model.data_info)}, path)


def flat(hparams: dict) -> dict:
    """Hyperparameters as checkpoints held them before the groups (flat, ``decode_chunk_size``)."""
    out = {k: v for k, v in hparams.items() if k not in ("network", "decoding")}
    out.update(hparams["network"])
    out.update({("decode_chunk_size" if k == "chunk_size" else k): v for k, v in hparams["decoding"].items()})
    return out


HISTORY = torch.tensor([[0, 1, 2], [3, 4, 5], [0, 0, 7]])


def test_defaults_are_written_once():
    for model_class in (LLaDARec, TIGER, SASRec, BERT4Rec, RPG):
        params = inspect.signature(model_class).parameters
        assert not NETWORK_FIELDS & set(params), model_class  # sizes only inside the network group
        assert isinstance(params["network"].default, TransformerConfig)
    # LLaDA-Rec's sizes are the dataclass's; its block the authors' (docs/DECISIONS.md)
    assert inspect.signature(LLaDARec).parameters["network"].default == TransformerConfig(block="llama")
    assert inspect.signature(MaskPredictor).parameters["network"].default == TransformerConfig()
    for model_class in (LLaDARec, TIGER):
        assert inspect.signature(model_class).parameters["decoding"].default == DecodingConfig()
        assert not set(DECODING_FIELDS) & set(inspect.signature(model_class).parameters)
    # a dict is read onto the model's own default, not the dataclass's
    assert SASRec(network={"d_model": 32}).network_config == TransformerConfig(d_model=32, num_layers=2, num_attention_heads=2, dropout=0.2)


def test_hyperparameters_are_plain_and_bad_settings_are_named():
    model = tiny_llada()
    assert model.hparams["network"] == dataclasses.asdict(model.network_config)
    assert model.hparams["decoding"]["chunk_size"] == 7 and model.decoding.chunk_size == 7
    assert isinstance(model.hparams_initial["decoding"], dict)
    with pytest.raises(TypeError, match=r"network: unknown TransformerConfig setting\(s\) \['d_modle'\]"):
        LLaDARec(network={"d_modle": 8})
    with pytest.raises(ValueError, match="must be >= 1"):
        DecodingConfig(val_beam_size=0)
    with pytest.raises(ValueError, match="order must be one of"):
        DecodingConfig(order="random")
    with pytest.raises(ValueError, match="TIGER decodes left to right"):
        TIGER(decoding=DecodingConfig(num_steps=2))


def test_checkpoint_round_trips_with_weights_only(tmp_path):
    model = tiny_llada(attention="cached_history")
    path = tmp_path / "new.ckpt"
    save_checkpoint(model, path, dict(model.hparams))
    assert torch.load(path, weights_only=True)["hyper_parameters"]["network"]["d_model"] == 16  # no pickled classes
    restored = LLaDARec.load_from_checkpoint(path, weights_only=True).eval()
    assert (restored.network_config, restored.decoding) == (model.network_config, model.decoding)
    for stage in ("val", "test"):
        expected, got = model.recommend(HISTORY, 5, stage), restored.recommend(HISTORY, 5, stage)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1]), stage


def test_old_flat_checkpoint_loads_into_the_groups(tmp_path):
    model = tiny_llada(attention="cached_history")
    old = flat(dict(model.hparams))
    assert "d_model" in old and "decode_chunk_size" in old and "network" not in old
    path = tmp_path / "old.ckpt"
    save_checkpoint(model, path, old)
    assert nest_flat_hparams(LLaDARec, old) == dict(model.hparams)
    restored = LLaDARec.load_from_checkpoint(path, weights_only=True).eval()
    assert (restored.network_config, restored.decoding, restored.hparams.attention) == (model.network_config, model.decoding, "cached_history")
    assert torch.equal(restored.recommend(HISTORY, 5, "test")[0], model.recommend(HISTORY, 5, "test")[0])


def test_cli_parses_nested_options_into_the_dataclasses(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cli = LLaDARecCLI(args=["--model", "LLaDARec", "--model.network.d_model", "64", "--model.network.block", "llama",
                            "--model.decoding.beam_size", "3", "--data.dataset.format", "lcrec", "--data.dataset.path", str(tmp_path)], run=False)
    assert cli.model.network_config == TransformerConfig(d_model=64, block="llama")
    assert cli.model.decoding == DecodingConfig(beam_size=3)
    assert cli.model.hparams["network"]["d_model"] == 64  # plain in the hyperparameters
    with pytest.raises(SystemExit):
        LLaDARecCLI(args=["fit", "--model.help", "LLaDARec"], run=False)
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--model.network.d_model D_MODEL width of every token state. (type: int, default: 256)" in help_text
    assert "--model.decoding.num_steps NUM_STEPS steps T" in help_text


def test_changed_decoding_settings_name_the_output_directory():
    saved = {"decoding": dataclasses.asdict(DecodingConfig()), "top_k": 10}
    assert changed_settings({"decoding": dataclasses.asdict(DecodingConfig(beam_size=1)), "top_k": 10}, saved) == {"beam_size": 1}
    assert changed_settings({"decoding": dataclasses.asdict(DecodingConfig()), "top_k": 5}, saved) == {"top_k": 5}


def test_report_reads_grouped_settings_as_flat_ones():
    model = tiny_llada()
    nested = {"model": {"class_path": "llada_rec.models.LLaDARec", "init_args": dict(model.hparams)}}
    old = {"model": {"class_path": "llada_rec.models.LLaDARec", "init_args": flat(dict(model.hparams))}}
    assert run_settings(nested) == run_settings(old)
    assert run_settings(nested)["num_steps"] == 2 and "chunk_size" not in run_settings(nested)


def test_benchmark_settings_map_onto_the_groups(compare):
    args = compare.model_arguments(LLaDARec, {"d_model": 32, "network.block": "llama", "beam_size": 5, "decoding.num_steps": 2, "alpha": 1.0})
    assert args == {"network": {"d_model": 32, "block": "llama"}, "decoding": {"beam_size": 5, "num_steps": 2}, "alpha": 1.0}


def test_benchmark_variant_settings_override_the_common_ones_in_either_spelling(compare):
    """A variant's ``network.dropout`` beats the benchmark's bare ``dropout`` (it was
    silently ignored), and a variant's bare name beats a common dotted one."""
    common = {"d_model": 32, "dropout": 0.1, "decoding.beam_size": 20}
    args = compare.model_arguments(LLaDARec, common, {"network.dropout": 0.0, "beam_size": 5})
    assert args["network"] == {"d_model": 32, "dropout": 0.0}
    assert args["decoding"] == {"beam_size": 5}
    model = LLaDARec(**args)
    assert model.network_config.dropout == 0.0 and model.decoding.beam_size == 5


def test_benchmark_validates_on_val_users_and_tests_on_eval_users(compare):
    base = ["--format", "lcrec", "--path", "unused"]
    split = compare.data_module(compare.parse_args(base + ["--val-users", "50"]))
    assert split.loaders.val_max_users == 50 and split.loaders.test_max_users is None
    both = compare.data_module(compare.parse_args(base + ["--eval-users", "30"]))
    assert both.loaders.val_max_users == 30 and both.loaders.test_max_users == 30
