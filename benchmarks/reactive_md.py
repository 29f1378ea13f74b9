"""Reactive MD from the verified ωB97X/6-31G(d) saddles: GFN2-xTB alone next to GFN2-xTB + the Δ model.

For each reaction (default Diels–Alder and Claisen) and each method, K two-way trajectories at 300 K start at
the shipped DFT-verified TS (``builtin_ts(name, level="dft")``) with Maxwell–Boltzmann momenta; each end is
classified by its bond graph. Reported per method: fractions of ends that are reactant / product / other and
the share of trajectories that join reactant and product (target with xTB + Δ: ≥ 6 of 8).
The Δ models (``--delta NAME|FILE[,...]``, each its own method) are the shipped ``lam-chon-delta`` (trained on
every rxn-dft reaction, Claisen included) and its twin ``lam-chon-delta-heldout`` (train split only: Claisen is
one of its held-out reactions); ``LAMCalculator`` adds GFN2-xTB back.

Usage: python benchmarks/reactive_md.py [--reactions diels-alder,claisen] [--k 8] [--steps 300]
    [--methods xtb,delta] [--delta lam-chon-delta,lam-chon-delta-heldout] -> benchmarks/results/reactive_md.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result  # noqa: E402


def calculator(method: str, delta: str):
    """'xtb' or the Δ model (shipped name or file) as an ASE calculator factory argument."""
    import lam_lab as ll

    if method == "xtb":
        return "xtb"
    model = ll.pretrained.load(delta) if delta in ll.pretrained.available() else ll.load(delta)
    return ll.LAMCalculator(model)


def main(argv: list[str] | None = None) -> int:
    from lam_lab.md.reactive import builtin_ts, run_reactive

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reactions", default="diels-alder,claisen")
    p.add_argument("--methods", default="xtb,delta")
    p.add_argument("--delta", default="lam-chon-delta,lam-chon-delta-heldout", help="Δ models, comma-separated")
    p.add_argument("--k", type=int, default=8, help="two-way trajectories per reaction and method")
    p.add_argument("--steps", type=int, default=300, help="MD steps per half (0.5 fs)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    runs = []
    for name in args.reactions.split(","):
        ts = builtin_ts(name, level="dft")
        methods = [(m, d) for m in args.methods.split(",") for d in (args.delta.split(",") if m == "delta" else [""])]
        for method, delta in methods:
            t0 = time.perf_counter()
            res = run_reactive(ts, calculator(method, delta), n_trajectories=args.k, steps=args.steps,
                               seed=args.seed)
            label = "GFN2-xTB" if method == "xtb" else f"GFN2-xTB + {delta}"
            print(f"{label:<28} {res.summary()}", flush=True)
            d = res.to_dict()
            runs.append({"reaction": name, "method": label, "fractions": d["fractions"],
                         "reactive_fraction": d["reactive_fraction"],
                         "reactive_of_k": sum(o.kind == "reactive" for o in res.outcomes), "k": args.k,
                         "kinds": [o.kind for o in res.outcomes], "ts": d["ts_method"], "barrier_eV": d["barrier_eV"],
                         "energies_eV": d["energies_eV"], "wall_s": round(time.perf_counter() - t0, 1)})
    write_result("reactive_md", {"runs": runs, "settings": vars(args),
                                 "note": "ends are classified by bond graph (with hysteresis) against the reactant "
                                         "and product graphs; 300 K Maxwell–Boltzmann start at the DFT saddle, NVE"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
