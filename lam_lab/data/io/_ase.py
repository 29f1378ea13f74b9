"""Frame <-> ASE Atoms with one label set as the calculator results and the others kept aside."""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from lam_lab.data.frame import Frame, Labels

# ASE Voigt order xx yy zz yz xz xy
_VOIGT = ([0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1])


def frame_to_atoms(frame: Frame, primary: str | None) -> tuple[Atoms, dict[str, Labels]]:
    """Atoms carrying ``primary`` as SinglePointCalculator results, plus the labels it cannot carry.

    The second value maps label-set names to what still has to be stored elsewhere: every other
    label set, and the primary set's virial when the cell cannot turn it into a stress.
    """
    atoms = Atoms(numbers=frame.numbers, positions=frame.positions, cell=frame.cell, pbc=frame.pbc)
    atoms.info.update(frame.info)
    extras = {k: v for k, v in frame.labels.items() if k != primary}
    lab = frame.labels.get(primary) if primary is not None else None
    if lab is not None:
        results: dict[str, Any] = {}
        if lab.energy is not None:
            results["energy"] = lab.energy
        if lab.forces is not None:
            results["forces"] = lab.forces
        if lab.virial is not None:
            if atoms.cell.rank == 3:
                results["stress"] = -(lab.virial / atoms.get_volume())[_VOIGT]
            else:
                extras[primary] = Labels(virial=lab.virial)
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms, extras


def atoms_to_frame(atoms: Atoms, primary: str, drop_info: set[str]) -> Frame:
    """Frame from Atoms: calculator results become label set ``primary``; ``drop_info`` keys are removed."""
    frame = Frame.from_atoms(atoms, label=primary)
    for key in drop_info:
        frame.info.pop(key, None)
    if primary in frame.labels:
        lab = frame.labels[primary]
        if lab.energy is None and lab.forces is None and lab.virial is None:
            del frame.labels[primary]
    return frame


def merge_label(frame: Frame, name: str, energy: Any = None, forces: Any = None, virial: Any = None) -> None:
    """Add the given fields to label set ``name`` of ``frame`` (creating it when absent)."""
    if energy is None and forces is None and virial is None:
        return
    lab = frame.labels.setdefault(name, Labels())
    if energy is not None:
        lab.energy = float(energy)
    if forces is not None:
        lab.forces = np.asarray(forces, dtype=np.float64)
    if virial is not None:
        lab.virial = np.asarray(virial, dtype=np.float64).reshape(3, 3)
