"""The project's LightningCLI (fit/validate/test/predict): checkpoints by name (``last``,
``best``), argument ranges checked before anything is built, one-line argument errors,
run directories and resuming.  ``llada_rec.cli`` dispatches to it; sweeps run trials with it.
"""

from __future__ import annotations

import csv
import importlib
import os
import re
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import lightning as L
import torch
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.trainer.states import TrainerStatus

import llada_rec.models  # noqa: F401  (registers the model classes: --model LLaDARec works)
import llada_rec.models.baselines  # noqa: F401
import llada_rec.tokenizers  # noqa: F401
from llada_rec.callbacks import RunFileWriter, output_writers
from llada_rec.data.datamodule import RecDataModule
from llada_rec.data.item_map import ItemMapWriter
from llada_rec.data.readers import FORMATS
from llada_rec.models.configs import nest_flat_hparams
from llada_rec.tokenizers.artifact import SemanticIds
from llada_rec.tokenizers.stage import load_tokenizer_config
from llada_rec.utils import ConfigError, UserError

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
_DEBUG = False  # set by llada_rec.cli.main() through set_debug(): --debug or LLADA_REC_DEBUG=1


def set_debug(on: bool) -> None:
    """Full jsonargparse error reports (``--debug``) instead of one line."""
    global _DEBUG
    _DEBUG = on


#: Init arguments a config keeps over a trained checkpoint's when it tests or predicts with it:
#: the decoding settings group (its fields: ``llada_rec.decoding.DECODING_FIELDS``) and top_k.
DECODING_ARGS = ("decoding", "top_k")

#: Ranges of init arguments, by name, for any model or the DataModule: checked before
#: anything is built, so a bad value fails in a second with the option named.
ARG_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "lr": (lambda v: v > 0, "> 0"),
    "weight_decay": (lambda v: v >= 0, ">= 0"),
    "dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "alpha": (lambda v: v >= 0, ">= 0"),
    "temperature": (lambda v: v > 0, "> 0"),
    "warmup_ratio": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "beam_size": (lambda v: v >= 1, ">= 1"),
    "val_beam_size": (lambda v: v >= 1, ">= 1"),
    "num_steps": (lambda v: v >= 1, ">= 1"),
    "top_k": (lambda v: v >= 1, ">= 1"),
    "d_model": (lambda v: v >= 1, ">= 1"),
    "num_layers": (lambda v: v >= 1, ">= 1"),
    "num_attention_heads": (lambda v: v >= 1, ">= 1"),
    "chunk_size": (lambda v: v >= 1, ">= 1"),
    "batch_size": (lambda v: v >= 1, ">= 1"),
    "eval_batch_size": (lambda v: v >= 1, ">= 1"),
    "item_batch_size": (lambda v: v >= 1, ">= 1"),
    "max_history": (lambda v: v >= 1, ">= 1"),
    "kcore": (lambda v: v >= 0, ">= 0"),
    "num_heads": (lambda v: v >= 1, ">= 1"),
    "codebook_size": (lambda v: v >= 2, ">= 2"),
}


def check_ranges(values: Any, prefix: str) -> None:
    """Raise ConfigError naming ``prefix.<name>`` for the first value outside its ARG_RULES range
    (settings groups too: ``prefix.network.d_model``)."""
    for name, value in dict(values or {}).items():  # a Namespace flattens groups to "network.d_model"
        if isinstance(value, dict):
            check_ranges(value, f"{prefix}.{name}")
            continue
        rule = ARG_RULES.get(name.rsplit(".", 1)[-1])
        if rule is None or value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        ok, required = rule
        if not ok(value):
            raise ConfigError(f"{prefix}.{name}={value}: must be {required}")


def _plain(value: Any) -> Any:
    """A jsonargparse Namespace as a dict (other values as they are)."""
    return value.as_dict() if hasattr(value, "as_dict") else value


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


def checkpoint_model_class(hparams: dict[str, Any], model_config: Any) -> Optional[type]:
    """The model class a checkpoint's hyperparameters (or else the config) name, if importable."""
    class_path = hparams.get("_class_path") or (model_config.get("class_path") if hasattr(model_config, "get") else None)
    if not isinstance(class_path, str) or "." not in class_path:
        return None
    module, name = class_path.rsplit(".", 1)
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def expected_num_heads(data: Any) -> Optional[int]:
    """M from the data config without touching the data: the artifact's codes or the tokenizer config."""
    if data.get("semantic_ids"):
        ids = SemanticIds.load(data["semantic_ids"])
        return ids.num_heads
    if data.get("tokenizer_config"):
        config = load_tokenizer_config([data["tokenizer_config"], *(data.get("tokenizer_overrides") or [])])
        return config.model.init_args.get("num_heads")
    return None


# ---------------------------------------------------------------------------------------
# Run directories and checkpoints
# ---------------------------------------------------------------------------------------
def _first_logger(trainer_config: Any) -> Optional[Any]:
    logger = trainer_config.get("logger")
    if isinstance(logger, list):
        logger = logger[0] if logger else None
    return logger if logger not in (None, True, False) and hasattr(logger, "get") else None


def logger_root(trainer_config: Any) -> Optional[Path]:
    """``save_dir/name`` of the first (CSV-style) logger: the parent of the run's version dirs."""
    logger = _first_logger(trainer_config)
    if logger is None:
        return None
    init = logger.get("init_args") or {}
    save_dir = init.get("save_dir")
    if save_dir is None:
        return None
    name = init.get("name", "lightning_logs")
    return Path(save_dir) / name if name else Path(save_dir)


