"""Command line: LightningCLI for fit/validate/test/predict, plus the project's own commands.

    llada-rec fit --config experiments/scientific.yaml      (also: `lightning fit ...`,
    llada-rec test --config ... --ckpt_path best             `python -m llada_rec fit ...`)
    llada-rec data stats --format lcrec --path DIR
    llada-rec demo                                           fit + test on the embedded demo data
    llada-rec report RUN_DIR... --out DIR                    tables and plots from finished runs
    llada-rec sweep experiments/sweeps/alpha_lr.yaml         a W&B sweep file, run locally
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import lightning as L
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

from llada_rec.data.datamodule import RecDataModule

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


#: Decoding settings a config may change when it tests or predicts with a trained checkpoint.
DECODING_ARGS = ("beam_size", "val_beam_size", "num_steps", "order", "constrained", "decode_chunk_size", "top_k")


class SaveAndLogConfigCallback(SaveConfigCallback):
    """config.yaml in the run dir, and the same config in the W&B run's config."""

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        from lightning.pytorch.loggers import WandbLogger

        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update({"cli": self.config.as_dict()}, allow_val_change=True)


class LLaDARecCLI(LightningCLI):
    """LightningCLI with the project's DataModule fixed and any LightningModule as the model."""

    def __init__(self, args: Optional[Sequence[str]] = None, run: bool = True, **kwargs) -> None:
        super().__init__(
            model_class=L.LightningModule,
            datamodule_class=RecDataModule,
            subclass_mode_model=True,
            subclass_mode_data=False,
            parser_kwargs={"parser_mode": "omegaconf", "default_env": False},
            save_config_kwargs={"overwrite": True},
            seed_everything_default=0,
            args=args,
            run=run,
            auto_configure_optimizers=False,
            save_config_callback=SaveAndLogConfigCallback,
            **kwargs,
        )

    def _parse_ckpt_path(self) -> None:
        """Checkpoint hyperparameters fill the model config, except decoding settings, which
        the config keeps: inference ablations test one checkpoint with other decoders."""
        sub = self.config.get("subcommand")
        init_args = self.config[sub].model.get("init_args") if sub else None
        keep = {k: init_args[k] for k in DECODING_ARGS if init_args is not None and k in init_args}
        super()._parse_ckpt_path()
        for key, value in keep.items():
            self.config[sub].model.init_args[key] = value


def lightning_main(args: Optional[Sequence[str]] = None) -> LLaDARecCLI:
    return LLaDARecCLI(args=args)


# ---------------------------------------------------------------------------------------
# Project commands
# ---------------------------------------------------------------------------------------
def data_stats(argv: Sequence[str]) -> None:
    from llada_rec.data.dataset import preprocess
    from llada_rec.data.readers import FORMATS, read_source

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


def demo(argv: Sequence[str]) -> None:
    """Fit and test LLaDA-Rec (and the most-popular floor) on the embedded demo data."""
    from llada_rec.report import print_metrics_table

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


def main(args: Optional[Sequence[str]] = None) -> None:
    argv = list(sys.argv[1:] if args is None else args)
    if argv[:2] == ["data", "stats"]:
        return data_stats(argv[2:])
    if argv[:1] == ["demo"]:
        return demo(argv[1:])
    if argv[:1] == ["report"]:
        from llada_rec.report import main as report_main

        return report_main(argv[1:])
    if argv[:1] == ["sweep"]:
        from llada_rec.sweep import main as sweep_main

        return sweep_main(argv[1:])
    if argv[:1] and argv[0] not in LIGHTNING_COMMANDS and not argv[0].startswith("-"):
        print(f"llada-rec: unknown command {argv[0]!r}; expected one of "
              f"{', '.join(LIGHTNING_COMMANDS)}, data stats, demo, report, sweep", file=sys.stderr)
        raise SystemExit(2)
    lightning_main(None if args is None else argv)  # None: LightningCLI reads sys.argv itself


if __name__ == "__main__":
    main()
