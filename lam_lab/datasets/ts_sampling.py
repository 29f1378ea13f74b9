"""Frames around a verified transition state (seed 000 style), each stage cached in the build area.

Per reaction: the GFN2-xTB TS (:func:`lam_lab.sampling.find_ts`, verified: one imaginary mode, IRC
to both minima), its IRC, thermal normal-mode displacements of the TS (the reaction coordinate
sampled uniformly across the dividing surface), short MD launched from the TS at 300–1000 K, and
near-minimum frames (normal modes and 300/600 K MD at the reactant and the product). The DFT-level TS
(ωB97X/6-31G(d) Sella from the xTB TS, xTB Hessian as the start, analytic DFT Hessian for the mode
count) is a separate cached stage. Units: eV, Å, K.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms

from lam_lab.data.frame import Frame
from lam_lab.datasets._stages import BuildContext, json_stage, stage
from lam_lab.datasets.reactions import Reaction
from lam_lab.sampling.ts import TSConfig, TSResult

TS_CONFIG = TSConfig()
DFT_TS_CONFIG = TSConfig(fmax=0.01, steps=150)


@dataclass
class TSSampling:
    """How many frames of each kind a reaction's pool gets (temperatures K, MD steps of 0.5 fs)."""

    ts_mode_temperatures: tuple[float, ...] = (300.0, 600.0, 1000.0)
    ts_mode_samples: int = 16  # per temperature
    min_mode_temperatures: tuple[float, ...] = (300.0, 600.0)
    min_mode_samples: int = 8  # per temperature and minimum
    max_amplitude: float = 1.0  # Å·amu^½ per mode: soft intermolecular modes would otherwise fly apart
    ts_md_temperatures: tuple[float, ...] = (300.0, 600.0, 1000.0)
    ts_md_runs: int = 2
    ts_md_steps: int = 120
    ts_md_interval: int = 4
    min_md_temperatures: tuple[float, ...] = (300.0, 600.0)
    min_md_steps: int = 200
    min_md_interval: int = 10
    seed: int = 0


class TSSearchFailed(RuntimeError):
    """A TS search that raised (e.g. xTB's SCF failed on a path image); the message is cached."""


def xtb_ts_cached(ctx: BuildContext, reaction: Reaction) -> TSResult | None:
    """The cached xTB TS of ``reaction`` or None when its search has not run (nothing is computed)."""
    return xtb_ts(ctx, reaction, cached_only=True)


def dft_ts_cached(ctx: BuildContext, reaction: Reaction, low: TSResult) -> TSResult | None:
    """The cached DFT TS refined from ``low``, or None when that stage has not run."""
    return dft_ts(ctx, reaction, low, cached_only=True)


def xtb_ts(ctx: BuildContext, reaction: Reaction, cached_only: bool = False) -> TSResult | None:
    """The reaction's GFN2-xTB TS search (cached; ``status`` says whether it verified; TSSearchFailed if it raised)."""
    from lam_lab.sampling.molecules import mapped_pair
    from lam_lab.sampling.ts import find_ts

    def make() -> dict:
        ends = mapped_pair(reaction.reactant, reaction.product, reaction.name, seed=ctx.seed)
        try:
            res = find_ts(ends.reactant, ends.product, config=TS_CONFIG)
        except Exception as exc:  # noqa: BLE001 - any code failure of one reaction is recorded, not fatal
            ctx.say(f"xTB TS {reaction.name}: search failed: {type(exc).__name__}: {exc}")
            return {"error": f"{type(exc).__name__}: {exc}"[:500]}
        ctx.say(f"xTB TS {reaction.name}: {res.status}, barrier {res.barrier:.3f} eV, "
                f"ν‡ {res.imaginary_frequencies} cm-1, {res.provenance.get('seconds')} s")
        return res.to_dict()

    params = {"reaction": asdict(reaction), "config": repr(TS_CONFIG), "seed": ctx.seed}
    doc = json_stage(ctx, f"ts-xtb-{reaction.name}", params, None if cached_only else make)
    if doc is None:
        return None
    if "error" in doc:
        raise TSSearchFailed(doc["error"])
    return TSResult.from_dict(doc)


