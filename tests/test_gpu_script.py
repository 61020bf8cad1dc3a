"""benchmarks/gpu.sh, the prepared GPU run, on a CPU with a tiny budget, so it cannot rot."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lcrec_files import write_lcrec_files

REPO = Path(__file__).resolve().parents[1]

TOKENIZER = """seed_everything: 0
model:
  class_path: llada_rec.tokenizers.MultiHeadVQVAE
  init_args: {num_heads: 4, codebook_size: 8, code_dim: 4, hidden_dims: [16], dead_code_steps: 5}
trainer:
  max_epochs: 3
  check_val_every_n_epoch: 1
  enable_checkpointing: false
"""


@pytest.mark.slow
def test_gpu_script_runs_on_cpu_with_a_tiny_budget(tmp_path):
    rng = random.Random(0)
    sequences = {str(u): rng.sample(range(30), rng.randint(5, 8)) for u in range(40)}
    write_lcrec_files(tmp_path / "data" / "amazon18-scientific", sequences, {i: f"item number {i}" for i in range(30)}, name="Scientific")
    (tmp_path / "tok.yaml").write_text(TOKENIZER)
    env = {
        **os.environ, "ACCELERATOR": "cpu", "PRECISION": "32-true", "DATA_ROOT": str(tmp_path / "data"), "DATASETS": "scientific",
        "MINUTES": "0.2", "EVAL_USERS": "8", "BATCH": "8", "D_MODEL": "16", "LAYERS": "1", "HEADS": "2", "BEAM": "4",
        "OUT": str(tmp_path / "out"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "COMPARE_ARGS": f"--kcore 0 --pca-dim 8 --tokenizer-base {tmp_path / 'tok.yaml'} --cache-dir {tmp_path / 'cache'} --threads 1",
        "SPEED_ARGS": "--data synthetic --steps 1 --warmup-steps 1 --repeats 1 --users 2 --batch-size 8 --d-model 16 --layers 1 --heads 2 "
                      "--codebook-size 16 --beam 4 --eval-batch-size 2 --check-users 2 --threads 1",
    }
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh")], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(l for l in done.stdout.splitlines() if l.startswith(str(tmp_path / "out" / "scientific" / "results.json")))
    samples_per_s, users_per_s = (float(x) for x in re.search(r"train (\d+) samples/s .* test ([\d.]+) users/s at beam 4", line).groups())
    assert samples_per_s > 0 and users_per_s > 0
    row = json.loads((tmp_path / "out" / "scientific" / "results.json").read_text())["rows"][0]
    assert row["steps"] > 0 and 0.0 <= row["metrics"]["test/recall@10"] <= 1.0
    speed = json.loads((tmp_path / "out" / "speed.json").read_text())
    assert speed["device"] == "cpu" and speed["exact_matches_reference"] and speed["cached_matches_uncached"]
