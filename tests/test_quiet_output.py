"""Output to a file carries nothing a user cannot act on: no model summary of a model without
parameters, no lines about accelerators the machine lacks, no W&B anonymous-setting warning,
no raw ANSI codes, no second kind of progress bar."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llada_rec.cli import quiet_known_noise

from test_failure_safety import TOY_CONFIG, write_toy_data

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_logged_fit_has_no_noise(tmp_path):
    write_toy_data(tmp_path / "data")
    (tmp_path / "toy.yaml").write_text(TOY_CONFIG.replace("  enable_progress_bar: false\n", ""))
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline", "WANDB_SILENT": "false"}
    env.pop("TQDM_DISABLE", None)
    log = tmp_path / "fit.log"
    with log.open("w") as out:  # a file, as `llada-rec fit ... > fit.log 2>&1`
        code = subprocess.run([sys.executable, "-m", "llada_rec", "fit", "--config", "toy.yaml", "--config",
                               str(REPO / "experiments" / "loggers" / "wandb.yaml")],
                              cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=300).returncode
    text = log.read_text()
    assert code == 0, text
    assert "Epoch 0/0" in text and "wandb sync runs/wandb/offline-run-" in text  # the run, its bar and W&B's word
    for noise in ("Total FLOPs", "Trainable params", "GPU available: False", "TPU available: False", "anonymous", "\x1b["):
        assert noise not in text, noise


def test_output_to_a_file_turns_tqdm_bars_off_unless_asked(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    quiet_known_noise()
    assert os.environ["TQDM_DISABLE"] == "1"
    monkeypatch.setenv("TQDM_DISABLE", "0")  # the user's choice stays
    quiet_known_noise()
    assert os.environ["TQDM_DISABLE"] == "0"
