"""Harmonic analysis of a molecule: finite-difference Hessian (ASE ``Vibrations``), frequencies in cm⁻¹
with translations and rotations projected out, Cartesian normal modes."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Callable

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator

CalcFactory = Callable[[Atoms], Calculator]

# ħ·√(eV/Å²/amu) in eV, as ASE's Vibrations uses it: turns a mass-weighted eigenvalue into hν
_HNU_PER_SQRT_EIG = units._hbar * 1e10 / np.sqrt(units._e * units._amu)


@dataclass
class Harmonic:
    """Frequencies (cm⁻¹, imaginary ones negative, ascending) and unit-norm Cartesian modes [k, n, 3]."""

    frequencies: np.ndarray
    modes: np.ndarray
    hessian: np.ndarray  # eV/Å², [3n, 3n], as computed (not projected)
    masses: np.ndarray  # amu

    def imaginary(self, cutoff: float) -> list[float]:
        """Imaginary frequencies (cm⁻¹, as negative numbers) larger in magnitude than ``cutoff``."""
        return [float(f) for f in self.frequencies if f < -abs(cutoff)]

    def force_constants(self) -> np.ndarray:
        """Mass-weighted eigenvalues (eV/Å²/amu) of each mode, negative for imaginary modes."""
        return np.sign(self.frequencies) * (self.frequencies * units.invcm / _HNU_PER_SQRT_EIG) ** 2


def fd_hessian(atoms: Atoms, calc_factory: CalcFactory, delta: float = 0.005) -> np.ndarray:
    """Hessian (eV/Å², [3n, 3n], symmetrised) by central differences of forces with ASE ``Vibrations``."""
    from ase.vibrations import Vibrations

    work = atoms.copy()
    work.calc = calc_factory(work)
    with tempfile.TemporaryDirectory(prefix="lam_lab-vib-") as tmp:
        vib = Vibrations(work, name=f"{tmp}/vib", delta=delta, nfree=2)
        vib.run()
        h = vib.get_vibrations().get_hessian_2d()
    return 0.5 * (h + h.T)


def _rigid_motions(positions: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Orthonormal mass-weighted basis [3n, k] of translations and rotations (k = 5 for linear, else 6)."""
    sqrt_m = np.sqrt(masses)
    x = positions - (masses[:, None] * positions).sum(0) / masses.sum()
    vecs = []
    for ax in np.eye(3):
        vecs.append((sqrt_m[:, None] * ax[None, :]).ravel())
        vecs.append((sqrt_m[:, None] * np.cross(ax[None, :], x)).ravel())
    u, s, _ = np.linalg.svd(np.array(vecs).T, full_matrices=False)
    return u[:, s > 1e-6 * s.max()]


def harmonic(atoms: Atoms, hessian: np.ndarray) -> Harmonic:
    """Normal modes of ``hessian`` (eV/Å²) in the space orthogonal to rigid translations and rotations."""
    masses = atoms.get_masses()
    inv_sqrt_m = np.repeat(1.0 / np.sqrt(masses), 3)
    hm = hessian * np.outer(inv_sqrt_m, inv_sqrt_m)
    rigid = _rigid_motions(atoms.positions, masses)
    # complement of the rigid motions: the internal vibrations only, so no near-zero modes remain
    q, _ = np.linalg.qr(np.hstack([rigid, np.eye(len(hm))]))
    internal = q[:, rigid.shape[1]:len(hm)]
    eig, vec = np.linalg.eigh(internal.T @ hm @ internal)
    freqs = np.sign(eig) * np.sqrt(np.abs(eig)) * _HNU_PER_SQRT_EIG / units.invcm
    cart = (inv_sqrt_m[:, None] * (internal @ vec)).T.reshape(len(eig), len(atoms), 3)
    cart /= np.linalg.norm(cart.reshape(len(eig), -1), axis=1)[:, None, None]
    return Harmonic(freqs, cart, hessian, masses)


def normal_mode_samples(atoms: Atoms, modes: Harmonic, temperature: float, n: int, seed: int = 0,
                        imaginary_amplitude: float = 0.3, max_amplitude: float = 1.0) -> list[np.ndarray]:
    """Positions (Å) displaced along every real mode with classical Boltzmann amplitudes at ``temperature`` K.

    Imaginary modes (the reaction coordinate at a TS) get a uniform amplitude in
    ±``imaginary_amplitude`` Å·amu^½ instead, so the samples straddle the dividing surface. Each
    amplitude is clipped to ±``max_amplitude`` Å·amu^½ (soft torsions and intermolecular modes).
    """
    rng = np.random.default_rng(seed)
    kt = units.kB * temperature
    k = modes.force_constants()
    sqrt_m = np.sqrt(modes.masses)[:, None]
    mw = modes.modes * sqrt_m[None]  # mass-weighted, renormalised below
    mw /= np.linalg.norm(mw.reshape(len(k), -1), axis=1)[:, None, None]
    out = []
    for _ in range(n):
        disp = np.zeros_like(atoms.positions)
        for kk, v in zip(k, mw):
            if kk > 1e-6:
                amp = float(np.clip(rng.normal() * np.sqrt(kt / kk), -max_amplitude, max_amplitude))
            else:
                amp = rng.uniform(-imaginary_amplitude, imaginary_amplitude)
            disp += amp * v
        out.append(atoms.positions + disp / sqrt_m)
    return out
