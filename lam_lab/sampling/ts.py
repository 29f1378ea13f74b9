"""Verified transition states: CI-NEB → Sella saddle refinement → one imaginary mode → IRC to both minima.

A structure is tagged a TS only when every check passed (``TSResult.status == "verified"``): the
saddle optimizer converged, the projected finite-difference Hessian has exactly one imaginary
frequency, and the two ends of Sella's IRC relax to minima with the reactant's and the product's
bond graphs. Works with any ASE calculator factory (GFN2-xTB, a lam_lab model, DFT). Units: eV, Å,
cm⁻¹; IRC arc length in Å·amu^½ (negative on the reverse side).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from lam_lab.sampling.neb import CalcFactory, NEBConfig, relax, run_neb, xtb_calculator
from lam_lab.sampling.vibrations import Harmonic, fd_hessian, harmonic

HessianFunction = Callable[[Atoms], np.ndarray]


@dataclass
class TSConfig:
    """Settings of :func:`find_ts`: saddle and IRC convergence (eV/Å), FD step (Å), mode cutoff (cm⁻¹)."""

    neb: NEBConfig = field(default_factory=lambda: NEBConfig(n_images=9, fmax=0.05, steps=400))
    fmax: float = 0.005  # saddle convergence
    steps: int = 300
    internal: bool = True  # Sella in redundant internal coordinates
    exact_hessian: bool = True  # give Sella the finite-difference Hessian at the start
    vib_delta: float = 0.005
    # below this magnitude an imaginary frequency is numerical noise of the FD Hessian, not a mode
    imag_cutoff: float = 50.0
    irc_dx: float = 0.08
    irc_fmax: float = 0.05
    irc_steps: int = 250
    minimum_fmax: float = 0.02  # relaxation of the IRC ends
    minimum_steps: int = 500


@dataclass
class TSResult:
    """Outcome of a TS search; ``ts`` is a saddle only when ``status == "verified"``."""

    ts: Atoms
    reactant: Atoms  # relaxed, with energy
    product: Atoms
    barrier: float  # eV, E(TS) − E(reactant)
    reaction_energy: float  # eV, E(product) − E(reactant)
    imaginary_frequencies: list[float]  # cm⁻¹, negative numbers
    frequencies: np.ndarray  # all internal modes, cm⁻¹, imaginary negative
    modes: np.ndarray  # [k, n, 3] unit Cartesian normal modes (same order as frequencies)
    irc: list[Atoms]  # reverse end → TS → forward end; info: irc_arc (Å·amu^½), irc_direction, energy
    irc_connects: bool
    status: str  # "verified" or the first failed check
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        """Whether every check passed."""
        return self.status == "verified"

    @property
    def ts_mode(self) -> np.ndarray:
        """The imaginary (reaction-coordinate) mode, unit Cartesian [n, 3]."""
        return self.modes[0]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (structures as numbers/positions/energy; arrays as lists)."""
        return {"ts": atoms_to_dict(self.ts), "reactant": atoms_to_dict(self.reactant),
                "product": atoms_to_dict(self.product),
                "barrier": self.barrier, "reaction_energy": self.reaction_energy,
                "imaginary_frequencies": list(self.imaginary_frequencies), "frequencies": self.frequencies.tolist(),
                "modes": self.modes.tolist(), "irc": [atoms_to_dict(a) for a in self.irc],
                "irc_connects": self.irc_connects, "status": self.status, "provenance": self.provenance}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TSResult":
        """Inverse of :meth:`to_dict`."""
        return cls(atoms_from_dict(d["ts"]), atoms_from_dict(d["reactant"]), atoms_from_dict(d["product"]),
                   float(d["barrier"]),
                   float(d["reaction_energy"]), list(d["imaginary_frequencies"]), np.asarray(d["frequencies"]),
                   np.asarray(d["modes"]), [atoms_from_dict(a) for a in d["irc"]], bool(d["irc_connects"]),
                   str(d["status"]), dict(d["provenance"]))


def atoms_to_dict(atoms: Atoms) -> dict[str, Any]:
    """numbers, positions (Å), energy (eV) and forces (eV/Å) when known, JSON-safe info."""
    out: dict[str, Any] = {"numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist(),
                           "info": {k: v for k, v in atoms.info.items() if isinstance(v, (int, float, str, bool))}}
    if atoms.calc is not None:
        out["energy"] = float(atoms.get_potential_energy())
        out["forces"] = atoms.get_forces().tolist()
    return out


def atoms_from_dict(d: dict[str, Any]) -> Atoms:
    """Atoms (with a single-point calculator when the dict holds an energy) from :func:`atoms_to_dict`."""
    atoms = Atoms(numbers=d["numbers"], positions=d["positions"])
    atoms.info.update(d.get("info", {}))
    if "energy" in d:
        atoms.calc = SinglePointCalculator(atoms, energy=d["energy"], forces=np.asarray(d["forces"]))
    return atoms


