"""Command line: LightningCLI for fit/validate/test/predict, plus the project's own commands.

    llada-rec fit --config experiments/scientific.yaml      (also: `lightning fit ...`,
    llada-rec fit --config ... --ckpt_path last              `python -m llada_rec fit ...`)
    llada-rec test --config ... --ckpt_path best
    llada-rec data stats --format lcrec --path DIR
    llada-rec demo                                           fit + test on the embedded demo data
    llada-rec report RUN_DIR... --out DIR                    tables and plots from finished runs
    llada-rec sweep experiments/sweeps/alpha_lr.yaml         a W&B sweep file, run locally
    llada-rec serve --ckpt_path RUN_DIR|CKPT|best|last       recommend over HTTP (LitServe)

User errors (``UserError``: data, arguments, files) print one line and exit non-zero;
``--debug`` or ``LLADA_REC_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Optional, Sequence

import lightning_utilities.core.rank_zero

from llada_rec.data.dataset import preprocess
from llada_rec.data.readers import FORMATS, read_source
from llada_rec.lightning_cli import (  # noqa: F401  (re-exported: benchmarks and callers import them from here)
    ARG_RULES,
    DECODING_ARGS,
    LIGHTNING_COMMANDS,
    ArgumentParser,
    LLaDARecCLI,
    SaveAndLogConfigCallback,
    check_ranges,
    checkpoint_run_dir,
    expected_num_heads,
    find_checkpoint,
    lightning_main,
    logger_root,
    read_metrics_rows,
    set_debug,
    short_argument_error,
)
from llada_rec.report.cli import main as report_main
from llada_rec.report.tables import print_metrics_table
from llada_rec.serving.command import main as serve_main
from llada_rec.utils import ConfigError, UserError
from llada_rec.sweep import main as sweep_main

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
COMMANDS = {
    "fit": "train a model (recommender or tokenizer) from a config; --ckpt_path last resumes",
    "validate": "validate a checkpoint",
    "test": "test a checkpoint; writes metrics.json beside its run",
    "predict": "recommend for the test users (or --data.loaders.predict_histories); writes predictions.jsonl",
    "data stats": "dataset figures after filtering (paper Table 2)",
    "demo": "fit and test LLaDA-Rec and the most-popular floor on the embedded demo data",
    "report": "tables (paper Tables 3-4) and bar charts (Figures 3-6) from finished runs",
    "sweep": "run a W&B sweep file locally; `sweep run ARGS` is one trial (fit + test)",
    "serve": "answer recommend requests over HTTP (LitServe) from a trained run or checkpoint",
}
DEBUG_ENV = "LLADA_REC_DEBUG"


# ---------------------------------------------------------------------------------------
# Project commands
# ---------------------------------------------------------------------------------------
def data_stats(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="llada-rec data stats", description="Dataset figures after filtering (paper Table 2).")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--path", required=True, help="directory with the data files")
    parser.add_argument("--category", default=None, help="category / dataset name when the directory holds several")
    parser.add_argument("--kcore", type=int, default=5, help="iterated k-core threshold (default 5)")
    opts = parser.parse_args(argv)
    data = preprocess(read_source(opts.format, opts.path, opts.category), kcore=opts.kcore)
    s = data.stats()
    print("| users | items | interactions | sparsity | avg length |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {s['users']:,} | {s['items']:,} | {s['interactions']:,} | {s['sparsity']:.4%} | {s['avg_length']:.2f} |")
    for reason, count in sorted(data.skipped.items()):
        print(f"skipped {count:,}: {reason}")


def data_main(argv: Sequence[str]) -> None:
    if argv[:1] == ["stats"]:
        return data_stats(argv[1:])
    if argv[:1] in ([], ["-h"], ["--help"]):
        print("usage: llada-rec data stats --format FORMAT --path DIR [--category C] [--kcore K]\n\n"
              f"commands:\n  stats    {COMMANDS['data stats']}\n\n"
              f"formats: {', '.join(FORMATS)}.  `llada-rec data stats --help` for the options.")
        return
    raise ConfigError(f"unknown command 'data {argv[0]}'; expected: data stats")


def demo(argv: Sequence[str]) -> None:
    """Fit and test LLaDA-Rec (and the most-popular floor) on the embedded demo data."""
    parser = argparse.ArgumentParser(prog="llada-rec demo", description=demo.__doc__)
    parser.add_argument("--config", default=str(EXPERIMENTS / "demo.yaml"))
    parser.epilog = "Any other argument goes to LightningCLI, e.g. --trainer.max_epochs=2"
    opts, overrides = parser.parse_known_args(argv)
    results = {}
    for name, extra in (("most-popular", ["--config", str(EXPERIMENTS / "baselines" / "popularity.yaml")]), ("LLaDA-Rec", [])):
        cli = LLaDARecCLI(args=["--config", opts.config, *extra, *overrides], run=False)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        ckpt = "best" if cli.trainer.checkpoint_callback and cli.trainer.checkpoint_callback.best_model_path else None
        metrics = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt)
        results[name] = metrics[0]
    print_metrics_table(results)


def print_help() -> None:
    width = max(map(len, COMMANDS))
    print("usage: llada-rec COMMAND [options]      (`lightning` and `python -m llada_rec` are the same)\n")
    print("Generative recommendation by discrete diffusion (LLaDA-Rec) and its baselines.\n\ncommands:")
    for name, line in COMMANDS.items():
        print(f"  {name:<{width}}  {line}")
    print("\n`llada-rec COMMAND --help` shows a command's options; for fit/validate/test/predict,\n"
          "`llada-rec fit --model.help LLaDARec` lists a model's options.\n"
          f"Errors print one line; --debug (or {DEBUG_ENV}=1) shows the traceback.")


def _dispatch(argv: list[str], from_sys_argv: bool) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        return print_help()
    if argv[0] == "data":
        return data_main(argv[1:])
    if argv[0] == "demo":
        return demo(argv[1:])
    if argv[0] == "report":
        return report_main(argv[1:])
    if argv[0] == "sweep":
        return sweep_main(argv[1:])
    if argv[0] == "serve":
        return serve_main(argv[1:])
    if argv[0] not in LIGHTNING_COMMANDS and not argv[0].startswith("-"):
        print(f"llada-rec: unknown command {argv[0]!r}; expected one of "
              f"{', '.join(LIGHTNING_COMMANDS)}, data stats, demo, report, sweep, serve (llada-rec --help)", file=sys.stderr)
        raise SystemExit(2)
    if from_sys_argv:
        sys.argv = [sys.argv[0], *argv]  # LightningCLI reads sys.argv itself (without --debug)
        lightning_main(None)
    else:
        lightning_main(argv)


#: Messages nobody running this project can act on: tips about other products, a warning
#: about TensorBoard not being installed (CSV is the default here), a deprecation inside
#: Lightning, "predict returned None" (predictions are written to a file instead), and
#: accelerators the machine does not have.
NOISE = ("💡 Tip:", "Starting from v1.9.0, `tensorboardX`", "`isinstance(treespec, LeafSpec)` is deprecated",
         "predict returned None", "LightningCLI's args parameter", "GPU available: False", "TPU available: False",
         "HPU available: False")


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(NOISE)


def quiet_known_noise() -> None:
    """Silence the messages in NOISE; every other warning stays.  Output to a file gets
    Lightning's progress bar only: tqdm's (data preparation) are off (TQDM_DISABLE=0 keeps them)."""
    if not sys.stderr.isatty():
        os.environ.setdefault("TQDM_DISABLE", "1")
    for text in NOISE:
        warnings.filterwarnings("ignore", message=re.escape(text))
    for logger in {lightning_utilities.core.rank_zero.log, logging.getLogger("lightning.pytorch.utilities.rank_zero")}:
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise())


def main(args: Optional[Sequence[str]] = None) -> None:
    quiet_known_noise()
    argv = list(sys.argv[1:] if args is None else args)
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0") or "--debug" in argv
    set_debug(debug)
    argv = [a for a in argv if a != "--debug"]
    try:
        _dispatch(argv, from_sys_argv=args is None)
    except UserError as err:
        if debug:
            raise
        print(f"llada-rec: error: {err}", file=sys.stderr)
        raise SystemExit(2 if isinstance(err, ConfigError) else 1) from None


if __name__ == "__main__":
    main()