def checkpoint_run_dir(ckpt_path: str | os.PathLike) -> Optional[Path]:
    """The run directory a checkpoint belongs to (``<run>/checkpoints/x.ckpt`` -> ``<run>``)."""
    path = Path(ckpt_path)
    return path.parent.parent if path.parent.name == "checkpoints" else None


def find_checkpoint(root: Optional[Path], which: str) -> Path:
    """The newest run's ``last.ckpt`` (``which="last"``) or its best checkpoint (``"best"``) below root."""
    where = f"{root}/*/checkpoints" if root is not None else "the logger's run directories"
    lasts = sorted(root.glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime) if root and root.is_dir() else []
    if which == "last":
        if not lasts:
            raise ConfigError(f"--ckpt_path last: no last.ckpt in {where}; train first (fit), or pass a checkpoint path")
        return lasts[-1]
    if lasts:
        state = torch.load(lasts[-1], map_location="cpu", weights_only=True).get("callbacks", {})
        for key, value in state.items():
            best = value.get("best_model_path") if key.startswith("ResumableCheckpoint") or key.startswith("ModelCheckpoint") else None
            if best and Path(best).is_file():
                return Path(best)
    bests = sorted(root.glob("*/checkpoints/best*.ckpt"), key=lambda p: p.stat().st_mtime) if root and root.is_dir() else []
    if not bests:
        raise ConfigError(f"--ckpt_path best: no best checkpoint in {where}; train first (fit), or pass a checkpoint path")
    return bests[-1]


def read_metrics_rows(path: Path, last_epoch: int) -> list[dict[str, Any]]:
    """The rows of a metrics.csv logged in epochs <= last_epoch, as numbers."""
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            values = {k: float(v) for k, v in row.items() if v not in ("", None)}
            if "epoch" in values and values["epoch"] > last_epoch:
                continue
            for key in ("step", "epoch"):
                if key in values:
                    values[key] = int(values[key])
            rows.append(values)
    return rows


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

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.output_dir is None:
            return super().setup(trainer, pl_module, stage)
        if self.already_saved:
            return
        if trainer.is_global_zero:
            if self.save_to_log_dir:
                os.makedirs(self.output_dir, exist_ok=True)
                path = os.path.join(self.output_dir, self.config_filename)
                self.parser.save(self.config, path, skip_none=False, overwrite=True, multifile=self.multifile)
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
        self._validated = False
        super().__init__(
            model_class=L.LightningModule,
            datamodule_class=RecDataModule,
            subclass_mode_model=True,
            subclass_mode_data=False,
            parser_kwargs={"parser_mode": "omegaconf", "default_env": False, **{c: {"epilog": FIT_EPILOG} for c in LIGHTNING_COMMANDS}},
            save_config_kwargs={"overwrite": True},
            seed_everything_default=0,
            args=args,
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
            model_class = checkpoint_model_class(hparams, cfg.model)
            hparams = nest_flat_hparams(model_class, hparams) if model_class is not None else dict(hparams)  # old flat checkpoints
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
        check_ranges(init_args, "--model.init_args")
        check_ranges(cfg.get("data"), "--data")
        if cfg.get("data") is not None and cfg.data.get("format") not in FORMATS:
            raise ConfigError(f"--data.format={cfg.data.get('format')}: must be one of {', '.join(FORMATS)}")
        decoding = init_args.get("decoding") if init_args is not None else None
        num_steps = decoding.get("num_steps") if hasattr(decoding, "get") else None
        if num_steps and cfg.get("data") is not None:
            num_heads = expected_num_heads(cfg.data)
            if num_heads and num_heads % num_steps:
                raise ConfigError(
                    f"--model.init_args.decoding.num_steps={num_steps}: must divide the number of codes per item "
                    f"M={num_heads} (from {cfg.data.get('semantic_ids') or cfg.data.get('tokenizer_config')})"
                )
        if cfg.get("output_dir"):
            if sub not in ("test", "predict", None):
                raise ConfigError("--output_dir is for test and predict (fit writes into the logger's run dir)")
            self._output_dir = Path(cfg.output_dir)

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
        except SystemExit as stop:  # Lightning's graceful stop after SIGINT (exit 1) or SIGTERM (exit 0)
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
        except BaseException:
            self._clean_failed_run(before, output_dir)
            raise

    def _clean_failed_run(self, before: set[Path], output_dir: Optional[Path]) -> None:
        """Remove the directories this run made if it wrote no checkpoint or result into them."""
        if self.trainer.is_global_zero:
            for directory in (set(_run_dirs(self.trainer)) - before) | ({output_dir} if output_dir else set()):
                if not any(p.suffix in (".ckpt", ".json", ".jsonl") for p in directory.rglob("*")):
                    shutil.rmtree(directory, ignore_errors=True)


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
    "`llada-rec fit --model.help LLaDARec` (also SASRec, TIGER, MostPopular, ItemTransitions, "
    "MultiHeadVQVAE, RQVAE, RQKMeans, OPQ); `--print_config` after --config shows the composed "
    "configuration.  `--ckpt_path last` resumes the newest run in its own directory; test/predict "
    "accept `--ckpt_path best|last|PATH`.  --debug shows tracebacks."
)


def lightning_main(args: Optional[Sequence[str]] = None) -> LLaDARecCLI:
    return LLaDARecCLI(args=args)
