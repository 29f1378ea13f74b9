"""metals-emt: periodic fcc metals and alloys (bulk strained/heated, surfaces, vacancies, clusters) with EMT.

Every frame is a 3-D periodic cell (slabs and clusters sit in vacuum inside the box), so every
frame has an EMT energy (eV), forces (eV/Å) and virial (eV). ``info``: kind (bulk-strained,
bulk-md, alloy-strained, alloy-md, surface, vacancy, cluster), system, temperature (K, MD only).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from lam_lab.data.dataset import Dataset
from lam_lab.data.frame import Frame
from lam_lab.datasets._common import label, provenance
from lam_lab.datasets._stages import BuildContext, stage

NAME = "metals-emt"
DESCRIPTION = ("≥1,500 periodic frames of fcc Cu/Ag/Au/Ni/Pd/Pt/Al and alloys: strained and hot bulk, "
               "(100)/(111)/(110) slabs, vacancies, clusters in a box; EMT energies, forces, virials")
METALS = ("Cu", "Ag", "Au", "Ni", "Pd", "Pt", "Al")
ALLOYS = (("Cu", "Au"), ("Ni", "Pt"), ("Ag", "Pd"), ("Cu", "Ni"), ("Au", "Pt"), ("Al", "Cu"))
VACUUM = 6.0  # Å each side of slabs and clusters


def _emt(atoms: Atoms):
    from ase.calculators.emt import EMT

    return EMT()


def _lattice(symbols: tuple[str, ...], fractions: tuple[float, ...]) -> float:
    """Vegard's-law fcc lattice constant (Å) from ASE's reference data."""
    from ase.data import atomic_numbers, reference_states

    return float(sum(f * reference_states[atomic_numbers[s]]["a"] for s, f in zip(symbols, fractions)))


def _bulk(symbols: tuple[str, ...], rng: np.random.Generator, x: float = 0.5, reps: int = 2) -> Atoms:
    """A reps³ conventional fcc cell; for two symbols a random substitution with fraction ``x``."""
    from ase.build import bulk

    a = _lattice(symbols, (1.0,) if len(symbols) == 1 else (1 - x, x))
    atoms = bulk(symbols[0], "fcc", a=a, cubic=True).repeat(reps)
    if len(symbols) == 2:
        n = int(round(x * len(atoms)))
        sym = np.array(atoms.get_chemical_symbols())
        sym[rng.choice(len(atoms), n, replace=False)] = symbols[1]
        atoms.set_chemical_symbols(sym.tolist())
    return atoms


def _strained(atoms: Atoms, rng: np.random.Generator, max_strain: float, rattle: float) -> Atoms:
    """Random symmetric strain (|ε| ≤ max_strain) and Gaussian displacements (Å)."""
    eps = rng.uniform(-max_strain, max_strain, (3, 3))
    eps = 0.5 * (eps + eps.T)
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    out.positions += rng.normal(scale=rattle, size=out.positions.shape)
    return out


def _md(atoms: Atoms, temp: float, n: int, seed: int, interval: int = 20) -> list[Atoms]:
    """``n`` EMT Langevin snapshots at ``temp`` K after a short equilibration."""
    from lam_lab.sampling.md import MDConfig, run_md

    cfg = MDConfig(steps=(n + 5) * interval, interval=interval, timestep_fs=2.0, friction_per_fs=0.02)
    return run_md(atoms, _emt, temp, cfg, seed=seed).frames[5:]


def _frame(atoms: Atoms, **info) -> Frame:
    return Frame(atoms.numbers, atoms.positions, np.array(atoms.cell), [True] * 3, {}, dict(info))


def _boxed(atoms: Atoms) -> Atoms:
    """A non-periodic object centred in a periodic box with ``VACUUM`` Å around it."""
    out = atoms.copy()
    out.center(vacuum=VACUUM)
    out.pbc = True
    return out


def structures(ctx: BuildContext) -> list[Frame]:
    """All unlabelled frames, deterministic for a seed."""
    from ase.build import fcc100, fcc110, fcc111
    from ase.cluster import Icosahedron, Octahedron

    rng = np.random.default_rng(ctx.seed)
    q = ctx.quick
    metals = METALS[:2] if q else METALS
    alloys = ALLOYS[:1] if q else ALLOYS
    n_strain, n_md, temps = (3, 2, (600.0,)) if q else (50, 18, (300.0, 800.0, 1300.0))
    seed = ctx.seed
    out: list[Frame] = []
    for el in metals:
        base = _bulk((el,), rng)
        out += [_frame(_strained(base, rng, 0.05, 0.05), kind="bulk-strained", system=el) for _ in range(n_strain)]
        for t in temps:
            seed += 1
            out += [_frame(a, kind="bulk-md", system=el, temperature=t) for a in _md(base, t, n_md, seed)]
        vac = base.copy()
        del vac[int(rng.integers(len(vac)))]
        for t in temps[:2]:
            seed += 1
            out += [_frame(a, kind="vacancy", system=el, temperature=t) for a in _md(vac, t, n_md // 2 + 2, seed)]
        a0 = _lattice((el,), (1.0,))
        for facet, make in (("100", fcc100), ("111", fcc111), ("110", fcc110)):
            slab = make(el, size=(2, 2, 4), a=a0, vacuum=VACUUM, periodic=True)
            for t in temps[:2]:
                seed += 1
                out += [_frame(a, kind="surface", system=f"{el}({facet})", temperature=t)
                        for a in _md(slab, t, n_md // 3 + 1, seed)]
        for shape, cl in (("icosahedron", Icosahedron(el, 2, latticeconstant=a0)),
                          ("octahedron", Octahedron(el, 3, 1, latticeconstant=a0))):
            for t in temps[:2]:
                seed += 1
                out += [_frame(a, kind="cluster", system=f"{el}{len(cl)} {shape}", temperature=t)
                        for a in _md(_boxed(cl), t, n_md // 2, seed)]
    for pair in alloys:
        for x in (0.25, 0.5):
            base = _bulk(pair, rng, x)
            name = f"{pair[0]}{1 - x:.2f}{pair[1]}{x:.2f}"
            out += [_frame(_strained(base, rng, 0.05, 0.05), kind="alloy-strained", system=name)
                    for _ in range(max(n_strain // 3, 1))]
            for t in temps[:2]:
                seed += 1
                out += [_frame(a, kind="alloy-md", system=name, temperature=t) for a in _md(base, t, n_md // 2, seed)]
    return out


def build(ctx: BuildContext) -> Dataset:
    """Structures (cached stage) → EMT labels (energy, forces, virial)."""
    frames = stage(ctx, "structures", {"seed": ctx.seed, "quick": ctx.quick, "v": 1}, lambda: structures(ctx))
    ctx.say(f"{len(frames)} structures")
    emt = label(ctx, frames, "emt")
    notes = f"{__doc__.strip()}\nDropped (failed labels): {len(emt.failures)}."
    return Dataset(emt.frames, NAME, provenance(ctx, {emt.name: emt.provenance}, (), notes))
