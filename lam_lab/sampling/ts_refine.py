"""A verified lower-level TS refined at a higher level (e.g. GFN2-xTB → ωB97X/6-31G(d)).

IRCs at the higher level cost hundreds of gradients, so connectivity is inherited: the higher-level
saddle counts as verified when Sella converged from the lower-level TS, its Hessian (analytic where
the method has one) shows exactly one imaginary mode, and that mode is the same motion as the
lower level's (|cos| ≥ ``min_overlap``), whose IRC was checked to reach both minima. Both minima are
re-optimised at the higher level so barrier and reaction energy are on one surface. Each of the four
expensive steps (two minima, the saddle, the Hessian) can be a ``checkpoint`` of its own, so a search of hours
that was stopped resumes after the last step it finished.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
from ase import Atoms

from lam_lab.sampling.neb import CalcFactory, fragments
from lam_lab.sampling.ts import TSConfig, TSResult, atoms_from_dict, atoms_to_dict, mode_overlap, saddle, snapshot
from lam_lab.sampling.vibrations import harmonic

HessianFunction = Callable[[Atoms], np.ndarray]
# checkpoint(tag, make) -> make()'s JSON document, or the one a former call with this tag stored
Checkpoint = Callable[[str, Callable[[], dict[str, Any]]], dict[str, Any]]


def _no_checkpoint(tag: str, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return make()


def minimize(atoms: Atoms, calc_factory: CalcFactory, fmax: float, steps: int,
             hessian_function: HessianFunction | None = None) -> tuple[Atoms, int]:
    """Minimum (with energy) and total optimiser steps: Sella (order 0) per covalent fragment, put back in place.

    Fragments are relaxed alone (as :func:`lam_lab.sampling.neb.relax` does) so a bimolecular
    reactant stays the pre-reactive pair that the lower level's path started from.
    """
    from sella import Sella

    from lam_lab.sampling.molecules import align

    work = atoms.copy()
    n_steps = 0
    for frag in fragments(atoms):
        part = atoms[frag]
        part.info = dict(atoms.info)
        part.calc = calc_factory(part)
        if len(part) > 1:
            opt = Sella(part, order=0, internal=True, logfile=None, trajectory=None, hessian_function=hessian_function)
            opt.run(fmax=fmax, steps=steps)
            n_steps += int(opt.nsteps)
            work.positions[frag] = align(part, atoms[frag]).positions
    work.calc = calc_factory(work)
    return snapshot(work), n_steps


def refine_at_level(low: TSResult, calc_factory: CalcFactory, hessian: HessianFunction,
                    guess_hessian: HessianFunction | None = None, config: TSConfig | None = None,
                    min_overlap: float = 0.7, minimum_fmax: float = 0.03,
                    reference_mode: np.ndarray | None = None, checkpoint: Checkpoint | None = None) -> TSResult:
    """Re-optimise ``low``'s TS and minima with ``calc_factory``; verify by ``hessian`` (eV/Å²) at the new TS: one
    imaginary mode overlapping ``reference_mode`` (default ``low``'s; the mode of the level whose IRC connects).
    ``checkpoint`` keeps each step's result (tags ``reactant``, ``product``, ``saddle``, ``hessian``)."""
    cfg = config or TSConfig(fmax=0.01, steps=150)
    if not low.verified:
        raise ValueError(f"the lower-level TS is not verified ({low.status}); refine only verified saddles")
    t0 = time.perf_counter()
    prov: dict[str, Any] = {"method": "sella saddle from the lower-level TS (its Hessian as the start) -> "
                                      "higher-level Hessian: one imaginary mode, overlapping the lower-level mode",
                            "min_overlap": min_overlap, "imag_cutoff_cm1": cfg.imag_cutoff}
    part = checkpoint or _no_checkpoint

    def minimum(tag: str, start: Atoms) -> tuple[Atoms, int]:
        def make() -> dict[str, Any]:
            found, n = minimize(start, calc_factory, minimum_fmax, cfg.minimum_steps, guess_hessian)
            return {"atoms": atoms_to_dict(found), "steps": n}
        doc = part(tag, make)
        return atoms_from_dict(doc["atoms"]), int(doc["steps"])

    def saddle_doc() -> dict[str, Any]:
        found, ok, n = saddle(low.ts, calc_factory, cfg, guess_hessian)
        return {"atoms": atoms_to_dict(found), "converged": ok, "steps": n}

    reactant, n_r = minimum("reactant", low.reactant)
    product, n_p = minimum("product", low.product)
    found = part("saddle", saddle_doc)
    ts, converged, n_ts = atoms_from_dict(found["atoms"]), bool(found["converged"]), int(found["steps"])
    modes = harmonic(ts, np.asarray(part("hessian", lambda: {"hessian": hessian(ts).tolist()})["hessian"]))
    imag = modes.imaginary(cfg.imag_cutoff)
    overlap = mode_overlap(modes.modes[0], low.ts_mode if reference_mode is None else reference_mode)
    prov.update({"saddle_steps": n_ts, "minimum_steps": [n_r, n_p], "mode_overlap_with_lower_level": overlap,
                 "saddle_converged": converged, "saddle_fmax_eV_A": cfg.fmax, "minimum_fmax_eV_A": minimum_fmax})
    if not converged:
        status = "saddle_not_converged"
    elif len(imag) != 1:
        status = f"imaginary_modes_{len(imag)}"
    elif overlap < min_overlap:
        status = "mode_differs_from_lower_level"
    else:
        status = "verified"
    e_r = float(reactant.get_potential_energy())
    prov["seconds"] = round(time.perf_counter() - t0, 1)
    # connectivity is the lower level's IRC, valid for this saddle only when the mode check passed
    return TSResult(ts, reactant, product, float(ts.get_potential_energy()) - e_r,
                    float(product.get_potential_energy()) - e_r, imag, modes.frequencies, modes.modes, [],
                    status == "verified" and low.irc_connects, status, prov)
