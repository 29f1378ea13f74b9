"""Reactive MD from a transition state: CI-NEB TS, K two-way trajectories, ends classified by bond graph.

Each trajectory starts at the TS with Maxwell–Boltzmann momenta p and runs twice, with p and with −p
(the time-reversed half). Joined, the halves make one path through the TS; each end is called
"reactant", "product" or "other" by comparing its bond graph (:mod:`lam_lab.md.analysis`, with
hysteresis along the half) with the reactant and product graphs. Units: K, fs, eV, Å.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

import numpy as np
from ase import Atoms, units

from lam_lab.data.errors import DataError
from lam_lab.md.analysis import BondAnalysis, BondCriteria, analyze_bonds
from lam_lab.md.guards import GuardConfig
from lam_lab.md.runner import MDConfig, MDResult, MDRunner, calculator_factory, initialize_velocities

Graph = frozenset  # frozenset[tuple[int, int]] of bonded pairs i < j
EndLabel = Literal["reactant", "product", "other"]


@dataclass
class TransitionState:
    """A TS with the reactant and product it connects (same atom order); energies in eV."""

    name: str
    ts: Atoms
    reactant: Atoms
    product: Atoms
    method: str = "unknown"  # e.g. "ci-neb/xtb"
    barrier: float | None = None
    converged: bool | None = None

    def save(self, path: str | Path) -> Path:
        """Write reactant, TS, product as three extxyz frames (``info['role']`` tells them apart)."""
        from ase.io import write

        frames = []
        for role, atoms in (("reactant", self.reactant), ("ts", self.ts), ("product", self.product)):
            a = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
            a.info.update({"role": role, "reaction": self.name, "method": self.method,
                           "charge": int(atoms.info.get("charge", 0))})
            if role == "ts" and self.barrier is not None:
                a.info["barrier_eV"] = float(self.barrier)
            frames.append(a)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path, frames, format="extxyz")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "TransitionState":
        """Read a file written by :meth:`save` (any ASE-readable file with frames of roles reactant/ts/product)."""
        from ase.io import read

        frames = read(str(path), ":")
        roles = {str(f.info.get("role")): f for f in frames}
        missing = [r for r in ("reactant", "ts", "product") if r not in roles]
        if missing:
            raise DataError(f"needs frames with info role reactant, ts and product; missing {missing}",
                            source=str(path), field="role")
        ts = roles["ts"]
        return cls(str(ts.info.get("reaction", Path(path).stem)), ts, roles["reactant"], roles["product"],
                   str(ts.info.get("method", "file")), ts.info.get("barrier_eV"), None)


TS_LEVELS = ("dft_lowest", "dft", "xtb")  # shipped TS searches, in the order "best" takes them


def builtin_ts(reaction: str, level: str = "best") -> TransitionState:
    """The verified TS of a built-in reaction with its minima, shipped in ``transition-states.json`` (no search run).

    level: "dft" (ωB97X/6-31G(d) saddle: analytic Hessian with one imaginary mode, the same motion as the
    GFN2-xTB mode whose IRC reaches both minima, or, where GFN2-xTB has no such saddle (Claisen), its own IRC
    at the DFT level; closed-shell), "dft_lowest" (the same, searched on the functional's lowest surface where the
    closed-shell saddle is RKS-unstable: broken-symmetry UKS), "xtb" (GFN2-xTB saddle, one imaginary mode, IRC
    verified) or "best" (the first verified of dft_lowest, dft, xtb). Unverified searches are never returned.
    """
    import json

    from lam_lab.datasets import FILES
    from lam_lab.sampling.ts import atoms_from_dict

    path = FILES / "transition-states.json"
    doc = json.loads(path.read_text()) if path.is_file() else {}
    levels = TS_LEVELS if level == "best" else (level,)
    if level not in ("best", *TS_LEVELS):
        raise ValueError(f"level must be 'best', 'dft_lowest', 'dft' or 'xtb', got {level!r}")
    entry = doc.get(reaction, {})
    for lev in levels:
        res = entry.get(lev, {})
        if res.get("status") == "verified":
            ts, r, p = (atoms_from_dict(res[k]) for k in ("ts", "reactant", "product"))
            for a in (ts, r, p):
                a.info["charge"] = int(a.info.get("charge", 0))
            method = {"dft_lowest": "verified saddle, wb97x/6-31g* lowest solution (broken-symmetry UKS)",
                      "dft": "verified saddle, wb97x/6-31g*", "xtb": "verified saddle, gfn2-xtb"}[lev]
            return TransitionState(reaction, ts, r, p, method, float(res["barrier"]), True)
    known = verified_reactions(level)
    why = "; ".join(f"{lev}: {entry[lev].get('status')}" for lev in levels if lev in entry) or "no TS search"
    raise DataError(f"no verified {level} TS for reaction {reaction!r} ({why}); reactions with one: {known}",
                    source=str(path), field="reaction")


def verified_reactions(level: str = "best") -> list[str]:
    """Built-in reactions with a verified TS at ``level`` ("dft_lowest", "dft", "xtb" or "best": any)."""
    import json

    from lam_lab.datasets import FILES

    path = FILES / "transition-states.json"
    doc = json.loads(path.read_text()) if path.is_file() else {}
    levels = TS_LEVELS if level == "best" else (level,)
    return sorted(n for n, e in doc.items() if any(e.get(v, {}).get("status") == "verified" for v in levels))


def find_ts(reaction: Any, calculator: Any = "xtb", config: Any = None, seed: int = 0) -> TransitionState:
    """A verified TS of a built-in reaction name or ``Reaction`` on ``calculator`` (:func:`lam_lab.sampling.find_ts`).

    Raises a DataError naming the failed check when the saddle does not verify (one imaginary mode,
    IRC to both minima): an unverified structure is never used as a TS.
    """
    from lam_lab.datasets.reactions import get_reaction
    from lam_lab.sampling.molecules import mapped_pair
    from lam_lab.sampling.ts import find_ts as search

    rxn = get_reaction(reaction) if isinstance(reaction, str) else reaction
    ends = mapped_pair(rxn.reactant, rxn.product, rxn.name, seed=seed)
    res = search(ends.reactant, ends.product, calculator_factory(calculator), config)
    label = calculator if isinstance(calculator, str) else type(calculator).__name__
    if not res.verified:
        raise DataError(f"the {label} TS search for {rxn.name!r} did not verify: {res.status} "
                        f"(imaginary modes {[round(f) for f in res.imaginary_frequencies]} cm-1)", field="reaction")
    return TransitionState(rxn.name, res.ts, res.reactant, res.product, f"verified saddle, {label}", res.barrier, True)


# -- classification ---------------------------------------------------------------------------------
def bond_graph(atoms: Atoms, criteria: BondCriteria | None = None) -> Graph:
    """Bonded pairs (i < j) of one structure (midpoint of the on/off thresholds)."""
    return frozenset(analyze_bonds([atoms], criteria).bonds_at(0))


def classify_graph(graph: Iterable[tuple[int, int]], reactant: Iterable[tuple[int, int]],
                   product: Iterable[tuple[int, int]], only_reacting: bool = False) -> EndLabel:
    """"reactant"/"product" when ``graph`` equals that side's bond graph, else "other".

    With ``only_reacting`` just the pairs that differ between reactant and product are compared,
    so a spectator bond stretching elsewhere does not turn an end into "other".
    """
    g, r, p = ({tuple(sorted(map(int, b))) for b in x} for x in (graph, reactant, product))
    if r == p:
        raise ValueError("reactant and product have the same bond graph: the ends cannot be told apart")
    if only_reacting:
        keep = r ^ p
        g, r, p = g & keep, r & keep, p & keep
    if g == r:
        return "reactant"
    if g == p:
        return "product"
    return "other"


# -- runs -------------------------------------------------------------------------------------------
@dataclass
class ReactiveConfig:
    """K trajectories of 2 × ``steps`` steps from the TS at ``temperature`` K (NVE by default)."""

    n_trajectories: int = 10
    steps: int = 300  # per half
    timestep: float = 0.5  # fs
    temperature: float = 300.0  # K of the Maxwell–Boltzmann start
    interval: int = 5  # record every k steps
    ensemble: str = "nve"
    seed: int = 0
    criteria: BondCriteria = field(default_factory=BondCriteria)
    only_reacting: bool = False
    guards: GuardConfig = field(default_factory=GuardConfig)
    output_dir: str | None = None  # joined trajectories as traj_000.extxyz, ...

    def __post_init__(self) -> None:
        if self.n_trajectories < 1 or self.steps < 1:
            raise ValueError(f"need n_trajectories >= 1 and steps >= 1, got {self.n_trajectories}, {self.steps}")


@dataclass
class TrajectoryOutcome:
    """One two-way trajectory: the label of each end, its kind, and the joined path ordered reactant-side first."""

    index: int
    backward: EndLabel  # end reached with −p
    forward: EndLabel  # end reached with +p
    kind: Literal["reactive", "recrossing-reactant", "recrossing-product", "other"]
    frames: list[Atoms]  # joined path; info time_fs runs from −T to +T
    times: np.ndarray  # fs
    failure: str | None = None  # a guard or stop that cut a half short
    bonds: BondAnalysis | None = None  # bond graph and events along the joined path

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (no frames)."""
        return {"index": self.index, "backward": self.backward, "forward": self.forward, "kind": self.kind,
                "n_frames": len(self.frames), "failure": self.failure,
                "events": [e.to_dict() for e in self.bonds.events] if self.bonds else []}


