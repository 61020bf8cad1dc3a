"""Small helpers used across the package."""

from __future__ import annotations

import atexit
import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional

import torch.distributed as dist

if TYPE_CHECKING:
    import lightning as L


class UserError(Exception):
    """A mistake the user can fix (data, arguments, files); the CLI prints only its message."""


class ConfigError(UserError, ValueError):
    """A bad command-line or config argument; the message names the option."""


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success.

    A crash or an exception leaves no half-written file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        if tmp_path.is_file():  # mkstemp makes owner-only files; give the usual permissions
            os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def sha256_hex(*parts: bytes | str) -> str:
    """Content hash of several parts (strings are UTF-8 encoded), separated unambiguously."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def run_dir(trainer: "L.Trainer", output_dir: Optional[str | os.PathLike] = None) -> Path:
    """Where a run writes its files (metrics, predictions, semantic IDs): ``output_dir`` when
    given (the CLI's for test/predict of a trained run), else the logger's version directory,
    else the trainer's root dir.

    Without ``output_dir`` this reads ``trainer.log_dir``, which under DDP broadcasts from
    rank 0: every rank must call it.
    """
    if output_dir:
        return Path(output_dir)
    return Path(trainer.log_dir or trainer.default_root_dir)


_process_group_cleanup_registered = False


def destroy_process_group_at_exit() -> None:
    """Destroy torch.distributed's default process group before this process's interpreter
    shuts down (registered once per process; a no-op where no group was started).

    Lightning does this for NCCL only. A gloo group left to interpreter finalization can
    abort its process (SIGABRT, "terminate called without an active exception"): gloo's
    worker threads still hold tensors whose destruction needs the interpreter. Call it from a
    hook that runs in every DDP process after the group exists (the models' ``setup``).
    """
    global _process_group_cleanup_registered
    if _process_group_cleanup_registered or not (dist.is_available() and dist.is_initialized()):
        return
    _process_group_cleanup_registered = True
    atexit.register(_destroy_default_process_group)


def _destroy_default_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
