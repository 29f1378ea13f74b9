"""Reaction paths by climbing-image NEB (ASE) between aligned reactant and product, GFN2-xTB by default."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator

CalcFactory = Callable[[Atoms], Calculator]


def xtb_calculator(atoms: Atoms) -> Calculator:
    """A fresh GFN2-xTB calculator (tblite) using the charge in ``atoms.info`` (default 0)."""
    from tblite.ase import TBLite

    return TBLite(method="GFN2-xTB", charge=float(atoms.info.get("charge", 0)), verbosity=0)


@dataclass
class NEBConfig:
    """Settings of a CI-NEB run: images include both ends; forces in eV/Å, spring in eV/Å²."""

    n_images: int = 9
    spring: float = 0.1
    fmax: float = 0.05
    steps: int = 400
    climb: bool = True
    climb_after_fmax: float = 0.5  # switch the climbing image on once the plain band is this close
    optimizer: str = "ODE"  # "ODE" (ASE NEBOptimizer), "FIRE" or "BFGS"
    maxstep: float = 0.1  # Å per optimizer step
    relax_endpoints: bool = True
    endpoint_fmax: float = 0.02
    endpoint_steps: int = 500
    record_every: int = 0  # keep every k-th intermediate band (0: none), for path sampling
    noise: float = 0.02  # Å; seeded jitter of the interpolated images (breaks exact symmetry)
    seed: int = 0


@dataclass
class NEBResult:
    """A converged (or step-limited) band: images with xTB results, energies (eV), TS image."""

    images: list[Atoms]
    energies: np.ndarray
    ts_index: int
    converged: bool
    steps: int
    fmax: float  # eV/Å, largest NEB force at the end
    history: list[list[Atoms]] = field(default_factory=list)

    @property
    def ts(self) -> Atoms:
        """The highest-energy (climbing) image."""
        return self.images[self.ts_index]

    @property
    def barrier(self) -> float:
        """Forward barrier E(TS) − E(reactant), eV."""
        return float(self.energies[self.ts_index] - self.energies[0])

    @property
    def reaction_energy(self) -> float:
        """E(product) − E(reactant), eV."""
        return float(self.energies[-1] - self.energies[0])


def _optimizer(name: str, target, maxstep: float):
    """An ASE optimizer by name; "ODE" is ASE's adaptive NEB integrator (no step limit needed)."""
    from ase.mep.neb import NEBOptimizer
    from ase.optimize import BFGS, FIRE

    if name == "ODE":
        return NEBOptimizer(target, method="ODE", logfile=None)
    opts = {"FIRE": FIRE, "BFGS": BFGS}
    if name not in opts:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(opts) + ['ODE']}")
    return opts[name](target, maxstep=maxstep, logfile=None)


def _snapshot(atoms: Atoms) -> Atoms:
    """A copy carrying the current energy and forces as a single-point result."""
    out = atoms.copy()
    out.calc = SinglePointCalculator(out, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
    return out


def fragments(atoms: Atoms) -> list[list[int]]:
    """Atom indices of each covalently bonded fragment (ASE natural cutoffs)."""
    from ase.neighborlist import natural_cutoffs, neighbor_list
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    i, j = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=1.1))
    n = len(atoms)
    _, lab = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False)
    return [np.flatnonzero(lab == k).tolist() for k in range(lab.max() + 1)]


def relax(atoms: Atoms, calc_factory: CalcFactory = xtb_calculator, fmax: float = 0.02, steps: int = 500,
          optimizer: str = "BFGS", maxstep: float = 0.1, by_fragment: bool = True) -> Atoms:
    """A relaxed copy of ``atoms`` (to ``fmax`` eV/Å or ``steps``) with its energy and forces attached.

    With ``by_fragment`` each molecule of a complex is relaxed alone and put back in place, so a
    pre-reactive arrangement (diene facing dienophile) survives; a joint relaxation would let the
    weakly bound partners drift into any van der Waals minimum.
    """
    from lam_lab.sampling.molecules import align

    frags = fragments(atoms) if by_fragment else [list(range(len(atoms)))]
    work = atoms.copy()
    if len(frags) > 1:
        for f in frags:
            part = relax(atoms[f], calc_factory, fmax, steps, optimizer, maxstep, by_fragment=False)
            work.positions[f] = align(part, atoms[f]).positions
        work.calc = calc_factory(work)
        return _snapshot(work)
    work.calc = calc_factory(work)
    opt = _optimizer(optimizer, work, maxstep)
    opt.run(fmax=fmax, steps=steps)
    return _snapshot(work)


def _mds(d: np.ndarray) -> np.ndarray:
    """3D coordinates (Å) whose distances best match the matrix ``d`` (classical multidimensional scaling)."""
    n = len(d)
    j = np.eye(n) - 1.0 / n
    w, v = np.linalg.eigh(-0.5 * j @ (d**2) @ j)
    w, v = w[::-1][:3], v[:, ::-1][:, :3]
    x = v * np.sqrt(np.clip(w, 0.0, None))
    return np.pad(x, ((0, 0), (0, 3 - x.shape[1])))


