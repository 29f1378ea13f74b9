"""Run folders: unique ``auto`` names, no fresh run over another run's files, one writer at a time (lock)."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import os
import socket
from pathlib import Path
from typing import Iterator

from lam_lab.data.errors import DataError

LOCK_NAME = ".lam_lab.lock"
# files a training run writes: their presence means the folder holds a run
RUN_FILES = ("model.pt", "best.pt", "events.jsonl")


class RunFolderError(DataError):
    """A run folder that cannot be used: it holds another run, or another process is writing to it."""


def auto_dir(root: str | Path = "lam_lab_runs", prefix: str = "train") -> Path:
    """A new, empty folder ``root/prefix-YYYYmmdd-HHMMSS[-k]``; ``mkdir`` without ``exist_ok`` makes it unique."""
    stamp = _dt.datetime.now().strftime(f"{prefix}-%Y%m%d-%H%M%S")
    Path(root).mkdir(parents=True, exist_ok=True)
    for k in range(1, 10_000):
        path = Path(root) / (stamp if k == 1 else f"{stamp}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:  # another run started in the same second
            continue
    raise RunFolderError("no free run folder name", source=str(root))


def discard_if_empty(path: str | Path) -> None:
    """Remove the folder ``path`` if it is still empty (a run that failed before writing anything)."""
    path = Path(path)
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()


def existing_run(path: Path) -> list[str]:
    """Names of the run files already in ``path`` (empty when it holds no run)."""
    found = [name for name in RUN_FILES if (path / name).exists()]
    ckpts = sorted(p.name for p in (path / "checkpoints").glob("step_*.pt")) if (path / "checkpoints").is_dir() else []
    return found + [f"checkpoints/{name}" for name in ckpts[-1:]]


_REPLACE: contextvars.ContextVar[bool] = contextvars.ContextVar("lam_lab_replace_runs", default=False)


@contextlib.contextmanager
def replacing_runs() -> Iterator[None]:
    """Within this block a fresh run may take over a folder holding an older run: the old run's files
    move to ``replaced-<time>/`` inside it (nothing is lost). For callers that own their run folders,
    such as a pipeline re-running a stage whose settings changed."""
    token = _REPLACE.set(True)
    try:
        yield
    finally:
        _REPLACE.reset(token)


def move_aside(path: Path) -> Path:
    """Move the run files of ``path`` into a new ``path/replaced-<time>[-k]`` folder; returns it."""
    target = auto_dir(path, "replaced")
    for name in (*RUN_FILES, "checkpoints"):
        if (path / name).exists():
            os.replace(path / name, target / name)
    return target


def check_fresh(path: Path) -> None:
    """Refuse a fresh run in a folder that already holds a run (it would overwrite and prune its files)."""
    found = existing_run(path)
    if found and _REPLACE.get():
        move_aside(path)
        return
    if found:
        raise RunFolderError(
            f"the folder already holds a training run ({', '.join(found)}); a fresh run would overwrite it. "
            "Continue it with resume=True (CLI: --resume) or choose a new folder (out_dir, CLI: --out)",
            source=str(path))


class RunLock:
    """An exclusive lock on a run folder (``fcntl.flock`` on ``.lam_lab.lock``, holding the owner's pid).

    The kernel drops a ``flock`` when its process dies, so a lock left by a killed run is never stale.
    """

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        """Take the lock or raise :class:`RunFolderError` naming the process that holds it."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown process"
            os.close(fd)
            raise RunFolderError(f"another training run ({owner}) is writing to this folder; "
                                 "wait for it to end or choose another folder", source=str(self.path.parent)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would race with a process about to lock it)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def open_run_folder(out_dir: str | Path | None, resume: object,
                    is_main: bool = True) -> tuple[Path | None, RunLock | None]:
    """The run's folder (``"auto"``: a new unique one) and its lock; refuses folders holding another run."""
    if out_dir is None:
        return None, None
    if out_dir == "auto":
        if not is_main:  # only the main DDP rank writes files
            return Path("lam_lab_runs") / "ddp-rank", None
        path = auto_dir()
    else:
        path = Path(out_dir)
        if path.exists() and not path.is_dir():
            raise RunFolderError("out_dir is a file, not a folder", source=str(path))
    if not is_main:
        return path, None
    lock = RunLock(path).acquire()
    try:
        if not resume:
            check_fresh(path)
    except BaseException:
        lock.release()
        raise
    return path, lock
