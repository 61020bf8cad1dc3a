"""Nothing a user does loses a finished result: a failed or interrupted write leaves every
earlier run file byte-identical, no temporary file behind, and says where the results are."""

from __future__ import annotations

import builtins
import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from llada_rec.cli import main

from lcrec_files import write_lcrec_files

TOY_CONFIG = """\
model:
  class_path: llada_rec.models.baselines.MostPopular
data: {format: lcrec, path: data, kcore: 0}
trainer:
  max_epochs: 1
  default_root_dir: runs
  enable_progress_bar: false
  logger:
    class_path: lightning.pytorch.loggers.CSVLogger
    init_args: {save_dir: runs, name: toy}
  callbacks:
    - class_path: llada_rec.callbacks.ResumableCheckpoint
      init_args: {save_last: true, monitor: val/ndcg@10, mode: max, filename: "best-epoch{epoch}", auto_insert_metric_name: false}
"""
RUN = Path("runs/toy/version_0")


def write_toy_data(path: Path, num_items: int = 12) -> None:
    items = [f"i{k}" for k in range(num_items)]
    sequences = {f"u{u}": [items[(u + 3 * j) % num_items] for j in range(6)] for u in range(24)}
    write_lcrec_files(path, sequences, {i: f"title {i}" for i in items})


