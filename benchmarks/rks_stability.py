"""Are rxn-dft's closed-shell ωB97X/6-31G(d) labels the functional's lowest solution, and where does the Δ error sit?

rxn-dft labels every frame with restricted (closed-shell) Kohn–Sham, as Transition1x and ANI-1x do. Near a
biradical transition state (a ring opening, a 1,3-H shift through a carbene-like TS) the RKS solution can be
unstable towards UKS: a broken-symmetry solution lies lower, and the labels describe the restricted surface.
Each check (:func:`lam_lab.labelers.dft.closed_shell_stability`) says whether RKS is stable, how far the
broken-symmetry UKS energy lies below (eV), its ⟨S²⟩, its forces where unstable, and the frame's GFN2-xTB HOMO–LUMO
gap (:func:`lam_lab.labelers.xtb.homo_lumo_gap`, eV), the cheap screen.

``--part ts``: every reaction's ωB97X TS (``role == 'ts'``).
``--part frames --reactions a,b --split test|val``: the frames of those reactions (at most ``--per`` each, a seeded
sample), and the Δ model's (``--model``, GFN2-xTB added back) and GFN2-xTB's force RMSE on the stable and the
unstable frames apart; on the unstable ones also against the broken-symmetry UKS forces (``against_uks``: how far the
closed-shell labels are from the functional's lowest solution, and which of the two each method is nearer).
``--part screen``: the xTB gap of every frame, per reaction the frames under each threshold, and (``--check-below
G``) the DFT check of every frame under G, smallest gap first; the calibration compares gap and stability
over every frame checked so far, and ``errors`` gives the model's and xTB's force RMSE on the val and test frames
under each gap threshold and on the rest (with the held-out mean force ratio without them).
Checks are kept in ``--work``, rxn-dft's checks file (``data-build/rxn-dft/stages/closed-shell-checks.jsonl.gz``,
keyed by geometry; committed with the build state, :mod:`lam_lab.datasets.closed_shell`), so a run resumes, and the
broken-symmetry UKS labels it holds are the ones the build puts in (``python -m lam_lab.datasets.rxn_dft
closed-shell`` runs the same checks as a build phase).

Usage: python benchmarks/rks_stability.py --part ts  -> benchmarks/results/rks_stability-ts.json
       python benchmarks/rks_stability.py --part frames --reactions oxirane --split test [--per 99]
           [--model lam-chon-delta-heldout]  -> rks_stability-test.json
       python benchmarks/rks_stability.py --part screen [--check-below 2.0 [--shard 0/2]] [--sample-screened 100]
           -> rks_stability-screen.json
       python benchmarks/rks_stability.py --part xtb-temperature  -> rks_stability-xtb-temperature.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result  # noqa: E402

LABEL = "wb97x/6-31g*"


def _rks(labels: dict):
    """A frame's closed-shell (RKS) ωB97X labels, whichever way the set was built (one built on the lowest solution
    keeps them beside, :func:`lam_lab.datasets.closed_shell.restricted_name`)."""
    from lam_lab.datasets.closed_shell import restricted_name

    return labels.get(restricted_name(LABEL), labels[LABEL])
GAP_THRESHOLDS = (1.0, 1.5, 2.0, 2.5)  # eV


def ts_part(data, work: Path) -> dict:
    """Every reaction's ωB97X TS: stable or not, the broken-symmetry UKS energy below it (eV), ⟨S²⟩, xTB gap."""
    from lam_lab.datasets.closed_shell import check

    ts = sorted((f for f in data if f.info.get("role") == "ts"), key=len)
    table = [{"reaction": f.info["reaction"], "split": f.info["split"], "atoms": len(f),
              **{k: r.get(k) for k in ("stable", "uks_below_ev", "s2", "xtb_gap_ev", "failed")}}
             for f, r in zip(ts, check(ts, work))]
    return {"transition_states": table, "n": len(table),
            "unstable": [r["reaction"] for r in table if r["stable"] is False]}


def _rmse(errors: list[float]) -> float | None:
    import numpy as np

    return float(np.sqrt(np.mean(np.square(errors)))) if errors else None


def _force_rmse(a, b) -> float:
    """Force RMSE of one frame, meV/Å (forces in eV/Å)."""
    from lam_lab.distill.select import force_rmse

    return force_rmse([a], [b])


