"""Unit sanity: per-atom energy magnitudes that look like Hartree or kcal/mol instead of eV get a warning.

The scale is the Thomas–Fermi total energy of a neutral atom, 0.7687·Z^(7/3) Hartree. All-electron DFT
energies in eV sit near 0.75 of it (ωB97X on C/H/N/O molecules: 0.757–0.763); the same numbers in
Hartree sit near 0.028, in kcal/mol near 17 and in kJ/mol near 73. Semi-empirical (GFN2-xTB, valence
only: 0.04–0.08 in eV) and relative energies lie far lower, so only the unambiguous bands warn; the
Hartree band also needs forces small enough to be Hartree/bohr (or no forces) to tell it from xTB.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lam_lab.data.dataset import Dataset

HARTREE = 27.211386245988  # eV
KCAL_MOL = 0.0433641043  # eV
KJ_MOL = 0.0103642688  # eV
_TF = 0.7687  # Hartree, Thomas–Fermi prefactor


class UnitWarning(UserWarning):
    """Energies whose size suggests another unit than eV."""


def energy_ratio(numbers: np.ndarray, energy: float) -> float:
    """|E| per atom over the Thomas–Fermi all-electron energy per atom (both eV): ~0.75 for eV DFT energies."""
    scale = float(np.mean(_TF * np.asarray(numbers, dtype=float) ** (7 / 3))) * HARTREE
    return abs(float(energy)) / len(numbers) / scale


def unit_hints(ds: "Dataset") -> list[str]:
    """One message per label set whose energies look like Hartree, kcal/mol or kJ/mol (empty when eV-like)."""
    out = []
    for name in ds.label_sets:
        ratios, f_sq, f_n = [], 0.0, 0
        for frame in ds:
            lab = frame.labels.get(name)
            if lab is None or lab.energy is None or not np.isfinite(lab.energy) or not len(frame):
                continue
            ratios.append(energy_ratio(frame.numbers, lab.energy))
            if lab.forces is not None and np.all(np.isfinite(lab.forces)):
                f_sq, f_n = f_sq + float(np.sum(lab.forces ** 2)), f_n + lab.forces.size
        if not ratios:
            continue
        r = float(np.median(ratios))
        f_rms = (f_sq / f_n) ** 0.5 if f_n else None
        unit = None
        if r > 40:
            unit = f"kJ/mol (1 kJ/mol = {KJ_MOL} eV)"
        elif r > 3:
            unit = f"kcal/mol (1 kcal/mol = {KCAL_MOL} eV)"
        elif 0.015 < r < 0.038 and (f_rms is None or f_rms < 0.25):
            forces = ", forces Hartree/bohr or Hartree/Å" if f_rms else ""
            unit = f"Hartree (1 Hartree = {HARTREE:.6f} eV{forces})"
        if unit:
            typical = float(np.median([abs(f.labels[name].energy) / len(f) for f in ds
                                       if name in f.labels and f.labels[name].energy is not None]))
            out.append(f"{ds.provenance.source or ds.name}: label set {name!r}: per-atom energies of about "
                       f"{typical:.4g} look like {unit}, not eV; lam_lab expects eV and eV/Å: convert them before use")
    return out


def warn_units(ds: "Dataset") -> None:
    """Issue a :class:`UnitWarning` for each label set of ``ds`` whose energies look like another unit."""
    for message in unit_hints(ds):
        warnings.warn(message, UnitWarning, stacklevel=3)