def checksums(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (temporary files included: none may be left)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def run(args: list[str], capsys) -> tuple[int, str, str]:
    """Run the CLI; (exit code, stdout, the last line of stderr), after checking that stderr
    has no traceback and one error line, its last."""
    try:
        main(args)
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("llada-rec: error")]
    assert len(errors) == (code != 0) and (not errors or err.strip().splitlines()[-1] == errors[0]), err
    return code, out, errors[0] if errors else ""


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished run: fit, then test with top_k=20 (the variant folder ``top_k=20``)."""
    root = tmp_path_factory.mktemp("trained")
    write_toy_data(root / "data")
    (root / "toy.yaml").write_text(TOY_CONFIG)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        main(["fit", "--config", "toy.yaml"])
        main(["test", "--config", "toy.yaml", "--ckpt_path", "last", "--model.init_args.top_k", "20"])
    finally:
        os.chdir(cwd)
    assert (root / RUN / "top_k=20" / "metrics.json").is_file() and (root / RUN / "checkpoints" / "last.ckpt").is_file()
    return root


@pytest.fixture
def project(trained, tmp_path, monkeypatch) -> Path:
    """A copy of the finished run to work in (the current directory)."""
    copy = tmp_path / "project"
    shutil.copytree(trained, copy)
    monkeypatch.chdir(copy)
    return copy


def fail_writes(monkeypatch, name: str, how: str) -> None:
    """Make writing any file whose name contains ``name`` fail with "No space left on device":
    ``how="write"`` when it is opened for writing (or a written file is moved there),
    ``how="replace"`` when it is renamed into place."""
    def disk_full(path) -> OSError:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    if how == "write":
        real_open = builtins.open

        def open_(file, mode="r", *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and name in os.path.basename(file) and set(mode) & set("wax+"):
                raise disk_full(file)
            return real_open(file, mode, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", open_)
        real_move = shutil.move  # Lightning writes a checkpoint to a temporary file, then moves it

        def move(src, dst, *args, **kwargs):
            if name in os.path.basename(dst):
                raise disk_full(dst)
            return real_move(src, dst, *args, **kwargs)

        monkeypatch.setattr(shutil, "move", move)
    else:
        real_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            if name in os.path.basename(dst):
                raise disk_full(dst)
            return real_replace(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, "replace", replace)


TEST = ["test", "--config", "toy.yaml", "--ckpt_path", "last", "--model.init_args.top_k", "20"]
PREDICT = ["predict", "--config", "toy.yaml", "--ckpt_path", "last", "--model.init_args.top_k", "20"]
FIT = ["fit", "--config", "toy.yaml"]
FAULTS = [
    (TEST, "metrics.json", "replace"), (TEST, "metrics.json", "write"), (TEST, "config.yaml", "replace"),
    (TEST, "config.yaml", "write"), (PREDICT, "predictions.jsonl", "replace"), (PREDICT, "predictions.jsonl", "write"),
    (PREDICT, "config.yaml", "replace"), (FIT, "last.ckpt", "replace"), (FIT, "last.ckpt", "write"),
    (FIT, "best-epoch0.ckpt", "write"), (FIT, "config.yaml", "write"), (FIT, "hparams.yaml", "write"),
    (FIT, "metrics.csv", "write"),
]
QUICK = {0, 5, 8}  # one per command outside the slow set


@pytest.mark.parametrize(
    "args, name, how",
    [pytest.param(*f, marks=() if i in QUICK else pytest.mark.slow, id=f"{f[0][0]}-{f[1]}-{f[2]}") for i, f in enumerate(FAULTS)],
)
def test_a_failing_write_changes_no_earlier_file_and_says_where_the_results_are(args, name, how, project, monkeypatch, capsys):
    before = checksums(project / "runs")
    fail_writes(monkeypatch, name, how)
    code, out, err = run(args, capsys)
    monkeypatch.undo()
    after = checksums(project / "runs")
    assert code == 1, err
    assert name in err and "No space left on device" in err
    assert {k: v for k, v in after.items() if k in before} == before  # every earlier file byte-identical
    assert not [k for k in after if k.endswith(".tmp")]
    if args is FIT:  # a new version folder; what it kept is named
        assert set(after) - set(before) <= {k for k in after if k.startswith("toy/version_1/")}
        kept = [k for k in set(after) - set(before) if k.endswith(".ckpt")]
        assert all(f"runs/{k}" in err for k in kept) and ("kept:" in err if kept else "nothing was written" in err)
    else:  # the results are printed, since they could not be written
        assert set(after) == set(before)
        shown = out.split(" (not written) ---\n", 1)[-1]
        if args is TEST:
            assert json.loads(shown.split("\n---")[0])["test/ndcg@10"] >= 0
        else:
            assert '"items": [' in shown and "predictions.jsonl (not written)" in out


def test_failed_test_and_predict_leave_the_finished_run_as_it_was(project, capsys):
    """The issue's case: a test that failed used to overwrite the variant folder's config.yaml
    first.  Here test reads missing data, and predict fails on a bad histories file once the
    run is set up (its config.yaml staged)."""
    before = checksums(project / "runs")
    code, _, err = run([*TEST, "--data.dataset.path", "missing"], capsys)
    assert code == 1 and "missing" in err, err
    (project / "histories.jsonl").write_text('{"user": "x", "history": ["nope"]}\n')
    code, _, err = run([*PREDICT, "--data.loaders.predict_histories", "histories.jsonl"], capsys)
    assert code == 1 and "histories.jsonl:1: unknown item ids ['nope']" in err, err
    assert checksums(project / "runs") == before


def test_a_successful_test_replaces_the_files_and_says_where(project, capsys):
    before = checksums(project / "runs")
    code, out, _ = run([*TEST, "--data.loaders.eval_batch_size", "7"], capsys)
    after = checksums(project / "runs")
    assert code == 0 and f"wrote test metrics to {RUN / 'top_k=20' / 'metrics.json'}" in out
    assert set(after) == set(before) and after["toy/version_0/top_k=20/config.yaml"] != before["toy/version_0/top_k=20/config.yaml"]
    assert after["toy/version_0/top_k=20/metrics.json"] == before["toy/version_0/top_k=20/metrics.json"]  # same figures


def test_fast_dev_run_keeps_no_checkpoint(tmp_path, monkeypatch, capsys):
    """Lightning turns loggers off for it, so a checkpoint would land in runs/checkpoints/,
    outside any version folder (and `--ckpt_path last` would never find it)."""
    monkeypatch.chdir(tmp_path)
    write_toy_data(tmp_path / "data")
    (tmp_path / "toy.yaml").write_text(TOY_CONFIG)
    code, _, _ = run(["fit", "--config", "toy.yaml", "--trainer.fast_dev_run", "true"], capsys)
    assert code == 0 and not list(tmp_path.rglob("*.ckpt")) and not (tmp_path / "runs" / "checkpoints").exists()