def dft_ts(ctx: BuildContext, reaction: Reaction, low: TSResult, threads: int | None = None,
           cached_only: bool = False, lowest_solution: bool = False) -> TSResult | None:
    """ωB97X/6-31G(d) TS and minima refined from the verified xTB ones (cached; hours on 2 cores in all).
    ``lowest_solution``: on the functional's lowest surface (broken-symmetry UKS where RKS is unstable), for a
    reaction whose restricted saddle is biradical, a stage of its own: refined from the xTB saddle as the restricted
    search is and, where that does not verify, from the verified restricted saddle and minima (their analytic
    Hessian as the start); the mode is checked against xTB's either way, whose IRC gives the connectivity."""
    from lam_lab.labelers import get_labeler
    from lam_lab.labelers.dft import DFTCalculator
    from lam_lab.sampling.neb import xtb_calculator
    from lam_lab.sampling.ts_refine import refine_at_level
    from lam_lab.sampling.vibrations import fd_hessian

    lab = get_labeler("dft", threads=threads, lowest_solution=lowest_solution)

    def calc(a: Atoms) -> DFTCalculator:
        return DFTCalculator(lab, charge=int(a.info.get("charge", 0)))

    def hessian(a: Atoms) -> np.ndarray:
        return lab.hessian(_frame(a, {"charge": int(a.info.get("charge", 0))}))

    params = {"reaction": reaction.name, "low": low.ts.positions.round(5).tolist(), "dft": lab.cache_identity(),
              "config": repr(DFT_TS_CONFIG)}

    def part(tag: str, make_part: Callable[[], dict]) -> dict:  # each DFT step its own stage: a stopped search
        return json_stage(ctx, f"ts-dft-{reaction.name}-{tag}", params, make_part)  # resumes after the last one

    def from_restricted(first: TSResult) -> TSResult:
        """The lowest-surface search again from the restricted saddle, where the one from xTB's did not verify."""
        restricted = dft_ts(ctx, reaction, low, threads, cached_only=True)
        if first.verified or restricted is None or not restricted.verified:
            return first
        rks = get_labeler("dft", threads=threads)
        res = refine_at_level(restricted, calc, hessian,
                              lambda a: rks.hessian(_frame(a, {"charge": int(a.info.get("charge", 0))})),
                              DFT_TS_CONFIG, reference_mode=low.ts_mode,
                              checkpoint=lambda tag, make_part: part(f"from-restricted-{tag}", make_part))
        res.provenance.update({"guess_hessian": "restricted ωB97X analytic", "start": "restricted ωB97X saddle",
                               "from_xtb_saddle": f"{first.status}, barrier {first.barrier:.3f} eV"})
        if res.verified:
            return res
        first.provenance["from_restricted_saddle"] = f"{res.status}, barrier {res.barrier:.3f} eV"
        return first

    def make() -> dict:
        res = refine_at_level(low, calc, hessian, lambda a: fd_hessian(a, xtb_calculator), DFT_TS_CONFIG,
                              checkpoint=part)
        res.provenance.update({"guess_hessian": "GFN2-xTB finite differences", "start": "GFN2-xTB saddle"})
        if lowest_solution:
            res = from_restricted(res)
        res.provenance.update({"level": lab.name + (" lowest solution" if lowest_solution else ""),
                               "hessian": "analytic (PySCF CPKS)", "connectivity": "GFN2-xTB IRC"})
        ctx.say(f"DFT TS {reaction.name}: {res.status}, barrier {res.barrier:.3f} eV, "
                f"ν‡ {[round(f) for f in res.imaginary_frequencies]} cm-1, {res.provenance['seconds']} s")
        return res.to_dict()

    doc = json_stage(ctx, f"ts-dft-{reaction.name}", params, None if cached_only else make)
    return None if doc is None else TSResult.from_dict(doc)


# Reactions whose GFN2-xTB surface has no concerted saddle (Claisen: xTB forms the C–C bond before the C–O
# bond breaks and its band maximum relaxes to a torsional saddle): the TS is searched at the DFT level from
# a guess relaxed with GFN2-xTB at typical TS distances (Å; atom indices in the mapped reactant).
DFT_FIRST: dict[str, dict[tuple[int, int], float]] = {"claisen": {(0, 5): 2.25, (2, 3): 1.95}}
DFT_FIRST_CONFIG = TSConfig(fmax=0.01, steps=150, exact_hessian=False, irc_fmax=0.1, irc_steps=60,
                            minimum_fmax=0.05, minimum_steps=100)


