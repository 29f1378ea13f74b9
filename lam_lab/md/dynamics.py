"""Integrators of the MD ensembles (NVE, Langevin, Bussi, Nosé–Hoover chain) and the starting velocities."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms, units

if TYPE_CHECKING:
    from lam_lab.md.runner import MDConfig


def make_dynamics(atoms: Atoms, config: MDConfig, rng: np.random.Generator):
    """The ASE integrator of ``config.ensemble`` on ``atoms`` (momenta must be set already)."""
    dt = config.timestep * units.fs
    if config.ensemble == "nve":
        from ase.md.verlet import VelocityVerlet

        return VelocityVerlet(atoms, timestep=dt)
    if config.ensemble == "langevin":
        from ase.md.langevin import Langevin

        # fixcm=True is deprecated in ASE (wrong distribution for small systems); momentum starts at zero
        return Langevin(atoms, timestep=dt, temperature_K=config.temperature, friction=config.friction / units.fs,
                        fixcm=False, rng=rng)
    if config.ensemble == "bussi":
        from ase.md.bussi import Bussi

        return Bussi(atoms, timestep=dt, temperature_K=config.temperature, taut=config.taut * units.fs, rng=rng)
    from ase.md.nose_hoover_chain import NoseHooverChainNVT

    return NoseHooverChainNVT(atoms, timestep=dt, temperature_K=config.temperature, tdamp=config.taut * units.fs,
                              tchain=config.nh_chain)


def initialize_velocities(atoms: Atoms, temperature: float, rng: np.random.Generator,
                          zero_rotation: bool | None = None) -> None:
    """Maxwell–Boltzmann momenta at ``temperature`` K, total momentum (and, for molecules, rotation) removed."""
    from ase.md import velocitydistribution as vd

    if hasattr(vd, "thermalize_momenta"):  # ASE >= 3.29 deprecates the older name
        vd.thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
    else:
        vd.MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    vd.Stationary(atoms)
    if (not atoms.pbc.any()) if zero_rotation is None else zero_rotation:
        if len(atoms) > 2:  # ZeroRotation inverts the inertia tensor: singular for 1-2 atoms
            vd.ZeroRotation(atoms)
