"""Readers and writers: ``read(path)`` / ``write(ds, path)`` for every supported format, auto-detected.

Formats (``FORMATS``): extxyz, ase-db, deepmd/npy (read/write), transition1x and ani1x HDF5 (read),
lam-h5 (lam_lab's own compressed HDF5, read/write). Units everywhere: Å, eV, eV/Å, virial eV.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from lam_lab.data.dataset import Dataset
from lam_lab.data.errors import DataError, UnknownSourceError, ValidationError
from lam_lab.data.io import ani1x, asedb, deepmd, extxyz, lamh5, transition1x
from lam_lab.data.io._common import as_data_error
from lam_lab.data.io._h5 import open_h5


@dataclass(frozen=True)
class Format:
    """One file format: its name, what it is, file extensions, and its reader/writer (None if absent)."""

    name: str
    description: str
    extensions: tuple[str, ...]
    reader: Callable[..., Dataset] | None
    writer: Callable[..., None] | None


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("extxyz", "extended XYZ (ASE), several label sets", extxyz.EXTENSIONS, extxyz.read_extxyz,
               extxyz.write_extxyz),
        Format("ase-db", "ASE SQLite database", asedb.EXTENSIONS, asedb.read_asedb, asedb.write_asedb),
        Format("deepmd/npy", "DeePMD-kit system directory (or a root of systems)", (), deepmd.read_deepmd,
               deepmd.write_deepmd),
        Format("transition1x", "Transition1x-style HDF5 reaction paths", (), transition1x.read_transition1x, None),
        Format("ani1x", "ANI-1x-style HDF5 conformers (Hartree -> eV)", (), ani1x.read_ani1x, None),
        Format("lam-h5", "lam_lab's compressed HDF5, keeps everything", lamh5.EXTENSIONS, lamh5.read_lamh5,
               lamh5.write_lamh5),
    )
}

_ALIASES = {
    "xyz": "extxyz", "db": "ase-db", "asedb": "ase-db", "ase_db": "ase-db", "deepmd": "deepmd/npy",
    "npy": "deepmd/npy", "t1x": "transition1x", "ani": "ani1x", "ani-1x": "ani1x", "lamh5": "lam-h5",
    "lam_h5": "lam-h5",
}
_H5_EXTENSIONS = (".h5", ".hdf5", ".hdf")


def _supported(writable: bool = False) -> str:
    return ", ".join(n for n, f in FORMATS.items() if (f.writer if writable else f.reader) is not None)


def _resolve(fmt: str, path: Path | str) -> str:
    key = fmt.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; supported: {_supported()}", source=str(path))
    return key


def detect_format(path: str | Path, for_write: bool = False) -> str:
    """Format name from the path: extension, directory layout, or HDF5 group structure."""
    p = Path(path)
    ext = p.suffix.lower()
    if p.is_dir() or (for_write and str(path).endswith(("/", "\\"))):
        if for_write or deepmd.find_systems(p):
            return "deepmd/npy"
        raise DataError(f"directory holds no deepmd/npy system (type.raw); supported: {_supported()}", source=str(p))
    for name, f in FORMATS.items():
        if ext in f.extensions:
            return name
    if ext in _H5_EXTENSIONS:
        if for_write:
            return "lam-h5"
        with open_h5(p) as h:
            for name, mod in (("lam-h5", lamh5), ("transition1x", transition1x), ("ani1x", ani1x)):
                if mod.looks_like(h):
                    return name
        raise DataError(f"HDF5 layout not recognised as lam-h5, transition1x or ani1x; pass format= ({_supported()})",
                        source=str(p))
    kind = "write" if for_write else "read"
    raise DataError(f"cannot tell the format from the name; pass format= (can {kind}: {_supported(for_write)})",
                    source=str(p))


def read(
    path: str | Path,
    format: str | None = None,
    label: str | None = None,
    name: str | None = None,
    skip_invalid: bool = False,
    validate: bool = True,
    labels: Mapping[str, Sequence[str | None]] | None = None,
) -> Dataset:
    """Read a dataset (Å, eV, eV/Å) from ``path``, format auto-detected unless given.

    ``label`` names the label set where the file does not (default "reference"); where the file
    names its label sets, it selects that one set. ``labels`` (extxyz) reads several label sets from
    named keys, e.g. ``{"wb97x/6-31g*": ("dft_energy", "dft_forces"), "gfn2-xtb": ("xtb_energy",
    "xtb_forces")}`` (energy key, forces key[, virial key]; "energy"/"forces" are the standard ones).
    A warning lists the keys an extxyz read did not use. Unless ``validate=False`` the frames are checked
    and every problem is raised at once as :class:`ValidationError`; ``skip_invalid=True`` drops the
    bad frames instead, with a warning giving the count.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file or directory: {p}")
    fmt = _resolve(format, p) if format else detect_format(p)
    spec = FORMATS[fmt]
    if spec.reader is None:
        raise DataError(f"format {fmt!r} cannot be read; readable: {_supported()}", source=str(p))
    if labels is not None and fmt != "extxyz":
        raise DataError(f"labels= maps extxyz keys; a {fmt} file names its label sets itself (use label=)",
                        source=str(p), field="labels")
    if labels is not None:
        from lam_lab.data.io.label_map import check_label_map

        labels = check_label_map(labels)
    try:
        ds = spec.reader(p, label=label, **({"labels": labels} if labels else {}))
    except Exception as exc:  # noqa: BLE001 - any parse failure becomes a located DataError
        if isinstance(exc, MemoryError):
            raise
        raise as_data_error(exc, p, fmt) from None
    if name is not None:
        ds.name = name
    ds.provenance.source = str(p)
    if validate:
        ds = _validated(ds, skip_invalid)
    return ds


