"""The paper's ablations (Table 4, Figures 3-6) on one data source at one budget, resumable.

    python benchmarks/ablations.py --config experiments/amazon18_scientific_cpu.yaml \\
        --path ../shared/data/amazon18-scientific --max-epochs 3 --max-minutes 8 \\
        --eval-users 2000 --seeds 0 1 --out runs/ablations/amazon18_scientific

Every ``experiments/ablations/*.yaml`` is a variant layered on the base config(s).  A variant
that changes only decoding settings (``llada_rec.cli.DECODING_ARGS``: greedy, orders, steps)
is tested on each of the full model's best checkpoints (``llada-rec test --ckpt_path``); any
other (tokenizers, masks, attention) is trained and tested at the same budget
(``llada-rec sweep run``), as are the full model and the α values of Figure 6.  Run
directories are ``<out>/<variant>/seed_<s>`` (``full``, ``alpha_<α>``); a rerun skips every
one holding ``metrics.json``.

Seeds: the full model runs every ``--seeds`` seed, the other variants the first; then a
second pass adds the remaining seeds to the variants whose mean differs from the full
model's by no more than twice the seed-to-seed spread (``llada_rec.report.cells.unresolved``).
Last, ``llada-rec report`` writes ``<out>/report``: Table 4, the figures, ``figures.json``
and the paper's orderings as reproduced / reversed / within noise.  The trials are listed in
``<out>/sweep.{json,md}``.

Budget options come before the variant's config (a variant's own setting wins, e.g. greedy's
beam 1); ``--tokenizer-override`` files come after it (they shape every tokenizer alike).
Arguments after ``--`` go to every run, before the variant's config.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from llada_rec.report.cells import VERDICT_METRIC, unresolved
from llada_rec.report.cli import write_report
from llada_rec.report.orderings import orderings_table
from llada_rec.report.tables import FIGURE_METRICS, TABLE_COLUMNS, table4
from llada_rec.report.variants import load_runs
from llada_rec.cli import DECODING_ARGS, data_stats, lightning_main
from llada_rec.sweep import Parameter, Sweep, Trial, command_line, fit_and_test, parse_cli_args, results_table, run_trials, write_results
from llada_rec.utils import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "experiments" / "amazon18_scientific_cpu.yaml"
VARIANTS_DIR = REPO / "experiments" / "ablations"
FULL = "full"
CSV_LOGGER = "lightning.pytorch.loggers.CSVLogger"


@dataclass(frozen=True)
class Variant:
    """One run family of the study: a config layered on the base (None: the full model)."""

    name: str
    config: Optional[Path] = None
    inference_only: bool = False  # tested on the full model's checkpoints, not trained
    args: tuple[str, ...] = ()  # extra settings (the α values)


def inference_only(config: Path) -> bool:
    """A variant config that changes decoding settings only (no data, no training setting)."""
    spec = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    model = spec.get("model") or {}
    init_args = model.get("init_args") or {}
    return set(spec) <= {"model", "trainer"} and set(model) <= {"init_args"} and bool(init_args) and set(init_args) <= set(DECODING_ARGS)


def discover_variants(directory: Path, only: Optional[Sequence[str]] = None) -> list[Variant]:
    """Every ``*.yaml`` of ``directory`` (or the ones named in ``only``), training variants first."""
    found = {p.stem: p for p in sorted(directory.glob("*.yaml"))}
    if only is not None:
        unknown = sorted(set(only) - set(found))
        if unknown:
            raise SystemExit(f"unknown variant(s) {', '.join(unknown)}; {directory} has {', '.join(found)}")
        found = {name: found[name] for name in only}
    variants = [Variant(name, path, inference_only(path)) for name, path in found.items()]
    return sorted(variants, key=lambda v: v.inference_only)


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple[argparse.Namespace, list[str]]:
    argv = list(argv or [])
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Arguments after `--` go to every run (LightningCLI), e.g. -- --trainer.enable_progress_bar=false")
    data = p.add_argument_group("data (the base config's unless given)")
    data.add_argument("--config", action="append", default=None, help=f"base config(s), in order (default {DEFAULT_CONFIG.relative_to(REPO)})")
    data.add_argument("--format", default=None, help="amazon2023, amazon2023-benchmark, lcrec or recbole")
    data.add_argument("--path", default=None, help="data directory")
    data.add_argument("--category", default=None)
    budget = p.add_argument_group("budget (the same for every variant; the base config's unless given)")
    budget.add_argument("--max-epochs", type=int, default=None, help="trainer.max_epochs (also sets the LR schedule)")
    budget.add_argument("--max-minutes", type=float, default=None, help="training wall-time cap per run (trainer.max_time)")
    budget.add_argument("--eval-users", type=int, default=None, help="validate and test on this many users (the same seeded subset for every run)")
    budget.add_argument("--d-model", type=int, default=None)
    budget.add_argument("--layers", type=int, default=None)
    budget.add_argument("--heads", type=int, default=None, help="attention heads")
    budget.add_argument("--beam-size", type=int, default=None, help="test beams (greedy keeps 1)")
    budget.add_argument("--tokenizer-override", action="append", default=[], help="tokenizer YAML layered after each variant's tokenizer files (e.g. fewer epochs)")
    study = p.add_argument_group("study")
    study.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="the full model's seeds; the other variants get the first, and the rest when within noise")
    study.add_argument("--extra-seeds", action=argparse.BooleanOptionalAction, default=True, help="the second pass: more seeds for variants within noise")
    study.add_argument("--alphas", type=float, nargs="*", default=[1.0, 2.0, 6.0], help="α values of Figure 6 besides the base config's")
    study.add_argument("--variants", nargs="+", default=None, help="only these configs of --variants-dir (default: all)")
    study.add_argument("--variants-dir", type=Path, default=VARIANTS_DIR)
    study.add_argument("--metric", default=VERDICT_METRIC, choices=TABLE_COLUMNS, help="metric of the extra-seed rule and the orderings' verdicts")
    study.add_argument("--report-metrics", nargs="+", default=list(FIGURE_METRICS), choices=TABLE_COLUMNS, help="metrics of Table 4 and the figures")
    study.add_argument("--out", type=Path, default=Path("runs/ablations"))
    study.add_argument("--dry-run", action="store_true", help="print and parse every run's command line, read the data, run nothing")
    opts = p.parse_args(argv)
    if len(set(opts.seeds)) != len(opts.seeds):
        p.error("--seeds must be distinct")
    return opts, extra


def base_args(opts: argparse.Namespace, extra: Sequence[str]) -> list[str]:
    """Base configs, data source, budget and ``extra``: what every run starts with."""
    args: list[str] = []
    for config in opts.config or [str(DEFAULT_CONFIG)]:
        args += ["--config", str(config)]
    for key in ("format", "path", "category"):
        if getattr(opts, key) is not None:
            args.append(f"--data.{key}={getattr(opts, key)}")
    if opts.max_epochs is not None:
        args.append(f"--trainer.max_epochs={opts.max_epochs}")
    if opts.max_minutes is not None:
        seconds = round(opts.max_minutes * 60)
        args.append(f"--trainer.max_time={seconds // 86400:02d}:{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}")
    if opts.eval_users is not None:
        args += [f"--data.loaders.val_max_users={opts.eval_users}", f"--data.loaders.test_max_users={opts.eval_users}"]
    for flag, key in (("d_model", "network.d_model"), ("layers", "network.num_layers"), ("heads", "network.num_attention_heads"),
                      ("beam_size", "decoding.beam_size")):
        if getattr(opts, flag) is not None:
            args.append(f"--model.init_args.{key}={getattr(opts, flag)}")
    return args + list(extra)


def fmt_alpha(alpha: float) -> str:
    return f"{alpha:g}"


class Study:
    """The trials of one ablation study and the runner ``sweep.run_trials`` calls for them."""

    def __init__(self, opts: argparse.Namespace, extra: Sequence[str]) -> None:
        self.opts = opts
        self.out = opts.out.resolve()
        self.base = base_args(opts, extra)
        self.variants = discover_variants(opts.variants_dir, opts.variants)
        self.trials: list[Trial] = []
        self.run_dirs: dict[tuple[str, ...], Path] = {}
        self.counts: Counter[str] = Counter()  # fits and tests this process ran
        self.sweep = Sweep(
            path=self.out / "sweep.json", method="grid", command=[], name=f"ablations {self.out.name}", metric=f"test/{opts.metric}",
            parameters=[Parameter("variant", values=[FULL] + [v.name for v in self.variants]), Parameter("seed", values=list(opts.seeds))],
        )

    # -- planning -----------------------------------------------------------------------
    def args(self, variant: Variant, seed: int) -> list[str]:
        """LightningCLI arguments of ``variant`` at ``seed`` (no subcommand, no checkpoint)."""
        args = list(self.base)
        if variant.config is not None:
            args += ["--config", str(variant.config)]
        args += list(variant.args)
        args += [f"--data.items.tokenizer_overrides+={path}" for path in self.opts.tokenizer_override]
        logger = {"class_path": CSV_LOGGER, "init_args": {"save_dir": str(self.out), "name": variant.name, "version": f"seed_{seed}"}}
        return args + [f"--seed_everything={seed}", f"--trainer.logger={json.dumps(logger)}"]

    def run_dir(self, variant: Variant, seed: int) -> Path:
        return self.out / variant.name / f"seed_{seed}"

    def checkpoint(self, seed: int) -> Optional[Path]:
        """The full model's best checkpoint at ``seed`` (the one checkpoint its run kept)."""
        found = [p for p in (self.run_dir(Variant(FULL), seed) / "checkpoints").glob("*.ckpt") if p.name != "last.ckpt"]
        if len(found) > 1:
            raise SystemExit(f"{found[0].parent}: {len(found)} checkpoints, expected the best one only; remove the stale ones")
        return found[0] if found else None

    def add(self, variant: Variant, seed: int, ckpt: Optional[Path] = None) -> Optional[Trial]:
        """Plan one run; a finished one (``metrics.json``) is kept as ``done``."""
        run_dir = self.run_dir(variant, seed)
        if any(t.run_dir == str(run_dir) for t in self.trials):
            return None
        args = self.args(variant, seed) + ([f"--ckpt_path={ckpt}"] if ckpt is not None else [])
        trial = Trial(index=len(self.trials), params={"variant": variant.name, "seed": seed}, args=args, run_dir=str(run_dir))
        metrics = run_dir / "metrics.json"
        if metrics.is_file():
            trial.status, trial.metrics = "done", {k: float(v) for k, v in json.loads(metrics.read_text(encoding="utf-8")).items()}
            trial.score = trial.metrics.get(self.sweep.metric)
        self.run_dirs[tuple(args)] = run_dir
        self.trials.append(trial)
        return trial

    def alpha_variants(self) -> list[Variant]:
        """Figure 6: the α values other than the base config's."""
        if not self.opts.alphas:
            return []
        [config] = parse_cli_args([self.args(Variant(FULL), self.opts.seeds[0])])
        base = float(config.model.init_args.get("alpha", float("nan")))
        return [Variant(f"alpha_{fmt_alpha(a)}", args=(f"--model.init_args.alpha={a}",)) for a in self.opts.alphas if a != base]

    @cached_property
    def training_variants(self) -> list[Variant]:
        return [Variant(FULL)] + [v for v in self.variants if not v.inference_only] + self.alpha_variants()

    def plan_training(self) -> None:
        """Pass 1, training: the full model at every seed, the others at the first."""
        for variant in self.training_variants:
            for seed in self.opts.seeds if variant.name == FULL else self.opts.seeds[:1]:
                self.add(variant, seed)

    def plan_inference(self) -> None:
        """Every decoding variant on each full-model checkpoint (its seed's)."""
        for seed in self.opts.seeds:
            ckpt = self.checkpoint(seed)
            for variant in (v for v in self.variants if v.inference_only):
                if ckpt is not None or (self.run_dir(variant, seed) / "metrics.json").is_file():
                    self.add(variant, seed, ckpt or Path("missing.ckpt"))
                else:
                    print(f"[ablations] {variant.name} seed {seed}: no checkpoint of {FULL}/seed_{seed}; not tested", flush=True)

    def plan_extra_seeds(self) -> list[str]:
        """Pass 2: the remaining seeds for trained variants within noise of the full model."""
        by_name = {v.name: v for v in self.training_variants}
        needed = []
        for cell in unresolved(load_runs([self.out]), self.opts.metric):
            names = {r.path.parent.name for r in cell.runs}
            name = names.pop() if len(names) == 1 else None
            if name not in by_name or name == FULL:
                continue  # decoding variants follow the full model's seeds; unknown runs are not ours
            needed.append(name)
            for seed in self.opts.seeds:
                self.add(by_name[name], seed)
        return needed

    # -- running ------------------------------------------------------------------------
    def __call__(self, args: Sequence[str]) -> dict[str, Any]:
        """A trial with a checkpoint is tested (``llada-rec test``), any other fit and tested
        (``llada-rec sweep run``); a rerun of an unfinished run drops its stale checkpoints."""
        run_dir = self.run_dirs[tuple(args)]
        if any(a.startswith("--ckpt_path=") for a in args):
            with warnings.catch_warnings():  # LightningCLI's "args and sys.argv" warning: intended here
                warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
                lightning_main(["test", *args])
            self.counts["tests"] += 1
        else:
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
            fit_and_test(args)
            self.counts["fits"] += 1
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        return {"run_dir": str(run_dir), "metrics": metrics}

    def check_budget(self) -> None:
        """``<out>/study.json`` records the data, budget and tokenizer settings; a rerun with
        others would mix budgets in one report, so it stops (seeds, α and variants may grow)."""
        settings = {"base": self.base, "tokenizer_override": list(self.opts.tokenizer_override)}
        record = self.out / "study.json"
        if record.is_file():
            before = json.loads(record.read_text(encoding="utf-8"))
            if before != settings:
                changed = sorted(set(before["base"]) ^ set(settings["base"])) or ["--tokenizer-override"]
                raise SystemExit(f"{record}: this study ran with other data or budget settings ({' '.join(changed)}); use another --out")
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(record, json.dumps(settings, indent=2) + "\n")

    def run(self) -> None:
        run_trials(self.sweep, self.trials, self.out, runner=self)

    def dry_run(self) -> None:
        """Print every planned command line and parse it; read the data once."""
        self.plan_training()
        fits = len(self.trials)
        for seed in self.opts.seeds:
            for variant in (v for v in self.variants if v.inference_only):
                self.add(variant, seed)
        for i, trial in enumerate(self.trials):
            command = command_line(trial.args)
            if i >= fits:  # tested on the full model's best checkpoint of its seed, once trained
                command = command.replace("llada-rec sweep run", "llada-rec test", 1) + f" --ckpt_path {self.run_dir(Variant(FULL), trial.params['seed'])}/checkpoints/BEST.ckpt"
            print(("[done] " if trial.status == "done" else "") + command)
        configs = parse_cli_args([t.args for t in self.trials])
        print(f"\n{len(self.trials)} runs ({fits} trainings, {len(self.trials) - fits} tests) before extra seeds; "
              f"{sum(t.status == 'done' for t in self.trials)} already done; every command line parses")
        data = configs[0].data.dataset
        if data.get("generate_demo"):
            print(f"{data.path}: the demo data, written on first use")
            return
        data_stats(["--format", data.format, "--path", data.path, *(["--category", data.category] if data.category else []), "--kcore", str(data.kcore)])


