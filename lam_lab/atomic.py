"""Atomic file writes: a crash mid-write never corrupts the file already there."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable


def user_mode(directory: bool = False) -> int:
    """Permission bits a plain ``open``/``mkdir`` would give under the current umask (0o666 or 0o777 masked)."""
    mask = _umask()
    return (0o777 if directory else 0o666) & ~mask


def _umask() -> int:
    # Linux reports it without changing it; os.umask would briefly set 0 for every thread of the process
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename over it (see ``atomic_write``)."""
    import torch  # here, not at the top: JSON/text writers (the CLI's data commands) need no torch

    return atomic_write(path, lambda fh: torch.save(obj, fh))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 text atomically (JSON, Markdown, HTML reports)."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_write(path: str | Path, write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write(fh)`` on a temporary binary file beside ``path``, fsync, then rename over it.

    A crash mid-write leaves at most a stray ``.tmp`` file: the previous ``path`` is never touched
    until the new file is complete (``os.replace`` is atomic on POSIX and Windows).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, user_mode())  # mkstemp makes 0600 files; a saved model should follow the umask
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path
