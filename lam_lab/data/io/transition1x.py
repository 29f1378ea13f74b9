"""Transition1x-style HDF5 (read): split/formula/reaction groups of NEB paths, eV and eV/Å.

Each reaction group holds ``atomic_numbers`` [n], ``positions`` [frames, n, 3] Å and
``<level>.energy`` [frames] eV / ``<level>.forces`` [frames, n, 3] eV/Å, plus ``reactant``,
``product`` and ``transition_state`` subgroups with the same fields for one geometry. The level
(e.g. ``wB97x_6-31G(d)``) names the label set; ``info`` gets split, formula, reaction and role.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from lam_lab.data.dataset import Dataset
from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame, Labels
from lam_lab.data.io._h5 import dataset, h5_dataset, label_fields, open_h5, split_level

SPLITS = ("train", "val", "test")
ROLES = ("reactant", "transition_state", "product")


def looks_like(f: h5py.File) -> bool:
    """True when some group two or three levels down holds ``positions`` and ``atomic_numbers``."""
    return bool(_reaction_groups(f, limit=1))


def _reaction_groups(f: h5py.File, limit: int | None = None) -> list[tuple[str | None, str, str, h5py.Group]]:
    """(split, formula, reaction, group) for every reaction group, splits first, else ``data``/root."""
    tops = [(s, f[s]) for s in SPLITS if isinstance(f.get(s), h5py.Group)]
    if not tops:
        tops = [(None, f["data"])] if isinstance(f.get("data"), h5py.Group) else [(None, f)]
    out = []
    for split, top in tops:
        for formula, fg in top.items():
            if not isinstance(fg, h5py.Group):
                continue
            for rxn, rg in fg.items():
                if isinstance(rg, h5py.Group) and "positions" in rg and "atomic_numbers" in rg:
                    out.append((split, formula, rxn, rg))
                    if limit and len(out) >= limit:
                        return out
    return out


def read_transition1x(path: Path, label: str | None = None) -> Dataset:
    """Every path, reactant, product and transition-state geometry of a Transition1x-style file."""
    frames: list[Frame] = []
    levels: dict[str, None] = {}
    with open_h5(path) as f:
        groups = _reaction_groups(f)
        if not groups:
            raise DataError("no split/formula/reaction groups with positions and atomic_numbers", source=str(path))
        for split, formula, rxn, rg in groups:
            base = {"formula": formula, "reaction": rxn}
            if split is not None:
                base = {"split": split, **base}
            frames.extend(_group_frames(rg, path, {**base, "role": "path"}, len(frames), levels))
            for role in ROLES:
                if isinstance(rg.get(role), h5py.Group):
                    frames.extend(_group_frames(rg[role], path, {**base, "role": role}, len(frames), levels))
    return h5_dataset(frames, path, levels, split_level, label)


def _group_frames(g: h5py.Group, path: Path, info: dict, start: int, levels: dict) -> list[Frame]:
    z = np.asarray(dataset(g, "atomic_numbers", path, start)).reshape(-1)
    pos = np.asarray(dataset(g, "positions", path, start), dtype=np.float64)
    n = len(z)
    if pos.size % (3 * max(n, 1)) or pos.ndim not in (2, 3):
        raise DataError(f"shape {pos.shape} does not fit {n} atoms", source=str(path), frame=start,
                        field=f"{g.name}/positions")
    pos = pos.reshape(-1, n, 3)
    nf = len(pos)
    sets = {}
    for lvl, keys in label_fields(g).items():
        levels.setdefault(lvl, None)
        e = np.asarray(dataset(g, keys["energy"], path, start),
                       dtype=np.float64).reshape(-1) if "energy" in keys else None
        fr = np.asarray(dataset(g, keys["forces"], path, start), dtype=np.float64) if "forces" in keys else None
        for fld, arr, size in (("energy", e, nf), ("forces", fr, nf * n * 3)):
            if arr is not None and arr.size != size:
                raise DataError(f"shape {arr.shape} does not match {nf} frames of {n} atoms", source=str(path),
                                frame=start, field=f"{g.name}/{keys[fld]}")
        sets[lvl] = (e, None if fr is None else fr.reshape(nf, n, 3))
    return [
        Frame(z, pos[i], labels={lvl: Labels(None if e is None else e[i], None if fr is None else fr[i])
                                 for lvl, (e, fr) in sets.items()}, info=dict(info))
        for i in range(nf)
    ]