def main(argv: Optional[Sequence[str]] = None) -> Study:
    opts, extra = parse_args(sys.argv[1:] if argv is None else argv)
    study = Study(opts, extra)
    if opts.dry_run:
        study.dry_run()
        return study
    study.check_budget()
    study.plan_training()
    study.run()
    study.plan_inference()
    study.run()
    if opts.extra_seeds and len(opts.seeds) > 1:
        needed = study.plan_extra_seeds()
        print(f"\n[ablations] within noise of {FULL} on {opts.metric}: {', '.join(needed) or 'none'}; adding seeds {opts.seeds[1:]}", flush=True)
        study.run()
    write_results(study.sweep, study.trials, study.out)
    runs = load_runs([study.out])
    written = write_report(runs, study.out / "report", opts.report_metrics, opts.metric)
    from_report = json.loads(written["figures.json"].read_text(encoding="utf-8"))["orderings"]
    print("\n" + results_table(study.sweep, study.trials))
    print("\n" + table4(runs, opts.report_metrics))
    print("\n" + orderings_table(from_report))
    done = Counter(t.status for t in study.trials)
    print(f"\n[ablations] {study.counts['fits']} trained, {study.counts['tests']} tested in this run; "
          f"{done['done']} found finished; {done['failed']} failed; report: {study.out / 'report' / 'report.md'}")
    if done["failed"]:
        raise SystemExit(1)
    return study


if __name__ == "__main__":
    main()
