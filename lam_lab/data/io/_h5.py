"""Small HDF5 helpers shared by the Transition1x, ANI-1x and lam-h5 readers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import h5py
import numpy as np

from lam_lab.data.errors import DataError

if TYPE_CHECKING:
    from lam_lab.data.dataset import Dataset
    from lam_lab.data.frame import Frame


def open_h5(path: Path) -> h5py.File:
    """Open an HDF5 file read-only; a truncated or non-HDF5 file gives a :class:`DataError`."""
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"cannot open as HDF5 (truncated or corrupt?): {exc}", source=str(path)) from None


def dataset(group: h5py.Group, name: str, path: Path, frame: int | None = None) -> np.ndarray:
    """``group[name]`` read into memory, with a located error when absent or unreadable."""
    where = f"{group.name.rstrip('/')}/{name}"
    if name not in group or not isinstance(group[name], h5py.Dataset):
        raise DataError("dataset is missing", source=str(path), frame=frame, field=where)
    try:
        return group[name][()]
    except (OSError, RuntimeError, ValueError) as exc:
        raise DataError(f"cannot read (truncated or corrupt?): {exc}", source=str(path), frame=frame,
                        field=where) from None


def label_fields(group: h5py.Group) -> dict[str, dict[str, str]]:
    """``{prefix: {"energy": key, "forces": key}}`` for datasets named ``<prefix>.energy``/``.forces``."""
    out: dict[str, dict[str, str]] = {}
    for key in group:
        prefix, dot, what = key.rpartition(".")
        if dot and what in ("energy", "forces") and isinstance(group[key], h5py.Dataset):
            out.setdefault(prefix, {})[what] = key
    return out


def split_level(name: str) -> tuple[str, str | None]:
    """``"wB97x_6-31G(d)"`` -> method ``"wB97x"``, basis ``"6-31G(d)"`` (no basis when no underscore)."""
    method, _, basis = name.partition("_")
    return method, (basis or None)


def h5_dataset(frames: list["Frame"], path: Path, levels: Iterable[str], level_method: Callable[[str], tuple],
               label: str | None) -> "Dataset":
    """The Dataset of a reader's frames: provenance (method, basis) per level of theory, ``label`` kept if given."""
    from lam_lab.data.dataset import Dataset, LabelProvenance, Provenance
    from lam_lab.data.io._common import keep_only

    prov = Provenance(source=str(path))
    for lvl in levels:
        method, basis = level_method(lvl)
        prov.labels[lvl] = LabelProvenance(method=method, basis=basis)
    ds = Dataset(frames, name=Path(path).stem, provenance=prov)
    return keep_only(ds, label, path) if label is not None else ds
