"""Sweep files (W&B format) and `llada-rec sweep`: expansion, CLI parsing, local runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import pytest
import yaml

from llada_rec import sweep as sweep_mod
from llada_rec.sweep import SweepError, Trial, load_sweep, parse_cli_args, plan_trials, run_trials, trial_args

REPO = Path(__file__).resolve().parents[1]
SWEEP_FILES = sorted((REPO / "experiments" / "sweeps").glob("*.yaml"))


@pytest.fixture(autouse=True)
def repo_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # sweep commands name configs relative to the repository root


def write_sweep(path: Path, parameters: dict, method: str = "grid", command: list | None = None) -> Path:
    spec = {
        "method": method,
        "metric": {"name": "best/val/ndcg@10", "goal": "maximize"},
        "parameters": parameters,
        "command": command or ["${env}", "${interpreter}", "-m", "llada_rec", "sweep", "run", "--config", "experiments/demo.yaml", "--config", "experiments/loggers/wandb.yaml", "${args}"],
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def get_key(namespace: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        namespace = namespace[part]
    return namespace


def test_every_sweep_file_expands_into_command_lines_the_cli_accepts() -> None:
    assert len(SWEEP_FILES) >= 2
    arg_lists, expected = [], []
    for path in SWEEP_FILES:
        sweep = load_sweep(path)
        assert sweep.metric == "best/val/ndcg@1" and sweep.method == "grid"
        assert "experiments/loggers/wandb.yaml" in sweep.command  # an agent's runs log to W&B
        trials = plan_trials(sweep)
        assert len(trials) == len(sweep_mod.grid(sweep)) > 1
        for trial in trials:
            # what a W&B agent runs (W&B logger kept) and what a local sweep runs (CSV only)
            arg_lists += [trial_args(sweep, trial.params, keep_loggers=True), trial.args]
            expected += [trial.params, trial.params]
    configs = parse_cli_args(arg_lists)
    for config, params, args in zip(configs, expected, arg_lists):
        for key, value in params.items():
            assert get_key(config, key) == value, (key, args)
        loggers = config.trainer.logger if isinstance(config.trainer.logger, list) else [config.trainer.logger]
        assert any("WandbLogger" in l.class_path for l in loggers) == ("experiments/loggers/wandb.yaml" in args)


def test_agent_command_matches_wandb_args_macro() -> None:
    """W&B's own expansion of ${args} gives exactly the LightningCLI arguments we plan."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    sweep = load_sweep(REPO / "experiments" / "sweeps" / "alpha_lr.yaml")
    params = {"model.init_args.alpha": 3.5, "model.init_args.lr": 0.003}
    wandb_args = create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})["args"]
    agent_command: list[str] = []
    for chunk in sweep.command:  # the agent's macro substitution
        agent_command += {"${env}": ["/usr/bin/env"], "${interpreter}": ["python"], "${args}": wandb_args}.get(chunk, [chunk])
    assert agent_command[:6] == ["/usr/bin/env", "python", "-m", "llada_rec", "sweep", "run"]
    assert agent_command[6:] == trial_args(sweep, params, keep_loggers=True)
    assert wandb_args == ["--model.init_args.alpha=3.5", "--model.init_args.lr=0.003"]