def _energy(atoms: Atoms) -> float:
    """Stored or computed potential energy (eV)."""
    return float(atoms.get_potential_energy())


def snapshot(atoms: Atoms, **info: Any) -> Atoms:
    """Copy with the current energy/forces as a single point and ``info`` added."""
    out = atoms.copy()
    out.calc = SinglePointCalculator(out, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
    out.info.update(info)
    return out


def _graph(atoms: Atoms) -> frozenset:
    """Bond graph (pairs i < j) by the reactive-MD criteria, so a TS's ends are judged like MD ends."""
    from lam_lab.md.reactive import bond_graph

    return bond_graph(atoms)


def saddle(guess: Atoms, calc_factory: CalcFactory, config: TSConfig,
           hessian_function: HessianFunction | None = None) -> tuple[Atoms, bool, int]:
    """Sella first-order saddle search from ``guess``: (structure with energy, converged, steps)."""
    from sella import Sella

    work = guess.copy()
    work.calc = calc_factory(work)
    if hessian_function is None and config.exact_hessian:
        def hessian_function(a: Atoms) -> np.ndarray:
            return fd_hessian(a, calc_factory, config.vib_delta)
    opt = Sella(work, order=1, internal=config.internal, logfile=None, trajectory=None,
                hessian_function=hessian_function)
    converged = bool(opt.run(fmax=config.fmax, steps=config.steps))
    return snapshot(work), converged, int(opt.nsteps)


def run_irc(ts: Atoms, calc_factory: CalcFactory, config: TSConfig,
            hessian: np.ndarray) -> tuple[list[Atoms], str | None]:
    """Sella IRC both ways from ``ts``: frames ordered reverse end → TS → forward end, and an error or None."""
    from sella import IRC

    sides: dict[str, list[Atoms]] = {}
    error = None
    work = ts.copy()
    work.calc = calc_factory(work)
    irc = IRC(work, logfile=None, trajectory=None, dx=config.irc_dx, eta=1e-4, gamma=0.0,
              hessian_function=lambda a: hessian)
    for direction in ("forward", "reverse"):
        frames: list[Atoms] = []
        irc.attach(lambda frames=frames, direction=direction: frames.append(snapshot(work, irc_direction=direction)),
                   interval=1)
        try:
            irc.run(fmax=config.irc_fmax, steps=config.irc_steps, direction=direction)
        except Exception as exc:  # Sella's inner-loop failures: the side ends where it got to
            error = f"IRC {direction}: {type(exc).__name__}: {exc}"[:300]
        irc.observers.clear()
        sides[direction] = frames
    centre = snapshot(ts, irc_direction="ts")
    path = list(reversed(sides["reverse"])) + [centre] + sides["forward"]
    _arc_lengths(path, len(sides["reverse"]))
    return path, error


def _with_calc(atoms: Atoms, calc_factory: CalcFactory) -> Atoms:
    """Copy of ``atoms`` with a live calculator."""
    out = atoms.copy()
    out.calc = calc_factory(out)
    return out


def _arc_lengths(path: list[Atoms], i_ts: int) -> None:
    """Write the mass-weighted arc length from the TS (Å·amu^½, negative before it) into each frame."""
    sqrt_m = np.sqrt(path[i_ts].get_masses())[:, None]
    steps = [0.0] + [float(np.linalg.norm((b.positions - a.positions) * sqrt_m)) for a, b in zip(path, path[1:])]
    s = np.cumsum(steps)
    for a, value in zip(path, s - s[i_ts]):
        a.info["irc_arc"] = float(value)
        a.info["energy"] = _energy(a)


def _ends_connect(path: list[Atoms], reactant: Atoms, product: Atoms, calc_factory: CalcFactory,
                  config: TSConfig) -> tuple[bool, dict[str, Any]]:
    """Relax both IRC ends; True when their bond graphs are the reactant's and the product's."""
    want = {"reactant": _graph(reactant), "product": _graph(product)}
    got = []
    for end in (path[0], path[-1]):
        m = relax(end, calc_factory, config.minimum_fmax, config.minimum_steps, by_fragment=False)
        g = _graph(m)
        got.append(next((k for k, v in want.items() if v == g), "other"))
    return sorted(got) == ["product", "reactant"], {"irc_ends": got}


def verify_ts(ts: Atoms, reactant: Atoms, product: Atoms, calc_factory: CalcFactory = xtb_calculator,
              config: TSConfig | None = None, converged: bool = True, irc: bool = True,
              provenance: dict[str, Any] | None = None, hessian: HessianFunction | None = None) -> TSResult:
    """Checks a candidate ``ts`` (mode count, IRC) against relaxed ``reactant``/``product`` with energies.

    ``hessian`` (eV/Å², e.g. an analytic DFT Hessian) replaces the finite-difference one.
    """
    cfg = config or TSConfig()
    prov = dict(provenance or {})
    ts = snapshot(_with_calc(ts, calc_factory)) if ts.calc is None else ts
    h = hessian(ts) if hessian is not None else fd_hessian(ts, calc_factory, cfg.vib_delta)
    modes = harmonic(ts, h)
    imag = modes.imaginary(cfg.imag_cutoff)
    prov.update({"imag_cutoff_cm1": cfg.imag_cutoff, "vib_delta_A": cfg.vib_delta})
    path: list[Atoms] = []
    connects = False
    if not converged:
        status = "saddle_not_converged"
    elif len(imag) != 1:
        status = f"imaginary_modes_{len(imag)}"
    else:
        status = "verified"
    if status == "verified" and irc:
        path, error = run_irc(ts, calc_factory, cfg, h)
        connects, ends = _ends_connect(path, reactant, product, calc_factory, cfg)
        prov.update(ends)
        if error:
            prov["irc_error"] = error
        status = "verified" if connects else "irc_does_not_connect"
    e_r = _energy(reactant)
    return TSResult(ts, reactant, product, _energy(ts) - e_r, _energy(product) - e_r, imag, modes.frequencies,
                    modes.modes, path, connects, status, prov)


def _guesses(energies: np.ndarray, limit: int) -> list[int]:
    """Band images to start Sella from: the climbing image, other local maxima, then the climber's neighbours."""
    top = int(np.argmax(energies[1:-1])) + 1
    maxima = [i for i in range(1, len(energies) - 1)
              if energies[i] >= energies[i - 1] and energies[i] >= energies[i + 1]]
    order = [top] + sorted((i for i in maxima if i != top), key=lambda i: -energies[i])
    order += [i for i in (top - 1, top + 1) if 0 < i < len(energies) - 1]
    return list(dict.fromkeys(order))[:limit]


def find_ts(reactant: Atoms, product: Atoms, calc_factory: CalcFactory = xtb_calculator,
            config: TSConfig | None = None, max_guesses: int = 4) -> TSResult:
    """IDPP CI-NEB → Sella saddle → vibrational check → IRC; ``reactant``/``product`` in the same atom order.

    Sella starts from the climbing image; when that saddle fails a check (a conformer's rotation,
    a saddle of another step) it starts again from the band's other maxima and the climber's
    neighbours, up to ``max_guesses`` starts. The first verified saddle is returned, else the first attempt.
    """
    from importlib.metadata import version

    import ase

    cfg = config or TSConfig()
    t0 = time.perf_counter()
    band = run_neb(reactant, product, calc_factory, cfg.neb)
    attempts: list[TSResult] = []
    for i in _guesses(band.energies, max_guesses):
        ts, converged, steps = saddle(band.images[i], calc_factory, cfg)
        prov = {"method": "idpp ci-neb -> sella saddle -> ase vibrations -> sella irc",
                "neb_barrier_eV": band.barrier, "neb_converged": bool(band.converged), "neb_steps": band.steps,
                "start_image": i, "saddle_steps": steps, "saddle_fmax_eV_A": cfg.fmax,
                "sella": version("sella"), "ase": ase.__version__}
        attempts.append(verify_ts(ts, band.images[0], band.images[-1], calc_factory, cfg, converged, provenance=prov))
        if attempts[-1].verified:
            break
    res = next((a for a in attempts if a.verified), attempts[0])
    res.provenance["attempts"] = [{"start_image": a.provenance["start_image"], "status": a.status,
                                   "barrier_eV": round(a.barrier, 4)} for a in attempts]
    res.provenance["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def refine_ts(guess: Atoms, reactant: Atoms, product: Atoms, calc_factory: CalcFactory,
              config: TSConfig | None = None, hessian_function: HessianFunction | None = None,
              irc: bool = True, hessian: HessianFunction | None = None) -> TSResult:
    """Sella from a TS guess, then the same checks as :func:`find_ts`.

    ``hessian_function`` starts Sella (e.g. a cheaper method's Hessian); ``hessian`` is the one the mode
    count is judged on (default: finite differences of ``calc_factory``'s forces).
    """
    cfg = config or TSConfig()
    t0 = time.perf_counter()
    ts, converged, steps = saddle(guess, calc_factory, cfg, hessian_function)
    res = verify_ts(ts, reactant, product, calc_factory, cfg, converged, irc=irc, hessian=hessian,
                    provenance={"saddle_steps": steps, "saddle_fmax_eV_A": cfg.fmax})
    res.provenance["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def mode_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """|cos| between two Cartesian displacement patterns [n, 3] (1: the same motion)."""
    a, b = np.ravel(a), np.ravel(b)
    return float(abs(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)))


__all__ = ["TSConfig", "TSResult", "find_ts", "refine_ts", "verify_ts", "saddle", "run_irc", "mode_overlap",
           "Harmonic"]
