"""lam_lab's own compressed HDF5 (``.lamh5``): every frame, label set, info and provenance, compactly.

Layout (gzip + shuffle; atom arrays of all frames concatenated, frame k owns atoms
``offsets[k]:offsets[k+1]`` with ``offsets = cumsum(n_atoms)``)::

    /             attrs lam_lab="lam-h5", version, name, provenance (JSON)
    n_atoms [F]   numbers [N]   positions [N, 3] Å (float32)   cell [F, 3, 3] Å   pbc [F, 3]
    info          UTF-8 JSON list of the frames' info dicts, stored as uint8
    labels/<k>    attrs name; energy_frames, energy [eV, float64]; forces_frames, forces [eV/Å, float32];
                  virial_frames, virial [eV, float64]   (a field exists only for the frames listed)
                  version 2: attrs shared_with (an earlier set's name) and shared_frames [S]: the frames whose
                  labels equal that set's as stored, listed once instead of stored twice
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from lam_lab.data.dataset import Dataset, Provenance
from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame, Labels
from lam_lab.data.io._common import atomic_file, dumps, keep_only
from lam_lab.data.io._h5 import dataset, open_h5

EXTENSIONS = (".lamh5",)
MAGIC = "lam-h5"
VERSION = 2
_Z = dict(compression="gzip", compression_opts=6, shuffle=True)


def looks_like(f: h5py.File) -> bool:
    """True for a file this module wrote (root attribute ``lam_lab``)."""
    return "lam_lab" in f.attrs


def write_lamh5(ds: Dataset, path: Path, label: str | None = None, precision: str = "float32") -> None:
    """Write everything in ``ds`` (all label sets; ``label`` keeps only that one) atomically.

    ``precision="float64"`` stores positions and forces exactly instead of as float32.
    """
    if precision not in ("float32", "float64"):
        raise ValueError(f"precision must be 'float32' or 'float64', got {precision!r}")
    names = [label] if label is not None else ds.label_sets
    if label is not None and label not in ds.label_sets:
        raise DataError(f"no label set {label!r} in dataset {ds.name!r} (has {ds.label_sets})")
    fdt = np.dtype(precision)
    n_atoms = np.array([len(f) for f in ds], dtype=np.int32)
    numbers = np.concatenate([f.numbers for f in ds]) if len(ds) else np.zeros(0, np.int64)
    zdt = np.uint8 if numbers.size == 0 or (numbers.min() >= 0 and numbers.max() < 256) else np.int32
    info_json = _info_json(ds)
    prov = dict(ds.provenance.to_dict(), source=None)  # the source is wherever the file is read from
    with atomic_file(path) as tmp, h5py.File(tmp, "w") as h:
        h.attrs.update({"lam_lab": MAGIC, "version": VERSION, "name": ds.name, "provenance": dumps(prov)})
        _put(h, "n_atoms", n_atoms)
        _put(h, "numbers", numbers.astype(zdt))
        _put(h, "positions", _cat([f.positions for f in ds], fdt))
        _put(h, "cell", np.array([f.cell for f in ds], dtype=np.float64).reshape(-1, 3, 3))
        _put(h, "pbc", np.array([f.pbc for f in ds], dtype=bool).reshape(-1, 3))
        _put(h, "info", np.frombuffer(info_json.encode(), dtype=np.uint8))
        lg = h.create_group("labels")
        for k, name in enumerate(names):
            g = lg.create_group(str(k))
            g.attrs["name"] = name
            labs = [(i, f.labels[name]) for i, f in enumerate(ds) if name in f.labels]
            other, shared = _most_shared(ds, labs, names[:k], fdt)
            if shared:
                g.attrs["shared_with"] = other
                _put(g, "shared_frames", np.array(shared, dtype=np.int32))
                done = set(shared)
                labs = [(i, lab) for i, lab in labs if i not in done]
            e = [(i, lab.energy) for i, lab in labs if lab.energy is not None]
            fr = [(i, lab.forces) for i, lab in labs if lab.forces is not None]
            v = [(i, lab.virial) for i, lab in labs if lab.virial is not None]
            _put(g, "energy_frames", np.array([i for i, _ in e], dtype=np.int32))
            _put(g, "energy", np.array([x for _, x in e], dtype=np.float64))
            _put(g, "forces_frames", np.array([i for i, _ in fr], dtype=np.int32))
            _put(g, "forces", _cat([x for _, x in fr], fdt))
            _put(g, "virial_frames", np.array([i for i, _ in v], dtype=np.int32))
            _put(g, "virial", np.array([x for _, x in v], dtype=np.float64).reshape(-1, 3, 3))


def _most_shared(ds: Dataset, labs: list[tuple[int, Labels]], earlier: list[str],
                 fdt: np.dtype) -> tuple[str, list[int]]:
    """The earlier label set whose stored labels most frames of ``labs`` repeat exactly, and those frames."""
    best: tuple[str, list[int]] = ("", [])
    for other in earlier:
        same = [i for i, lab in labs if other in ds[i].labels and _stored_equal(lab, ds[i].labels[other], fdt)]
        if len(same) > len(best[1]):
            best = (other, same)
    return best


def _stored_equal(a: Labels, b: Labels, fdt: np.dtype) -> bool:
    """True when ``a`` and ``b`` would be read back identical (forces compared at the stored precision)."""
    if (a.energy is None) != (b.energy is None) or (a.energy is not None and a.energy != b.energy):
        return False
    for x, y, dt in ((a.forces, b.forces, fdt), (a.virial, b.virial, np.float64)):
        if (x is None) != (y is None):
            return False
        if x is not None and (np.shape(x) != np.shape(y)
                              or not np.array_equal(np.asarray(x).astype(dt), np.asarray(y).astype(dt))):
            return False
    return True


def _put(g: h5py.Group, name: str, arr: np.ndarray) -> None:
    # chunked filters need a non-empty array; empty ones are stored plain
    g.create_dataset(name, data=arr, **(_Z if arr.size else {}))


def _cat(arrays: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype) if arrays else np.zeros((0, 3), dtype)


def _info_json(ds: Dataset) -> str:
    try:
        return dumps([f.info for f in ds])
    except TypeError:
        for i, f in enumerate(ds):
            for k, v in f.info.items():
                try:
                    dumps(v)
                except TypeError as exc:
                    raise DataError(f"info value cannot be stored: {exc}", frame=i, field=f"info[{k!r}]") from None
        raise


def read_lamh5(path: Path, label: str | None = None) -> Dataset:
    """Everything a :func:`write_lamh5` file holds; ``label`` keeps only that label set."""
    with open_h5(path) as h:
        if h.attrs.get("lam_lab") != MAGIC:
            raise DataError("not a lam-h5 file (no lam_lab root attribute)", source=str(path))
        if int(h.attrs.get("version", 0)) > VERSION:
            raise DataError(f"lam-h5 version {h.attrs['version']} is newer than this lam_lab reads ({VERSION})",
                            source=str(path))
        n_atoms = dataset(h, "n_atoms", path).astype(np.int64)
        nf = len(n_atoms)
        off = np.concatenate([[0], np.cumsum(n_atoms)])
        numbers = _checked(h, "numbers", path, (off[-1],))
        positions = _checked(h, "positions", path, (off[-1], 3))
        cell = _checked(h, "cell", path, (nf, 3, 3))
        pbc = _checked(h, "pbc", path, (nf, 3))
        try:
            infos = json.loads(bytes(dataset(h, "info", path)).decode())
        except ValueError as exc:
            raise DataError(f"info is not valid JSON: {exc}", source=str(path), field="info") from None
        if len(infos) != nf:
            raise DataError(f"{len(infos)} info entries for {nf} frames", source=str(path), field="info")
        frames = [Frame(numbers[off[i] : off[i + 1]], positions[off[i] : off[i + 1]], cell[i], pbc[i], {},
                        infos[i]) for i in range(nf)]
        groups = sorted(h["labels"].values(), key=lambda g: _group_index(g, path)) if "labels" in h else []
        for g in groups:
            _read_labels(g, frames, off, path)
        for g in groups:  # in write order, so a set shared from one that itself shares is complete first
            _read_shared(g, frames, path)
        name = str(h.attrs.get("name", Path(path).stem))
        prov = Provenance.from_dict(json.loads(h.attrs.get("provenance", "{}")))
    prov.source = str(path)
    ds = Dataset(frames, name=name, provenance=prov)
    return keep_only(ds, label, path) if label is not None else ds


def _checked(g: h5py.Group, name: str, path: Path, shape: tuple) -> np.ndarray:
    arr = dataset(g, name, path)
    if arr.shape != tuple(int(s) for s in shape):
        raise DataError(f"shape {arr.shape}, expected {tuple(int(s) for s in shape)}", source=str(path),
                        field=f"{g.name.rstrip('/')}/{name}")
    return arr


def _read_labels(g: h5py.Group, frames: list[Frame], off: np.ndarray, path: Path) -> None:
    name = str(g.attrs["name"])
    nf = len(frames)

    def idx(key: str, count: int) -> np.ndarray:
        i = dataset(g, key, path).astype(np.int64)
        if i.shape != (count,) or (count and (i.min() < 0 or i.max() >= nf)):
            raise DataError(f"frame indices do not fit {count} values and {nf} frames", source=str(path),
                            field=f"{g.name}/{key}")
        return i

    energy = dataset(g, "energy", path)
    for i, e in zip(idx("energy_frames", len(energy)), energy):
        frames[i].labels.setdefault(name, Labels()).energy = float(e)
    forces = np.asarray(dataset(g, "forces", path), dtype=np.float64)
    fi = dataset(g, "forces_frames", path).astype(np.int64).reshape(-1)
    if len(fi) and (fi.min() < 0 or fi.max() >= nf):
        raise DataError(f"frame indices outside 0..{nf - 1}", source=str(path), field=f"{g.name}/forces_frames")
    f_off = np.concatenate([[0], np.cumsum((off[1:] - off[:-1])[fi])])
    if forces.shape != (int(f_off[-1]), 3):
        raise DataError(f"forces shape {forces.shape} does not fit the frames listed in forces_frames",
                        source=str(path), field=f"{g.name}/forces")
    for k, i in enumerate(fi):
        frames[i].labels.setdefault(name, Labels()).forces = forces[f_off[k] : f_off[k + 1]]
    virial = np.asarray(dataset(g, "virial", path), dtype=np.float64)
    for i, v in zip(idx("virial_frames", len(virial)), virial):
        frames[i].labels.setdefault(name, Labels()).virial = v.reshape(3, 3)


def _group_index(g: h5py.Group, path: Path) -> int:
    key = g.name.rsplit("/", 1)[1]
    if not key.isdigit():
        raise DataError(f"label group {key!r} is not numbered as lam-h5 writes them", source=str(path), field=g.name)
    return int(key)


def _read_shared(g: h5py.Group, frames: list[Frame], path: Path) -> None:
    if "shared_with" not in g.attrs:
        return
    name, other = str(g.attrs["name"]), str(g.attrs["shared_with"])
    for i in dataset(g, "shared_frames", path).astype(np.int64).reshape(-1):
        if not 0 <= i < len(frames) or other not in frames[i].labels:
            raise DataError(f"shared frame {i} has no {other!r} labels to share", source=str(path),
                            field=f"{g.name}/shared_frames")
        frames[i].labels[name] = frames[i].labels[other].copy()
