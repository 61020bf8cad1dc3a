"""The `llada-rec serve` command: options, checkpoint by name, one-line errors before start."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from llada_rec.lightning_cli import find_checkpoint, logger_root
from llada_rec.serving.api import PRECISIONS, Recommender
from llada_rec.serving.requests import MAX_BODY_BYTES, MAX_K
from llada_rec.utils import ConfigError, UserError

DESCRIPTION = """\
Serve a trained recommender over HTTP (LitServe).  POST /predict with
{"history": [item ids, oldest first], "k": 10} (or a list of such objects) answers
{"items": [...], "scores": [...], "unknown": [...]}: original item ids, best first; the newest
max_history known items count and none of them is recommended back; unknown ids are skipped
and listed.  GET /health is 200 once the model
is loaded.  Bad requests get a 4xx with a one-line {"detail": ...}."""

EPILOG = """\
examples:
  llada-rec serve --ckpt_path runs/demo/version_0                  (a run directory: its best checkpoint)
  llada-rec serve --config experiments/demo.yaml --ckpt_path best  (the newest run of that config)
  curl -s localhost:8000/predict -d '{"history": ["B0001", "B0002"], "k": 5}'"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llada-rec serve", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt_path", required=True,
                   help="a checkpoint file, a run directory (its best checkpoint, else last.ckpt), or best|last: "
                        "the newest run of the logger in --config")
    p.add_argument("--config", action="append", default=[],
                   help="the fit's YAML config (repeatable, later files win): names the run directories for "
                        "best|last, and its model.init_args.decoding settings replace the checkpoint's")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--max_batch_size", type=int, default=32,
                   help="most requests LitServe batches into one decode (default 32; 1 = no batching)")
    p.add_argument("--batch_timeout", type=float, default=0.01,
                   help="seconds LitServe waits to fill a batch (default 0.01)")
    p.add_argument("--workers_per_device", type=int, default=1, help="model copies (worker processes) per device (default 1)")
    p.add_argument("--accelerator", choices=("auto", "cpu", "cuda"), default="auto", help="where the model runs (default auto)")
    p.add_argument("--precision", choices=PRECISIONS, default="32", help="32 (float32) or bf16 (bfloat16 autocast)")
    p.add_argument("--max_k", type=int, default=MAX_K, help=f"the largest k a request may ask (default {MAX_K})")
    p.add_argument("--max_body_bytes", type=int, default=MAX_BODY_BYTES,
                   help=f"larger request bodies get 413 (default {MAX_BODY_BYTES:,})")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds before a queued request gets 504 (default 30)")
    p.add_argument("--item_map", default=None, help="item_map.json when it is not in the checkpoint's run directory")
    return p


def read_configs(paths: Sequence[str]) -> dict[str, Any]:
    """The YAML files merged (later wins, mappings merged key by key); read with safe_load."""
    merged: dict[str, Any] = {}
    for path in paths:
        if not Path(path).is_file():
            raise ConfigError(f"--config {path}: no such file")
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"--config {path}: not YAML ({str(err).splitlines()[0]})") from err
        if not isinstance(data, dict):
            raise ConfigError(f"--config {path}: expected a mapping at the top")
        merged = merge(merged, data)
    return merged


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def resolve_checkpoint(ckpt_path: str, config: dict[str, Any]) -> str:
    """best|last -> the newest run's checkpoint below the config's logger; else the path as given."""
    if ckpt_path not in ("best", "last"):
        return ckpt_path
    if not config:
        raise ConfigError(f"--ckpt_path {ckpt_path}: needs --config (the fit's config names the run directories)")
    return str(find_checkpoint(logger_root(config.get("trainer") or {}), ckpt_path))


def decoding_overrides(config: dict[str, Any]) -> Optional[dict[str, Any]]:
    init_args = (config.get("model") or {}).get("init_args") or {}
    decoding = init_args.get("decoding")
    return dict(decoding) if isinstance(decoding, dict) and decoding else None


def interrupt(signum: int, frame: Any) -> None:
    """SIGTERM as Ctrl-C: LitServe shuts its worker processes down on KeyboardInterrupt only;
    killed otherwise, the server would leave them running."""
    raise KeyboardInterrupt


def main(argv: Sequence[str]) -> None:
    opts = parser().parse_args(list(argv))
    for name in ("max_batch_size", "workers_per_device", "max_k", "max_body_bytes"):
        if getattr(opts, name) < 1:
            raise ConfigError(f"--{name}={getattr(opts, name)}: must be >= 1")
    if opts.batch_timeout < 0 or opts.timeout <= opts.batch_timeout:
        raise ConfigError(f"--batch_timeout={opts.batch_timeout}, --timeout={opts.timeout}: need 0 <= batch_timeout < timeout")
    config = read_configs(opts.config)
    ckpt = resolve_checkpoint(opts.ckpt_path, config)
    decoding = decoding_overrides(config)
    recommender = Recommender.load(ckpt, decoding=decoding, item_map=opts.item_map, precision=opts.precision, max_k=opts.max_k)
    print(f"serving {ckpt}: {type(recommender.model).__name__}, {recommender.item_map.num_items:,} items, "
          f"http://{opts.host}:{opts.port}/predict", flush=True)
    try:  # litserve is the optional [serve] extra: import it only to serve
        from llada_rec.serving.server import build_server
    except ImportError as err:
        raise UserError(f"llada-rec serve needs LitServe ({err}): pip install 'llada-rec[serve]'") from err
    server = build_server(recommender, os.fspath(ckpt), decoding, opts.item_map, opts.max_batch_size, opts.batch_timeout,
                          opts.workers_per_device, opts.accelerator, opts.timeout, opts.max_body_bytes)
    del recommender  # the worker loads its own copy
    signal.signal(signal.SIGTERM, interrupt)  # `kill` stops the workers too, as Ctrl-C does
    server.run(host=opts.host, port=opts.port, generate_client_file=False, log_level="warning")
