"""MD with any ASE calculator (lam_lab models included): NVE, Langevin, Bussi, Nosé–Hoover NVT (fs, K, eV).

The run writes its trajectory while it goes (ASE ``.traj`` or extxyz, each frame carrying step,
time, energies and temperature), hands a named record to live observers every k steps, honours a
stop request from another thread at the next step boundary, and lets :mod:`lam_lab.md.guards` end
it with a reason when a step goes bad — keeping every frame before.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from lam_lab.md.dynamics import initialize_velocities, make_dynamics
from lam_lab.md.guards import GuardConfig, GuardTrip, MDGuardError, check_state, start_trip
from lam_lab.md.trajectory import TrajectoryWriter, snapshot

ENSEMBLES = ("nve", "langevin", "bussi", "nose-hoover")
Ensemble = Literal["nve", "langevin", "bussi", "nose-hoover"]


@dataclass
class MDConfig:
    """One MD run: ensemble, target temperature (K), steps, timestep (fs), record every ``interval`` steps.

    Velocities start Maxwell–Boltzmann at ``init_temperature`` (default: ``temperature``) from
    ``seed`` with zero total momentum (and zero angular momentum for molecules), unless
    ``keep_momenta`` keeps the momenta the atoms already carry. ``friction`` (1/fs) drives Langevin;
    ``taut`` (fs) is the Bussi / Nosé–Hoover time constant. ``on_guard``: "stop" (reason in the
    result), "warn" (also printed to stderr) or "raise" (:class:`MDGuardError` after the frames are saved).
    """

    ensemble: Ensemble = "nve"
    temperature: float = 300.0
    steps: int = 1000
    timestep: float = 0.5
    interval: int = 10
    friction: float = 0.01
    taut: float = 100.0
    nh_chain: int = 3
    init_temperature: float | None = None
    keep_momenta: bool = False
    zero_rotation: bool | None = None  # None: only for non-periodic systems
    seed: int | None = 0
    trajectory: str | None = None  # .traj or .xyz/.extxyz, written frame by frame
    keep_frames: bool = True  # also keep the frames in memory (MDResult.frames)
    guards: GuardConfig = field(default_factory=GuardConfig)
    on_guard: Literal["stop", "warn", "raise"] = "warn"

    def __post_init__(self) -> None:
        if self.ensemble not in ENSEMBLES:
            raise ValueError(f"unknown ensemble {self.ensemble!r}; choose one of {list(ENSEMBLES)}")
        if self.on_guard not in ("stop", "warn", "raise"):
            raise ValueError(f"on_guard must be 'stop', 'warn' or 'raise', got {self.on_guard!r}")
        checks = {"timestep": self.timestep > 0, "steps": self.steps >= 0, "interval": self.interval >= 1,
                  "temperature": self.temperature >= 0, "friction": self.friction > 0, "taut": self.taut > 0,
                  "nh_chain": self.nh_chain >= 1}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"MDConfig: invalid {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}")
        if isinstance(self.guards, dict):
            self.guards = GuardConfig(**self.guards)


@dataclass
class MDRecord:
    """The state handed to observers: step, time (fs), energies (eV), temperature (K) and a snapshot of the atoms."""

    step: int
    time: float
    epot: float
    ekin: float
    etot: float
    temperature: float
    atoms: Atoms


Observer = Callable[[MDRecord], Any]


@dataclass
class MDResult:
    """What a run produced: recorded frames and their energy series, how far it got and why it ended.

    ``status`` is "completed", "guard" (``trip`` says which and why; ``bad_frame`` is the rejected
    state, kept out of the trajectory) or "stopped" (a stop request). Series are per recorded frame.
    """

    frames: list[Atoms]
    steps: np.ndarray
    times: np.ndarray  # fs
    epot: np.ndarray  # eV
    ekin: np.ndarray  # eV
    etot: np.ndarray  # eV
    temperature: np.ndarray  # K
    n_atoms: int
    steps_done: int
    status: Literal["completed", "guard", "stopped"]
    reason: str | None
    trip: GuardTrip | None
    bad_frame: Atoms | None
    trajectory: str | None
    wall_time: float  # s
    config: MDConfig
    atoms: Atoms | None = None  # the live final state (with its calculator)

    @property
    def completed(self) -> bool:
        """True when every asked step ran."""
        return self.status == "completed"

    def drift(self) -> float:
        """Total-energy drift, meV/atom/ps: slope of a straight-line fit of E_tot against time."""
        if len(self.times) < 2 or self.times[-1] == self.times[0]:
            return float("nan")
        slope = np.polyfit(self.times / 1000.0, self.etot, 1)[0]  # eV/ps
        return float(1000.0 * slope / max(self.n_atoms, 1))

    def fluctuation(self) -> float:
        """Largest |E_tot − E_tot(0)| over the run, meV/atom."""
        if not len(self.etot):
            return float("nan")
        return float(1000.0 * np.max(np.abs(self.etot - self.etot[0])) / max(self.n_atoms, 1))

    def summary(self) -> str:
        """One line: steps, time, mean temperature, drift, and the reason when it did not complete."""
        t = float(np.mean(self.temperature)) if len(self.temperature) else float("nan")
        line = (f"{self.config.ensemble.upper()} {self.steps_done}/{self.config.steps} steps "
                f"({self.steps_done * self.config.timestep:.1f} fs), {len(self.steps)} frames, <T> {t:.0f} K, "
                f"E_tot drift {self.drift():.3g} meV/atom/ps, {self.wall_time:.1f} s")
        return line if self.completed else f"{line} — {self.status}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (series as lists; frames and atoms left out)."""
        return {
            "status": self.status, "reason": self.reason, "trip": self.trip.to_dict() if self.trip else None,
            "steps_done": self.steps_done, "n_atoms": self.n_atoms, "trajectory": self.trajectory,
            "wall_time": self.wall_time, "drift_meV_atom_ps": self.drift(), "config": dataclasses.asdict(self.config),
            **{k: getattr(self, k).tolist() for k in ("steps", "times", "epot", "ekin", "etot", "temperature")},
        }