def frames_part(data, reactions: list[str], split: str, model_name: str, per: int, work: Path) -> dict:
    """Per reaction: the share of RKS-unstable frames and the model's and xTB's force RMSE on each kind (meV/Å)."""
    import numpy as np

    import lam_lab as ll
    from lam_lab.datasets.closed_shell import check
    from lam_lab.evaluation import predict

    model = ll.pretrained.load(model_name) if model_name in ll.pretrained.available() else ll.load(model_name)
    out = {}
    for name in reactions:
        idx = [i for i, f in enumerate(data) if f.info["reaction"] == name and f.info["split"] == split]
        if len(idx) > per:
            idx = sorted(np.random.default_rng(0).choice(idx, per, replace=False).tolist())
        frames = [data[i] for i in idx]
        checks, pred = check(frames, work), predict(model, frames)
        err = {"model": [_force_rmse(p, _rks(f.labels).forces) for f, p in zip(frames, pred.forces)],
               "xtb": [_force_rmse(f.labels["gfn2-xtb"].forces, _rks(f.labels).forces) for f in frames]}
        total = sum(e ** 2 for e in err["model"])
        row = {"frames": len(frames), "unstable": sum(c["stable"] is False for c in checks),
               "all": {"model_force_rmse_mev_per_A": _rmse(err["model"]),
                       "xtb_force_rmse_mev_per_A": _rmse(err["xtb"])}}
        for kind, want in (("stable", True), ("unstable", False)):
            sel = [j for j, c in enumerate(checks) if c["stable"] == want]
            m, x = _rmse([err["model"][j] for j in sel]), _rmse([err["xtb"][j] for j in sel])
            row[kind] = {"frames": len(sel), "model_force_rmse_mev_per_A": m, "xtb_force_rmse_mev_per_A": x,
                         "model_over_xtb": m / x if m and x else None,
                         "share_of_model_squared_error": sum(err["model"][j] ** 2 for j in sel) / total,
                         "uks_below_ev_max": max((checks[j]["uks_below_ev"] for j in sel), default=0.0)}
        # the unstable frames against their broken-symmetry UKS forces (the functional's lowest solution)
        bs = [(p, f.labels, c["uks_forces"]) for f, p, c in zip(frames, pred.forces, checks) if c["stable"] is False]
        if bs:
            row["unstable"]["against_uks"] = {
                "model_force_rmse_mev_per_A": _rmse([_force_rmse(p, u) for p, _, u in bs]),
                "xtb_force_rmse_mev_per_A": _rmse([_force_rmse(lab["gfn2-xtb"].forces, u) for _, lab, u in bs]),
                "rks_vs_uks_force_rmse_mev_per_A": _rmse([_force_rmse(_rks(lab).forces, u) for _, lab, u in bs])}
        out[name] = row
        print(name, json.dumps(row), flush=True)
    return {"split": split, "model": model_name, "reactions": out}


def error_by_gap(data, gaps, model_name: str, split: str) -> dict:
    """The model's and xTB's force RMSE (meV/Å) on a split's frames under each xTB-gap threshold and on the rest,
    with the low-gap frames' share of the model's squared error; for the test split also per reaction."""
    import numpy as np

    import lam_lab as ll
    from lam_lab.evaluation import predict

    model = ll.pretrained.load(model_name) if model_name in ll.pretrained.available() else ll.load(model_name)
    idx = [i for i, f in enumerate(data) if f.info["split"] == split]
    frames, g = [data[i] for i in idx], gaps[idx]
    pred = predict(model, frames)
    sq_model = np.array([np.sum((p - _rks(f.labels).forces) ** 2) for p, f in zip(pred.forces, frames)])
    sq_xtb = np.array([np.sum((f.labels["gfn2-xtb"].forces - _rks(f.labels).forces) ** 2) for f in frames])
    comps = np.array([3 * len(f) for f in frames])

    def rmse(sq, sel):
        return 1000 * float(np.sqrt(sq[sel].sum() / comps[sel].sum())) if sel.any() else None

    def rows(sel_all):
        out = {}
        for t in GAP_THRESHOLDS:
            low, rest = sel_all & (g < t), sel_all & ~(g < t)
            out[f"gap_below_{t}"] = {
                "frames": int(low.sum()),
                "share_of_model_squared_error": float(sq_model[low].sum() / sq_model[sel_all].sum()),
                "model_force_rmse_mev_per_A": rmse(sq_model, low), "xtb_force_rmse_mev_per_A": rmse(sq_xtb, low),
                "rest_model_force_rmse_mev_per_A": rmse(sq_model, rest),
                "rest_xtb_force_rmse_mev_per_A": rmse(sq_xtb, rest)}
        return out

    every = np.ones(len(frames), bool)
    result = {"model": model_name, "frames": len(frames), "model_force_rmse_mev_per_A": rmse(sq_model, every),
              "xtb_force_rmse_mev_per_A": rmse(sq_xtb, every), "by_gap": rows(every)}
    if split == "test":
        names = sorted({f.info["reaction"] for f in frames})
        result["reactions"] = {r: rows(np.array([f.info["reaction"] == r for f in frames])) for r in names}
        for t in GAP_THRESHOLDS:  # the held-out mean force ratio with the low-gap frames left out
            rest = [v[f"gap_below_{t}"] for v in result["reactions"].values()]
            ratios = [r["rest_model_force_rmse_mev_per_A"] / r["rest_xtb_force_rmse_mev_per_A"] for r in rest]
            result[f"force_rmse_over_xtb_without_gap_below_{t}"] = float(np.mean(ratios))
    return result