def _distance_geometry_guess(images: list[Atoms], noise: float, seed: int) -> None:
    """Start each interior image from the embedding of linearly interpolated distances, not positions.

    A Cartesian straight line can send atoms through each other (HCN→HNC moves H through C and N);
    interpolating distances gives IDPP a start on the right side of such barriers.
    """
    from lam_lab.sampling.molecules import kabsch

    d0, d1 = images[0].get_all_distances(), images[-1].get_all_distances()
    x0, x1 = images[0].positions, images[-1].positions
    rng = np.random.default_rng(seed)
    n = len(images) - 1
    for i, im in enumerate(images[1:-1], start=1):
        t = i / n
        line = (1 - t) * x0 + t * x1
        x = _mds((1 - t) * d0 + t * d1)
        # MDS fixes shape up to a mirror image: keep the handedness closer to the straight line
        fits = [kabsch(x * m, line) for m in (np.array([1, 1, 1]), np.array([1, 1, -1]))]
        im.positions = min(fits, key=lambda c: float(np.sum((c - line) ** 2)))
        im.positions += rng.normal(scale=noise, size=im.positions.shape)


def run_neb(reactant: Atoms, product: Atoms, calc_factory: CalcFactory = xtb_calculator,
            config: NEBConfig | None = None) -> NEBResult:
    """CI-NEB from ``reactant`` to ``product`` (same atom order): relax ends, align, IDPP, optimize."""
    from ase.mep import NEB
    from ase.mep.neb import idpp_interpolate

    from lam_lab.sampling.molecules import align

    cfg = config or NEBConfig()
    if len(reactant) != len(product) or np.any(reactant.numbers != product.numbers):
        raise ValueError("reactant and product must hold the same atoms in the same order")
    if cfg.n_images < 3:
        raise ValueError(f"NEB needs at least 3 images, got n_images={cfg.n_images}")
    if cfg.relax_endpoints:
        ends = [relax(a, calc_factory, cfg.endpoint_fmax, cfg.endpoint_steps, "BFGS", cfg.maxstep)
                for a in (reactant, product)]
    else:
        ends = []
        for a in (reactant, product):
            w = a.copy()
            w.calc = calc_factory(w)
            ends.append(_snapshot(w))
    r, p = ends
    r.info.update(reactant.info)
    p.info.update(product.info)
    # endpoint relaxation rotates molecules independently: re-align so the band does not rotate
    p = align(p, r)
    p.calc = calc_factory(p)
    p = _snapshot(p)
    images = [r] + [r.copy() for _ in range(cfg.n_images - 2)] + [p]
    for im in images[1:-1]:
        im.info = dict(reactant.info)
    # the band re-orients every image (ends included), so every image needs a live calculator
    for im in images:
        im.calc = calc_factory(im)
    neb = NEB(images, k=cfg.spring, climb=False, method="improvedtangent", remove_rotation_and_translation=True)
    _distance_geometry_guess(images, cfg.noise, cfg.seed)
    idpp_interpolate(neb, traj=None, log=None, fmax=0.05, steps=1000)
    history: list[list[Atoms]] = []
    opt = _optimizer(cfg.optimizer, neb, cfg.maxstep)
    if cfg.record_every:
        opt.attach(lambda: history.append([_snapshot(im) for im in images[1:-1]]), interval=cfg.record_every)
    done = 0
    if cfg.climb:
        opt.run(fmax=max(cfg.climb_after_fmax, cfg.fmax), steps=cfg.steps // 2)
        done = opt.nsteps
        neb.climb = True
        opt = _optimizer(cfg.optimizer, neb, cfg.maxstep)
        if cfg.record_every:
            opt.attach(lambda: history.append([_snapshot(im) for im in images[1:-1]]), interval=cfg.record_every)
    opt.run(fmax=cfg.fmax, steps=max(cfg.steps - done, 1))
    done += opt.nsteps
    fmax_now = float(np.sqrt((neb.get_forces() ** 2).sum(axis=1).max()))
    # judged on the band's largest atomic force; ASE's NEB integrator measures its own norm
    converged = fmax_now <= 1.5 * cfg.fmax
    final = [_snapshot(im) for im in images]
    for im, src in zip(final, images):
        im.info = dict(src.info)
    energies = np.array([im.get_potential_energy() for im in final])
    ts = int(np.argmax(energies[1:-1])) + 1
    for k, im in enumerate(final):
        im.info.update({"neb_image": k, "role": "reactant" if k == 0 else "product" if k == len(final) - 1 else "path"})
    final[ts].info["role"] = "ts"
    return NEBResult(final, energies, ts, converged, done, fmax_now, history)
