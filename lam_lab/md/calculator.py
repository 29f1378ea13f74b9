"""ASE calculator for a lam_lab model: energy (eV), forces (eV/Å), stress (eV/Å³) on CPU or CUDA."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from lam_lab.committee import Committee, CommitteeOutput
from lam_lab.nn.batch import Batch, collate, frame_types
from lam_lab.nn.student_inference import StudentMD
from lam_lab.nn.verlet import VerletCache
from lam_lab.potential import Potential, resolve_head


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class NonFiniteEnergyError(ValueError):
    """The model gave a NaN/inf energy or force (coincident atoms, or broken weights); MD guards stop on it."""


class LAMCalculator(Calculator):
    """ASE calculator evaluating one head of a :class:`Potential`, a :class:`~lam_lab.committee.Committee` or a
    saved model file.

    Neighbor pairs live in a Verlet cache (:class:`lam_lab.nn.verlet.VerletCache`, ``skin`` Å): they are
    searched again only after some atom moved more than skin/2, so MD steps just update distances.
    Stress is computed when asked for, for fully periodic cells (σ = −virial/V, ASE's Voigt order).

    A Δ model (one whose file carries ``extra["delta"]``, see :mod:`lam_lab.delta`) predicts only
    label_high − label_baseline: the baseline (tblite GFN2-xTB by default) is recomputed here and
    added, so the results are at the high level. ``baseline=False`` returns the bare Δ model.
    A committee's results add ``energy_std`` (eV) and ``force_deviation`` (eV/Å per atom): its members' spread.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, model_or_path: Potential | Committee | str | os.PathLike, head: str | None = None,
                 device: str | torch.device | None = None, baseline: bool = True, skin: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(model_or_path, (str, os.PathLike)):
            from lam_lab.models import load

            model = load(model_or_path)
        elif isinstance(model_or_path, (Potential, Committee)):
            model = model_or_path
        else:
            raise TypeError(f"LAMCalculator needs a Potential, a Committee or a model file path, got "
                            f"{type(model_or_path).__name__}")
        self.device = default_device(device)
        self.model = model.to(self.device).eval()
        self.head = model.heads[resolve_head(model, head)]  # validates the name / picks the only head
        self._key: tuple | None = None
        self._batch: Batch | None = None
        self._verlet = VerletCache(model.cutoffs(), skin=skin)
        # students on CPU: one compiled call per step, no padded tensors or autograd (same numbers, ~3× faster MD)
        fast = isinstance(model, Potential) and StudentMD.available(self.model, self.device)
        self._student = StudentMD(self.model, self.head) if fast else None
        self._types: tuple[bytes, np.ndarray] | None = None
        from lam_lab.delta import RuntimeBaseline, delta_spec

        spec = delta_spec(model)
        self.baseline = RuntimeBaseline(spec) if spec and baseline else None

    def check_state(self, atoms: Atoms, tol: float = 1e-15) -> list[str]:
        """ASE's change check with exact comparisons: the same answer at ASE's default tolerance without
        np.allclose on every array (~2 ms per MD step on 200 atoms). It stops at the first change (ASE only
        asks whether there is one), positions first, since that is what changes in MD."""
        if self.atoms is None or tol > 1e-15:
            return super().check_state(atoms, tol)
        old, skip = self.atoms, self.ignored_changes
        mine, theirs = old.arrays, atoms.arrays
        for prop in ("positions", *[p for p in all_changes if p not in ("positions", "cell", "pbc")]):
            if prop in skip:
                continue
            if (prop in mine) != (prop in theirs) or (prop in mine and not np.array_equal(mine[prop], theirs[prop])):
                return [prop]
        for prop in ("cell", "pbc"):
            if prop not in skip and not np.array_equal(np.asarray(getattr(old, prop)),
                                                       np.asarray(getattr(atoms, prop))):
                return [prop]
        return []

    def _model_types(self, atoms: Atoms) -> np.ndarray:
        """Index of each atom's element in the model's type map (cached: MD never changes the elements)."""
        key = atoms.numbers.tobytes()
        if self._types is None or self._types[0] != key:
            self._types = (key, frame_types(atoms.numbers, self.model.type_map))
        return self._types[1]

    def _prepared(self, atoms: Atoms) -> Batch:
        """The collated graph of ``atoms``, rebuilt unless the geometry is bit-for-bit the same."""
        key = (atoms.numbers.tobytes(), atoms.positions.tobytes(), np.asarray(atoms.cell).tobytes(),
               atoms.pbc.tobytes())
        if key != self._key or self._batch is None:
            # MD moves atoms a little per step: the Verlet cache re-searches pairs only after a move > skin/2
            graph = self._verlet.graph(atoms.positions, np.asarray(atoms.cell), atoms.pbc, self._model_types(atoms))
            self._batch = collate([graph]).to(self.device, self.model.dtype)
            self._key = key
        return self._batch

    def calculate(self, atoms: Atoms | None = None, properties: Sequence[str] = ("energy",),
                  system_changes: Sequence[str] = all_changes) -> None:
        """Fill ``self.results`` with energy, free_energy, energies, forces (and stress when periodic)."""
        # ASE's get_property has just stored a copy of these atoms: copy again only when called directly
        if atoms is not None and (self.atoms is None or self.check_state(atoms)):
            self.atoms = atoms.copy()
        atoms = self.atoms
        if len(atoms) == 0:
            raise ValueError("LAMCalculator: the Atoms object has no atoms")
        periodic = bool(atoms.pbc.all()) and atoms.cell.rank == 3 and "stress" in properties
        fast, spread = None, {}
        if self._student is not None:
            pairs = self._verlet.pairs(atoms.positions, np.asarray(atoms.cell), atoms.pbc)
            fast = self._student(pairs, atoms.positions, self._model_types(atoms), virial=periodic)
        if fast is not None:
            energy, atomic, forces, virial = fast.energy, fast.atomic_energy, fast.forces, fast.virial
        else:
            out = self.model(self._prepared(atoms), head=self.head, forces=True, virial=periodic)
            energy = float(out.energy.detach()[0])
            atomic = out.atomic_energy.detach().cpu().numpy().astype(np.float64)
            forces = out.forces.detach().cpu().numpy().astype(np.float64)
            virial = out.virial.detach()[0].cpu().numpy().astype(np.float64) if periodic else None
            if isinstance(out, CommitteeOutput):
                spread = {"energy_std": float(out.energy_std.detach()[0]),
                          "force_deviation": out.force_deviation.detach().cpu().numpy().astype(np.float64)}
        if not (np.isfinite(energy) and np.isfinite(forces).all()):
            raise NonFiniteEnergyError(_nonfinite_reason(atoms))
        self.results = {"energy": energy, "free_energy": energy, "energies": atomic, "forces": forces,
                        **spread}
        if periodic:
            stress = -virial / atoms.get_volume()
            self.results["stress"] = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        if self.baseline is not None:
            self._add_baseline(atoms)

    def _add_baseline(self, atoms: Atoms) -> None:
        """E, F (and stress, per-atom energies where the baseline gives them) of the baseline added to the Δ model's."""
        base = self.baseline(atoms)
        r = self.results
        r["energy"] = r["free_energy"] = r["energy"] + base["energy"]
        r["forces"] = r["forces"] + base["forces"]
        if "energies" in base:
            r["energies"] = r["energies"] + base["energies"]
        else:  # no per-atom split of the baseline: leave it out rather than report a wrong one
            r.pop("energies")
        if "stress" in r:
            if "stress" not in base:
                raise RuntimeError(f"the Δ baseline {self.baseline.name!r} gives no stress for this periodic cell")
            r["stress"] = r["stress"] + base["stress"]


def _nonfinite_reason(atoms: Atoms) -> str:
    """Why the model gave NaN/inf: coincident atoms (named, with their distance), else a plain statement."""
    from lam_lab.md.analysis import close_pairs

    pairs, d = close_pairs(atoms.positions, 0.1, np.asarray(atoms.cell), atoms.pbc) if len(atoms) > 1 else ([], [])
    if len(d):
        k = int(np.argmin(d))
        i, j = (int(x) for x in pairs[k])
        return (f"LAMCalculator: atoms {atoms[i].symbol}{i} and {atoms[j].symbol}{j} coincide ({d[k]:.2g} Å apart): "
                "the model's energy is not finite there; check the structure for duplicated atoms")
    return "LAMCalculator: the model returned a non-finite energy or forces for this structure"
