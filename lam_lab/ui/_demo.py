"""A few-second demo trajectory for the playback tab: NVE MD of a hot EMT metal cluster (ASE)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from ase import Atoms


@dataclass
class DemoTrajectory:
    """Frames (Å) with potential energies (eV) and times (fs)."""

    frames: list[Atoms]
    energies: np.ndarray
    times: np.ndarray
    description: str


def hot_cluster_md(element: str = "Cu", shells: int = 2, temperature_K: float = 2500.0, steps: int = 400,
                   timestep_fs: float = 2.0, interval: int = 4, seed: int = 1,
                   progress: Callable[[float], None] | None = None) -> DemoTrajectory:
    """Velocity-Verlet MD (EMT) of an icosahedral cluster started hot enough that bonds break and form.

    ``progress(fraction)`` is called as frames are stored; it may raise to stop the run.
    """
    from ase import units
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.cluster import Icosahedron
    from ase.md.velocitydistribution import Stationary, ZeroRotation
    from ase.md.verlet import VelocityVerlet

    try:  # ASE >= 3.29 renamed MaxwellBoltzmannDistribution
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # pragma: no cover - older ASE
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

    atoms = Icosahedron(element, shells)
    atoms.center(vacuum=5.0)
    thermalize_momenta(atoms, temperature_K=temperature_K, rng=np.random.default_rng(seed))
    Stationary(atoms)
    ZeroRotation(atoms)
    atoms.calc = EMT()
    frames: list[Atoms] = []

    def grab() -> None:
        snap = atoms.copy()
        snap.calc = SinglePointCalculator(snap, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
        frames.append(snap)
        if progress is not None:
            progress(len(frames) / (steps // interval + 1))

    dyn = VelocityVerlet(atoms, timestep_fs * units.fs)
    dyn.attach(grab, interval=interval)
    dyn.run(steps)
    energies = np.array([f.calc.results["energy"] for f in frames])
    times = np.arange(len(frames)) * interval * timestep_fs
    text = f"{element}{len(atoms)} cluster, EMT, NVE from {temperature_K:.0f} K, {steps * timestep_fs:.0f} fs"
    return DemoTrajectory(frames, energies, times, text)