def label_change_by_gap(data, done: dict, edges=(0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 99.0)) -> list[dict]:
    """Per xTB-gap band, over the frames of ``data`` checked so far: how many are unstable, how far below RKS the
    broken-symmetry solution lies (eV) and how far its forces are from the RKS labels (RMS, meV/Å), medians and
    largest: what a frame's label changes by, band by band, when the build takes the lowest solution."""
    import numpy as np

    from lam_lab.datasets.closed_shell import geometry_key

    rows = []
    for f in data:
        c = done.get(geometry_key(f))
        if c is None or "xtb_gap_ev" not in c or c["stable"] is None:  # unchecked, or its SCF failed
            continue
        change = None
        if not c["stable"] and "uks_forces" in c:
            change = _force_rmse(np.asarray(c["uks_forces"]), _rks(f.labels).forces)
        rows.append((c["xtb_gap_ev"], c["stable"], c["uks_below_ev"], change))
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        band = [r for r in rows if lo <= r[0] < hi]
        below = [r[2] for r in band if not r[1]]
        change = [r[3] for r in band if r[3] is not None]
        out.append({"gap_ev": [lo, hi], "checked": len(band), "unstable": len(below),
                    "uks_below_ev_median": float(np.median(below)) if below else None,
                    "uks_below_ev_max": max(below, default=None),
                    "force_change_mev_per_A_median": float(np.median(change)) if change else None,
                    "force_change_mev_per_A_max": max(change, default=None)})
    return out


