"""Hyperparameter sweeps: one W&B sweep file, run by a W&B agent or locally without W&B.

    llada-rec sweep FILE [--max-runs N] [--method grid|random] [--seed S] [--dry-run] [--out DIR]
                    [-- EXTRA LIGHTNINGCLI ARGS]
    llada-rec sweep run LIGHTNINGCLI ARGS...     fit, then test the best checkpoint, one process

A sweep file is W&B's format (``method``, ``metric``, ``parameters``, ``command``).  Its
``command`` runs ``python -m llada_rec sweep run <configs> ${args}``; W&B expands ``${args}``
to ``--model.init_args.alpha=3.5 --model.init_args.lr=0.003``, which LightningCLI accepts.
``sweep run`` trains, tests the best checkpoint (so each trial leaves ``metrics.json`` for
``llada-rec report``) and logs ``best/<monitor>`` (the checkpoint callback's best validation
score), the metric a sweep optimises without peeking at the test split.

Locally the same file runs without W&B: a grid (or random draws) over the same parameters,
one trial after another in this process, skipping ``--config .../loggers/*.yaml`` from the
command (``--keep-loggers`` keeps them), results in ``<out>/sweep.json`` and ``sweep.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import shlex
import time
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import yaml

from llada_rec.lightning_cli import LLaDARecCLI
from llada_rec.utils import UserError, atomic_write_text, run_dir

METHODS = ("grid", "random", "bayes")
DISTRIBUTIONS = ("categorical", "constant", "uniform", "log_uniform_values", "int_uniform")
ARGS_MACRO = "${args}"
TABLE_METRICS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10")


class SweepError(UserError, ValueError):
    """A sweep file that cannot be run: names the file and the field at fault."""


@dataclass
class Parameter:
    """One swept argument: a list of values, one value, or a distribution between min and max."""

    name: str  # the LightningCLI key, e.g. "model.init_args.alpha"
    values: Optional[list[Any]] = None
    distribution: str = "categorical"
    min: Optional[float] = None
    max: Optional[float] = None

    def grid_values(self) -> list[Any]:
        if self.values is None:
            raise SweepError(f"parameter {self.name}: a grid needs `values` (or `value`), not a {self.distribution} distribution")
        return self.values

    def sample(self, rng: random.Random) -> Any:
        if self.values is not None:
            return rng.choice(self.values)
        lo, hi = float(self.min), float(self.max)  # type: ignore[arg-type]
        if self.distribution == "uniform":
            return rng.uniform(lo, hi)
        if self.distribution == "log_uniform_values":
            return math.exp(rng.uniform(math.log(lo), math.log(hi)))
        return rng.randint(int(lo), int(hi))  # int_uniform


@dataclass
class Sweep:
    """A parsed sweep file."""

    path: Path
    method: str
    parameters: list[Parameter]
    command: list[str]
    metric: Optional[str] = None
    goal: str = "maximize"
    name: str = ""


@dataclass
class Trial:
    """One run of a sweep: its parameters, its LightningCLI arguments and what it gave."""

    index: int
    params: dict[str, Any]
    args: list[str]
    status: str = "pending"  # pending | ok | failed | done (finished by an earlier run, kept)
    run_dir: Optional[str] = None
    score: Optional[float] = None  # the sweep metric
    metrics: dict[str, float] = field(default_factory=dict)
    error: Optional[str] = None
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------
# Sweep files
# ---------------------------------------------------------------------------------------
def _parameter(path: Path, name: str, spec: Any) -> Parameter:
    where = f"{path}: parameters.{name}"
    if not isinstance(spec, dict):
        raise SweepError(f"{where}: expected a mapping with `values`, `value` or `min`/`max`")
    unknown = set(spec) - {"values", "value", "distribution", "min", "max"}
    if unknown:
        raise SweepError(f"{where}: unknown field(s) {sorted(unknown)}")
    distribution = spec.get("distribution")
    if distribution is not None and distribution not in DISTRIBUTIONS:
        raise SweepError(f"{where}: distribution {distribution!r} is not one of {', '.join(DISTRIBUTIONS)}")
    if "values" in spec:
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise SweepError(f"{where}.values: expected a non-empty list")
        return Parameter(name, values=list(values))
    if "value" in spec:
        return Parameter(name, values=[spec["value"]], distribution="constant")
    if "min" in spec and "max" in spec:
        lo, hi = spec["min"], spec["max"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi)) or lo > hi:
            raise SweepError(f"{where}: min/max must be numbers with min <= max, got {lo!r}, {hi!r}")
        distribution = distribution or ("int_uniform" if isinstance(lo, int) and isinstance(hi, int) else "uniform")
        if distribution == "log_uniform_values" and lo <= 0:
            raise SweepError(f"{where}: log_uniform_values needs min > 0")
        if distribution not in ("uniform", "log_uniform_values", "int_uniform"):
            raise SweepError(f"{where}: distribution {distribution!r} does not take min/max")
        return Parameter(name, distribution=distribution, min=lo, max=hi)
    raise SweepError(f"{where}: give `values`, `value` or `min` and `max`")


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a W&B sweep file (the subset this project uses)."""
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise SweepError(f"{path}: cannot read ({err})") from err
    except yaml.YAMLError as err:
        raise SweepError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(spec, dict):
        raise SweepError(f"{path}: expected a mapping with method, parameters and command")
    method = spec.get("method")
    if method not in METHODS:
        raise SweepError(f"{path}: method must be one of {', '.join(METHODS)}, got {method!r}")
    parameters = spec.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise SweepError(f"{path}: parameters must be a non-empty mapping of LightningCLI keys")
    command = spec.get("command")
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        raise SweepError(f"{path}: command must be a list of strings")
    if ARGS_MACRO not in command:
        raise SweepError(f"{path}: command must contain {ARGS_MACRO} (where W&B puts the parameters)")
    metric = spec.get("metric") or {}
    if not isinstance(metric, dict) or metric.get("goal", "maximize") not in ("maximize", "minimize"):
        raise SweepError(f"{path}: metric must be a mapping with name and goal maximize|minimize")
    sweep = Sweep(
        path=path,
        method=method,
        parameters=[_parameter(path, str(name), p) for name, p in parameters.items()],
        command=command,
        metric=metric.get("name"),
        goal=metric.get("goal", "maximize"),
        name=str(spec.get("name") or path.stem),
    )
    lightning_args(sweep)  # the command must run `llada_rec sweep run`
    return sweep


