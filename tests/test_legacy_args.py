"""Command lines and configs of older versions, with flat DataModule settings, run through the
one migration into the settings groups, and parse to exactly what the grouped spelling does."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llada_rec.config_groups import nest_flat_hparams
from llada_rec.datamodule.recommendation import RecDataModule
from llada_rec.legacy_args import data_group_of, migrate_args, migrate_config_text
from llada_rec.lightning_cli import LLaDARecCLI

REPO = Path(__file__).resolve().parents[1]


def flat_demo_config(tmp_path: Path) -> Path:
    """experiments/demo.yaml as versions before the groups wrote it: data settings flat."""
    config = yaml.safe_load((REPO / "experiments" / "demo.yaml").read_text())
    flat = {k: v for group in ("dataset", "items", "loaders") for k, v in config["data"].pop(group, {}).items()}
    config["data"] = {**config["data"], **flat}
    assert "batch_size" in config["data"] and "tokenizer_config" in config["data"]
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def parsed_data(args: list[str]) -> dict:
    cli = LLaDARecCLI(args=args, run=False)
    return cli.datamodule.hparams


def test_every_flat_setting_finds_its_group_and_group_names_do_not_clash():
    hparams = dict(RecDataModule().hparams)
    for group in ("dataset", "items", "loaders"):
        for name in hparams[group]:
            assert data_group_of(name) == group, name
            assert name not in ("dataset", "items", "loaders")  # a flat key never shadows a group
    assert data_group_of("max_history") is None and data_group_of("seed") is None  # top-level settings stay
    assert nest_flat_hparams(RecDataModule, {"batch_size": 8, "kcore": 2, "seed": 1}) == {
        "loaders": {"batch_size": 8}, "dataset": {"kcore": 2}, "seed": 1}


def test_an_old_flat_config_and_flags_parse_to_the_grouped_ones(tmp_path, capsys):
    old = flat_demo_config(tmp_path)
    common = ["--model", "MostPopular", "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}"]
    migrated = parsed_data(["--config", str(old), "--data.batch_size", "8", "--data.kcore=2", *common])
    assert "--data.batch_size -> --data.loaders.batch_size" in capsys.readouterr().err
    grouped = parsed_data(["--config", str(REPO / "experiments" / "demo.yaml"), "--data.loaders.batch_size", "8",
                           "--data.dataset.kcore=2", *common])
    assert migrated == grouped
    assert migrated["loaders"]["batch_size"] == 8 and migrated["dataset"]["kcore"] == 2
    assert migrated["items"]["tokenizer_config"] == "experiments/tokenizer/demo.yaml"


def test_current_arguments_pass_unchanged(tmp_path):
    args = ["fit", "--config", str(REPO / "experiments" / "demo.yaml"), "--data.loaders.batch_size=8", "--data.max_history", "5"]
    assert migrate_args(args) == args
    assert migrate_config_text((REPO / "experiments" / "demo.yaml").read_text()) is None


def test_the_command_line_runs_an_old_config(tmp_path):
    """End to end through `python -m llada_rec`: the old config prints the grouped settings."""
    old = flat_demo_config(tmp_path)
    result = subprocess.run([sys.executable, "-m", "llada_rec", "fit", "--config", str(old), "--print_config"],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)["data"]
    assert data["dataset"]["category"] == "Demo_Electronics" and data["loaders"]["batch_size"] == 256 and data["max_history"] == 10
