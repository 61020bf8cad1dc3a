"""The project's LightningCLI (fit/validate/test/predict): checkpoints by name (``last``,
``best``), argument ranges checked before anything is built, one-line argument errors,
run directories and resuming.  ``llada_rec.cli`` dispatches to it; sweeps run trials with it.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import lightning as L
import torch
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.trainer.states import TrainerStatus

import llada_rec.models  # noqa: F401  (registers the model classes: --model LLaDARec works)
import llada_rec.models.baselines  # noqa: F401
import llada_rec.tokenizers  # noqa: F401
from llada_rec.callbacks import RunFileWriter, output_writers, without_empty_summary
from llada_rec.datamodule.recommendation import RecDataModule
from llada_rec.data.item_map import ItemMapWriter
from llada_rec.config_groups import nest_flat_hparams
from llada_rec.legacy_args import migrated_cli_args
from llada_rec.run_checks import (  # noqa: F401  (ARG_RULES, check_ranges: re-exported)
    ARG_RULES,
    check_ranges,
    check_trainer,
    checkpoint_model_class,
    expected_num_heads,
    model_names,
)
from llada_rec.run_dirs import (  # noqa: F401  (re-exported: cli, sweeps and tests import them from here)
    _first_logger,
    checkpoint_run_dir,
    find_checkpoint,
    logger_root,
    read_metrics_rows,
)
from llada_rec.utils import ConfigError, StagedFiles, UserError, check_writable, run_dir

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
_DEBUG = False  # set by llada_rec.cli.main() through set_debug(): --debug or LLADA_REC_DEBUG=1


def set_debug(on: bool) -> None:
    """Full jsonargparse error reports (``--debug``) instead of one line."""
    global _DEBUG
    _DEBUG = on


#: Init arguments a config keeps over a trained checkpoint's when it tests or predicts with it:
#: the decoding settings group (its fields: ``llada_rec.decoding.DECODING_FIELDS``) and top_k.
DECODING_ARGS = ("decoding", "top_k")

def _plain(value: Any) -> Any:
    """A jsonargparse Namespace as a dict (other values as they are)."""
    return value.as_dict() if hasattr(value, "as_dict") else value


def _as_lists(value: Any) -> Any:
    """Tuples as lists, in nested dicts too (a checkpoint keeps tuples, a config lists)."""
    if isinstance(value, dict):
        return {k: _as_lists(v) for k, v in value.items()}
    return [_as_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


def changed_settings(kept: dict[str, Any], hparams: dict[str, Any]) -> dict[str, Any]:
    """The settings in ``kept`` (groups by their fields' names) that differ from the checkpoint's."""
    changed = {}
    for key, value in kept.items():
        value, saved = _plain(value), hparams.get(key)
        if isinstance(value, dict) and isinstance(saved, dict):
            changed.update({k: v for k, v in value.items() if k in saved and saved[k] != v})
        elif key in hparams and saved != value:
            changed[key] = value
    return changed


_SKIP = ("Does not validate", "Subtypes:", "Errors:", "Problem with given class_path", "Given value",
         "Expected a <class 'NoneType'>", "Parser key", "Expected a path but")


def short_argument_error(message: str) -> str:
    """One line from jsonargparse's nested union report: the option at fault and why."""
    lines = [line.strip().lstrip("- ").strip() for line in message.splitlines() if line.strip()]
    if len(lines) <= 1:
        return message.strip()
    keys = re.findall(r'Parser key "([^"]+)"', message)
    given = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Given value:")), None)
    reasons = [line for line in lines if not line.startswith(_SKIP)]
    reason = reasons[0] if reasons else lines[-1]
    if reason.startswith("Expected a dot import path string"):
        reason = f"unknown class {given!r} (e.g. LLaDARec, SASRec, TIGER; `--model.help CLASS` lists its options)"
    elif reason.startswith("Expected a <class") and "Got value" not in reason and given is not None:
        reason = f"{reason}. Got value: {given}"
    return f"--{'.'.join(keys)}: {reason}" if keys else reason


class ArgumentParser(LightningArgumentParser):
    """jsonargparse's parser with one-line errors (the full report with --debug)."""

    def error(self, message: str, ex: Optional[Exception] = None):  # type: ignore[override]
        if _DEBUG or not self.exit_on_error:
            return super().error(message, ex)
        prog = self.prog.replace(" [options]", "")
        sys.stderr.write(f"llada-rec: error: {short_argument_error(message)}  (see `{prog} --help`)\n")
        raise SystemExit(2)


class SaveAndLogConfigCallback(SaveConfigCallback):
    """config.yaml in the run dir (for test/predict with a checkpoint: in the output dir,
    unless that is the checkpoint's own run, whose config stays), and in the W&B run."""

    output_dir: Optional[str] = None
    staging: Optional[StagedFiles] = None  # test/predict: config.yaml moves into place with the results

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.output_dir is None and self.staging is None:
            return super().setup(trainer, pl_module, stage)
        if self.already_saved:
            return
        path = run_dir(trainer, self.output_dir) / self.config_filename  # every rank asks (DDP)
        if trainer.is_global_zero:
            if self.save_to_log_dir and self.staging is not None:
                self.staging.stage(path, self.parser.dump(self.config, skip_none=False))
            elif self.save_to_log_dir:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.parser.save(self.config, str(path), skip_none=False, overwrite=True, multifile=self.multifile)
            self.save_config(trainer, pl_module, stage)
        self.already_saved = True

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update({"cli": self.config.as_dict()}, allow_val_change=True)


class LLaDARecCLI(LightningCLI):
    """LightningCLI with the project's DataModule fixed and any LightningModule as the model."""

    def __init__(self, args: Optional[Sequence[str]] = None, run: bool = True, **kwargs) -> None:
        self._resume: Optional[tuple[Path, int]] = None  # (run dir, checkpoint epoch) of `fit` resuming
        self._output_dir: Optional[Path] = None  # test/predict with a checkpoint
        self._ckpt_run_dir: Optional[Path] = None
        self._staging: Optional[StagedFiles] = None  # validate/test/predict: files move into place at the end
        self._validated = False
        super().__init__(
            model_class=L.LightningModule,
            datamodule_class=RecDataModule,
            subclass_mode_model=True,
            subclass_mode_data=False,
            parser_kwargs={"parser_mode": "omegaconf", "default_env": False, **{c: {"epilog": FIT_EPILOG} for c in LIGHTNING_COMMANDS}},
            save_config_kwargs={"overwrite": True},
            seed_everything_default=0,
            args=migrated_cli_args(args),  # settings of older versions: into their groups
            run=run,
            auto_configure_optimizers=False,
            save_config_callback=SaveAndLogConfigCallback,
            trainer_defaults={"callbacks": [*output_writers(), ItemMapWriter()]},  # metrics.json, predictions.jsonl, item_map.json
            parser_class=ArgumentParser,
            **kwargs,
        )

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument(
            "--output_dir", type=Optional[str], default=None,
            help="test/predict: where metrics.json / predictions.jsonl go (default: the checkpoint's run dir)",
        )

    # -- checkpoints --------------------------------------------------------------------
    def _parse_ckpt_path(self) -> None:
        """``last`` / ``best`` name the newest run's checkpoints; checkpoint hyperparameters
        fill the model config, except decoding settings, which the config keeps (inference
        ablations test one checkpoint with other decoders)."""
        sub = self.config.get("subcommand")
        if not sub:
            return
        self._resolve_checkpoint(sub)
        self._validate()

    def _resolve_checkpoint(self, sub: str) -> None:
        cfg = self.config[sub]
        ckpt = cfg.get("ckpt_path")
        if ckpt in ("last", "best"):
            if sub == "fit" and ckpt == "best":
                raise ConfigError("fit --ckpt_path best: resume from `last` (or a checkpoint path); `best` is for test/predict")
            ckpt = cfg.ckpt_path = str(find_checkpoint(logger_root(cfg.trainer), ckpt))
            print(f"checkpoint: {ckpt}")
        elif ckpt is not None and ckpt != "hpc" and not Path(ckpt).is_file():
            raise ConfigError(f"--ckpt_path {ckpt}: no such file")
        init_args = cfg.model.get("init_args")
        keep = {k: init_args[k] for k in DECODING_ARGS if init_args is not None and k in init_args}
        hparams = {}
        if ckpt is not None and Path(ckpt).is_file():
            try:
                hparams = torch.load(ckpt, map_location="cpu", weights_only=True).get("hyper_parameters", {})
            except Exception as err:
                raise UserError(f"--ckpt_path {ckpt}: not a readable checkpoint ({type(err).__name__}: {str(err).splitlines()[0]})") from err
            model_class = checkpoint_model_class(hparams, cfg.model.get("class_path"), ckpt)
            hparams = nest_flat_hparams(model_class, hparams) if model_class is not None else dict(hparams)  # old flat checkpoints
            configured = {k: v for k, v in (_plain(init_args) or {}).items() if k not in DECODING_ARGS}
            ignored = changed_settings(_as_lists(configured), _as_lists(hparams))
            if ignored:  # the network must be the one the weights were trained for
                print(f"note: --ckpt_path {ckpt}: the checkpoint's model settings are used; the config's "
                      f"{', '.join(f'{k}={v}' for k, v in sorted(ignored.items()))} ignored", file=sys.stderr)
            self._parse_checkpoint_hparams(sub, hparams)
        cfg = self.config[sub]  # parsing the checkpoint's hyperparameters made a new config
        for key, value in keep.items():
            cfg.model.init_args[key] = value
        if ckpt is None or checkpoint_run_dir(ckpt) is None:
            return
        run_dir = checkpoint_run_dir(ckpt)
        if sub == "fit":
            root = logger_root(cfg.trainer)
            if root is not None and run_dir.parent.resolve() == root.resolve():  # resume in place
                _first_logger(cfg.trainer).init_args.version = run_dir.name
                epoch = torch.load(ckpt, map_location="cpu", weights_only=True).get("epoch", -1)
                self._resume = (run_dir, int(epoch))
        elif sub in ("test", "predict"):
            self._ckpt_run_dir = run_dir
            root, logger = logger_root(cfg.trainer), _first_logger(cfg.trainer)
            version = (logger.get("init_args") or {}).get("version") if logger is not None else None
            changed = changed_settings(keep, hparams)
            variant = ",".join(f"{k}={v}" for k, v in sorted(changed.items()))
            if root is not None and version is not None:  # the config names the run dir (ablations do)
                self._output_dir = root / (version if isinstance(version, str) else f"version_{version}")
            else:  # beside the checkpoint; another decoder gets a subdirectory named by what changed
                self._output_dir = run_dir / variant if variant else run_dir

    def _parse_checkpoint_hparams(self, sub: str, hparams: dict[str, Any]) -> None:
        """Fill the model config from a checkpoint's hyperparameters (LightningCLI's
        ``_parse_ckpt_path``, on hyperparameters already read and nested)."""
        hparams = {k: v for k, v in hparams.items() if k != "_instantiator"}
        if not hparams:
            return
        if "_class_path" in hparams:
            hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
        try:
            self.config = self.parser.parse_object({sub: {"model": hparams}}, self.config)
        except SystemExit:
            sys.stderr.write("Parsing of ckpt_path hyperparameters failed!\n")
            raise

    # -- validation before anything is built ---------------------------------------------
    def before_instantiate_classes(self) -> None:
        if not self._validated:
            self._validate()

    def _validate(self) -> None:
        self._validated = True
        sub = self.config.get("subcommand")
        cfg = self.config[sub] if sub else self.config
        model = cfg.get("model")
        init_args = model.get("init_args") if model is not None and hasattr(model, "get") else None
        check_trainer(cfg.get("trainer"), sub)
        check_ranges(init_args, "--model.init_args")
        decoding = init_args.get("decoding") if init_args is not None else None
        num_steps = decoding.get("num_steps") if hasattr(decoding, "get") else None
        if num_steps and cfg.get("data") is not None:
            items = cfg.data.get("items") or {}
            num_heads = expected_num_heads(items)
            if num_heads and num_heads % num_steps:
                raise ConfigError(
                    f"--model.init_args.decoding.num_steps={num_steps}: must divide the number of codes per item "
                    f"M={num_heads} (from {items.get('semantic_ids') or items.get('tokenizer_config')})"
                )
        if cfg.get("output_dir"):
            if sub not in ("test", "predict", None):
                raise ConfigError("--output_dir is for test and predict (fit writes into the logger's run dir)")
            self._output_dir = Path(cfg.output_dir)
        if sub is not None:
            self._check_output_writable(sub, cfg)

    def _check_output_writable(self, sub: str, cfg: Any) -> None:
        """Before any work: the folder the run writes into accepts files."""
        if self._output_dir is not None and sub != "fit":
            hint = "choose another --output_dir" if cfg.get("output_dir") else "write the results elsewhere with --output_dir DIR"
            return check_writable(self._output_dir, hint)
        root = logger_root(cfg.trainer)
        if root is not None:
            return check_writable(root, "choose another --trainer.logger.init_args.save_dir")
        check_writable(cfg.trainer.get("default_root_dir") or ".", "choose another --trainer.default_root_dir")

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except Exception as err:  # a model's own argument check: name the option, drop the wrapping
            cause = err
            while cause.__cause__ is not None:
                cause = cause.__cause__
            if isinstance(cause, UserError):
                raise cause from err
            if isinstance(cause, (ValueError, TypeError)):
                raise ConfigError(f"{_class_name(self.config, self.subcommand)}: {cause}") from err
            raise

    def after_instantiate_classes(self) -> None:
        if not hasattr(self, "trainer"):  # a parse-only subclass (sweeps) instantiates nothing
            return
        self.trainer.callbacks[:] = [without_empty_summary(c) for c in self.trainer.callbacks]
        for logger in self.trainer.loggers:  # Lightning passes anonymous=None, which W&B warns about
            if isinstance(logger, WandbLogger) and logger._wandb_init.get("anonymous") is None:
                logger._wandb_init.pop("anonymous", None)
        if self.subcommand in ("validate", "test", "predict"):
            self._staging = StagedFiles()
            for callback in self.trainer.callbacks:
                if isinstance(callback, (RunFileWriter, SaveAndLogConfigCallback)):
                    callback.staging = self._staging
        if self._output_dir is not None and self.subcommand in ("test", "predict"):
            for writer in (c for c in self.trainer.callbacks if isinstance(c, RunFileWriter)):
                writer.output_dir = str(self._output_dir)
            for callback in self.trainer.callbacks:
                if isinstance(callback, SaveAndLogConfigCallback):
                    callback.output_dir = str(self._output_dir)
                    callback.save_to_log_dir = self._output_dir != self._ckpt_run_dir  # the fit's config stays
            if self._ckpt_run_dir is not None:  # nothing is saved; keeps the callbacks' state valid
                for callback in self.trainer.checkpoint_callbacks:
                    callback.dirpath = str(self._ckpt_run_dir / "checkpoints")
            # no new version directory for an evaluation of a trained run
            self.trainer.loggers = [lg for lg in self.trainer.loggers if not isinstance(lg, CSVLogger)]

    # -- running ---------------------------------------------------------------------------
    def before_fit(self) -> None:
        if self._resume is None:
            return
        run_dir, epoch = self._resume
        rows = read_metrics_rows(run_dir / "metrics.csv", epoch)
        logger = self.trainer.logger
        with warnings.catch_warnings():  # "Previous log files ... will be deleted": we carry the rows over
            warnings.filterwarnings("ignore", message="Experiment logs directory")
            writer = logger.experiment if logger is not None else None
        if writer is not None and hasattr(writer, "metrics"):
            writer.metrics[:0] = rows
        print(f"resuming {run_dir} after epoch {epoch} ({len(rows)} metric rows kept)")

    def _run_subcommand(self, subcommand: str) -> None:
        """Run; a run that fails before writing anything leaves no empty run directory."""
        before = set(_run_dirs(self.trainer))
        output_dir = self._output_dir if self._output_dir is not None and not self._output_dir.exists() else None
        try:
            with warnings.catch_warnings():
                if self._resume is not None:  # resuming in place: of course the directory is not empty
                    warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")
                super()._run_subcommand(subcommand)
            if self._staging is not None and self.trainer.is_global_zero:
                for note in self._staging.commit():
                    print(note)
        except SystemExit as stop:  # Lightning's graceful stop after SIGINT (exit 1) or SIGTERM (exit 0)
            if self._staging is not None:
                self._staging.discard()
            if self.trainer.state.status != TrainerStatus.INTERRUPTED:
                raise
            sigterm = bool(getattr(self.trainer, "received_sigterm", False))
            last = getattr(self.trainer.checkpoint_callback, "last_model_path", "") or "no checkpoint yet"
            if self.trainer.is_global_zero:
                print(f"llada-rec: interrupted ({'SIGTERM' if sigterm else 'SIGINT'}); last completed epoch: {last}; "
                      "continue with the same command and --ckpt_path last", file=sys.stderr)
            raise SystemExit(143 if sigterm else 130) from stop
        except RuntimeError as err:
            self._clean_failed_run(before, output_dir)
            ckpt = self.config_init[subcommand].get("ckpt_path") if subcommand in self.config_init else None
            if ckpt and "state_dict" in str(err):  # a checkpoint of another model or other data
                lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
                first = "; ".join(lines[:2])[:300]
                raise UserError(f"--ckpt_path {ckpt}: does not fit this model and data ({first}); "
                                "use the config and data it was trained with") from err
            raise
        except OSError as err:  # a write failed (full disk, read-only folder): say what is kept
            self._clean_failed_run(before, output_dir)
            where = err.filename or f"writing into {self.trainer.log_dir or self.trainer.default_root_dir}"
            raise UserError(f"{where}: {err.strerror or err}; {self._kept_files()}") from err
        except BaseException:
            self._clean_failed_run(before, output_dir)
            raise
        finally:
            _finish_wandb(self.trainer)

    def _kept_files(self) -> str:
        """Where a failed run's finished files are (its checkpoints), or that earlier files stayed."""
        callback = self.trainer.checkpoint_callback
        saved = [p for p in (getattr(callback, "best_model_path", ""), getattr(callback, "last_model_path", "")) if p and Path(p).is_file()]
        if self.subcommand == "fit" and saved:
            return f"the checkpoints written so far are kept: {', '.join(sorted(set(saved)))}"
        return "nothing was written, and no earlier file was changed"

    def _clean_failed_run(self, before: set[Path], output_dir: Optional[Path]) -> None:
        """Drop the staged files; remove the directories this run made if it wrote no checkpoint
        or result into them."""
        if self._staging is not None:
            self._staging.discard()
        if self.trainer.is_global_zero:
            for directory in (set(_run_dirs(self.trainer)) - before) | ({output_dir} if output_dir else set()):
                if not any(p.suffix in (".ckpt", ".json", ".jsonl") for p in directory.rglob("*")):
                    shutil.rmtree(directory, ignore_errors=True)


def _finish_wandb(trainer: L.Trainer) -> None:
    """End the W&B run while the terminal is still ours (at interpreter exit, W&B prints raw
    ANSI codes into a log file)."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger._experiment.finish(exit_code=0 if trainer.state.status == TrainerStatus.FINISHED else 1)


def _run_dirs(trainer: L.Trainer) -> list[Path]:
    roots = {Path(lg.root_dir) for lg in trainer.loggers if getattr(lg, "root_dir", None)}
    return [p for root in roots if root.is_dir() for p in root.iterdir() if p.is_dir()]


def _class_name(config: Any, sub: Optional[str]) -> str:
    cfg = config[sub] if sub else config
    model = cfg.get("model")
    path = model.get("class_path", "") if model is not None and hasattr(model, "get") else ""
    return f"--model {path.rsplit('.', 1)[-1]}" if path else "--model"


FIT_EPILOG = (
    "Model options: `--model.help CLASS` lists a model's init arguments, e.g. "
    f"`llada-rec fit --model.help LLaDARec` (models: {', '.join(model_names())}); "
    "`--print_config` after --config shows the composed "
    "configuration.  `--ckpt_path last` resumes the newest run in its own directory; test/predict "
    "accept `--ckpt_path best|last|PATH`.  --debug shows tracebacks."
)


def lightning_main(args: Optional[Sequence[str]] = None) -> LLaDARecCLI:
    return LLaDARecCLI(args=args)