def constrained_guess(reactant: Atoms, product: Atoms, distances: dict[tuple[int, int], float]) -> Atoms:
    """Midpoint of the aligned ends relaxed with GFN2-xTB while the given pair distances (Å) are held."""
    from ase.constraints import FixBondLengths
    from ase.optimize import BFGS

    from lam_lab.sampling.neb import xtb_calculator

    guess = reactant.copy()
    guess.positions = 0.5 * (reactant.positions + product.positions)
    for (i, j), d in distances.items():
        guess.set_distance(i, j, d, fix=0.5)
    guess.set_constraint(FixBondLengths(list(distances)))
    guess.calc = xtb_calculator(guess)
    BFGS(guess, logfile=None, maxstep=0.1).run(fmax=0.05, steps=300)
    guess.set_constraint()
    return guess


def dft_first_ts(ctx: BuildContext, reaction: Reaction, threads: int | None = None,
                 cached_only: bool = False) -> TSResult | None:
    """A ``DFT_FIRST`` reaction's ωB97X/6-31G(d) TS: Sella from the constrained guess, analytic Hessian, DFT IRC."""
    from lam_lab.labelers import get_labeler
    from lam_lab.labelers.dft import DFTCalculator
    from lam_lab.sampling.molecules import align, mapped_pair
    from lam_lab.sampling.neb import relax, xtb_calculator
    from lam_lab.sampling.ts import atoms_from_dict, atoms_to_dict, saddle, verify_ts
    from lam_lab.sampling.ts_refine import minimize
    from lam_lab.sampling.vibrations import fd_hessian

    lab = get_labeler("dft", threads=threads)

    def calc(a: Atoms) -> DFTCalculator:
        return DFTCalculator(lab, charge=int(a.info.get("charge", 0)))

    params = {"reaction": reaction.name, "distances": repr(DFT_FIRST[reaction.name]), "dft": lab.cache_identity(),
              "config": repr(DFT_FIRST_CONFIG), "seed": ctx.seed}

    def part(tag: str, make_part):  # each expensive DFT step is its own stage so a stopped build resumes there
        return json_stage(ctx, f"ts-dftfirst-{reaction.name}-{tag}", params, make_part)

    def make() -> dict:
        ends = mapped_pair(reaction.reactant, reaction.product, reaction.name, seed=ctx.seed)
        r_x = relax(ends.reactant, xtb_calculator)
        p_x = align(relax(ends.product, xtb_calculator), r_x)
        xtb_h = lambda a: fd_hessian(a, xtb_calculator)  # noqa: E731
        t0 = time.perf_counter()

        def minimum(a: Atoms) -> dict:
            return atoms_to_dict(minimize(a, calc, DFT_FIRST_CONFIG.minimum_fmax, DFT_FIRST_CONFIG.minimum_steps,
                                          xtb_h)[0])

        r = atoms_from_dict(part("reactant", lambda: minimum(r_x)))
        p = atoms_from_dict(part("product", lambda: minimum(p_x)))

        def saddle_doc() -> dict:
            ts, converged, steps = saddle(constrained_guess(r_x, p_x, DFT_FIRST[reaction.name]), calc,
                                          DFT_FIRST_CONFIG)
            return {"ts": atoms_to_dict(ts), "converged": converged, "steps": steps}

        found = part("saddle", saddle_doc)
        res = verify_ts(atoms_from_dict(found["ts"]), r, p, calc, DFT_FIRST_CONFIG, found["converged"],
                        provenance={"saddle_steps": found["steps"], "saddle_fmax_eV_A": DFT_FIRST_CONFIG.fmax},
                        hessian=lambda a: lab.hessian(_frame(a, {"charge": int(a.info.get("charge", 0))})))
        res.provenance["seconds"] = round(time.perf_counter() - t0, 1)
        res.provenance.update({"level": lab.name, "method": "constrained GFN2-xTB guess -> sella saddle at DFT -> "
                               "analytic DFT Hessian -> sella IRC at DFT", "guess_distances": {
                                   f"{i}-{j}": d for (i, j), d in DFT_FIRST[reaction.name].items()}})
        ctx.say(f"DFT-first TS {reaction.name}: {res.status}, barrier {res.barrier:.3f} eV, "
                f"ν‡ {[round(f) for f in res.imaginary_frequencies]} cm-1, {res.provenance['seconds']} s")
        return res.to_dict()

    doc = json_stage(ctx, f"ts-dftfirst-{reaction.name}", params, None if cached_only else make)
    return None if doc is None else TSResult.from_dict(doc)


