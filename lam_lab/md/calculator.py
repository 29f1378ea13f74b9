"""ASE calculator for a lam_lab model: energy (eV), forces (eV/Å), stress (eV/Å³) on CPU or CUDA."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from lam_lab.data.frame import Frame
from lam_lab.nn.batch import Batch, collate
from lam_lab.potential import Potential


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class LAMCalculator(Calculator):
    """ASE calculator evaluating one head of a :class:`Potential` (or a saved model file).

    The prepared neighbor lists are reused only while numbers, positions, cell and pbc are exactly
    unchanged (e.g. asking for stress after forces); any move rebuilds them.
    Stress is provided for fully periodic cells (σ = −virial/V, ASE's Voigt order).
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, model_or_path: Potential | str | os.PathLike, head: str | None = None,
                 device: str | torch.device | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(model_or_path, (str, os.PathLike)):
            from lam_lab.models import load

            model = load(model_or_path)
        elif isinstance(model_or_path, Potential):
            model = model_or_path
        else:
            raise TypeError(f"LAMCalculator needs a Potential or a model file path, got {type(model_or_path).__name__}")
        self.device = default_device(device)
        self.model = model.to(self.device).eval()
        self.head = model.heads[model._head_index(head)]  # validates the name / picks the only head
        self._key: tuple | None = None
        self._batch: Batch | None = None

    def _prepared(self, atoms: Atoms) -> Batch:
        """The collated graph of ``atoms``, rebuilt unless the geometry is bit-for-bit the same."""
        key = (atoms.numbers.tobytes(), atoms.positions.tobytes(), np.asarray(atoms.cell).tobytes(), atoms.pbc.tobytes())
        if key != self._key or self._batch is None:
            frame = Frame(atoms.numbers, atoms.positions, np.asarray(atoms.cell), atoms.pbc)
            self._batch = collate([self.model.prepare(frame)]).to(self.device, self.model.dtype)
            self._key = key
        return self._batch

    def calculate(self, atoms: Atoms | None = None, properties: Sequence[str] = ("energy",),
                  system_changes: Sequence[str] = all_changes) -> None:
        """Fill ``self.results`` with energy, free_energy, energies, forces (and stress when periodic)."""
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        periodic = bool(atoms.pbc.all()) and atoms.cell.rank == 3
        out = self.model(self._prepared(atoms), head=self.head, forces=True, virial=periodic)
        energy = float(out.energy.detach()[0])
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "energies": out.atomic_energy.detach().cpu().numpy().astype(np.float64),
            "forces": out.forces.detach().cpu().numpy().astype(np.float64),
        }
        if periodic:
            virial = out.virial.detach()[0].cpu().numpy().astype(np.float64)
            stress = -virial / atoms.get_volume()
            self.results["stress"] = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
