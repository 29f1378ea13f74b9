"""water-ff: periodic liquid water (32 molecules, 0.97–1.03 g/cm³) from Langevin MD at 300–400 K, flexible TIP3P.

The cheap classical labels of force-field pre-training (seed 003). Each trajectory starts from a
lattice of randomly oriented molecules, is equilibrated, then sampled every ``INTERVAL`` steps.
``info``: temperature (K), density (g/cm³), trajectory, md_step.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes

from lam_lab.data.dataset import Dataset
from lam_lab.data.frame import Frame
from lam_lab.datasets._common import label, provenance
from lam_lab.datasets._stages import BuildContext, stage

NAME = "water-ff"
DESCRIPTION = "≥500 periodic liquid-water frames (32 H2O, 300-400 K MD) labelled by flexible TIP3P"
N_MOLECULES = 32
INTERVAL = 20  # MD steps (0.5 fs) between snapshots: 10 fs
EQUILIBRATION = 2000  # steps (1 ps)
# (temperature K, density g/cm³, snapshots)
RUNS = ((300.0, 1.00, 130), (330.0, 0.97, 130), (360.0, 1.03, 130), (400.0, 1.00, 130))


class WaterFFCalculator(Calculator):
    """ASE calculator around the water force field of :mod:`lam_lab.labelers.forcefield` (eV, eV/Å)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, **settings):
        super().__init__()
        from lam_lab.labelers.forcefield import WaterFFSettings

        self.ff_settings = WaterFFSettings(**settings)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        from lam_lab.labelers.forcefield import water_energy

        super().calculate(atoms, properties, system_changes)
        out = water_energy(Frame.from_atoms(self.atoms), self.ff_settings)
        self.results = {"energy": out.energy, "free_energy": out.energy, "forces": out.forces}
        if self.atoms.cell.rank == 3:
            sigma = -np.asarray(out.virial) / self.atoms.get_volume()
            self.results["stress"] = sigma.ravel()[[0, 4, 8, 5, 2, 1]]


def water_box(n: int, density: float, rng: np.random.Generator) -> Atoms:
    """``n`` randomly oriented water molecules (O,H,H order) on a cubic lattice at ``density`` g/cm³."""
    from ase.build import molecule
    from scipy.spatial.transform import Rotation

    mass = n * 18.015 / units.mol  # g
    length = (mass / density * 1e24) ** (1 / 3)  # Å
    k = int(np.ceil(n ** (1 / 3)))
    grid = np.array([(i, j, m) for i in range(k) for j in range(k) for m in range(k)])[:n]
    h2o = molecule("H2O")
    h2o = h2o[[i for i, s in enumerate(h2o.get_chemical_symbols()) if s == "O"] +
              [i for i, s in enumerate(h2o.get_chemical_symbols()) if s == "H"]]
    centre = h2o.positions[0].copy()
    pos, num = [], []
    for g in grid:
        rot = Rotation.random(random_state=int(rng.integers(2**31))).as_matrix()
        pos.append((h2o.positions - centre) @ rot.T + (g + 0.5) * length / k)
        num += [8, 1, 1]
    return Atoms(numbers=num, positions=np.concatenate(pos), cell=[length] * 3, pbc=True)


def _trajectory(temp: float, density: float, n_snap: int, seed: int, n_mol: int, equil: int) -> list[Atoms]:
    from lam_lab.sampling.md import MDConfig, run_md

    atoms = water_box(n_mol, density, np.random.default_rng(seed))
    cfg = MDConfig(steps=equil + n_snap * INTERVAL, interval=INTERVAL, timestep_fs=0.5, friction_per_fs=0.01)
    run = run_md(atoms, lambda a: WaterFFCalculator(), temp, cfg, seed=seed)
    if run.stopped:
        raise RuntimeError(f"water MD at {temp} K stopped: {run.stopped}")
    return run.frames[equil // INTERVAL:]


def structures(ctx: BuildContext) -> list[Frame]:
    """Unlabelled snapshots of every run in ``RUNS`` (a short single run when quick)."""
    runs = ((300.0, 1.0, 4),) if ctx.quick else RUNS
    n_mol, equil = (8, 40) if ctx.quick else (N_MOLECULES, EQUILIBRATION)
    out: list[Frame] = []
    for k, (temp, dens, n_snap) in enumerate(runs):
        for a in _trajectory(temp, dens, n_snap, ctx.seed + k, n_mol, equil):
            out.append(Frame(a.numbers, a.positions, np.array(a.cell), [True] * 3, {},
                             {"temperature": temp, "density": dens, "trajectory": k,
                              "md_step": int(a.info["md_step"])}))
        ctx.say(f"water MD {temp:.0f} K, {dens} g/cm³: {n_snap} snapshots")
    return out


def build(ctx: BuildContext) -> Dataset:
    """MD snapshots (cached stage) → flexible-TIP3P labels with virials."""
    frames = stage(ctx, "structures", {"seed": ctx.seed, "quick": ctx.quick, "runs": RUNS, "n": N_MOLECULES,
                                       "interval": INTERVAL, "equil": EQUILIBRATION}, lambda: structures(ctx))
    ff = label(ctx, frames, "tip3p")
    notes = f"{__doc__.strip()}\nDropped (failed labels): {len(ff.failures)}."
    return Dataset(ff.frames, NAME, provenance(ctx, {ff.name: ff.provenance}, ("vesin",), notes))
