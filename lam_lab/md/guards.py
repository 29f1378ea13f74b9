"""MD guards: stop a run with a clear reason when a step turns unphysical (Å, eV/Å, K, eV).

A guard looks at the state right after a step. The frame that trips it is never written to the
trajectory: the run ends with the frames before it and a :class:`GuardTrip` saying what, where, when.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from ase import Atoms

GuardKind = Literal["nonfinite", "close_contact", "force", "temperature", "calculator"]


@dataclass
class GuardConfig:
    """Bounds of a sane MD step; ``None`` switches the distance or force check off.

    ``max_temperature`` None means ``max(5000 K, 5 × target)`` (``inf`` switches it off): a thermostat
    target of 3000 K must not trip it, but an NVE run heating from 300 K to 5000 K has blown up.
    ``every`` checks every k-th step (frames that are written are always checked first).
    """

    min_distance: float | None = 0.5  # Å
    max_force: float | None = 50.0  # eV/Å, largest per-atom force norm
    max_temperature: float | None = None  # K, instantaneous kinetic temperature
    check_finite: bool = True
    every: int = 1

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"GuardConfig.every must be >= 1, got {self.every}")
        for name in ("min_distance", "max_force", "max_temperature"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"GuardConfig.{name} must be positive or None, got {v}")

    def temperature_bound(self, target: float | None) -> float | None:
        """The temperature (K) above which the run counts as exploded."""
        if self.max_temperature is not None:
            return self.max_temperature
        return max(5000.0, 5.0 * (target or 0.0))


@dataclass
class GuardTrip:
    """Why a run was stopped: ``kind``, a readable ``reason``, the ``step`` and time (fs) of the bad state."""

    kind: GuardKind
    reason: str
    step: int
    time: float
    atoms: tuple[int, ...] = ()  # atom indices involved, when one can name them

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return asdict(self)

    def __str__(self) -> str:
        return f"step {self.step} ({self.time:.2f} fs): {self.reason}"


class MDGuardError(RuntimeError):
    """Raised (when asked) after a guard stopped a run; ``trip`` says why, ``result`` holds the run so far."""

    def __init__(self, trip: GuardTrip, result: Any = None):
        self.trip = trip
        self.result = result
        super().__init__(f"MD stopped at {trip}")


def _label(atoms: Atoms, i: int) -> str:
    return f"{atoms[i].symbol}{i}"


def check_state(atoms: Atoms, energy: float, forces: np.ndarray, temperature: float, step: int, time: float,
                config: GuardConfig, target_temperature: float | None = None) -> GuardTrip | None:
    """The first guard the state trips (non-finite, close contact, force, temperature), or None."""
    if config.check_finite:
        bad = [name for name, v in (("energy", np.asarray(energy)), ("positions", atoms.positions),
                                    ("forces", forces), ("velocities", atoms.get_momenta()))
               if not np.all(np.isfinite(v))]
        if bad:
            idx = np.flatnonzero(~np.isfinite(np.asarray(forces)).all(axis=-1)) if "forces" in bad else []
            return GuardTrip("nonfinite", f"non-finite {', '.join(bad)} (NaN or inf) from the calculator or integrator",
                             step, time, tuple(int(i) for i in idx[:8]))
    far = start_trip(atoms, step, time) if config.check_finite else None
    if far is not None:  # before the compiled neighbor search below, which a 1e6 Å coordinate crashes
        return far
    if config.min_distance is not None and len(atoms) > 1:
        from lam_lab.md.analysis import close_pairs

        pairs, d = close_pairs(atoms.positions, config.min_distance, np.asarray(atoms.cell), atoms.pbc)
        if len(d):
            k = int(np.argmin(d))
            i, j = (int(x) for x in pairs[k])
            return GuardTrip("close_contact", f"atoms {_label(atoms, i)} and {_label(atoms, j)} are {d[k]:.3f} Å apart "
                             f"(closer than min_distance {config.min_distance} Å)", step, time, (i, j))
    if config.max_force is not None and len(atoms):
        norms = np.sqrt((np.asarray(forces) ** 2).sum(axis=1))
        i = int(np.argmax(norms))
        if norms[i] > config.max_force:
            return GuardTrip("force", f"force on {_label(atoms, i)} is {norms[i]:.1f} eV/Å "
                             f"(above max_force {config.max_force} eV/Å)", step, time, (i,))
    bound = config.temperature_bound(target_temperature)
    if bound is not None and temperature > bound:
        return GuardTrip("temperature", f"temperature {temperature:.0f} K exploded past {bound:.0f} K", step, time)
    return None


def start_trip(atoms: Atoms, step: int = 0, time: float = 0.0) -> GuardTrip | None:
    """A trip for a state no integrator or neighbor search should see: no atoms, NaN/inf or absurd coordinates."""
    from lam_lab.nn.neighbor_list import MAX_COORDINATE

    if len(atoms) == 0:
        return GuardTrip("nonfinite", "the structure has no atoms", step, time)
    pos = atoms.positions
    bad = np.flatnonzero(~np.isfinite(pos).all(axis=1))
    if len(bad):
        return GuardTrip("nonfinite", f"non-finite positions (NaN or inf) on {len(bad)} atom(s), first "
                         f"{_label(atoms, int(bad[0]))}", step, time, tuple(int(i) for i in bad[:8]))
    far = np.flatnonzero(np.abs(pos).max(axis=1) > MAX_COORDINATE)
    if len(far):
        return GuardTrip("nonfinite", f"atom {_label(atoms, int(far[0]))} is beyond ±{MAX_COORDINATE:g} Å "
                         "(wrong units or an exploded structure)", step, time, tuple(int(i) for i in far[:8]))
    return None


__all__ = ["GuardConfig", "start_trip", "GuardTrip", "GuardKind", "MDGuardError", "check_state"]