def lightning_args(sweep: Sweep) -> list[str]:
    """The command's LightningCLI arguments (after ``sweep run``), ``${args}`` still in place."""
    command = sweep.command
    for i in range(len(command) - 1):
        if command[i : i + 2] == ["sweep", "run"]:
            return command[i + 2 :]
    raise SweepError(f"{sweep.path}: command must run this project's `llada_rec sweep run ...` (fit + test), got {' '.join(command)}")


def strip_logger_configs(args: Sequence[str]) -> list[str]:
    """Drop ``--config experiments/loggers/*.yaml``: a local sweep logs to CSV only."""
    kept: list[str] = []
    skip_next = False
    for i, arg in enumerate(args):
        if skip_next:
            skip_next = False
            continue
        if arg == "--config" and i + 1 < len(args) and Path(args[i + 1]).parent.name == "loggers":
            skip_next = True
            continue
        if arg.startswith("--config=") and Path(arg.split("=", 1)[1]).parent.name == "loggers":
            continue
        kept.append(arg)
    return kept


# ---------------------------------------------------------------------------------------
# Trials
# ---------------------------------------------------------------------------------------
def grid(sweep: Sweep) -> list[dict[str, Any]]:
    """Every combination of the parameters' values, first parameter slowest."""
    names = [p.name for p in sweep.parameters]
    return [dict(zip(names, combo)) for combo in itertools.product(*(p.grid_values() for p in sweep.parameters))]


def random_draws(sweep: Sweep, count: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{p.name: p.sample(rng) for p in sweep.parameters} for _ in range(count)]


def format_args(params: dict[str, Any]) -> list[str]:
    """``--key=value`` as W&B's ``${args}`` writes them."""
    return [f"--{name}={value}" for name, value in params.items()]


def trial_args(sweep: Sweep, params: dict[str, Any], extra: Sequence[str] = (), keep_loggers: bool = False) -> list[str]:
    """The LightningCLI arguments of one trial: the command's, ``extra`` and the parameters
    where ``${args}`` stands (so the parameters win over ``extra``)."""
    args = lightning_args(sweep)
    if not keep_loggers:
        args = strip_logger_configs(args)
    at = args.index(ARGS_MACRO)
    return [*args[:at], *extra, *format_args(params), *args[at + 1 :]]