def _frame(atoms: Atoms, info: dict) -> Frame:
    """A label-free molecular frame with ``info``."""
    return Frame(atoms.numbers, np.array(atoms.positions), None, [False] * 3, {}, dict(info))


def _minimum_modes(atoms: Atoms):
    """Harmonic analysis of a GFN2-xTB minimum."""
    from lam_lab.sampling.neb import xtb_calculator
    from lam_lab.sampling.vibrations import fd_hessian, harmonic

    return harmonic(atoms, fd_hessian(atoms, xtb_calculator))


def _md(start: Atoms, temps, runs: int, steps: int, interval: int, seed: int,
        friction: float) -> list[tuple[Atoms, float]]:
    """GFN2-xTB Langevin snapshots from ``start`` at each temperature (K), ``runs`` seeds each."""
    from lam_lab.sampling.md import MDConfig, run_md
    from lam_lab.sampling.neb import xtb_calculator

    out = []
    for t_i, temp in enumerate(temps):
        for k in range(runs):
            cfg = MDConfig(steps=steps, interval=interval, friction_per_fs=friction)
            run = run_md(start, xtb_calculator, temp, cfg, seed=seed + 100 * t_i + k)
            out += [(a, float(temp)) for a in run.frames]
    return out


def candidates(ctx: BuildContext, reaction: Reaction, ts: TSResult, cfg: TSSampling) -> list[Frame]:
    """The reaction's label-free candidate pool; ``info['xtb_rel_ts']`` is E_xTB − E_xTB(TS) in eV."""
    from lam_lab.sampling.neb import xtb_calculator
    from lam_lab.sampling.vibrations import Harmonic, normal_mode_samples

    def make() -> list[Frame]:
        base = {"reaction": reaction.name, "charge": int(ts.ts.info.get("charge", 0))}
        items: list[tuple[np.ndarray, dict]] = []
        for role, a in (("reactant", ts.reactant), ("xtb-ts", ts.ts), ("product", ts.product)):
            items.append((a.positions, {"role": role, "source": "xtb-stationary"}))
        items += [(a.positions, {"source": "irc", "irc_arc": a.info["irc_arc"]}) for a in ts.irc]
        h_ts = Harmonic(ts.frequencies, ts.modes, np.zeros(0), ts.ts.get_masses())
        for t_i, temp in enumerate(cfg.ts_mode_temperatures):
            for x in normal_mode_samples(ts.ts, h_ts, temp, cfg.ts_mode_samples, seed=cfg.seed + t_i,
                                         max_amplitude=cfg.max_amplitude):
                items.append((x, {"source": "ts-modes", "temperature": temp}))
        for m_i, (name, m) in enumerate((("reactant", ts.reactant), ("product", ts.product))):
            modes = _minimum_modes(m)
            for t_i, temp in enumerate(cfg.min_mode_temperatures):
                for x in normal_mode_samples(m, modes, temp, cfg.min_mode_samples, seed=cfg.seed + 10 * m_i + t_i,
                                             max_amplitude=cfg.max_amplitude):
                    items.append((x, {"source": "min-modes", "start": name, "temperature": temp}))
            for a, temp in _md(m, cfg.min_md_temperatures, 1, cfg.min_md_steps, cfg.min_md_interval,
                               cfg.seed + 1000 + 10 * m_i, 0.01):
                items.append((a.positions, {"source": "min-md", "start": name, "temperature": temp}))
        for a, temp in _md(ts.ts, cfg.ts_md_temperatures, cfg.ts_md_runs, cfg.ts_md_steps, cfg.ts_md_interval,
                           cfg.seed + 2000, 0.002):
            items.append((a.positions, {"source": "ts-md", "temperature": temp}))
        # GFN2-xTB at the TS geometry, whatever level found it: a DFT-first TS carries its DFT energy
        at_ts = ts.ts.copy()
        at_ts.info["charge"] = base["charge"]
        at_ts.calc = xtb_calculator(at_ts)
        e_ts = float(at_ts.get_potential_energy())
        frames = []
        for x, info in items:
            a = Atoms(ts.ts.numbers, x)
            a.info["charge"] = base["charge"]
            a.calc = xtb_calculator(a)
            try:
                rel = float(a.get_potential_energy()) - e_ts
            except Exception:  # xTB's SCF fails on a wild displacement: not a sample worth labelling
                continue
            frames.append(_frame(a, {**base, **info, "xtb_rel_ts": rel}))
        ctx.say(f"{reaction.name}: {len(frames)} candidates")
        return frames

    params = {"reaction": reaction.name, "ts": ts.ts.positions.round(5).tolist(), "sampling": asdict(cfg)}
    return stage(ctx, f"ts-candidates-{reaction.name}", params, make)


