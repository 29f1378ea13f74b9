"""MD frames as they are written: a snapshot of the atoms with its energies, and the trajectory file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator


def snapshot(atoms: Atoms, epot: float, forces: np.ndarray, step: int, timestep: float,
              ekin: float, temperature: float) -> Atoms:
    """A copy of ``atoms`` with energy/forces attached and step, time (fs), energies (eV), T (K) in ``info``."""
    snap = atoms.copy()
    snap.calc = SinglePointCalculator(snap, energy=float(epot), forces=np.array(forces))
    snap.info.update({"step": int(step), "time_fs": float(step * timestep), "epot": float(epot),
                      "ekin": float(ekin), "etot": float(epot + ekin), "temperature": float(temperature)})
    return snap


class TrajectoryWriter:
    """Frames appended to an ASE ``.traj`` or an extxyz file and flushed one by one (readable mid-run)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in (".traj", ".xyz", ".extxyz"):
            raise ValueError(f"trajectory file {str(self.path)!r}: use a .traj, .xyz or .extxyz name")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".traj":
            from ase.io import Trajectory

            self._traj, self._fh = Trajectory(str(self.path), "w"), None
        else:
            self._traj, self._fh = None, open(self.path, "w")

    def write(self, atoms: Atoms) -> None:
        """Append one frame (energy/forces from its calculator, step/time/energies/T in info)."""
        if self._traj is not None:
            self._traj.write(atoms)
        else:
            from ase.io import write

            write(self._fh, atoms, format="extxyz")
            self._fh.flush()

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._traj is not None:
            self._traj.close()
            self._traj = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None