@dataclass
class ReactiveResult:
    """Outcomes of K trajectories from one TS: fractions of ends and of reactive (reactant↔product) paths."""

    name: str
    ts: TransitionState
    outcomes: list[TrajectoryOutcome]
    config: ReactiveConfig
    reactant_graph: Graph
    product_graph: Graph
    energies: dict[str, float] = field(default_factory=dict)  # eV on the MD calculator: reactant, ts, product

    @property
    def fractions(self) -> dict[str, float]:
        """Share of the 2K ends that are reactant, product, other."""
        ends = [e for o in self.outcomes for e in (o.backward, o.forward)]
        return {k: ends.count(k) / max(len(ends), 1) for k in ("reactant", "product", "other")}

    @property
    def reactive_fraction(self) -> float:
        """Share of trajectories joining reactant and product."""
        return sum(o.kind == "reactive" for o in self.outcomes) / max(len(self.outcomes), 1)

    def summary(self) -> str:
        """A short readable report."""
        f = self.fractions
        return (f"{self.name}: {len(self.outcomes)} trajectories from the TS ({self.ts.method}); ends "
                f"reactant {f['reactant']:.0%}, product {f['product']:.0%}, other {f['other']:.0%}; "
                f"reactive (R↔P) {self.reactive_fraction:.0%}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {"name": self.name, "ts_method": self.ts.method, "barrier_eV": self.ts.barrier,
                "energies_eV": self.energies,
                "fractions": self.fractions, "reactive_fraction": self.reactive_fraction,
                "outcomes": [o.to_dict() for o in self.outcomes],
                "config": {k: v for k, v in dataclasses.asdict(self.config).items()}}