def ts_offset(pool: list[Frame]) -> float:
    """``xtb_rel_ts`` of the pool's own xTB-level TS frame (eV): 0, except in a pool made before that energy was
    taken at the xTB level (Claisen's, whose DFT-first TS carried its ωB97X energy; see ``rxn_dft.frames``)."""
    return next((float(f.info["xtb_rel_ts"]) for f in pool if f.info.get("role") == "xtb-ts"), 0.0)


def select_frames(pool: list[Frame], n: int, window: float, fraction: float, seed: int) -> list[Frame]:
    """``n`` frames: the stationary points, ≥ ``fraction`` within ``window`` eV of the TS (xTB), the rest by FPS."""
    from lam_lab.sampling.select import select_fps

    keep = [i for i, f in enumerate(pool) if f.info.get("source") == "xtb-stationary"]
    near = [i for i, f in enumerate(pool) if abs(f.info["xtb_rel_ts"]) <= window and i not in keep]
    n_near = min(len(near), int(np.ceil(fraction * n)))
    near_pick = [near[j] for j in select_fps([pool[i] for i in near], n_near, seed=seed)]
    chosen = select_fps(pool, min(n, len(pool)), seed=seed, keep=keep + near_pick)
    return [pool[i].copy() for i in chosen]


def select_more(pool: list[Frame], chosen: list[int], n: int, window: float, fraction: float) -> list[int]:
    """Indices of ``n`` more frames of ``pool`` beside ``chosen``: ≥ ``fraction`` of them within ``window`` eV of the
    TS (xTB), each the farthest from every frame chosen or picked before it (so labels already paid for count)."""
    from lam_lab.data.selection import farthest_point_continue

    taken = set(chosen)
    near = [i for i, f in enumerate(pool) if abs(f.info["xtb_rel_ts"]) <= window and i not in taken]
    near_pick = farthest_point_continue(pool, chosen, min(len(near), int(np.ceil(fraction * n))), among=near)
    return near_pick + farthest_point_continue(pool, chosen + near_pick, n - len(near_pick))


TS_FILE = "transition-states.json"


def export_transition_states(ctx: BuildContext, reactions: list[Reaction], path) -> dict:
    """Write every reaction's xTB (and, once run, DFT) TS search outcome as one JSON file (shipped with the package);
    ``dft_lowest``: the search on the functional's lowest surface, where the restricted saddle is RKS-unstable.

    Per reaction and level: status, barrier and reaction energy (eV), imaginary frequencies (cm⁻¹),
    the TS, reactant and product (numbers, positions Å, energy eV), and the provenance. Only
    ``status == "verified"`` entries are ever used as a TS downstream.
    """
    import json

    from lam_lab.atomic import atomic_write_text

    def level(res: TSResult) -> dict:
        d = res.to_dict()
        return {k: d[k] for k in ("status", "barrier", "reaction_energy", "imaginary_frequencies", "irc_connects",
                                  "ts", "reactant", "product", "provenance")}

    doc: dict = {}
    for rx in reactions:
        if rx.name in DFT_FIRST:
            first = dft_first_ts(ctx, rx, cached_only=True)
            doc[rx.name] = {"description": rx.description,
                            "xtb": {"status": "no concerted GFN2-xTB saddle (searched at DFT)"}}
            if first is not None:
                doc[rx.name]["dft"] = level(first)
            continue
        try:
            low = xtb_ts_cached(ctx, rx)
        except TSSearchFailed as exc:
            doc[rx.name] = {"xtb": {"status": f"search failed: {exc}"}}
            continue
        if low is None:
            continue
        doc[rx.name] = {"description": rx.description, "xtb": level(low)}
        high = dft_ts_cached(ctx, rx, low) if low.verified else None
        if high is not None:
            doc[rx.name]["dft"] = level(high)
        lowest = dft_ts(ctx, rx, low, cached_only=True, lowest_solution=True) if low.verified else None
        if lowest is not None:  # searched where the restricted saddle is RKS-unstable (rxn_dft ts --lowest-solution)
            doc[rx.name]["dft_lowest"] = level(lowest)
    atomic_write_text(path, json.dumps(doc, separators=(",", ":")))
    return doc
