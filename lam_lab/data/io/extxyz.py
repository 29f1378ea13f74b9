"""Extended XYZ (via ase.io): positions Å, energy eV, forces eV/Å, stress/virial; several label sets.

One label set is written as the standard ``energy``/``forces``/``stress`` (what every tool reads);
its name goes in the info key ``lam_label``. Other sets are stored as ``<name>_energy`` and
``<name>_virial`` info keys and ``<name>_forces`` per-atom arrays, their names listed (JSON) in
``lam_labels``, so a round trip keeps every label set. The first frame's ``lam_dataset`` key holds
the dataset name and provenance (JSON).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lam_lab.data.dataset import Dataset, Provenance
from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame
from lam_lab.data.io._ase import atoms_to_frame, frame_to_atoms, merge_label
from lam_lab.data.io._common import (
    DEFAULT_LABEL,
    atomic_file,
    decode_info,
    dumps,
    encode_info,
    keep_only,
    label_key,
    write_label,
)
from lam_lab.data.io.label_map import LabelMap, ignored_keys, mapped_frame, warn_ignored

EXTENSIONS = (".xyz", ".extxyz")


def read_extxyz(path: Path, label: str | None = None, labels: LabelMap | None = None) -> Dataset:
    """All frames of an extended-XYZ file (Å, eV, eV/Å); ``labels`` maps label sets to keys (see label_map)."""
    import ase.io  # slow to import (~1 s): only when an XYZ file is used

    frames: list[Frame] = []
    ignored: set[str] = set()
    named = False
    meta: dict = {}
    try:
        for atoms in ase.io.iread(str(path), index=":", format="extxyz"):
            decode_info(atoms.info)  # names and notes with quotes, backslashes or newlines (see _common)
            named |= "lam_label" in atoms.info
            if "lam_dataset" in atoms.info:
                meta = meta or _meta(atoms.info.pop("lam_dataset"))
            frame = mapped_frame(atoms, labels) if labels else _frame(atoms, label)
            ignored |= ignored_keys(atoms, frame, _used_keys(frame, labels))
            frames.append(frame)
    except DataError as exc:
        raise DataError(exc.message, source=str(path), frame=len(frames), field=exc.field) from None
    except Exception as exc:  # ASE raises a zoo of types (XYZError, ValueError, IndexError) on bad text
        raise DataError(f"cannot parse extended XYZ: {type(exc).__name__}: {exc}", source=str(path),
                        frame=len(frames)) from None
    prov = Provenance.from_dict(meta.get("provenance"))
    prov.source = str(path)
    ds = Dataset(frames, name=str(meta.get("name") or Path(path).stem), provenance=prov)
    if label is not None and named and not labels:
        keep_only(ds, label, path)
    warn_ignored(path, ignored, bool(labels))
    return ds


def _used_keys(frame: Frame, labels: LabelMap | None) -> set[str]:
    """Keys that became labels: the mapped ones, or the standard results and each label set's own keys."""
    if labels:
        return {k for keys in labels.values() for k in keys if k}
    return {"energy", "forces", "stress"} | {f"{label_key(n)}_forces" for n in frame.labels}


def _meta(text: str) -> dict:
    try:
        meta = json.loads(text)
    except (TypeError, ValueError):
        raise DataError("lam_dataset is not valid JSON", field="lam_dataset") from None
    return meta if isinstance(meta, dict) else {}


def _frame(atoms, label: str | None) -> Frame:
    info = atoms.info
    primary = str(info.get("lam_label") or label or DEFAULT_LABEL)
    try:
        extras = [str(x) for x in json.loads(info.get("lam_labels", "[]"))]
    except (TypeError, ValueError):
        raise DataError("lam_labels is not a JSON list of label-set names", field="lam_labels") from None
    keys = {f"{label_key(n)}_{fld}" for n in extras + [primary] for fld in ("energy", "virial", "forces")}
    frame = atoms_to_frame(atoms, primary, drop_info=keys | {"lam_label", "lam_labels"})
    for name in extras + [primary]:
        k = label_key(name)
        merge_label(frame, name, info.get(f"{k}_energy"), atoms.arrays.get(f"{k}_forces"), info.get(f"{k}_virial"))
    # libAtoms/GAP files carry the virial (eV) as an info key of 9 numbers
    if "virial" in info and (primary not in frame.labels or frame.labels[primary].virial is None):
        merge_label(frame, primary, virial=np.asarray(info["virial"], dtype=float))
        frame.info.pop("virial", None)
    return frame


def write_extxyz(ds: Dataset, path: Path, label: str | None = None) -> None:
    """Write every frame and every label set to an extended-XYZ file (atomically)."""
    import ase.io

    primary = write_label(ds, label)
    images = []
    for index, frame in enumerate(ds):
        atoms, extras = frame_to_atoms(frame, primary)
        if primary is not None and primary in frame.labels:
            atoms.info["lam_label"] = primary
        for name, lab in extras.items():
            k = label_key(name)
            if lab.energy is not None:
                atoms.info[f"{k}_energy"] = lab.energy
            if lab.virial is not None:
                atoms.info[f"{k}_virial"] = lab.virial.reshape(9)
            if lab.forces is not None:
                atoms.arrays[f"{k}_forces"] = lab.forces
        names = [n for n in extras if n != primary]
        if names:
            atoms.info["lam_labels"] = dumps(names)
        if index == 0:
            provenance = dict(ds.provenance.to_dict(), source=None)
            atoms.info["lam_dataset"] = dumps({"name": ds.name, "provenance": provenance})
        atoms.info = encode_info(atoms.info)
        images.append(atoms)
    with atomic_file(path) as tmp:
        ase.io.write(str(tmp), images, format="extxyz")
