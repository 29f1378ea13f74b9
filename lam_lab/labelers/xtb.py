"""GFN2-xTB (and GFN1-xTB) through tblite's ASE calculator: energy eV, forces eV/Å, virial eV."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame, Labels
from lam_lab.labelers.base import Labeler, charge_spin, virial_from_stress

if TYPE_CHECKING:
    from ase import Atoms

MAX_Z = 86  # GFN1/GFN2 parametrise H–Rn


@dataclass
class XTBSettings:
    """tblite options; ``spin`` is the number of unpaired electrons (tblite's uhf, multiplicity − 1).

    ``charge``/``spin`` are defaults: a frame's ``info['charge']``/``info['spin']`` take precedence.
    ``electronic_temperature`` in K.
    """

    method: str = "GFN2-xTB"
    charge: int = 0
    spin: int = 0
    accuracy: float = 1.0
    electronic_temperature: float = 300.0
    max_iterations: int = 250


class XTBLabeler(Labeler):
    """Tight-binding reference from tblite; molecules and periodic cells (virial from its stress)."""

    software = "tblite"
    runtime_fields = ("charge", "spin")  # the effective per-frame values enter the key instead

    def __init__(self, settings: XTBSettings | None = None):
        super().__init__(settings or XTBSettings())
        if self.settings.method not in ("GFN2-xTB", "GFN1-xTB", "IPEA1-xTB"):
            raise ValueError(f"unknown tblite method {self.settings.method!r}; use 'GFN2-xTB' or 'GFN1-xTB'")

    @property
    def name(self) -> str:
        return self.settings.method.lower()

    @property
    def version(self) -> str:
        from importlib.metadata import version

        return version("tblite")

    def frame_params(self, frame: Frame) -> dict[str, int]:
        charge, spin = charge_spin(frame, self.settings.charge, self.settings.spin)
        return {"charge": charge, "spin": spin}

    def check(self, frame: Frame, index: int | None = None, source: str | None = None) -> list[DataError]:
        """Structure problems plus elements beyond radon."""
        problems = super().check(frame, index, source)
        heavy = sorted({int(z) for z in frame.numbers if z > MAX_Z})
        if heavy:
            problems.append(DataError(f"{self.settings.method} has no parameters for Z={heavy} (H–Rn only)",
                                      source=source, frame=index, field="numbers"))
        return problems

    def calculator_atoms(self, frame: Frame) -> Atoms:
        """``frame`` as ASE Atoms with tblite's calculator set up for it (charge, spin, these settings)."""
        from tblite.ase import TBLite

        s = self.settings
        p = self.frame_params(frame)
        atoms = frame.to_atoms()
        atoms.calc = TBLite(
            method=s.method, charge=p["charge"], multiplicity=p["spin"] + 1, accuracy=s.accuracy,
            electronic_temperature=s.electronic_temperature, max_iterations=s.max_iterations, verbosity=0,
        )
        return atoms

    def compute(self, frame: Frame) -> Labels:
        """Single point; tblite errors (SCF not converged, electron count vs spin) propagate as failures."""
        atoms = self.calculator_atoms(frame)
        energy = atoms.get_potential_energy()
        return Labels(energy, atoms.get_forces(), virial_from_stress(atoms))


def homo_lumo_gap(frame: Frame, settings: XTBSettings | None = None) -> float:
    """GFN2-xTB HOMO–LUMO gap (eV) of a closed-shell molecule: a cheap screen for frames whose closed-shell DFT
    solution may be unstable (near-degenerate frontier orbitals; ``benchmarks/rks_stability.py`` calibrates it)."""
    import numpy as np
    from ase.units import Hartree

    labeler = XTBLabeler(settings)
    if labeler.frame_params(frame)["spin"]:
        raise ValueError("homo_lumo_gap is for closed-shell frames (spin 0)")
    atoms = labeler.calculator_atoms(frame)
    atoms.get_potential_energy()
    res = atoms.calc._res  # the tblite result the ASE calculator keeps: the same SCF as the frame's labels
    energies, occupations = res.get("orbital-energies"), res.get("orbital-occupations")
    homo = int(round(float(np.sum(occupations)))) // 2 - 1
    return float((energies[homo + 1] - energies[homo]) * Hartree)
