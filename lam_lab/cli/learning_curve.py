"""`lam-lab learning-curve`: errors vs training frames for scratch / fine-tune / Δ / AtomFT."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def cmd_learning_curve(args: argparse.Namespace) -> int:
    """Run the learning-curve experiment, print the table, write JSON (and HTML figure) if asked."""
    import torch

    from lam_lab.experiments.learning_curve import learning_curve

    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [s if s == "all" else int(s) for s in args.sizes.split(",")]
    methods = args.methods.split(",") if args.methods else None
    kw = {"methods": methods} if methods else {}
    curve = learning_curve(args.dataset, pretrained=args.pretrained, sizes=sizes, steps=args.steps, seed=args.seed,
                           alpha=args.alpha, device=args.device, progress=False,
                           on_row=lambda r: print(f"  {r.method} N={r.n}: F RMSE {r.f_rmse:.1f} meV/Å", flush=True),
                           **kw)
    print(curve.table())
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(curve.to_dict(), indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.html:
        curve.figure().write_html(args.html, include_plotlyjs="cdn")
        print(f"wrote {args.html}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``learning-curve`` verb (its settings are arguments of one experiment, not a config file)."""
    lc = subparsers.add_parser("learning-curve", help="errors vs training frames for scratch/fine-tune/Δ/AtomFT")
    lc.add_argument("--dataset", default="rxn-dft")
    lc.add_argument("--pretrained", default="lam-chon-small", help="shipped name or model file")
    lc.add_argument("--sizes", default="25,50,100,200,all")
    lc.add_argument("--methods", default=None, help="comma list (default: all five)")
    lc.add_argument("--steps", type=int, default=2000, help="optimizer steps per training")
    lc.add_argument("--alpha", type=float, default=0.1)
    lc.add_argument("--seed", type=int, default=0)
    lc.add_argument("--device", default=None)
    lc.add_argument("--threads", type=int, default=None)
    lc.add_argument("--json", default=None, help="write the results here")
    lc.add_argument("--html", default=None, help="write the plotly figure here")
    lc.set_defaults(func=cmd_learning_curve)