def plan_trials(
    sweep: Sweep,
    method: Optional[str] = None,
    max_runs: Optional[int] = None,
    seed: int = 0,
    extra: Sequence[str] = (),
    keep_loggers: bool = False,
) -> list[Trial]:
    """The trials a local sweep runs: the grid (cut to ``max_runs``) or ``max_runs`` draws."""
    method = method or ("random" if sweep.method == "bayes" else sweep.method)
    if method == "grid":
        combos = grid(sweep)[:max_runs] if max_runs else grid(sweep)
    elif method == "random":
        if not max_runs:
            raise SweepError(f"{sweep.path}: a random sweep runs until stopped; give --max-runs N")
        combos = random_draws(sweep, max_runs, seed)
    else:
        raise SweepError(f"method {method!r}: a local sweep runs grid or random")
    return [Trial(index=i, params=p, args=trial_args(sweep, p, extra, keep_loggers)) for i, p in enumerate(combos)]


@contextmanager
def _quiet_args_warning():
    """LightningCLI warns when sys.argv is set and args are given; here that is intended."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        yield


def parse_cli_args(arg_lists: Sequence[Sequence[str]]) -> list[Any]:
    """Parse each argument list with the project's LightningCLI parser, instantiating nothing.

    A misspelt key or a bad value raises (SystemExit from jsonargparse, message on stderr).
    Returns the parsed namespaces.
    """
    class ParseOnlyCLI(LLaDARecCLI):
        def instantiate_classes(self) -> None:  # the config is what we want, not the objects
            pass

    if not arg_lists:
        return []
    with _quiet_args_warning():
        first = ParseOnlyCLI(args=list(arg_lists[0]), run=False)
    return [first.config] + [first.parser.parse_args(list(args)) for args in arg_lists[1:]]


# ---------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------
def fit_and_test(args: Sequence[str]) -> dict[str, Any]:
    """Fit, log ``best/<monitor>``, test the best checkpoint; what a sweep trial does.

    Returns ``run_dir``, ``metrics`` (the run's metrics.json), ``monitor`` and ``best_score``.
    """
    with _quiet_args_warning():
        cli = LLaDARecCLI(args=list(args), run=False)
    trainer = cli.trainer
    try:
        trainer.fit(cli.model, datamodule=cli.datamodule)
        callback = trainer.checkpoint_callback
        monitor = getattr(callback, "monitor", None)
        score = getattr(callback, "best_model_score", None)
        best_score = float(score) if score is not None else None
        if monitor and best_score is not None:
            for logger in trainer.loggers:
                logger.log_metrics({f"best/{monitor}": best_score}, step=trainer.global_step)
        best_path = getattr(callback, "best_model_path", "") or None
        trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=best_path)
    finally:
        _finish_wandb(trainer)
    directory = run_dir(trainer)
    metrics_file = directory / "metrics.json"
    metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
    return {"run_dir": str(directory), "metrics": metrics, "monitor": monitor, "best_score": best_score}


def _finish_wandb(trainer: Any) -> None:
    """End the trial's W&B run: Lightning leaves it open, and the next trial in this process
    would otherwise log into it."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()


def trial_score(metric: Optional[str], result: dict[str, Any]) -> Optional[float]:
    """The sweep metric of a finished trial: ``best/<monitor>`` or a key of metrics.json."""
    if not metric:
        return None
    if result.get("monitor") and metric == f"best/{result['monitor']}":
        return result.get("best_score")
    value = result.get("metrics", {}).get(metric)
    return float(value) if value is not None else None


def run_trials(
    sweep: Sweep,
    trials: list[Trial],
    out: Path,
    runner: Optional[Callable[[Sequence[str]], dict[str, Any]]] = None,
) -> list[Trial]:
    """Run the pending trials one after another; a failing trial is recorded and the sweep goes on.

    ``runner(args) -> result`` defaults to :func:`fit_and_test`.  Trials not ``pending``
    (run before, or ``done`` in an earlier process) are kept as they are, so a study can
    call this again with more trials.  ``sweep.json`` and ``sweep.md`` in ``out`` are
    rewritten after every trial.
    """
    runner = runner or fit_and_test
    for trial in trials:
        if trial.status != "pending":
            continue
        print(f"\n[sweep {sweep.name}] trial {trial.index + 1}/{len(trials)}: {' '.join(format_args(trial.params))}", flush=True)
        started = time.perf_counter()
        try:
            result = runner(trial.args)
        except (Exception, SystemExit) as err:  # SystemExit: jsonargparse rejected the arguments
            trial.status, trial.error = "failed", f"{type(err).__name__}: {err}"
            traceback.print_exc()
        else:
            trial.status = "ok"
            trial.run_dir = result.get("run_dir")
            trial.metrics = {k: float(v) for k, v in result.get("metrics", {}).items()}
            trial.score = trial_score(sweep.metric, result)
        trial.seconds = round(time.perf_counter() - started, 1)
        write_results(sweep, trials, out)
    return trials


def best_trial(sweep: Sweep, trials: Sequence[Trial]) -> Optional[Trial]:
    scored = [t for t in trials if t.status in ("ok", "done") and t.score is not None]
    if not scored:
        return None
    pick = max if sweep.goal == "maximize" else min
    return pick(scored, key=lambda t: t.score)


def results_table(sweep: Sweep, trials: Sequence[Trial]) -> str:
    """Markdown: one row per trial, its parameters, the sweep metric and test metrics."""
    names = [p.name for p in sweep.parameters]
    short = [n.rsplit(".", 1)[-1] for n in names]
    metric = sweep.metric or "-"
    header = ["#", *short, metric, *(f"test {m}" for m in TABLE_METRICS), "status", "run"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for t in trials:
        score = f"{t.score:.4f}" if t.score is not None else "-"
        tests = [f"{t.metrics[f'test/{m}']:.4f}" if f"test/{m}" in t.metrics else "-" for m in TABLE_METRICS]
        status = t.status if t.status != "failed" else f"failed: {(t.error or '')[:60]}"
        cells = [str(t.index + 1), *(str(t.params.get(n)) for n in names), score, *tests, status, f"`{t.run_dir}`" if t.run_dir else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(sweep: Sweep, trials: Sequence[Trial], out: Path) -> None:
    best = best_trial(sweep, trials)
    summary = {
        "sweep": str(sweep.path),
        "metric": sweep.metric,
        "goal": sweep.goal,
        "best": asdict(best) if best else None,
        "trials": [asdict(t) for t in trials],
    }
    atomic_write_text(out / "sweep.json", json.dumps(summary, indent=2) + "\n")
    text = f"# Sweep {sweep.name} ({sweep.path})\n\n{results_table(sweep, trials)}\n"
    if best is not None:
        text += f"\nBest ({sweep.goal} {sweep.metric}): trial {best.index + 1}, {' '.join(format_args(best.params))}\n"
    atomic_write_text(out / "sweep.md", text)


def command_line(args: Sequence[str]) -> str:
    return "llada-rec sweep run " + " ".join(shlex.quote(a) for a in args)


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------
def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = list(argv or [])
    if argv[:1] == ["run"]:
        result = fit_and_test(argv[1:])
        print(f"run dir: {result['run_dir']}; best {result['monitor']}: {result['best_score']}")
        return
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(
        prog="llada-rec sweep",
        description="Run a W&B sweep file locally (no W&B): a grid or random draws over its parameters. "
        "`llada-rec sweep run ARGS` is the per-trial command (fit + test).",
        epilog="Arguments after `--` go to every trial, before the swept ones, e.g. -- --trainer.max_epochs=5",
    )
    parser.add_argument("file", help="sweep YAML (experiments/sweeps/*.yaml)")
    parser.add_argument("--max-runs", type=int, default=None, help="at most N trials (required for random)")
    parser.add_argument("--method", choices=("grid", "random"), default=None, help="default: the file's (bayes runs as random)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random draws")
    parser.add_argument("--dry-run", action="store_true", help="print and check the trials' command lines, run nothing")
    parser.add_argument("--keep-loggers", action="store_true", help="keep --config .../loggers/*.yaml (e.g. W&B) in the trials")
    parser.add_argument("--out", default=None, help="where sweep.json / sweep.md go (default runs/sweeps/<name>)")
    opts = parser.parse_args(argv)
    if opts.max_runs is not None and opts.max_runs < 1:
        parser.error("--max-runs must be >= 1")
    try:
        sweep = load_sweep(opts.file)
        trials = plan_trials(sweep, opts.method, opts.max_runs, opts.seed, extra, opts.keep_loggers)
    except SweepError as err:
        parser.error(str(err))
    if opts.dry_run:
        for trial in trials:
            print(command_line(trial.args))
        parse_cli_args([t.args for t in trials])
        print(f"{len(trials)} trial(s); every command line parses")
        return
    out = Path(opts.out or Path("runs") / "sweeps" / sweep.name)
    run_trials(sweep, trials, out)
    print("\n" + results_table(sweep, trials))
    best = best_trial(sweep, trials)
    if best is not None:
        print(f"\nbest ({sweep.goal} {sweep.metric}): trial {best.index + 1}: {command_line(best.args)}")
    print(f"wrote {out / 'sweep.json'} and {out / 'sweep.md'}; tables and plots: llada-rec report {' '.join(sorted({t.run_dir for t in trials if t.run_dir}))}")
    if any(t.status == "failed" for t in trials):
        raise SystemExit(1)