def screen_part(data, model_name: str, check_below: float | None, work: Path, shard: tuple[int, int] = (0, 1),
                sample_screened: int = 0) -> dict:
    """The xTB gap of every frame; per reaction, frames under each threshold (and checked / unstable so far).
    ``shard`` (i, n): this worker checks every n-th frame from the i-th, so n workers share the checks.
    ``sample_screened``: also check a seeded sample of that many frames just above the screen (xTB gap 2.5–3 eV), to
    count what the screen misses."""
    import numpy as np

    from lam_lab.datasets.closed_shell import SCREEN_BELOW, check, geometry_key, read_checks, to_check, xtb_gap

    gaps = np.array([xtb_gap(f) for f in data])
    if check_below is not None:
        todo = to_check(data, gaps, check_below)
        check([data[i] for i in todo[shard[0]::shard[1]]], work)
    if sample_screened:
        above = np.flatnonzero((gaps >= SCREEN_BELOW) & (gaps < SCREEN_BELOW + 0.5))
        picked = np.random.default_rng(0).choice(above, min(sample_screened, len(above)), replace=False)
        check([data[int(i)] for i in sorted(picked)][shard[0]::shard[1]], work)
    done = read_checks(work)
    per_reaction: dict[str, dict] = {}
    for f, g in zip(data, gaps):
        row = per_reaction.setdefault(f.info["reaction"], {"frames": 0, **{f"gap_below_{t}": 0 for t in GAP_THRESHOLDS},
                                                           "checked": 0, "unstable": 0})
        row["frames"] += 1
        for t in GAP_THRESHOLDS:
            row[f"gap_below_{t}"] += int(g < t)
        c = done.get(geometry_key(f))
        if c is not None:
            row["checked"] += 1
            row["unstable"] += int(c["stable"] is False)
    errors = {split: error_by_gap(data, gaps, model_name, split) for split in ("val", "test")}
    rows = list(done.values())
    unstable_gaps = [r["xtb_gap_ev"] for r in rows if r["stable"] is False and "xtb_gap_ev" in r]
    stable_gaps = [r["xtb_gap_ev"] for r in rows if r["stable"] and "xtb_gap_ev" in r]
    calibration = {"checked": len(unstable_gaps) + len(stable_gaps), "unstable": len(unstable_gaps),
                   "largest_gap_of_an_unstable_frame_ev": max(unstable_gaps, default=None),
                   "largest_gap_unstable_by_more_than_0.2_ev": max(
                       (r["xtb_gap_ev"] for r in rows if r.get("uks_below_ev", 0) > 0.2 and "xtb_gap_ev" in r),
                       default=None),
                   "smallest_gap_of_a_stable_frame_ev": min(stable_gaps, default=None),
                   "failed": sum(r["stable"] is None for r in rows),
                   "by_gap": label_change_by_gap(data, done)}
    return {"frames": len(data), **{f"gap_below_{t}": int(np.sum(gaps < t)) for t in GAP_THRESHOLDS},
            "calibration": calibration, "check_below_ev": check_below, "errors": errors,
            "reactions": dict(sorted(per_reaction.items(), key=lambda kv: -kv[1]["gap_below_1.0"]))}


def lowest_part(data, model_name: str, work: Path) -> dict:
    """The model and GFN2-xTB on the held-out (test) frames against the lowest-solution labels the checks give
    and against the closed-shell ones (the set as shipped), per reaction with the held-out ratios; and the barrier
    at each saddle searched on the lowest surface (``rxn_dft ts --lowest-solution``) for the model, xTB and DFT."""
    from collections import Counter

    import numpy as np
    from delta_loro import headline

    import lam_lab as ll
    from lam_lab.data import Dataset, Frame
    from lam_lab.datasets.closed_shell import read_checks, with_lowest_solution, xtb_gap
    from lam_lab.evaluation import predict, reference
    from lam_lab.labelers import get_labeler
    from lam_lab.md.reactive import builtin_ts
    from lam_lab.pretrained.delta_card import reaction_rows

    model = ll.pretrained.load(model_name) if model_name in ll.pretrained.available() else ll.load(model_name)
    test = data.where(split="test")
    lowest = Dataset(with_lowest_solution(list(test), read_checks(work), LABEL, np.array([xtb_gap(f) for f in test])),
                     "test")
    kinds = Counter(f.info["closed_shell"] for f in lowest)
    per = Counter((f.info["reaction"], f.info["closed_shell"]) for f in lowest)
    out = {"model": model_name, "frames": len(test), "closed_shell": dict(kinds),
           "closed_shell_by_reaction": {r: {k: n for (rr, k), n in sorted(per.items()) if rr == r}
                                        for r in sorted({r for r, _ in per})}}
    for name, frames in (("restricted", test), ("lowest", lowest)):
        rows = reaction_rows(model, frames, LABEL, "gfn2-xtb")
        out[name] = {**headline(rows), "reactions": rows}
    saddles, xtb = {}, get_labeler("gfn2-xtb")
    for reaction in sorted({f.info["reaction"] for f in data}):
        try:
            ts = builtin_ts(reaction, "dft_lowest")
        except Exception:  # no saddle searched (or verified) on the lowest surface for this reaction
            continue
        pair = [Frame.from_atoms(a) for a in (ts.reactant, ts.ts)]
        for f in pair:
            f.labels["gfn2-xtb"] = xtb.compute(f)
        m, x = predict(model, pair).energy, reference(pair, "gfn2-xtb").energy
        restricted = builtin_ts(reaction, "dft").barrier
        saddles[reaction] = {"split": next(f.info["split"] for f in data if f.info["reaction"] == reaction),
                             "barrier_ev": ts.barrier, "restricted_barrier_ev": restricted,
                             "model_barrier_err_ev": float(m[1] - m[0]) - ts.barrier,
                             "xtb_barrier_err_ev": float(x[1] - x[0]) - ts.barrier}
    out["lowest_surface_saddles"] = saddles
    return out