def _kind(a: EndLabel, b: EndLabel) -> str:
    if {a, b} == {"reactant", "product"}:
        return "reactive"
    if a == b == "reactant":
        return "recrossing-reactant"
    if a == b == "product":
        return "recrossing-product"
    return "other"


class ReactiveMD:
    """K two-way trajectories from ``ts`` with ``calculator`` ("xtb", "emt", a Potential, a model file or a factory)."""

    def __init__(self, ts: TransitionState, calculator: Any = "xtb", config: ReactiveConfig | None = None,
                 on_outcome: Callable[[TrajectoryOutcome], Any] | None = None):
        self.ts, self.config, self.on_outcome = ts, config or ReactiveConfig(), on_outcome
        self.factory = calculator_factory(calculator)
        self._stop = threading.Event()
        self._runner: MDRunner | None = None

    def request_stop(self) -> None:
        """End after the step in progress; finished trajectories are kept, the one in progress dropped (any thread)."""
        self._stop.set()
        if self._runner is not None:
            self._runner.request_stop("reactive run stopped")

    def _half(self, start: Atoms, momenta: np.ndarray, seed: int, guards: GuardConfig) -> MDResult:
        atoms = start.copy()
        atoms.set_momenta(momenta)
        c = self.config
        md = MDConfig(ensemble=c.ensemble, temperature=c.temperature, steps=c.steps, timestep=c.timestep,
                      interval=c.interval, keep_momenta=True, seed=seed, guards=guards, on_guard="stop")
        self._runner = MDRunner(atoms, self.factory(atoms), md)
        if self._stop.is_set():
            self._runner.request_stop("reactive run stopped")
        try:
            return self._runner.run()
        finally:
            self._runner = None

    def run(self) -> ReactiveResult:
        """Run the trajectories one after another and classify their ends."""
        c = self.config
        r_graph, p_graph = bond_graph(self.ts.reactant, c.criteria), bond_graph(self.ts.product, c.criteria)
        if r_graph == p_graph:
            raise ValueError(f"{self.ts.name}: reactant and product bond graphs are identical under the bond criteria")
        outcomes: list[TrajectoryOutcome] = []
        ts_atoms = self.ts.ts
        energies = self._energies()
        guards = self._guards(energies)
        for k in range(c.n_trajectories):
            if self._stop.is_set():
                break
            probe = ts_atoms.copy()
            initialize_velocities(probe, c.temperature, np.random.default_rng([c.seed, k]))
            p = probe.get_momenta()
            halves = [self._half(ts_atoms, -p, c.seed + 2 * k, guards),
                      self._half(ts_atoms, p, c.seed + 2 * k + 1, guards)]
            if self._stop.is_set() and not all(h.completed for h in halves):
                break  # a trajectory cut short on request is dropped, not counted as "other"
            labels, failures = [], []
            for name, h in zip(("backward", "forward"), halves):
                if h.completed:
                    along = analyze_bonds(h.frames, c.criteria)  # from the TS, so hysteresis carries the history
                    labels.append(classify_graph(along.bonds_at(along.n_frames - 1), r_graph, p_graph, c.only_reacting))
                else:  # cut short by a guard or a stop: it never reached an end state
                    failures.append(f"{name}: {h.reason}")
                    labels.append("other")
            outcome = self._join(k, halves, labels, "; ".join(failures) or None)
            outcomes.append(outcome)
            if c.output_dir and outcome.frames:
                from ase.io import write

                Path(c.output_dir).mkdir(parents=True, exist_ok=True)
                write(Path(c.output_dir) / f"traj_{k:03d}.extxyz", outcome.frames, format="extxyz")
            if self.on_outcome:
                self.on_outcome(outcome)
        return ReactiveResult(self.ts.name, self.ts, outcomes, c, r_graph, p_graph, energies)

    def _energies(self) -> dict[str, float]:
        """Reactant, TS and product energies (eV) on the MD calculator."""
        out = {}
        for role, atoms in (("reactant", self.ts.reactant), ("ts", self.ts.ts), ("product", self.ts.product)):
            a = atoms.copy()
            a.calc = self.factory(a)
            out[role] = float(a.get_potential_energy())
        return out

    def _guards(self, energies: dict[str, float]) -> GuardConfig:
        """The configured guards; an unset temperature bound also allows for the heat the descent releases.

        Falling from the TS into the lower well turns ΔE into kinetic energy: 3 eV over HCN's 3 atoms is
        ~7700 K, a real outcome, not an explosion.
        """
        g = self.config.guards
        if g.max_temperature is not None:
            return g
        release = max(energies["ts"] - min(energies["reactant"], energies["product"]), 0.0)
        if not np.isfinite(release):
            return g
        t_release = 2.0 * release / (3.0 * len(self.ts.ts) * units.kB)
        return dataclasses.replace(g, max_temperature=g.temperature_bound(self.config.temperature) + 2.0 * t_release)

    def _join(self, k: int, halves: list[MDResult], labels: list[EndLabel], failure: str | None) -> TrajectoryOutcome:
        """Backward half reversed, then the forward half (TS once), flipped to start on the reactant side."""
        back, fwd = halves
        frames: list[Atoms] = []
        for sign, part in ((-1.0, back.frames[::-1]), (1.0, fwd.frames[1:])):
            for f in part:
                g = f.copy()
                g.calc = f.calc
                g.info.update({"time_fs": sign * f.info["time_fs"], "half": "backward" if sign < 0 else "forward"})
                g.set_momenta(sign * f.get_momenta())  # the backward half, replayed forward, moves the other way
                frames.append(g)
        if labels[1] == "reactant" and labels[0] != "reactant":  # read it reactant → product
            frames = frames[::-1]
            for g in frames:
                g.info["time_fs"] = -g.info["time_fs"]
                g.set_momenta(-g.get_momenta())
        times = np.array([g.info["time_fs"] for g in frames])
        bonds = analyze_bonds(frames, self.config.criteria, times=times) if frames else None
        return TrajectoryOutcome(k, labels[0], labels[1], _kind(*labels), frames, times, failure, bonds)


def run_reactive(ts: TransitionState | str, calculator: Any = "xtb", config: ReactiveConfig | None = None,
                 ts_calculator: Any = None, ts_config: Any = None, **overrides: Any) -> ReactiveResult:
    """Reactive MD from ``ts``: a :class:`TransitionState`, or a reaction name (its shipped verified saddle, or
    one searched and verified on ``ts_calculator`` with ``ts_config``). Keyword overrides set ReactiveConfig fields."""
    cfg = config or ReactiveConfig()
    if overrides:
        cfg = dataclasses.replace(cfg, **overrides)
    if isinstance(ts, str):
        ts = builtin_ts(ts) if ts_calculator is None else find_ts(ts, ts_calculator, ts_config, seed=cfg.seed)
    return ReactiveMD(ts, calculator, cfg).run()


__all__ = ["TransitionState", "builtin_ts", "verified_reactions", "find_ts", "bond_graph", "classify_graph",
           "ReactiveConfig", "TrajectoryOutcome",
           "ReactiveResult", "ReactiveMD", "run_reactive"]
