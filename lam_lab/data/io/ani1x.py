"""ANI-1x-style HDF5 (read): formula groups of conformers, Hartree converted to eV and eV/Å.

Each group holds ``atomic_numbers`` [n], ``coordinates`` [frames, n, 3] Å and, per level of
theory, ``<level>.energy`` [frames] Hartree and ``<level>.forces`` [frames, n, 3] Hartree/Å. NaN
means "not computed": a NaN energy, or forces that are NaN on every atom, drop that field for that
frame. A NaN inside otherwise present forces is kept, so validation reports it as an error.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from ase.units import Hartree

from lam_lab.data.dataset import Dataset
from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame, Labels
from lam_lab.data.io._h5 import dataset, h5_dataset, label_fields, open_h5

# method/basis of the ANI-1x levels (Smith et al., Sci. Data 7, 134, 2020); others keep their name
_LEVELS = {
    "wb97x_dz": ("wB97x", "6-31G(d)"),
    "wb97x_tz": ("wB97x", "def2-TZVPP"),
    "ccsd(t)_cbs": ("CCSD(T)*", "CBS"),
    "hf_dz": ("HF", "cc-pVDZ"),
    "hf_tz": ("HF", "cc-pVTZ"),
    "hf_qz": ("HF", "cc-pVQZ"),
}


def looks_like(f: h5py.File) -> bool:
    """True when a top-level group holds ``coordinates`` and ``atomic_numbers``."""
    return any(isinstance(g, h5py.Group) and "coordinates" in g and "atomic_numbers" in g for g in f.values())


def read_ani1x(path: Path, label: str | None = None) -> Dataset:
    """Every conformer of an ANI-1x-style file; labels in eV and eV/Å, one set per level."""
    frames: list[Frame] = []
    levels: dict[str, None] = {}
    with open_h5(path) as f:
        for formula, g in f.items():
            if not (isinstance(g, h5py.Group) and "coordinates" in g):
                continue
            frames.extend(_group_frames(g, path, formula, len(frames), levels))
    if not levels and not frames:
        raise DataError("no formula groups with coordinates and atomic_numbers", source=str(path))
    return h5_dataset(frames, path, levels, lambda lvl: _LEVELS.get(lvl, (lvl, None)), label)


def _group_frames(g: h5py.Group, path: Path, formula: str, start: int, levels: dict) -> list[Frame]:
    z = np.asarray(dataset(g, "atomic_numbers", path, start)).reshape(-1)
    pos = np.asarray(dataset(g, "coordinates", path, start), dtype=np.float64)
    n = len(z)
    if pos.ndim != 3 or pos.shape[1:] != (n, 3):
        raise DataError(f"shape {pos.shape} is not [frames, {n}, 3]", source=str(path), frame=start,
                        field=f"{g.name}/coordinates")
    nf = len(pos)
    sets = {}
    for lvl, keys in label_fields(g).items():
        levels.setdefault(lvl, None)
        e = np.asarray(dataset(g, keys["energy"], path, start), dtype=np.float64) if "energy" in keys else None
        fr = np.asarray(dataset(g, keys["forces"], path, start), dtype=np.float64) if "forces" in keys else None
        if e is not None and e.shape != (nf,):
            raise DataError(f"shape {e.shape} is not [{nf}]", source=str(path), frame=start,
                            field=f"{g.name}/{keys['energy']}")
        if fr is not None and fr.shape != (nf, n, 3):
            raise DataError(f"shape {fr.shape} is not [{nf}, {n}, 3]", source=str(path), frame=start,
                            field=f"{g.name}/{keys['forces']}")
        sets[lvl] = (None if e is None else e * Hartree, None if fr is None else fr * Hartree)
    frames = []
    for i in range(nf):
        labels = {}
        for lvl, (e, fr) in sets.items():
            energy = e[i] if e is not None and not np.isnan(e[i]) else None
            forces = fr[i] if fr is not None and not np.all(np.isnan(fr[i])) else None
            if energy is not None or forces is not None:
                labels[lvl] = Labels(energy, forces)
        frames.append(Frame(z, pos[i], labels=labels, info={"formula": formula}))
    return frames
