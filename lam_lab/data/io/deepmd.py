"""DeePMD-kit ``deepmd/npy`` systems: type_map.raw, type.raw, set.*/{coord,box,energy,force,virial}.npy.

Units as DeePMD-kit: Å, eV, eV/Å, virial eV. A system holds frames with the same atom types in the
same order; a root directory holding several systems (found by their ``type.raw``) is DeePMD's
multi-system layout and is what a Dataset of several compositions is written as. A ``nopbc`` file
marks non-periodic systems (no box.npy needed). ``lam_lab.json`` (ignored by DeePMD-kit) keeps the
label-set name, dataset name and provenance so a round trip loses nothing that the format can hold.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers

from lam_lab.data.dataset import Dataset, Provenance
from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame, Labels
from lam_lab.data.io._common import DEFAULT_LABEL, atomic_dir, dumps, keep_only, write_label

SET_SIZE = 5000  # frames per set.NNN directory when writing (dpdata's default)
_META = "lam_lab.json"


def is_system(path: Path) -> bool:
    """True for a single deepmd/npy system directory."""
    return (Path(path) / "type.raw").is_file()


def find_systems(root: Path) -> list[Path]:
    """The system directories at or below ``root``, in natural order (data_2 before data_10)."""
    root = Path(root)
    if is_system(root):
        return [root]
    found = {p.parent for p in root.rglob("type.raw") if p.is_file()}
    def natural(p: Path) -> list:
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(p.relative_to(root)))]

    return sorted(found, key=natural)


def read_deepmd(path: Path, label: str | None = None) -> Dataset:
    """Frames of one system directory or of every system below a root (Å, eV, eV/Å)."""
    root = Path(path)
    systems = find_systems(root)
    if not systems:
        raise DataError("no deepmd/npy system (a directory with type.raw) found", source=str(root))
    meta = _read_meta(root)
    name = meta.get("label") or label or DEFAULT_LABEL
    frames: list[Frame] = []
    for sysdir in systems:
        tag = sysdir.name if sysdir == root else str(sysdir.relative_to(root))
        frames.extend(_read_system(sysdir, name, tag, first_index=len(frames)))
    prov = Provenance.from_dict(meta["provenance"]) if meta.get("provenance") else Provenance()
    prov.source = str(root)
    ds = Dataset(frames, name=str(meta.get("name") or root.name), provenance=prov)
    if label is not None and meta.get("label"):
        keep_only(ds, label, root)
    return ds


def _read_meta(root: Path) -> dict:
    p = root / _META
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except ValueError as exc:
        raise DataError(f"not valid JSON: {exc}", source=str(p)) from None


def _read_system(sysdir: Path, label: str, tag: str, first_index: int) -> list[Frame]:
    types = _load_raw(sysdir / "type.raw", int)
    n = len(types)
    tm_path = sysdir / "type_map.raw"
    if not tm_path.is_file():
        raise DataError("type_map.raw is missing: cannot tell which element each type is", source=str(tm_path))
    type_map = [str(s) for s in _load_raw(tm_path, str)]
    bad = [s for s in type_map if s not in atomic_numbers]
    if bad:
        raise DataError(f"unknown element symbols {bad}", source=str(tm_path), field="type_map")
    z_of_type = np.array([atomic_numbers[s] for s in type_map], dtype=np.int64)
    if n and (types.min() < 0 or types.max() >= len(type_map)):
        raise DataError(f"atom types {sorted(set(types.tolist()))} outside type_map (0..{len(type_map) - 1})",
                        source=str(sysdir / "type.raw"), field="type")
    periodic = not (sysdir / "nopbc").exists()
    sets = sorted(p for p in sysdir.glob("set.*") if p.is_dir())
    if not sets:
        raise DataError("no set.* directories", source=str(sysdir))
    frames: list[Frame] = []
    for setdir in sets:
        start = first_index + len(frames)
        coord = _load(setdir, "coord", n * 3, start, required=True)
        nf = len(coord)
        box = _load(setdir, "box", 9, start, nf)
        energy = _load(setdir, "energy", 1, start, nf)
        force = _load(setdir, "force", n * 3, start, nf)
        virial = _load(setdir, "virial", 9, start, nf)
        mixed = _load(setdir, "real_atom_types", n, start, nf)  # DeePMD "mixed type" systems
        if periodic and box is None:
            periodic = False  # dpdata treats a system without box.npy as non-periodic
        for i in range(nf):
            # an all-zero box is DeePMD's other way of saying "molecule, no cell"
            pbc_i = periodic and bool(np.any(box[i]))
            z = z_of_type[mixed[i].astype(np.int64)] if mixed is not None else z_of_type[types]
            lab = Labels(
                None if energy is None else energy[i, 0],
                None if force is None else force[i].reshape(n, 3),
                None if virial is None else virial[i].reshape(3, 3),
            )
            frames.append(Frame(
                z,
                coord[i].reshape(n, 3),
                box[i].reshape(3, 3) if pbc_i else np.zeros((3, 3)),
                np.full(3, pbc_i),
                {label: lab} if (energy is not None or force is not None or virial is not None) else {},
                {"system": tag},
            ))
    return frames


def _load_raw(path: Path, kind: type) -> np.ndarray:
    if not path.is_file():
        raise DataError("file is missing", source=str(path))
    try:
        return np.atleast_1d(np.loadtxt(path, dtype=kind, ndmin=1))
    except ValueError as exc:
        raise DataError(f"cannot parse: {exc}", source=str(path)) from None


def _load(setdir: Path, field: str, width: int, start: int, n_frames: int | None = None,
          required: bool = False) -> np.ndarray | None:
    """``set/field.npy`` as [frames, width] float64, checked against the frame count of coord.npy."""
    path = setdir / f"{field}.npy"
    if not path.is_file():
        if required:
            raise DataError("file is missing", source=str(path), field=field)
        return None
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"cannot load (truncated or corrupt?): {exc}", source=str(path), field=field) from None
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 0 or (arr.ndim == 1 and width != 1):
        raise DataError(f"shape {arr.shape} is not [frames, {width}]", source=str(path), field=field)
    nf = arr.shape[0]
    if n_frames is not None and nf != n_frames:
        raise DataError(f"has {nf} frames but coord.npy has {n_frames}", source=str(path),
                        frame=start + min(nf, n_frames), field=field)
    if arr.reshape(nf, -1).shape[1] != width:
        raise DataError(f"{arr.reshape(nf, -1).shape[1]} values per frame, expected {width} (from type.raw)",
                        source=str(path), frame=start, field=field)
    return arr.reshape(nf, width)


def write_deepmd(ds: Dataset, path: Path, label: str | None = None, set_size: int = SET_SIZE) -> None:
    """Write ``ds`` as one system (one composition/order) or a root of systems, one per composition."""
    path = Path(path)
    name = write_label(ds, label)
    type_map = ds.elements
    type_of = {atomic_numbers[s]: i for i, s in enumerate(type_map)}
    systems: dict[tuple, list[int]] = {}
    for i, f in enumerate(ds):
        systems.setdefault((f.numbers.tobytes(), f.is_periodic), []).append(i)
    may_replace = not path.exists() or (path.is_dir() and (not any(path.iterdir()) or bool(find_systems(path))))
    meta = {"label": name, "name": ds.name, "provenance": ds.provenance.to_dict()}
    with atomic_dir(path, may_replace) as tmp:
        used: set[str] = set()
        for idx in systems.values():
            if len(systems) == 1:
                sysdir = tmp
            else:
                base = ds[idx[0]].formula + ("" if ds[idx[0]].is_periodic else "-nopbc")
                sub, k = base, 1
                while sub in used:
                    sub, k = f"{base}.{k}", k + 1
                used.add(sub)
                sysdir = tmp / sub
            _write_system(ds, idx, sysdir, name, type_map, type_of, set_size)
        (tmp / _META).write_text(dumps(meta))


def _write_system(ds: Dataset, idx: list[int], sysdir: Path, label: str | None, type_map: list[str], type_of: dict,
                  set_size: int) -> None:
    sysdir.mkdir(parents=True, exist_ok=True)
    first = ds[idx[0]]
    (sysdir / "type_map.raw").write_text("\n".join(type_map) + "\n")
    (sysdir / "type.raw").write_text("\n".join(str(type_of[int(z)]) for z in first.numbers) + "\n")
    if first.is_periodic:
        if not np.all(first.pbc):
            warnings.warn(f"deepmd/npy has no partial periodicity: frames with pbc={first.pbc.tolist()} are written "
                          "fully periodic", stacklevel=3)
    else:
        (sysdir / "nopbc").write_text("")
    labs = [ds[i].labels.get(label) if label else None for i in idx]
    fields = {}
    for fld in ("energy", "forces", "virial"):
        have = [lab is not None and getattr(lab, fld) is not None for lab in labs]
        if any(have) and not all(have):
            miss = idx[have.index(False)]
            raise DataError(
                f"deepmd/npy needs {fld} on every frame of a system or none; this frame has none "
                f"(select frames with ds.with_label or drop them first)", frame=miss, field=f"labels[{label!r}].{fld}")
        fields[fld] = all(have) and bool(have)
    n = first.n_atoms
    for s, lo in enumerate(range(0, len(idx), set_size)):
        chunk = idx[lo : lo + set_size]
        setdir = sysdir / f"set.{s:03d}"
        setdir.mkdir()
        np.save(setdir / "coord.npy", np.stack([ds[i].positions.reshape(n * 3) for i in chunk]))
        if first.is_periodic:
            np.save(setdir / "box.npy", np.stack([ds[i].cell.reshape(9) for i in chunk]))
        sub = labs[lo : lo + set_size]
        if fields["energy"]:
            np.save(setdir / "energy.npy", np.array([lab.energy for lab in sub], dtype=np.float64))
        if fields["forces"]:
            np.save(setdir / "force.npy", np.stack([lab.forces.reshape(n * 3) for lab in sub]))
        if fields["virial"]:
            np.save(setdir / "virial.npy", np.stack([lab.virial.reshape(9) for lab in sub]))
