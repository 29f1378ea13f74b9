"""Label sets from named extxyz keys and the keys a read ignored.

``labels={"wb97x/6-31g*": ("dft_energy", "dft_forces"), "gfn2-xtb": ("xtb_energy", "xtb_forces")}``.

Energies eV, forces eV/Å, virials eV. ``"energy"``/``"forces"`` name the standard keys (the file's
calculator results); any other name is an info key (energy, virial) or a per-atom array (forces).
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame

LabelMap = Mapping[str, Sequence[str | None]]  # label set -> (energy key, forces key[, virial key])
_STRUCTURE = {"numbers", "positions"}
_LABELISH = ("energy", "force", "stress", "virial", "grad")


def check_label_map(labels: Any) -> dict[str, tuple[str | None, str | None, str | None]]:
    """``labels`` as {name: (energy key, forces key, virial key)}; ValueError for a malformed map."""
    if not isinstance(labels, Mapping) or not labels:
        raise ValueError("labels must map label-set names to (energy key, forces key[, virial key]), e.g. "
                         "{'wb97x/6-31g*': ('dft_energy', 'dft_forces')}")
    out = {}
    for name, keys in labels.items():
        keys = (keys,) if isinstance(keys, str) else tuple(keys)
        if not 1 <= len(keys) <= 3 or not any(keys):
            raise ValueError(f"labels[{name!r}] must be (energy key, forces key[, virial key]), got {keys!r}")
        out[str(name)] = tuple(keys) + (None,) * (3 - len(keys))
    return out


def _value(atoms: Any, key: str, per_atom: bool) -> Any:
    results = getattr(atoms.calc, "results", None) or {}
    if per_atom:
        return atoms.arrays.get(key, results.get(key))
    return atoms.info.get(key, results.get(key))


def mapped_frame(atoms: Any, labels: LabelMap) -> Frame:
    """A Frame whose label sets are read from the keys ``labels`` names; a missing key is a DataError naming it."""
    from lam_lab.data.io._ase import merge_label

    used = {k for keys in labels.values() for k in keys if k}
    info = {k: v for k, v in atoms.info.items() if k not in used and isinstance(v, (str, int, float, bool, np.generic))}
    frame = Frame(atoms.numbers, atoms.positions, np.array(atoms.cell), atoms.pbc, info=info)
    for name, (e_key, f_key, v_key) in check_label_map(labels).items():
        vals = []
        for key, per_atom in ((e_key, False), (f_key, True), (v_key, False)):
            val = _value(atoms, key, per_atom) if key else None
            if key and val is None:
                raise DataError(f"key {key!r} of label set {name!r} is not in this frame", field=key)
            vals.append(val)
        virial = None if vals[2] is None else np.asarray(vals[2], float).reshape(3, 3)
        merge_label(frame, name, vals[0], vals[1], virial)
    return frame


def ignored_keys(atoms: Any, frame: Frame, consumed: Iterable[str] = ()) -> set[str]:
    """Keys of ``atoms`` that did not become structure or labels: per-atom arrays, and label-like info keys."""
    consumed = set(consumed)
    arrays = {k for k in atoms.arrays if k not in _STRUCTURE and k not in consumed}
    results = getattr(atoms.calc, "results", None) or {}
    standard = {"energy": "energy", "free_energy": "energy", "forces": "forces", "stress": "stress"}
    calc = {k for k in results if standard.get(k) not in consumed and k not in consumed} if consumed else set()
    info = {k for k, v in frame.info.items() if any(w in k.lower() for w in _LABELISH) and not isinstance(v, str)}
    return (arrays | calc | info) - {"free_energy"}


def warn_ignored(path: Any, ignored: Iterable[str], mapped: bool) -> None:
    """One warning listing the keys a read did not use (with how to map them)."""
    keys = sorted(set(ignored))
    if not keys:
        return
    hint = "" if mapped else (" — map them to label sets with read(..., labels={'name': ('energy key', 'forces key')})")
    warnings.warn(f"{path}: ignored keys {', '.join(keys)} (not read as labels){hint}", stacklevel=4)
