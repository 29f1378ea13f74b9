"""Helpers shared by the readers/writers: atomic file writes, error wrapping, JSON and label-key encoding."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import string
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import quote, unquote

import numpy as np

from lam_lab.atomic import user_mode
from lam_lab.data.errors import DataError

if TYPE_CHECKING:
    from lam_lab.data.dataset import Dataset

# Characters kept as-is when a label-set name becomes part of a file key (extxyz/ase-db);
# everything else is %-escaped so names like "wb97x/6-31g*" or "gfn2 xtb" stay reversible.
_KEY_SAFE = "()*+-."


def label_key(name: str) -> str:
    """A label-set name made safe for extxyz/ase-db keys (reversible with :func:`label_name`)."""
    return quote(name, safe=_KEY_SAFE)


def label_name(key: str) -> str:
    """Inverse of :func:`label_key`."""
    return unquote(key)


def json_default(obj: Any) -> Any:
    """JSON encoder fallback for numpy scalars/arrays and paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dumps(obj: Any) -> str:
    """Compact JSON with numpy support."""
    return json.dumps(obj, default=json_default, separators=(",", ":"))


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``, on failure it is removed.

    An existing good file is therefore never left half-written.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.unlink(tmp)  # writers (h5py, ase.db) create the file themselves
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: Path, may_replace: bool) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; on success it takes the place of ``path``.

    ``may_replace`` says whether an existing ``path`` may be swapped out (the caller checks that it
    is safe to delete); the old tree is removed only after the new one is in place.
    """
    path = Path(path)
    if path.exists() and not may_replace:
        raise DataError("refusing to overwrite an existing path that is not a dataset of this format", source=str(path))
    parent = path.parent if str(path.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp"))
    os.chmod(tmp, user_mode(directory=True))  # mkdtemp makes 0700 folders; the data set follows the umask
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=parent, prefix=f".{path.name}.", suffix=".old"))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def as_data_error(exc: BaseException, path: Path | str, fmt: str) -> DataError:
    """Turn a low-level parse/IO exception into a :class:`DataError` naming the file."""
    if isinstance(exc, DataError):
        if exc.source is None:
            return DataError(exc.message, source=str(path), frame=exc.frame, field=exc.field)
        return exc
    detail = str(exc).strip() or type(exc).__name__
    return DataError(f"cannot read as {fmt} (truncated or corrupt?): {type(exc).__name__}: {detail}", source=str(path))


DEFAULT_LABEL = "reference"  # name of a label set whose file does not name it


def write_label(ds: "Dataset", label: str | None) -> str | None:
    """The label set a single-label writer stores: ``label``, else the dataset's default, else None."""
    if label is not None:
        if label not in ds.label_sets:
            raise DataError(f"no label set {label!r} in dataset {ds.name!r} (has {ds.label_sets})")
        return label
    return ds.default_label() if ds.label_sets else None


def keep_only(ds: "Dataset", label: str, path: Path | str) -> "Dataset":
    """Drop every label set but ``label`` (in place); error when the file has no such set."""
    available = ds.label_sets
    if label not in available:
        raise DataError(f"no label set {label!r} in this file (available: {available})", source=str(path))
    for f in ds.frames:
        for k in [k for k in f.labels if k != label]:
            del f.labels[k]
    ds.provenance.labels = {k: v for k, v in ds.provenance.labels.items() if k == label}
    return ds


# -- text in extxyz comment lines ----------------------------------------------------------------------
# ASE's extxyz writer escapes `"` but not `\`, cannot hold a newline, and its reader turns strings such
# as "T", "1e0" or "1 2 3" into bools, numbers and arrays. lam_lab therefore writes every string value
# that would not come back unchanged as "%" + its %-escaped text, and marks the frame with TEXT_MARK so
# a reader knows; files without the mark (older ones, other tools') are read as they are.
TEXT_MARK = "lam_text"
_PLAIN_TEXT = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/+*()@:#]*")
_WORDS = {"t", "f", "true", "false", "nan", "inf", "infinity"}
# kept readable inside an escaped value: ASCII punctuation (ASE escapes `"` itself) but `%` and `\`
_KEEP = "".join(c for c in string.punctuation if c not in "%\\=")


def _plain_text(text: str) -> bool:
    return bool(_PLAIN_TEXT.fullmatch(text)) and text.lower() not in _WORDS and not text.startswith("_JSON")


def encode_info(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` with every string value that extxyz would not read back unchanged %-escaped (see TEXT_MARK)."""
    out, marked = dict(info), False
    for key, value in info.items():
        if isinstance(value, str) and not _plain_text(value):
            out[key] = "%" + quote(value, safe=_KEEP)
            marked = True
    if marked:
        out[TEXT_MARK] = True
    return out


def decode_info(info: dict[str, Any]) -> None:
    """Undo :func:`encode_info` in place (only on frames that carry its mark)."""
    if not info.pop(TEXT_MARK, False):
        return
    for key, value in info.items():
        if isinstance(value, str) and value.startswith("%"):
            info[key] = unquote(value[1:])
