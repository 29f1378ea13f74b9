"""Effective-medium theory (ASE's EMT) for fcc metals: energy eV, forces eV/Å, virial eV."""

from __future__ import annotations

from dataclasses import dataclass

from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame, Labels
from lam_lab.labelers.base import Labeler, virial_from_stress


@dataclass
class EMTSettings:
    """ASE EMT options: ``asap_cutoff`` uses ASAP's cutoff convention instead of ASE's default."""

    asap_cutoff: bool = False


class EMTLabeler(Labeler):
    """ASE's EMT (Al, Cu, Ag, Au, Ni, Pd, Pt; H, C, N, O only as rough extras); virial for 3-D cells."""

    software = "ase"

    def __init__(self, settings: EMTSettings | None = None):
        super().__init__(settings or EMTSettings())

    @property
    def name(self) -> str:
        return "emt"

    @property
    def version(self) -> str:
        import ase

        return ase.__version__

    def check(self, frame: Frame, index: int | None = None, source: str | None = None) -> list[DataError]:
        """Structure problems plus elements EMT has no parameters for."""
        from ase.calculators.emt import parameters

        problems = super().check(frame, index, source)
        missing = sorted(set(frame.symbols) - set(parameters))
        if missing:
            problems.append(DataError(f"EMT has no parameters for {missing} (supported: {sorted(parameters)})",
                                      source=source, frame=index, field="numbers"))
        return problems

    def compute(self, frame: Frame) -> Labels:
        """EMT energy (eV), forces (eV/Å), and virial (eV) when the cell is 3-D periodic."""
        from ase.calculators.emt import EMT

        atoms = frame.to_atoms()
        atoms.calc = EMT(asap_cutoff=self.settings.asap_cutoff)
        energy = atoms.get_potential_energy()
        return Labels(energy, atoms.get_forces(), virial_from_stress(atoms))