class MDRunner:
    """One MD run of ``atoms`` (copied; the original is left alone) with ``calculator`` under ``config``.

    ``calculator``: an ASE calculator, a lam_lab ``Potential``, a model file or "xtb"/"emt"
    (default: the calculator already attached to ``atoms``). Keyword overrides set MDConfig fields.
    """

    def __init__(self, atoms: Atoms, calculator: Any = None, config: MDConfig | None = None,
                 observers: Sequence[Observer] = (), **overrides: Any):
        cfg = config or MDConfig()
        self.config = dataclasses.replace(cfg, **overrides) if overrides else cfg
        self.atoms = atoms.copy()
        if calculator is None:
            calculator = atoms.calc
        if calculator is None:
            raise ValueError("MD needs a calculator: pass calculator= or attach one to the atoms")
        if not isinstance(calculator, Calculator):
            calculator = calculator_factory(calculator)(self.atoms)
        self.atoms.calc = calculator
        self._observers: list[tuple[Observer, int]] = []
        for fn in observers:
            self.add_observer(fn)
        self._stop = threading.Event()
        self._stop_reason = "stop requested"
        self._started = False

    def add_observer(self, fn: Observer, every: int | None = None) -> None:
        """Call ``fn(record)`` every ``every`` steps (default: the config's interval), step 0 included."""
        k = self.config.interval if every is None else int(every)
        if k < 1:
            raise ValueError(f"observer interval must be >= 1, got {k}")
        self._observers = self._observers + [(fn, k)]  # replaced, not mutated: safe while a run iterates

    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask the run to end after the step in progress (safe from any thread)."""
        self._stop_reason = reason
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        """Whether a stop has been asked for."""
        return self._stop.is_set()

    def run(self) -> MDResult:
        """Integrate ``config.steps`` steps (fewer when stopped or a guard trips) and return the result."""
        if self._started:
            raise RuntimeError("an MDRunner runs once; make a new one for another run")
        self._started = True
        cfg, atoms = self.config, self.atoms
        early = start_trip(atoms)  # NaN positions would end in a LinAlgError while drawing velocities
        if early is not None:
            empty = (np.zeros(0, dtype=float if k else int) for k in range(6))
            return self._conclude(MDResult([], *empty, n_atoms=len(atoms), steps_done=0, status="guard",
                                           reason=str(early), trip=early, bad_frame=None, trajectory=None,
                                           wall_time=0.0, config=cfg, atoms=atoms))
        rng = np.random.default_rng(cfg.seed)
        if not cfg.keep_momenta:
            t0 = cfg.temperature if cfg.init_temperature is None else cfg.init_temperature
            initialize_velocities(atoms, t0, rng, cfg.zero_rotation)
        elif not atoms.has("momenta"):
            atoms.set_momenta(np.zeros((len(atoms), 3)))
        dyn = make_dynamics(atoms, cfg, rng)
        series: dict[str, list[float]] = {k: [] for k in ("steps", "times", "epot", "ekin", "etot", "temperature")}
        frames: list[Atoms] = []
        writer = TrajectoryWriter(cfg.trajectory) if cfg.trajectory else None

        def store(rec: MDRecord) -> None:
            for k, v in zip(series, (rec.step, rec.time, rec.epot, rec.ekin, rec.etot, rec.temperature)):
                series[k].append(v)
            if cfg.keep_frames:
                frames.append(rec.atoms)
            if writer:
                writer.write(rec.atoms)

        start = time.perf_counter()
        try:
            status, reason, step, trip, bad = self._integrate(dyn, store)
        finally:
            if writer:
                writer.close()
        if trip:
            status, reason = "guard", str(trip)
        result = MDResult(frames, *(np.asarray(series[k], dtype=float if k != "steps" else int) for k in series),
                          n_atoms=len(atoms), steps_done=step if trip is None else max(trip.step - 1, 0), status=status,
                          reason=reason, trip=trip, bad_frame=bad,
                          trajectory=str(cfg.trajectory) if cfg.trajectory else None,
                          wall_time=time.perf_counter() - start, config=cfg, atoms=atoms)
        return self._conclude(result)

    def _integrate(self, dyn: Any, store: Callable[[MDRecord], None]
                   ) -> tuple[str, str | None, int, GuardTrip | None, Atoms | None]:
        """Step ``dyn``: records every interval, observers, guards, stop requests.

        Returns (status, reason, last step, guard trip, the bad frame) of the run.
        """
        cfg, atoms = self.config, self.atoms
        trip: GuardTrip | None = None
        bad: Atoms | None = None
        status, reason, step, started = "completed", None, 0, False
        gen = dyn.irun(cfg.steps)
        while True:
            try:
                next(gen)  # the first yield is the initial state (step 0)
            except StopIteration:
                break
            except Exception as exc:  # e.g. an SCF that fails on a distorted geometry ends this run only
                failed = step + 1 if started else 0
                kind = "nonfinite" if type(exc).__name__ == "NonFiniteEnergyError" else "calculator"
                trip = GuardTrip(kind, f"calculator failed: {type(exc).__name__}: {exc}"[:400],
                                 failed, failed * cfg.timestep)
                break
            step, started = dyn.nsteps, True
            observers = [fn for fn, k in self._observers if step % k == 0]
            record_now = step % cfg.interval == 0 or step == cfg.steps or self._stop.is_set()
            if not (record_now or observers or step % cfg.guards.every == 0):
                continue
            epot, forces = atoms.get_potential_energy(), atoms.get_forces()
            ekin, temp = atoms.get_kinetic_energy(), atoms.get_temperature()
            trip = check_state(atoms, epot, forces, temp, step, step * cfg.timestep, cfg.guards, cfg.temperature)
            if trip:
                bad = snapshot(atoms, epot, forces, step, cfg.timestep, ekin, temp)
                break
            if not (record_now or observers):
                continue
            rec = MDRecord(step, step * cfg.timestep, float(epot), float(ekin), float(epot + ekin), float(temp),
                           snapshot(atoms, epot, forces, step, cfg.timestep, ekin, temp))
            if record_now:
                store(rec)
            for fn in observers:
                fn(rec)
            if self._stop.is_set():
                if not record_now:  # asked for during an observer: the trajectory ends where the run did
                    store(rec)
                if step < cfg.steps:
                    status, reason = "stopped", f"{self._stop_reason} (at step {step})"
                break
        return status, reason, step, trip, bad

    def _conclude(self, result: MDResult) -> MDResult:
        """Raise or print the guard's trip as ``on_guard`` asks; the result otherwise."""
        trip, cfg = result.trip, self.config
        if trip and cfg.on_guard == "raise":
            raise MDGuardError(trip, result)
        if trip and cfg.on_guard == "warn":
            print(f"lam_lab MD stopped by a guard at {trip}; {len(result.steps)} frames kept"
                  + (f" in {cfg.trajectory}" if cfg.trajectory else ""), file=sys.stderr)
        return result


