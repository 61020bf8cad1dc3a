"""Small helpers used across the package."""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
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
        if tmp_path.is_file():  # mkstemp makes owner-only files; give the usual permissions
            os.chmod(tmp_path, 0o666 & ~_umask())
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


def check_writable(path: str | os.PathLike, hint: str) -> None:
    """Raise UserError unless files can be created in ``path`` (or, when it does not exist yet,
    in its nearest existing parent): found out by creating and removing one empty file."""
    path = Path(path)
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise UserError(f"{path}: cannot write there ({existing} is not a folder); {hint}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".llada-rec-probe.", suffix=".tmp", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"{path}: cannot write there ({err.strerror or err}); {hint}") from err


class StagedFiles:
    """A run's files, written under temporary names as the run goes and moved into place
    together by :meth:`commit` once the run has succeeded, so that a run that fails (or whose
    last write fails) leaves every earlier file byte-identical.

    A write that fails while staging is kept in memory and reported by :meth:`commit`, which
    then prints the results (the files staged with ``show=True``) to the terminal instead.
    """

    def __init__(self) -> None:
        self._files: list[tuple[Path, Optional[Path], str, bool, str]] = []  # path, tmp, text, show, note
        self._failure: Optional[tuple[Path, OSError]] = None

    def stage(self, path: str | os.PathLike, text: str, show: bool = False, note: str = "") -> None:
        """Write ``text`` for ``path`` under a temporary name beside it; ``note``: printed after commit."""
        path, tmp = Path(path), None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            tmp = Path(name)
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, 0o666 & ~_umask())
        except OSError as err:
            _remove(tmp)
            tmp = None
            self._failure = self._failure or (path, err)
        self._files.append((path, tmp, text, show, note))

    def discard(self) -> None:
        """Remove the temporary files; nothing is moved into place."""
        for _, tmp, *_ in self._files:
            _remove(tmp)
        self._files = []

    def commit(self) -> list[str]:
        """Move every staged file into place (all or none); returns the notes to print.

        When a move fails, the files already moved are put back as they were, the results
        are printed to stdout, and UserError names the file that could not be written."""
        moved: list[tuple[Path, Optional[Path]]] = []  # (path, backup of the file it replaced)
        backup: Optional[Path] = None
        try:
            if self._failure is not None:
                raise self._failure[1]
            for path, tmp, *_ in self._files:
                self._failure = (path, OSError("not written"))
                backup = _backup(path)
                os.replace(tmp, path)
                moved.append((path, backup))
                backup = None
            return [note for *_, note in self._files if note]
        except OSError as err:
            for path, old in reversed(moved):
                if old is not None:
                    os.replace(old, path)
                else:
                    _remove(path)
            raise self._report(err) from err
        finally:
            for path in [backup, *(old for _, old in moved)]:
                _remove(path)
            self.discard()

    def _report(self, err: OSError) -> UserError:
        failed = self._failure[0] if self._failure else Path("?")
        shown = [(path, text) for path, _, text, show, _ in self._files if show]
        for path, text in shown:
            print(f"--- {path.name} (not written) ---\n{text.rstrip()}")
        where = "printed above" if shown else "not kept"
        return UserError(f"could not write {failed} ({err.strerror or err}); the results are {where}; "
                         f"no earlier file in {failed.parent} was changed")


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _remove(path: Optional[Path]) -> None:
    if path is not None and path.exists():
        path.unlink()


def _backup(path: Path) -> Optional[Path]:
    """A hard link to the file at ``path`` (restored if a later file of the commit fails)."""
    if not path.exists():
        return None
    backup = path.with_name(f".{path.name}.{os.getpid()}.bak.tmp")
    _remove(backup)
    try:
        os.link(path, backup)
    except OSError:  # a file system without hard links
        shutil.copy2(path, backup)
    return backup
