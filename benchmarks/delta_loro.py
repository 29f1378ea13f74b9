"""Leave-reactions-out Δ-ML on rxn-dft: does Δ on GFN2-xTB halve xTB's error on reactions it never saw?

The held-out reactions are rxn-dft's test split (whole reactions, one per kind; no frame of them is in
training, nor in the pre-trained model's data). One Δ model (ωB97X/6-31G(d) − GFN2-xTB, the shipped Δ
model's recipe, :mod:`lam_lab.pretrained.delta_model`) is trained on the train split, validated on the
val split, and scored on every held-out reaction against ωB97X with GFN2-xTB added back, next to GFN2-xTB
alone on the same frames: force RMSE (meV/Å), energy RMSE with per-element offsets removed (meV/atom),
barrier error at the DFT TS (eV). ``--also R1,R2`` additionally holds out training reactions one at a time
(one model each). In-distribution: force RMSE on the val frames of the training reactions.
Headlines (mean over held-out reactions of model / xTB): ``force_rmse_over_xtb``, ``barrier_err_over_xtb``
(targets ≤ 0.5), with the ratio of summed errors beside them (robust where xTB's own error is near zero).
The first run's ``in_distribution.by_source`` splits the val and train frames' errors by frame source (thermal MD
around the TS, normal-mode samples, IRC, DFT and xTB stationary points, ...) and ``val_by_reaction`` the val frames'
by reaction, each with its share of the squared error: where the in-distribution error sits.

``--model NAME|FILE[,FILE...]`` scores a Δ model already trained on the train split with this recipe (the
shipped ``lam-chon-delta-heldout`` is, and its card names the same held-out reactions; ``lam-chon-delta`` is
not: it was trained on every reaction) instead of training one; several
comma-separated models are scored as one `ll.Committee` (energies and forces averaged).

Usage: python benchmarks/delta_loro.py [--quick] [--data rxn-dft|FILE] [--minutes M | --steps N]
    [--pretrained lam-chon-small|none] [--also a,b] [--exclude c,d] [--energy-weight 10]
    [--pretrained none --arch repinit_rcut=4,repformer_layers=1]
    [--model lam-chon-delta-heldout]
    -> benchmarks/results/delta_loro.json
       python benchmarks/delta_loro.py --reaction-curve 3,5,10,15,17 --pretrained none --steps 1500
           -> benchmarks/results/delta_loro-reaction-curve.json (held-out ratios vs the number of training reactions)
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


def train_and_score(data, recipe, held_out: set[str] | None, seed: int, only: list[str] | None = None,
                    sources: bool = False) -> tuple[list[dict], dict, float]:
    """A Δ model trained without ``held_out`` (None: the set's test split; ``only``: just these training reactions);
    rows per held-out reaction, val row (with ``sources``: its ``by_source`` rows for the val and train frames)."""
    import lam_lab as ll
    from lam_lab.pretrained.delta_card import one_group, reaction_rows

    if held_out is None:
        train, val, test = (data.where(split=s) for s in ("train", "val", "test"))
        if only is not None:
            train, val = train.where(reaction=only), val.where(reaction=only)
    else:
        keep = sorted({f.info["reaction"] for f in data} - held_out)
        train, val = data.where(split="train", reaction=keep), data.where(split="val", reaction=keep)
        test = data.where(reaction=sorted(held_out))
    t0 = time.perf_counter()
    ft = ll.finetune(train, pretrained=recipe.pretrained, mode="delta", label=recipe.label, baseline=recipe.baseline,
                     preset=recipe.preset, validation=val, minutes=recipe.minutes, steps=recipe.steps, out_dir=None,
                     progress=False, seed=seed, config=recipe.train_config())
    rows = reaction_rows(ft.model, test, recipe.label, recipe.baseline)
    inside = reaction_rows(ft.model, one_group(val), recipe.label, recipe.baseline)[0]
    if sources:
        inside["by_source"] = {"val": rows_by(ft.model, val, recipe), "train": rows_by(ft.model, train, recipe)}
        inside["val_by_reaction"] = val_reaction_rows(ft.model, val, recipe)
    for r in rows:
        r.update(n_train=len(train), train_steps=ft.train.steps)
    return rows, inside, time.perf_counter() - t0


def score_trained(data, model_refs: list[str], recipe) -> tuple[list[dict], dict, float]:
    """Rows for the test split and the val row of already trained Δ models (built-in names or files): one
    model, or the ensemble mean of several."""
    import lam_lab as ll
    from lam_lab.committee import Committee
    from lam_lab.pretrained.delta_card import first_selection, one_group, reaction_rows
    from lam_lab.pretrained.delta_model import earlier_card

    for r in model_refs:  # a shipped model that trained on the test reactions cannot score transfer to them
        if r in ll.pretrained.available() and not ll.pretrained.card(r, as_dict=True)["data"]["held_out_reactions"]:
            raise SystemExit(f"{r} was trained on every reaction of {recipe.data}: nothing is held out; score its "
                             "train-split twin (lam-chon-delta-heldout) instead")
    models = [ll.pretrained.load(r) if r in ll.pretrained.available() else ll.load(r) for r in model_refs]
    val, test = data.where(split="val"), data.where(split="test")
    scored = models[0] if len(models) == 1 else Committee(models)  # several: their mean is scored
    rows = reaction_rows(scored, test, recipe.label, recipe.baseline)
    inside = reaction_rows(scored, one_group(val), recipe.label, recipe.baseline)[0]
    train = data.where(split="train")
    inside["by_source"] = {"val": rows_by(scored, val, recipe), "train": rows_by(scored, train, recipe)}
    if any("closed_shell" in f.info for f in data):  # a set on the lowest solution: broken-symmetry frames apart
        inside["by_closed_shell"] = {"val": rows_by(scored, val, recipe, "closed_shell"),
                                     "test": rows_by(scored, test, recipe, "closed_shell"),
                                     "train": rows_by(scored, train, recipe, "closed_shell")}
    inside["val_by_reaction"] = val_reaction_rows(scored, val, recipe)
    first = first_selection(val)
    if len(first) < len(val):  # a set with extra rounds: its first selection's val frames compare with earlier sets
        inside["first_selection_val"] = reaction_rows(scored, one_group(first), recipe.label, recipe.baseline)[0]
        inside["first_selection_val_by_reaction"] = val_reaction_rows(scored, first, recipe)
    cards = [earlier_card(m) for m in model_refs]  # a subset-trained model's card knows its own frame count
    n_train = [c.get("data", {}).get("train", len(data.where(split="train"))) for c in cards]
    for r in rows:
        r.update(n_train=n_train[0] if len(set(n_train)) == 1 else n_train,
                 model=" + ".join(model_label(m) for m in model_refs))
    return rows, inside, 0.0


def model_label(ref: str) -> str:
    """A shipped name as is; a file as its run folder and name (every stage writes a finetuned.pt)."""
    return "/".join(Path(ref).parts[-2:]) if Path(ref).is_file() else ref


def rows_by(model, frames, recipe, key: str = "source") -> list[dict]:
    """Force and energy errors of ``model`` (or a committee) and of the baseline alone on ``frames``, one row per value
    of ``info[key]``: frame source (thermal MD around the TS, normal-mode samples, IRC, stationary points, ...) or
    closed-shell label kind (``closed_shell``: broken-symmetry, stable, screened, ...): where the error sits."""
    from lam_lab.data.dataset import Dataset
    from lam_lab.pretrained.delta_card import one_group, reaction_rows

    rows = []
    for value in sorted({str(f.info.get(key, "?")) for f in frames}):
        part = Dataset([f for f in frames if str(f.info.get(key, "?")) == value], frames.name)
        row = reaction_rows(model, one_group(part), recipe.label, recipe.baseline)[0]
        rows.append({key: value, **{k: v for k, v in row.items() if k != "reaction" and "barrier" not in k}})
    return rows


def val_reaction_rows(model, val, recipe) -> list[dict]:
    """Force errors on each training reaction's val frames (model and baseline alone), largest share first:
    ``share`` is the reaction's part of the val set's squared force error (atoms × MSE), so a tail shows."""
    from lam_lab.pretrained.delta_card import reaction_rows

    rows = [{k: v for k, v in r.items() if "barrier" not in k} for r in
            reaction_rows(model, val, recipe.label, recipe.baseline)]
    atoms = {}
    for f in val:
        atoms[f.info["reaction"]] = atoms.get(f.info["reaction"], 0) + len(f)
    for r in rows:
        r["atoms"] = atoms[r["reaction"]]
    total = sum(r["atoms"] * r["model_force_rmse_mev_per_A"] ** 2 for r in rows)
    for r in rows:
        r["share"] = r["atoms"] * r["model_force_rmse_mev_per_A"] ** 2 / total
    return sorted(rows, key=lambda r: -r["share"])


def reaction_curve(data, recipe, sizes: list[int], seeds: list[int]) -> list[dict]:
    """Held-out ratios against the number of training reactions (random subsets of the train split's reactions,
    one per size and seed; the same held-out reactions throughout): is the number of reactions the limit?"""
    import random

    names = sorted({str(f.info["reaction"]) for f in data.where(split="train")})
    out = []
    for n in sizes:
        for s in seeds if n < len(names) else seeds[:1]:
            keep = sorted(random.Random(s).sample(names, min(n, len(names))))
            rows, inside, seconds = train_and_score(data, recipe, None, 0, only=keep)
            out.append({"reactions": len(keep), "subset_seed": s, "trained_on": keep, "frames": rows[0]["n_train"],
                        **headline(rows), "val_force_rmse_mev_per_A": inside["model_force_rmse_mev_per_A"],
                        "seconds": round(seconds, 1)})
            print(f"{len(keep):>3} reactions (subset {s}): F ratio {out[-1]['force_rmse_over_xtb']:.3f}, "
                  f"summed {out[-1]['force_rmse_sum_over_xtb']:.3f}", flush=True)
    return out


def arch_config(spec: str):
    """dpa2-small's ModelConfig with ``key=value`` fields changed (numbers parsed as int or float)."""
    import dataclasses

    from lam_lab.models import PRESETS

    changes = {}
    for item in (x for x in spec.split(",") if x):
        key, value = item.split("=")
        changes[key.strip()] = float(value) if "." in value else int(value)
    return dataclasses.replace(PRESETS["dpa2-small"], **changes)


def headline(rows: list[dict]) -> dict:
    """Mean per-reaction ratios model/xTB and ratios of summed errors (forces, barriers, energies)."""
    import numpy as np

    def ratios(m: str, x: str) -> tuple[float | None, float | None]:
        pairs = [(r[m], r[x]) for r in rows if r[m] == r[m] and r[x] == r[x] and r[x] > 0]
        if not pairs:
            return None, None
        a, b = np.array(pairs).T
        return float(np.mean(a / b)), float(a.sum() / b.sum())

    f_mean, f_sum = ratios("model_force_rmse_mev_per_A", "baseline_force_rmse_mev_per_A")
    b_mean, b_sum = ratios("model_barrier_err_ev", "baseline_barrier_err_ev")
    worse = [r["reaction"] for r in rows if r["model_energy_rmse_offset_removed_mev_per_atom"]
             > 1.1 * r["baseline_energy_rmse_offset_removed_mev_per_atom"]]
    return {"force_rmse_over_xtb": f_mean, "barrier_err_over_xtb": b_mean, "force_rmse_sum_over_xtb": f_sum,
            "barrier_err_sum_over_xtb": b_sum, "energy_worse_than_xtb_by_10pct": worse}


def main(argv: list[str] | None = None) -> int:
    from lam_lab.data.io import load_source
    from lam_lab.pretrained.delta_model import DeltaRecipe

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="30 steps (checks the wiring)")
    p.add_argument("--data", default="rxn-dft", help="built-in name or a file (e.g. an interim rxn-dft build)")
    p.add_argument("--minutes", type=float, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--pretrained", default="lam-chon-small", help="shipped model, model file, or 'none' (scratch)")
    p.add_argument("--also", default="", help="training reactions to hold out one at a time as well (a model each)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default=None, help="score this trained Δ model (name or file) instead of training; "
                   "several, comma-separated: their ensemble mean")
    p.add_argument("--reaction-curve", default="", help="sizes, e.g. 3,5,10,15,17: train on that many of the train "
                   "split's reactions (random subsets) and score the same held-out reactions")
    p.add_argument("--curve-seeds", default="0,1,2", help="subsets per size")
    p.add_argument("--energy-weight", type=float, default=1.0, help="multiple of the trainer's energy prefactors "
                   "(1: the default, force-heavy loss; barriers are energy differences)")
    p.add_argument("--exclude", default="", help="training reactions left out of training (not scored), e.g. the kin "
                   "of a held-out reaction: does transfer come from a close relative?")
    p.add_argument("--arch", default="", help="with --pretrained none: dpa2-small with these ModelConfig fields, e.g. "
                   "repinit_rcut=4,repformer_layers=1 (does a more local Δ model transfer better?)")
    p.add_argument("--out", default=None, help="result name (default delta_loro[-quick])")
    args = p.parse_args(argv)
    data = load_source(args.data)
    recipe = DeltaRecipe(data=args.data, pretrained=None if args.pretrained == "none" else args.pretrained,
                         minutes=None if (args.quick or args.steps) else (args.minutes or DeltaRecipe.minutes),
                         steps=30 if args.quick else args.steps)
    if args.arch:
        if recipe.pretrained is not None:
            raise SystemExit("--arch builds a new model: use it with --pretrained none")
        recipe.preset = arch_config(args.arch)
    recipe.energy_weight = args.energy_weight
    if args.reaction_curve:
        curve = reaction_curve(data, recipe, [int(x) for x in args.reaction_curve.split(",")],
                               [int(x) for x in args.curve_seeds.split(",")])
        write_result(args.out or "delta_loro-reaction-curve", {"curve": curve, "settings": {
            **{k: v for k, v in vars(recipe).items() if k not in ("preset", "name", "heldout_from")},
            "preset": str(recipe.preset),
            "held_out": sorted({str(f.info["reaction"]) for f in data.where(split="test")})}})
        return 0
    if args.model:
        rows, inside, seconds = score_trained(data, args.model.split(","), recipe)
    else:
        excluded = {n for n in args.exclude.split(",") if n}
        only = sorted({str(f.info["reaction"]) for f in data.where(split="train")} - excluded) if excluded else None
        rows, inside, seconds = train_and_score(data, recipe, None, args.seed, only=only, sources=True)
    runs = [{"held_out": [r["reaction"] for r in rows], "seconds": seconds, "in_distribution": inside}]
    for name in [n for n in args.also.split(",") if n]:
        more, more_inside, s = train_and_score(data, recipe, {name}, args.seed)
        rows += more
        runs.append({"held_out": [name], "seconds": s, "in_distribution": more_inside})
    for r in rows:
        print(f"{r['reaction']:<26} F {r['model_force_rmse_mev_per_A']:6.0f} vs xTB "
              f"{r['baseline_force_rmse_mev_per_A']:6.0f} meV/Å   "
              f"E {r['model_energy_rmse_offset_removed_mev_per_atom']:5.1f} vs "
              f"{r['baseline_energy_rmse_offset_removed_mev_per_atom']:5.1f} meV/atom   |Δ barrier| "
              f"{r['model_barrier_err_ev']:.3f} vs {r['baseline_barrier_err_ev']:.3f} eV", flush=True)
    for key, what in (("source", "source"), ("closed_shell", "closed-shell label kind")):
        for split, srows in inside.get(f"by_{key}", {}).items():
            print(f"{split} frames by {what}: " + "; ".join(
                f"{r[key]} ({r['frames']}) {r['model_force_rmse_mev_per_A']:.0f} vs xTB "
                f"{r['baseline_force_rmse_mev_per_A']:.0f}" for r in srows), flush=True)
    if "val_by_reaction" in inside:
        print("val frames, largest shares of the squared force error: " + "; ".join(
            f"{r['reaction']} {r['share']:.0%} ({r['model_force_rmse_mev_per_A']:.0f} vs xTB "
            f"{r['baseline_force_rmse_mev_per_A']:.0f})" for r in inside["val_by_reaction"][:5]), flush=True)
    head = headline(rows)
    print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in head.items()},
          f"in-distribution F {inside['model_force_rmse_mev_per_A']:.0f} vs xTB "
          f"{inside['baseline_force_rmse_mev_per_A']:.0f} meV/Å")
    write_result(args.out or ("delta_loro-quick" if args.quick else "delta_loro"), {
        **head, "val_force_rmse_mev_per_A": inside["model_force_rmse_mev_per_A"],
        "val_xtb_force_rmse_mev_per_A": inside["baseline_force_rmse_mev_per_A"], "rows": rows, "runs": runs,
        "settings": {"recipe": "the scored model's own (its card)" if args.model else
                     {**vars(recipe), "preset": str(recipe.preset)}, "seed": args.seed,
                     "data": args.data, "excluded_from_training": args.exclude or None,
                     "training_reactions": sorted({str(f.info["reaction"]) for f in data.where(split="train")}
                                                  - set(args.exclude.split(","))),
                     "model": args.model and ",".join(model_label(m) for m in args.model.split(","))}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
