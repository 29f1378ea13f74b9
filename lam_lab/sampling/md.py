"""Langevin MD sampling (ASE): snapshots every k steps at chosen temperatures (K), with explosion guards."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator

CalcFactory = Callable[[Atoms], Calculator]


@dataclass
class MDConfig:
    """Langevin settings: timestep fs, friction 1/fs, snapshot every ``interval`` steps.

    Guards stop a run (keeping the frames before) when a structure goes bad: non-finite numbers,
    two atoms closer than ``min_distance`` Å, forces above ``max_force`` eV/Å, or (molecules only)
    an atom farther than ``max_isolation`` Å from every other atom.
    """

    temperatures: Sequence[float] = (300.0,)
    steps: int = 1000
    interval: int = 10
    timestep_fs: float = 0.5
    friction_per_fs: float = 0.01
    seed: int = 0
    min_distance: float = 0.6
    max_force: float = 30.0
    max_isolation: float = 4.0


@dataclass
class MDRun:
    """Snapshots (with energy eV / forces eV/Å attached) of one run at one temperature."""

    frames: list[Atoms]
    temperature: float
    steps_done: int
    stopped: str | None = None  # why a guard ended the run early, None when it ran to the end
    kinetic_temperatures: list[float] = field(default_factory=list)  # K, instantaneous at each snapshot


def guard(atoms: Atoms, forces: np.ndarray, energy: float, config: MDConfig) -> str | None:
    """The reason ``atoms`` is no longer a sane sample, or None."""
    if not (np.isfinite(energy) and np.all(np.isfinite(atoms.positions)) and np.all(np.isfinite(forces))):
        return "non-finite positions, energy or forces"
    fmax = float(np.sqrt((forces**2).sum(axis=1).max()))
    if fmax > config.max_force:
        return f"force {fmax:.1f} eV/Å above {config.max_force}"
    if len(atoms) < 2:
        return None
    d = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
    np.fill_diagonal(d, np.inf)
    nearest = d.min(axis=1)
    if nearest.min() < config.min_distance:
        return f"atoms closer than {config.min_distance} Å"
    if not atoms.pbc.any() and nearest.max() > config.max_isolation:
        return f"an atom drifted {nearest.max():.1f} Å from all others"
    return None


def run_md(atoms: Atoms, calc_factory: CalcFactory, temperature: float, config: MDConfig | None = None,
           seed: int | None = None) -> MDRun:
    """One Langevin run at ``temperature`` K from ``atoms``; snapshots every ``config.interval`` steps."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta

    cfg = config or MDConfig()
    rng = np.random.default_rng(cfg.seed if seed is None else seed)
    work = atoms.copy()
    work.calc = calc_factory(work)
    thermalize_momenta(work, temperature_K=temperature, rng=rng)
    Stationary(work)
    if not work.pbc.any():
        ZeroRotation(work)
    dyn = Langevin(work, timestep=cfg.timestep_fs * units.fs, temperature_K=temperature,
                   friction=cfg.friction_per_fs / units.fs, fixcm=False, rng=rng, logfile=None)
    frames: list[Atoms] = []
    temps: list[float] = []
    stopped: str | None = None
    done = 0
    for start in range(0, cfg.steps, cfg.interval):
        try:
            dyn.run(min(cfg.interval, cfg.steps - start))
            energy = work.get_potential_energy()
            forces = work.get_forces()
        except Exception as exc:  # an SCF failure on a distorted geometry ends this run only
            stopped = f"calculator failed: {type(exc).__name__}: {exc}"[:300]
            break
        done = start + min(cfg.interval, cfg.steps - start)
        stopped = guard(work, forces, energy, cfg)
        if stopped:
            break
        snap = work.copy()
        results = {"energy": energy, "forces": forces}
        snap.calc = SinglePointCalculator(snap, **results)
        snap.info.update({"temperature": float(temperature), "md_step": done})
        frames.append(snap)
        temps.append(float(work.get_temperature()))
    return MDRun(frames, float(temperature), done, stopped, temps)


def sample_md(atoms: Atoms, calc_factory: CalcFactory, config: MDConfig | None = None) -> list[MDRun]:
    """One run per temperature in ``config.temperatures`` (seeds ``seed``, ``seed+1``, ...)."""
    cfg = config or MDConfig()
    return [run_md(atoms, calc_factory, t, cfg, seed=cfg.seed + k) for k, t in enumerate(cfg.temperatures)]