def calculator_factory(spec: Any, head: str | None = None,
                       device: str | None = None) -> Callable[[Atoms], Calculator]:
    """A function making a calculator per Atoms from "xtb", "emt", a lam_lab Potential, a model file,
    an existing factory (returned as is) or an ASE calculator (shared by every call)."""
    if isinstance(spec, Calculator):
        return lambda atoms: spec
    if isinstance(spec, str) and spec.lower() in ("xtb", "gfn2", "gfn2-xtb"):
        from lam_lab.sampling.neb import xtb_calculator

        return xtb_calculator
    if isinstance(spec, str) and spec.lower() == "emt":
        from ase.calculators.emt import EMT

        return lambda atoms: EMT()
    from lam_lab.committee import Committee
    from lam_lab.md.calculator import LAMCalculator
    from lam_lab.potential import Potential

    if isinstance(spec, (str, os.PathLike)):
        if not Path(spec).is_file():
            raise FileNotFoundError(f"{spec!r} is neither 'xtb', 'emt' nor an existing model file")
        from lam_lab.models import load

        spec = load(spec)
    if isinstance(spec, (Potential, Committee)):  # before callable(): a model is an nn.Module
        model = spec
        return lambda atoms: LAMCalculator(model, head=head, device=device)
    if callable(spec):
        return spec
    raise TypeError(f"cannot make a calculator from {type(spec).__name__}; give an ASE calculator, a Potential, "
                    f"a model file, 'xtb' or 'emt'")


def run_md(atoms: Atoms, calculator: Any = None, config: MDConfig | None = None,
           observers: Sequence[Observer] = (), **overrides: Any) -> MDResult:
    """Run MD on a copy of ``atoms`` (see :class:`MDRunner`); keyword overrides set MDConfig fields."""
    return MDRunner(atoms, calculator, config, observers, **overrides).run()


__all__ = ["MDConfig", "MDRecord", "MDResult", "MDRunner", "Observer", "ENSEMBLES", "make_dynamics",
           "initialize_velocities", "calculator_factory", "run_md"]
