"""Leave-one-reaction-out Δ-ML on rxn-dft: does Δ on GFN2-xTB halve xTB's error on reactions it never saw?

For each held-out reaction: a Δ model (ωB97X/6-31G(d) − GFN2-xTB) is trained on every other reaction's
frames (train + val splits; the held-out reaction's frames are never seen), then scored on all of the
held-out reaction's frames against ωB97X with GFN2-xTB added back, next to GFN2-xTB alone on the same
frames: force RMSE (meV/Å), energy RMSE with a per-element offset removed (meV/atom) and the barrier
error at the DFT TS (eV; the frames with role ``ts`` and ``reactant``). In-distribution: the force
RMSE on the validation frames of the training reactions. Headlines (mean over held-out reactions of
model / xTB): ``force_rmse_over_xtb`` and ``barrier_err_over_xtb`` (targets ≤ 0.5).

Usage: python benchmarks/delta_loro.py [--quick] [--reactions a,b,...] [--steps N | --minutes M]
    [--pretrained lam-chon-small|none] -> benchmarks/results/delta_loro.json
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

DFT, XTB = "wb97x/6-31g*", "gfn2-xtb"


def _scores(model, frames) -> dict:
    """Model (baseline added back) and GFN2-xTB alone vs ωB97X on the same frames."""
    from lam_lab.evaluation import predict, reference, score

    m = score(predict(model, frames), frames, label=DFT)
    x = score(reference(frames, XTB), frames, label=DFT)
    out = {}
    for name, s in (("model", m), ("xtb", x)):
        out[f"{name}_force_rmse_mev_per_A"] = s.force_rmse_mev_per_A
        out[f"{name}_energy_rmse_offset_removed_mev_per_atom"] = s.energy_rmse_offset_removed_mev_per_atom
        out[f"{name}_barrier_err_eV"] = abs(s.barrier_err_ev) if s.barrier_err_ev == s.barrier_err_ev else None
    return out


def run_one(data, held_out: str, args) -> dict:
    """Train without ``held_out`` and score on it (and on the training reactions' validation frames)."""
    import lam_lab as ll

    others = sorted({f.info["reaction"] for f in data} - {held_out})
    train = data.where(split="train", reaction=others)
    val = data.where(split="val", reaction=others)
    test = data.where(reaction=held_out)
    pretrained = None if args.pretrained == "none" else args.pretrained
    t0 = time.perf_counter()
    ft = ll.finetune(train, pretrained=pretrained, mode="delta", label=DFT, steps=args.steps, minutes=args.minutes,
                     validation=val, out_dir=None, progress=False, seed=args.seed)
    row = {"held_out": held_out, "n_train": len(train), "n_test": len(test), "train_seconds": time.perf_counter() - t0}
    row.update(_scores(ft.model, list(test)))
    row["val_force_rmse_mev_per_A"] = _scores(ft.model, list(val))["model_force_rmse_mev_per_A"]
    for key in ("force_rmse_mev_per_A", "barrier_err_eV"):
        m, x = row.get(f"model_{key}"), row.get(f"xtb_{key}")
        row[f"{key.split('_')[0]}_ratio"] = (m / x) if m is not None and x else None
    return row


def main(argv: list[str] | None = None) -> int:
    import numpy as np


    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="two reactions, 30 steps (checks the wiring)")
    p.add_argument("--reactions", default=None, help="comma list of held-out reactions (default: every reaction)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--minutes", type=float, default=None)
    p.add_argument("--pretrained", default="lam-chon-small", help="shipped model, model file, or 'none' (scratch)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default="rxn-dft", help="built-in name or a file (e.g. an interim rxn-dft build)")
    p.add_argument("--out", default=None, help="result name (default delta_loro[-quick])")
    args = p.parse_args(argv)
    from lam_lab.data.io import load_source

    data = load_source(args.data)
    names = sorted({f.info["reaction"] for f in data})
    chosen = args.reactions.split(",") if args.reactions else names
    if args.quick:
        chosen, args.steps, args.minutes = chosen[:2], 30, None
    elif args.steps is None and args.minutes is None:
        args.minutes = 5.0
    rows = []
    for name in chosen:
        rows.append(run_one(data, name, args))
        r = rows[-1]
        print(f"{name:<26} F {r['model_force_rmse_mev_per_A']:7.1f} vs xTB {r['xtb_force_rmse_mev_per_A']:7.1f} meV/Å  "
              f"barrier err {r['model_barrier_err_eV']} vs {r['xtb_barrier_err_eV']} eV  "
              f"in-distribution F {r['val_force_rmse_mev_per_A']:.1f}", flush=True)

    def mean(key: str) -> float | None:
        vals = [r[key] for r in rows if r.get(key) is not None]
        return float(np.mean(vals)) if vals else None

    write_result(args.out or ("delta_loro-quick" if args.quick else "delta_loro"), {
        "force_rmse_over_xtb": mean("force_ratio"), "barrier_err_over_xtb": mean("barrier_ratio"),
        "val_force_rmse_mev_per_A": mean("val_force_rmse_mev_per_A"), "rows": rows,
        "settings": {"steps": args.steps, "minutes": args.minutes, "pretrained": args.pretrained, "seed": args.seed,
                     "data": args.data, "reactions": chosen}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