def load_source(source: "str | Path | Dataset", label: str | None = None, base: str | Path | None = None,
                split: str | None = None) -> Dataset:
    """The one "built-in name or path" resolver: a Dataset as is, a built-in set by name, or a file/folder.

    ``base`` is tried first for relative paths (a run file's folder); ``split`` keeps the frames with that
    ``info['split']``. A name that is neither raises a DataError with the closest built-in name.
    """
    if isinstance(source, Dataset):
        ds = source
    else:
        ds = _load_named_or_path(str(source), label, base)
    return ds.where(split=split, required=True) if split is not None else ds


def _load_named_or_path(source: str, label: str | None, base: str | Path | None) -> Dataset:
    import difflib

    from lam_lab import datasets

    names = datasets.available()
    if source in names:
        return datasets.load(source)
    candidates = [Path(source)] if base is None or Path(source).is_absolute() else [Path(base) / source, Path(source)]
    for path in candidates:
        if path.exists():
            return read(path, label=label)
    close = difflib.get_close_matches(source, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else (f"; built-in: {', '.join(names)}" if names else "")
    raise UnknownSourceError(f"{source!r} is neither a built-in data set nor an existing file or folder{hint}")


def _validated(ds: Dataset, skip_invalid: bool) -> Dataset:
    if not skip_invalid:
        ds.validate()
        return ds
    n = len(ds)
    good, problems = ds.drop_invalid()
    if not len(good):
        raise ValidationError(problems or [DataError("dataset is empty", source=ds.provenance.source)],
                              source=ds.provenance.source)
    if len(good) < n:
        bad = len({p.frame for p in problems})
        warnings.warn(f"{ds.provenance.source}: skipped {bad} of {n} frames with problems (first: {problems[0]})",
                      stacklevel=3)
    good.name = ds.name
    return good


def write(ds: Dataset, path: str | Path, format: str | None = None, label: str | None = None, **options: Any) -> None:
    """Write ``ds`` to ``path`` (format from the extension unless given); never leaves a half-written file.

    ``label`` picks the label set for single-label formats (default ``ds.default_label()``);
    ``options`` go to the format's writer (e.g. ``set_size`` for deepmd/npy, ``precision`` for lam-h5).
    """
    p = Path(path)
    fmt = _resolve(format, p) if format else detect_format(p, for_write=True)
    spec = FORMATS[fmt]
    if spec.writer is None:
        raise DataError(f"format {fmt!r} is read-only; writable: {_supported(writable=True)}", source=str(p))
    try:
        spec.writer(ds, p, label=label, **options)
    except DataError as exc:
        if exc.source is None:
            raise DataError(exc.message, source=str(p), frame=exc.frame, field=exc.field) from None
        raise


__all__ = ["FORMATS", "Format", "read", "write", "detect_format", "load_source"]
