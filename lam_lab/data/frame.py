"""Frame and label containers: one structure (Å) with labels keyed by level of theory (eV, eV/Å)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from lam_lab.data.errors import DataError

MIN_DISTANCE = 0.5  # Å; closer atoms are almost certainly a unit or parsing error
MAX_COORDINATE = 1e5  # Å; the compiled neighbor search fails beyond this (lam_lab.nn.neighbor_list)


@dataclass
class Labels:
    """Reference results of one level of theory: energy eV, forces eV/Å [n, 3], virial eV [3, 3]."""

    energy: float | None = None
    forces: np.ndarray | None = None
    virial: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.energy is not None:
            self.energy = float(self.energy)
        if self.forces is not None:
            self.forces = np.asarray(self.forces, dtype=np.float64)
        if self.virial is not None:
            self.virial = np.asarray(self.virial, dtype=np.float64).reshape(3, 3)

    def copy(self) -> "Labels":
        """A deep copy."""
        return Labels(
            self.energy,
            None if self.forces is None else self.forces.copy(),
            None if self.virial is None else self.virial.copy(),
        )


@dataclass
class Frame:
    """One structure: atomic numbers, positions (Å), cell (Å, zeros when absent), pbc and labels.

    ``labels`` maps a level-of-theory name (e.g. ``"gfn2-xtb"``, ``"wb97x/6-31g*"``) to
    :class:`Labels`, so the same geometry can carry several label sets (what Δ-ML needs).
    ``info`` holds free metadata (formula, reaction, group, source, ...).
    """

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    pbc: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=bool))
    labels: dict[str, Labels] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.numbers = np.asarray(self.numbers, dtype=np.int64).reshape(-1)
        self.positions = np.asarray(self.positions, dtype=np.float64)
        self.cell = np.zeros((3, 3)) if self.cell is None else np.asarray(self.cell, dtype=np.float64)
        if self.cell.shape == (3,):
            self.cell = np.diag(self.cell)
        pbc = np.asarray(self.pbc, dtype=bool)
        self.pbc = np.repeat(pbc, 3) if pbc.ndim == 0 else pbc

    def __len__(self) -> int:
        return len(self.numbers)

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.numbers)

    @property
    def symbols(self) -> list[str]:
        """Chemical symbols of the atoms."""
        return [chemical_symbols[z] for z in self.numbers]

    @property
    def formula(self) -> str:
        """Hill-style formula (ASE's 'hill' convention)."""
        return Atoms(numbers=self.numbers).get_chemical_formula("hill")

    @property
    def is_periodic(self) -> bool:
        """True when any direction is periodic."""
        return bool(np.any(self.pbc))

    def copy(self) -> "Frame":
        """A deep copy (labels and info included)."""
        return Frame(
            self.numbers.copy(),
            self.positions.copy(),
            self.cell.copy(),
            self.pbc.copy(),
            {k: v.copy() for k, v in self.labels.items()},
            dict(self.info),
        )

    # -- ASE interop ---------------------------------------------------------------------------
    @classmethod
    def from_atoms(cls, atoms: Atoms, label: str | None = None, info: dict | None = None) -> "Frame":
        """Frame from ASE Atoms; a single-point calculator's results become the ``label`` set."""
        frame = cls(
            atoms.get_atomic_numbers(),
            atoms.get_positions(),
            np.array(atoms.get_cell()),
            atoms.get_pbc(),
            info={**{k: v for k, v in atoms.info.items() if _plain(v)}, **(info or {})},
        )
        calc = atoms.calc
        if label is not None and calc is not None and getattr(calc, "results", None):
            res = calc.results
            virial = None
            if "stress" in res and atoms.cell.rank == 3:
                from ase.stress import voigt_6_to_full_3x3_stress

                stress = np.asarray(res["stress"])
                full = voigt_6_to_full_3x3_stress(stress) if stress.shape == (6,) else stress
                virial = -full * atoms.get_volume()
            frame.labels[label] = Labels(res.get("energy"), res.get("forces"), virial)
        return frame

    def to_atoms(self, label: str | None = None) -> Atoms:
        """ASE Atoms; with ``label`` the results are attached as a SinglePointCalculator."""
        atoms = Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)
        atoms.info.update(self.info)
        if label is not None:
            from ase.calculators.singlepoint import SinglePointCalculator

            lab = self.labels[label]
            results: dict[str, Any] = {}
            if lab.energy is not None:
                results["energy"] = lab.energy
                results["free_energy"] = lab.energy
            if lab.forces is not None:
                results["forces"] = lab.forces
            if lab.virial is not None and atoms.cell.rank == 3:
                results["stress"] = -(lab.virial / atoms.get_volume())[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
            atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms

    # -- validation ------------------------------------------------------------------------------
    def problems(self, index: int | None = None, source: str | None = None) -> list[DataError]:
        """Every problem of this frame as a :class:`DataError` (empty list when the frame is sound)."""
        out: list[DataError] = []

        def bad(fld: str, msg: str) -> None:
            out.append(DataError(msg, source=source, frame=index, field=fld))

        n = len(self.numbers)
        if n == 0:
            bad("numbers", "frame has no atoms")
            return out
        unknown = sorted({int(z) for z in self.numbers if z < 1 or z >= len(chemical_symbols)})
        if unknown:
            bad("numbers", f"unknown atomic numbers {unknown}")
        if self.positions.shape != (n, 3):
            bad("positions", f"shape {self.positions.shape} does not match {n} atoms (expected ({n}, 3))")
            return out
        if not np.all(np.isfinite(self.positions)):
            bad("positions", "non-finite coordinates (NaN or inf)")
            return out
        if np.abs(self.positions).max() > MAX_COORDINATE:
            i = int(np.argmax(np.abs(self.positions).max(axis=1)))
            bad("positions",
                f"atom {i} is at {self.positions[i].tolist()} Å, beyond ±{MAX_COORDINATE:g} Å (wrong units?)")
            return out
        if self.cell.shape != (3, 3) or not np.all(np.isfinite(self.cell)):
            bad("cell", f"cell must be a finite 3x3 matrix, got shape {self.cell.shape}")
            return out
        geometry_ok = False
        if self.pbc.shape != (3,):
            bad("pbc", f"pbc must have 3 entries, got {self.pbc.shape}")
        elif np.any(self.pbc) and abs(np.linalg.det(self.cell)) < 1e-6:
            bad("cell", "periodic frame has no (or a degenerate) cell")
        else:
            geometry_ok = True
        close = _closest_pair(self) if geometry_ok else None
        if close is not None and close[0] < MIN_DISTANCE:
            d, i, j = close
            bad("positions", f"atoms {i} and {j} overlap ({d:.3f} Å < {MIN_DISTANCE} Å); wrong units (bohr vs Å)?")
        for name, lab in self.labels.items():
            if lab.energy is not None and not np.isfinite(lab.energy):
                bad(f"labels[{name!r}].energy", f"energy is {lab.energy}")
            if lab.forces is not None:
                if lab.forces.shape != (n, 3):
                    bad(f"labels[{name!r}].forces", f"shape {lab.forces.shape} does not match {n} atoms")
                elif not np.all(np.isfinite(lab.forces)):
                    bad(f"labels[{name!r}].forces", "forces contain NaN or inf")
            if lab.virial is not None and not np.all(np.isfinite(lab.virial)):
                bad(f"labels[{name!r}].virial", "virial contains NaN or inf")
        return out


def _plain(value: Any) -> bool:
    """True for info values that survive every file format (numbers, strings, bools)."""
    return isinstance(value, (str, int, float, bool, np.integer, np.floating))


def _closest_pair(frame: Frame, cutoff: float = MIN_DISTANCE) -> tuple[float, int, int] | None:
    """Closest pair of atoms nearer than ``cutoff`` Å (minimum image when periodic), or None.

    A k-d tree keeps this ~linear in the number of atoms (validating thousands of frames stays
    fast); triclinic periodic cells, rare in practice, go through ASE's neighbor list instead.
    """
    n = len(frame.numbers)
    if n < 2:
        return None
    from scipy.spatial import cKDTree

    pos, pbc, cell = frame.positions, frame.pbc, frame.cell
    if not np.any(pbc):
        pairs = cKDTree(pos).query_pairs(cutoff, output_type="ndarray")
        d = np.linalg.norm(pos[pairs[:, 0]] - pos[pairs[:, 1]], axis=1)
    elif np.allclose(cell, np.diag(np.diag(cell))) and np.all(np.diag(cell) > 0):
        # orthorhombic: a periodic k-d tree; non-periodic directions get a box far larger than the span
        lengths = np.diag(cell).copy()
        x = pos - pos.min(0) * ~pbc
        if not np.all(pbc):
            lengths[~pbc] = x[:, ~pbc].max(0) + 2 * cutoff + 1.0
        x = np.mod(x, lengths)
        x[x >= lengths] = 0.0
        pairs = cKDTree(x, boxsize=lengths).query_pairs(cutoff, output_type="ndarray")
        delta = x[pairs[:, 0]] - x[pairs[:, 1]]
        delta -= lengths * np.round(delta / lengths)
        d = np.linalg.norm(delta, axis=1)
    else:
        from ase.neighborlist import primitive_neighbor_list

        i, j, d = primitive_neighbor_list("ijd", pbc, cell, pos, cutoff, self_interaction=False)
        pairs = np.stack([i, j], axis=1)
    if len(d) == 0:
        return None
    k = int(np.argmin(d))
    return float(d[k]), int(pairs[k, 0]), int(pairs[k, 1])