def test_a_misspelt_key_fails_the_parse(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sweep = load_sweep(write_sweep(tmp_path / "typo.yaml", {"model.init_args.alpah": {"values": [1.0]}}))
    with pytest.raises(SystemExit):
        parse_cli_args([t.args for t in plan_trials(sweep)])
    assert "alpah" in capsys.readouterr().err


def test_plan_grid_random_and_extra_arguments(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path / "s.yaml",
        {"model.init_args.alpha": {"values": [1.0, 2.0, 3.0]}, "model.init_args.lr": {"min": 1.0e-4, "max": 1.0e-2, "distribution": "log_uniform_values"}, "seed_everything": {"value": 7}},
        method="bayes",
    )
    sweep = load_sweep(path)
    with pytest.raises(SweepError, match="parameters? model.init_args.lr: a grid needs `values`"):
        plan_trials(sweep, method="grid")
    with pytest.raises(SweepError, match="--max-runs"):
        plan_trials(sweep)  # bayes runs as random locally: needs a bound
    trials = plan_trials(sweep, max_runs=20, seed=3, extra=["--trainer.max_epochs=2"])
    assert len(trials) == 20
    assert {t.params["model.init_args.alpha"] for t in trials} <= {1.0, 2.0, 3.0}
    assert all(1.0e-4 <= t.params["model.init_args.lr"] <= 1.0e-2 for t in trials)
    assert {t.params["seed_everything"] for t in trials} == {7}
    assert [t.params for t in plan_trials(sweep, max_runs=20, seed=3)] == [t.params for t in trials]  # seeded
    args = trials[0].args
    assert "experiments/loggers/wandb.yaml" not in args  # local runs log to CSV only
    assert args[:3] == ["--config", "experiments/demo.yaml", "--trainer.max_epochs=2"]  # extras before params
    assert args[3].startswith("--model.init_args.alpha=") and args[-1] == "--seed_everything=7"
    grid_sweep = load_sweep(write_sweep(tmp_path / "g.yaml", {"a": {"values": [1, 2]}, "b": {"values": ["x", "y", "z"]}}))
    assert [t.params for t in plan_trials(grid_sweep, max_runs=4)] == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"}, {"a": 2, "b": "x"}]


@pytest.mark.parametrize(
    "spec, command, message",
    [
        ({"x": {"values": []}}, None, r"parameters.x.values: expected a non-empty list"),
        ({"x": {"min": 2, "max": 1}}, None, r"parameters.x: min/max"),
        ({"x": {"values": [1], "step": 2}}, None, r"parameters.x: unknown field"),
        ({"x": {"values": [1]}}, ["python", "-m", "llada_rec", "fit"], r"must contain \$\{args\}"),
        ({"x": {"values": [1]}}, ["python", "-m", "llada_rec", "fit", "${args}"], r"sweep run"),
    ],
)
def test_bad_sweep_files_name_file_and_field(tmp_path: Path, spec: dict, command: list | None, message: str) -> None:
    path = write_sweep(tmp_path / "bad.yaml", spec, command=command)
    with pytest.raises(SweepError, match=message) as info:
        load_sweep(path)
    assert str(path) in str(info.value)


def fake_runner(root: Path):
    """A stand-in for fit + test: writes a run dir with metrics.json, score from alpha."""

    def run(args: Sequence[str]) -> dict[str, Any]:
        params = dict(a[2:].split("=", 1) for a in args if a.startswith("--model.init_args."))
        alpha = float(params["model.init_args.alpha"])
        if alpha == 2.0:
            raise RuntimeError("out of memory")
        run_dir = root / f"alpha_{alpha}"
        run_dir.mkdir(parents=True)
        metrics = {"test/recall@10": alpha / 10, "test/ndcg@10": alpha / 20}
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
        return {"run_dir": str(run_dir), "metrics": metrics, "monitor": "val/ndcg@10", "best_score": 1.0 / alpha}

    return run


def test_local_sweep_collects_results_and_survives_a_failed_trial(tmp_path: Path) -> None:
    sweep = load_sweep(write_sweep(tmp_path / "s.yaml", {"model.init_args.alpha": {"values": [1.0, 2.0, 4.0]}}))
    out = tmp_path / "out"
    trials = run_trials(sweep, plan_trials(sweep), out, runner=fake_runner(tmp_path / "runs"))
    assert [t.status for t in trials] == ["ok", "failed", "ok"]
    assert "out of memory" in trials[1].error
    assert [t.score for t in trials] == [1.0, None, 0.25]  # best/val/ndcg@10 = the monitor's best
    assert sweep_mod.best_trial(sweep, trials).index == 0
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["best"]["params"] == {"model.init_args.alpha": 1.0}
    assert [t["status"] for t in saved["trials"]] == ["ok", "failed", "ok"]
    assert saved["trials"][2]["metrics"]["test/recall@10"] == 0.4
    table = (out / "sweep.md").read_text()
    assert "| 3 | 4.0 | 0.2500 | - | 0.4000 | - | 0.2000 | ok |" in table
    sweep.goal = "minimize"
    assert sweep_mod.best_trial(sweep, trials).index == 2


def test_sweep_command_dry_run_and_local_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    path = write_sweep(tmp_path / "s.yaml", {"model.init_args.alpha": {"values": [1.0, 4.0]}})
    sweep_mod.main([str(path), "--dry-run", "--", "--trainer.max_epochs=1"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("llada-rec sweep run")]
    assert lines == [
        "llada-rec sweep run --config experiments/demo.yaml --trainer.max_epochs=1 --model.init_args.alpha=1.0",
        "llada-rec sweep run --config experiments/demo.yaml --trainer.max_epochs=1 --model.init_args.alpha=4.0",
    ]
    monkeypatch.setattr(sweep_mod, "fit_and_test", fake_runner(tmp_path / "runs"))
    sweep_mod.main([str(path), "--out", str(tmp_path / "out")])
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["best"]["params"] == {"model.init_args.alpha": 1.0}
    failing = write_sweep(tmp_path / "f.yaml", {"model.init_args.alpha": {"values": [2.0]}})
    with pytest.raises(SystemExit) as exit_info:
        sweep_mod.main([str(failing), "--out", str(tmp_path / "out2")])
    assert exit_info.value.code == 1


def test_trial_score_reads_monitor_or_metrics() -> None:
    result = {"monitor": "val/ndcg@10", "best_score": 0.3, "metrics": {"test/ndcg@10": 0.2}}
    assert sweep_mod.trial_score("best/val/ndcg@10", result) == 0.3
    assert sweep_mod.trial_score("test/ndcg@10", result) == 0.2
    assert sweep_mod.trial_score("val/recall@5", result) is None
    assert sweep_mod.trial_score(None, result) is None
    assert Trial(0, {}, []).status == "pending"
