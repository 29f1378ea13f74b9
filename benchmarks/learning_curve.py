"""Learning curves on rxn-dft (issue 6): from scratch vs fine-tuned vs Δ-ML (scratch, fine-tuned) vs AtomFT.

For N ∈ {25, 50, 100, 200, all} training frames (info['split'] == train) each method is trained for the
same number of optimizer steps and scored on the held-out Claisen rearrangement (split == test)
against ωB97X/6-31G(d): energy RMSE (meV/atom), force RMSE (meV/Å) and the barrier-height error
(E_TS − E_reactant, meV). Seeds are fixed; the frame subsets are nested. Headline:
``best_at_50_over_scratch_at_all`` = force RMSE of the best method at N=50 / from scratch at all frames.

Usage: python benchmarks/learning_curve.py [--quick] [--steps N] [--sizes 25,50,all] [--pretrained FILE]
    -> benchmarks/results/learning_curve.json (rows, settings, plotly figure as JSON)
The full run (5 sizes × 5 methods × 2000 steps of dpa2-small) takes about an hour on one CPU core.
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny run: sizes 25,50,all and 20 steps (checks the wiring)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per training (default 2000, quick 20)")
    p.add_argument("--sizes", default=None, help="comma list of N and 'all' (default 25,50,100,200,all)")
    p.add_argument("--methods", default=None, help="comma list (default: all five)")
    p.add_argument("--pretrained", default="lam-chon-small", help="shipped model name or model file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--device", default=None)
    p.add_argument("--html", default=None, help="also write the figure as HTML here")
    args = p.parse_args(argv)

    import torch

    from lam_lab.experiments.learning_curve import METHODS, learning_curve

    torch.set_num_threads(args.threads)
    steps = args.steps or (20 if args.quick else 2000)
    sizes = args.sizes or ("25,50,all" if args.quick else "25,50,100,200,all")
    sizes = [s if s == "all" else int(s) for s in sizes.split(",")]
    methods = args.methods.split(",") if args.methods else list(METHODS)
    t0 = time.perf_counter()
    curve = learning_curve("rxn-dft", pretrained=args.pretrained, sizes=sizes, methods=methods, steps=steps,
                           seed=args.seed, device=args.device,
                           on_row=lambda r: print(f"  {r.method:<15} N={r.size:<4} E {r.e_rmse:8.2f} meV/atom  "
                                                  f"F {r.f_rmse:7.1f} meV/Å  barrier {r.barrier_err:7.1f} meV  "
                                                  f"({r.train_s:.0f} s)", flush=True))
    print(curve.table())
    fig = curve.figure()
    payload = {**curve.to_dict(), "quick": args.quick, "wall_s": time.perf_counter() - t0,
               "figure": json.loads(fig.to_json())}
    write_result("learning_curve", payload)
    if args.html:
        fig.write_html(args.html, include_plotlyjs="cdn")
        print(f"wrote {args.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