def xtb_temperature_part(data, work: Path, temperatures: list[float]) -> dict:
    """GFN2-xTB at several electronic temperatures (K) against the lowest-solution forces on the checked val and test
    frames: does a hotter Fermi smearing (fractional occupations, as in biradicals) bring xTB, the Δ baseline, nearer
    the broken-symmetry surface (RMSE in meV/Å; on the unstable frames also against their RKS labels)?"""
    import numpy as np

    from lam_lab.datasets.closed_shell import geometry_key, read_checks
    from lam_lab.labelers import get_labeler

    done, picked = read_checks(work), []
    for f in data:
        c = done.get(geometry_key(f))
        if f.info["split"] in ("val", "test") and c is not None and (c["stable"] or "uks_forces" in c):
            picked.append((f, bool(c["stable"]), _rks(f.labels).forces if c["stable"] else np.asarray(c["uks_forces"])))
    out = {"frames": len(picked), "unstable": sum(not st for _, st, _ in picked), "by_temperature": {}}
    for t in temperatures:
        lab, sq = get_labeler("gfn2-xtb", electronic_temperature=float(t)), {"stable": [], "lowest": [], "rks": []}
        for f, stable, target in picked:
            forces = lab.compute(f).forces
            sq["stable" if stable else "lowest"].append(np.mean((forces - target) ** 2))
            if not stable:
                sq["rks"].append(np.mean((forces - _rks(f.labels).forces) ** 2))
        out["by_temperature"][str(t)] = {
            "stable_frames_mev_per_A": 1000 * float(np.sqrt(np.mean(sq["stable"]))),
            "unstable_frames_vs_lowest_mev_per_A": 1000 * float(np.sqrt(np.mean(sq["lowest"]))),
            "unstable_frames_vs_rks_mev_per_A": 1000 * float(np.sqrt(np.mean(sq["rks"])))}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=("ts", "frames", "screen", "lowest", "xtb-temperature"), required=True)
    p.add_argument("--temperatures", default="300,1000,3000,5000,8000",
                   help="xtb-temperature part: GFN2-xTB electronic temperatures, K")
    p.add_argument("--reactions", default="oxirane,malonaldehyde,claisen,hexatriene,retro-ene")
    p.add_argument("--split", default="test")
    p.add_argument("--model", default="lam-chon-delta-heldout")
    p.add_argument("--per", type=int, default=99, help="frames part: at most this many frames a reaction (seeded)")
    p.add_argument("--check-below", type=float, default=None, help="screen part: DFT-check every frame under this gap")
    p.add_argument("--shard", default="0/1", help="screen part: I/N, this worker's share of the checks")
    p.add_argument("--sample-screened", type=int, default=0,
                   help="screen part: also check a seeded sample of this many frames with an xTB gap of 2.5–3 eV")
    p.add_argument("--data", default="rxn-dft")
    p.add_argument("--work", default="data-build/rxn-dft/stages/closed-shell-checks.jsonl.gz",
                   help="the per-frame checks file, so a run resumes")
    p.add_argument("--out", default=None, help="result name (default rks_stability-PART, or -SPLIT for frames)")
    a = p.parse_args()

    from lam_lab.data.io import load_source

    data, work, t0 = load_source(a.data), Path(a.work), time.perf_counter()
    if a.part == "ts":
        result = ts_part(data, work)
    elif a.part == "screen":
        i, n = map(int, a.shard.split("/"))
        result = screen_part(data, a.model, a.check_below, work, (i, n), a.sample_screened)
    elif a.part == "lowest":
        result = lowest_part(data, a.model, work)
    elif a.part == "xtb-temperature":
        result = xtb_temperature_part(data, work, [float(t) for t in a.temperatures.split(",")])
    else:
        result = frames_part(data, a.reactions.split(","), a.split, a.model, a.per, work)
    result["settings"] = {"data": a.data, "level": f"{LABEL} RKS; broken-symmetry UKS from its instability",
                          "seconds": round(time.perf_counter() - t0, 1)}
    write_result(a.out or f"rks_stability-{a.split if a.part == 'frames' else a.part}", result)


if __name__ == "__main__":
    main()
