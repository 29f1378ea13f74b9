"""Kohn–Sham DFT with PySCF (density fitting on): energy eV and analytic forces eV/Å of molecules."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame, Labels
from lam_lab.labelers.base import Labeler, LabelingFailed, charge_spin


@dataclass
class DFTSettings:
    """PySCF options. Default ωB97X/6-31G(d), the level of Transition1x and ANI-1x.

    xc: PySCF/libxc functional name ("wb97x" is libxc's HYB_GGA_XC_WB97X).
    basis: orbital basis; auxbasis: density-fitting basis (None = PySCF's default for the basis,
      cc-pVDZ-JKFIT for Pople bases). charge/spin (unpaired electrons, 2S) are defaults that a
      frame's ``info['charge']``/``info['spin']`` override; spin > 0 runs UKS.
    conv_tol: SCF energy tolerance (Hartree); max_cycle: SCF iterations before the frame fails.
    lowest_solution: a closed-shell frame whose RKS solution is unstable towards UKS (a biradical) is labelled with the
      broken-symmetry UKS solution, the functional's lowest (:func:`closed_shell_stability`); off: RKS, as
      Transition1x and ANI-1x (and ``rxn-dft``) are.
    grids_level: PySCF DFT grid level (0–9). threads: OpenMP threads per worker (None = leave).
    max_memory_mb: PySCF memory budget (MB).
    """

    xc: str = "wb97x"
    basis: str = "6-31g*"
    density_fit: bool = True
    auxbasis: str | None = None
    charge: int = 0
    spin: int = 0
    conv_tol: float = 1e-9
    max_cycle: int = 100
    grids_level: int = 3
    threads: int | None = None
    max_memory_mb: int = 4000
    verbose: int = 0
    lowest_solution: bool = False


class DFTLabeler(Labeler):
    """Molecular DFT single points with PySCF; an unconverged SCF is a failure, never a label."""

    software = "pyscf"
    runtime_fields = ("threads", "max_memory_mb", "verbose", "charge", "spin")

    def __init__(self, settings: DFTSettings | None = None):
        super().__init__(settings or DFTSettings())
        from pyscf.dft import libxc

        try:
            libxc.parse_xc(self.settings.xc)
        except Exception as exc:
            raise ValueError(f"PySCF does not know the functional {self.settings.xc!r}: {exc}") from exc

    @property
    def name(self) -> str:
        return f"{self.settings.xc}/{self.settings.basis}".lower()

    @property
    def version(self) -> str:
        import pyscf

        return pyscf.__version__

    def provenance(self):  # type: ignore[override]
        """Functional as method, orbital basis as basis, the auxiliary basis actually used in settings."""
        prov = super().provenance()
        prov.method = self.settings.xc
        prov.basis = self.settings.basis
        prov.settings["auxbasis"] = self.settings.auxbasis or _default_auxbasis(self.settings.basis, self.settings.xc)
        return prov

    def frame_params(self, frame: Frame) -> dict[str, int]:
        charge, spin = charge_spin(frame, self.settings.charge, self.settings.spin)
        return {"charge": charge, "spin": spin}

    def check(self, frame: Frame, index: int | None = None, source: str | None = None) -> list[DataError]:
        """Structure problems, periodic cells (molecules only) and elements missing from the basis."""
        problems = super().check(frame, index, source)
        if frame.is_periodic:
            problems.append(DataError("the PySCF labeler handles molecules only (pbc must be False)",
                                      source=source, frame=index, field="pbc"))
        missing = [el for el in sorted(set(frame.symbols)) if not _has_basis(self.settings.basis, el)]
        if missing:
            problems.append(DataError(f"basis {self.settings.basis!r} has no functions for {missing}",
                                      source=source, frame=index, field="numbers"))
        return problems

    def cache_identity(self) -> dict:
        """As every labeler's; ``lowest_solution`` counts only when on, so RKS labels cached before it keep their
        keys."""
        identity = super().cache_identity()
        if not self.settings.lowest_solution:
            identity["settings"].pop("lowest_solution", None)
        return identity

    def compute(self, frame: Frame) -> Labels:
        """SCF energy (eV) and analytic gradient → forces (eV/Å); raises LabelingFailed if unconverged. With
        ``lowest_solution``, a closed-shell frame's RKS solution is checked and the broken-symmetry UKS one labelled
        where it lies lower."""
        return self.compute_scf(frame)[0]

    def scf(self, frame: Frame, dm0=None, unrestricted: bool = False):
        """Converged PySCF mean-field object of ``frame`` (``dm0``: a density matrix to start from); UKS where the
        frame has unpaired electrons or ``unrestricted``."""
        from pyscf import gto, lib

        s = self.settings
        if s.threads:
            lib.num_threads(s.threads)
        p = self.frame_params(frame)
        mol = gto.M(
            atom=[(sym, tuple(xyz)) for sym, xyz in zip(frame.symbols, frame.positions)],
            unit="Angstrom", basis=s.basis, charge=p["charge"], spin=p["spin"],
            verbose=s.verbose, max_memory=s.max_memory_mb,
        )
        mf = _mean_field(mol, s, unrestricted or bool(p["spin"]))
        energy = mf.kernel(dm0=dm0)
        if not mf.converged:
            raise LabelingFailed(f"SCF did not converge in {mf.max_cycle} cycles (last energy {energy:.8f} Ha)")
        return mf

    def lowest_scf(self, frame: Frame, dm0=None):
        """The functional's lowest solution of ``frame``: where a closed-shell RKS solution is unstable towards UKS,
        the broken-symmetry UKS one it leads to. A spin-polarised ``dm0`` (the last geometry step's broken-symmetry
        density) seeds UKS directly; where that falls back to a closed shell, RKS is checked again."""
        if self.frame_params(frame)["spin"]:
            return self.scf(frame, dm0)
        if dm0 is not None and np.ndim(dm0) == 3:
            try:
                umf = self.scf(frame, dm0, unrestricted=True)
                if umf.spin_square()[0] > SPIN_POLARISED:
                    return umf
            except LabelingFailed:
                pass
            dm0 = None
        mf = self.scf(frame, dm0)
        return _follow_instability(mf, self.settings) or mf

    def compute_scf(self, frame: Frame, dm0=None):
        """(Labels in eV and eV/Å, density matrix) of ``frame``; ``dm0`` seeds the SCF (geometry steps). With
        ``lowest_solution``, the lowest solution's (:meth:`lowest_scf`)."""
        mf = self.lowest_scf(frame, dm0) if self.settings.lowest_solution else self.scf(frame, dm0)
        return _labels(mf), mf.make_rdm1()

    def hessian(self, frame: Frame) -> np.ndarray:
        """Analytic Hessian (eV/Å², [3n, 3n]) of the SCF energy: PySCF's CPKS second derivatives."""
        from ase.units import Bohr, Hartree

        mf = self.lowest_scf(frame) if self.settings.lowest_solution else self.scf(frame)
        h = mf.Hessian().kernel()  # [n, n, 3, 3] Hartree/Bohr²
        n = len(frame.numbers)
        return np.asarray(h).transpose(0, 2, 1, 3).reshape(3 * n, 3 * n) * (Hartree / Bohr**2)


SPIN_POLARISED = 1e-3  # ⟨S²⟩ above which a UKS solution of a singlet is broken-symmetry, not a closed shell


@dataclass
class ClosedShellStability:
    """Whether a frame's restricted (closed-shell) SCF is its lowest Kohn–Sham solution.

    stable: no RKS → UKS (triplet) instability; where there is one, the broken-symmetry UKS solution reached from it
    lies ``uks_below_ev`` eV lower, with ⟨S²⟩ ``s2`` (0 for a closed shell, ≈ 1 for a singlet biradical), and
    ``uks`` holds its energy (eV) and forces (eV/Å) when they were asked for.
    """

    stable: bool
    uks_below_ev: float = 0.0
    s2: float = 0.0
    uks: Labels | None = None


def closed_shell_stability(labeler: DFTLabeler, frame: Frame, follow: int = 3,
                           forces: bool = False) -> ClosedShellStability:
    """RKS → UKS stability of ``frame`` at ``labeler``'s level, and how far the broken-symmetry UKS energy lies below.

    A closed-shell label where this is unstable (stretched bonds, biradical transition states) is the restricted
    surface, not the functional's lowest one. ``follow``: UKS instabilities followed downhill before stopping;
    ``forces``: also the broken-symmetry solution's energy and forces."""
    restricted = replace(labeler.settings, lowest_solution=False)
    mf = DFTLabeler(restricted).scf(frame)
    if getattr(mf.mol, "spin", 0):
        raise ValueError("closed_shell_stability needs a closed-shell frame (spin 0); this one runs UKS already")
    lower = _broken_symmetry(mf, restricted, follow, forces)
    return ClosedShellStability(True) if lower is None else lower


def _labels(mf) -> Labels:
    """Energy (eV) and analytic forces (eV/Å) of a converged PySCF mean-field object."""
    from ase.units import Bohr, Hartree

    return Labels(mf.e_tot * Hartree, -mf.nuc_grad_method().kernel() * (Hartree / Bohr), None)


def _triplet_instability(mf, threshold: float = 1e-5):
    """None where the converged RKS ``mf`` is stable towards UKS, else (alpha, beta) orbitals rotated along its
    lowest RKS → UKS Hessian mode: PySCF's external stability check, only the part this needs (its lowest root of
    the RHF → UHF block; ``mf.stability`` also solves three roots of the real → complex and internal blocks)."""
    from pyscf.scf import stability

    _, _, hop, hdiag = stability._gen_hop_rhf_external(mf)
    x0 = np.zeros_like(hdiag)
    x0[hdiag > 1e-5] = 1.0 / hdiag[hdiag > 1e-5]
    v = _lowest_negative_mode(hop, hdiag, x0, threshold)
    return None if v is None else (stability._rotate_mo(mf.mo_coeff, mf.mo_occ, v), mf.mo_coeff)


def _lowest_negative_mode(hop, hdiag: np.ndarray, x0: np.ndarray, threshold: float):
    """The lowest eigenvector of an orbital Hessian (product ``hop``, diagonal ``hdiag``) from ``x0`` by Davidson,
    or None where its eigenvalue is not below ``-threshold`` (Ha): no instability."""
    from pyscf import lib

    def precondition(dx, e, x0):
        d = hdiag - e
        d[abs(d) < 1e-8] = 1e-8
        return dx / d

    e, v = lib.davidson(hop, x0, precondition, tol=1e-4, nroots=1)
    return None if e >= -threshold else v


def _mean_field(mol, s: DFTSettings, unrestricted: bool, max_cycle: int | None = None):
    """An RKS or UKS object of ``mol`` with ``s``'s functional, density fitting, tolerance, iterations and grid."""
    from pyscf import dft

    mf = (dft.UKS if unrestricted else dft.RKS)(mol, xc=s.xc)
    if s.density_fit:
        mf = mf.density_fit(auxbasis=s.auxbasis)
    mf.conv_tol, mf.max_cycle, mf.grids.level = s.conv_tol, max_cycle or s.max_cycle, s.grids_level
    return mf


def _follow_instability(mf, s: DFTSettings, follow: int = 3):
    """None where the converged RKS ``mf`` is stable towards UKS; else the converged broken-symmetry UKS mean field
    its instability leads to, each UKS instability followed downhill, at most ``follow`` times."""
    mo_uks = _triplet_instability(mf)
    if mo_uks is None:
        return None
    umf = _mean_field(mf.mol, s, unrestricted=True, max_cycle=2 * s.max_cycle)  # from a rotated guess: slower
    dm = umf.make_rdm1(mo_uks, np.array([mf.mo_occ / 2, mf.mo_occ / 2]))
    for _ in range(follow):
        umf.kernel(dm0=dm)
        if not umf.converged:  # DIIS can oscillate between near-degenerate biradical solutions: second order then
            umf = _mean_field(mf.mol, s, unrestricted=True, max_cycle=s.max_cycle).newton()
            umf.kernel(dm0=dm)
            if not umf.converged:
                raise LabelingFailed("broken-symmetry UKS did not converge (DIIS, then second-order SCF)")
        mo = _uks_instability(umf)
        if mo is None:
            break
        dm = umf.make_rdm1(mo, umf.mo_occ)
    return umf


def _uks_instability(umf, threshold: float = 1e-5, seed: int = 0):
    """None where the converged UKS ``umf`` is stable within UKS, else its (alpha, beta) orbitals rotated along the
    lowest mode of its orbital Hessian: PySCF's UKS internal check with one root instead of three. Its start vector
    is perturbed by a seeded random one because PySCF's is spin-symmetric, and a Davidson search never leaves the
    symmetry of its start (one root from that start missed the instability of a broken-symmetry saddle)."""
    from pyscf.scf import stability
    from pyscf.soscf import newton_ah

    g, hop, hdiag = newton_ah.gen_g_hop_uhf(umf, umf.mo_coeff, umf.mo_occ)
    hdiag = 2 * hdiag
    x0 = np.zeros_like(g)
    x0[g != 0] = 1.0 / hdiag[g != 0]
    x0 += 0.1 * np.linalg.norm(x0) / np.sqrt(x0.size) * np.random.default_rng(seed).standard_normal(x0.size)
    v = _lowest_negative_mode(lambda x: 2 * hop(x).real, hdiag, x0, threshold)
    if v is None:
        return None
    nov = np.count_nonzero(umf.mo_occ[0] > 0) * np.count_nonzero(umf.mo_occ[0] == 0)
    return (stability._rotate_mo(umf.mo_coeff[0], umf.mo_occ[0], v[:nov]),
            stability._rotate_mo(umf.mo_coeff[1], umf.mo_occ[1], v[nov:]))


def _broken_symmetry(mf, s: DFTSettings, follow: int = 3, forces: bool = False) -> ClosedShellStability | None:
    """None where the converged RKS ``mf`` is stable towards UKS; else the broken-symmetry UKS solution its
    instability leads to (followed downhill ``follow`` times), how far below it lies and its ⟨S²⟩."""
    from ase.units import Hartree

    umf = _follow_instability(mf, s, follow)
    if umf is None:
        return None
    return ClosedShellStability(False, float((mf.e_tot - umf.e_tot) * Hartree), float(umf.spin_square()[0]),
                                _labels(umf) if forces else None)


class DFTCalculator(Calculator):
    """ASE calculator over :class:`DFTLabeler` (energy eV, forces eV/Å), each SCF started from the last density."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, labeler: DFTLabeler | None = None, charge: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.labeler = labeler or DFTLabeler()
        self.charge = int(charge)
        self._dm = None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        frame = Frame(a.numbers, a.positions, None, [False] * 3, {}, {"charge": self.charge})
        try:
            labels, dm = self.labeler.compute_scf(frame, self._dm)
        except LabelingFailed:  # a stale density can mislead the SCF after a large step: retry from scratch
            labels, dm = self.labeler.compute_scf(frame, None)
        self._dm = dm
        self.results = {"energy": float(labels.energy), "forces": np.asarray(labels.forces)}


@lru_cache(maxsize=256)
def _has_basis(basis: str, symbol: str) -> bool:
    """Whether PySCF's basis library has ``basis`` for element ``symbol``."""
    from pyscf import gto

    try:
        return bool(gto.basis.load(basis, symbol))
    except Exception:  # BasisNotFoundError and friends
        return False


def _default_auxbasis(basis: str, xc: str) -> str:
    """Name of PySCF's default density-fitting basis for ``basis`` (as used for hydrogen)."""
    from pyscf import gto
    from pyscf.df import addons

    try:
        aux = addons.make_auxbasis(gto.M(atom="H 0 0 0; H 0 0 0.74", basis=basis, verbose=0), xc=xc)
        name = aux.get("H") if isinstance(aux, dict) else aux
        return f"pyscf default ({name})" if isinstance(name, str) else "pyscf default (even-tempered)"
    except Exception:
        return "pyscf default"
