"""`lam-lab pretrain --recipe NAME [--set KEY=VALUE ...]`: reproduce (or scale up) a shipped pre-trained model."""

from __future__ import annotations

import argparse
import shutil

from lam_lab.cli.common import add_set, overrides

FLAGS = {"preset": "model.preset", "steps": "train.steps", "minutes": "train.minutes", "device": "train.device",
         "threads": "train.threads"}


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Train a recipe, evaluate, write model + card under --out; --install copies them into the package."""
    import torch

    from lam_lab.pretrained import FILES
    from lam_lab.pretrained.recipe import load_recipe, pretrain

    recipe = load_recipe(args.recipe, overrides(args, FLAGS))
    if args.frames:
        recipe = recipe.replace(frames=args.frames)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or f"lam_lab_runs/{recipe.name}"
    res = pretrain(recipe, out, resume=not args.restart, progress=not args.quiet)
    print(res.card_path.with_suffix(".md").read_text())
    print(f"model: {res.model_path}\ncard: {res.card_path}")
    if args.install:
        FILES.mkdir(parents=True, exist_ok=True)
        history = res.out_dir / f"{recipe.name}.history.json"
        for src in (res.model_path, res.card_path, res.card_path.with_suffix(".md"), history):
            shutil.copy2(src, FILES / src.name)
        print(f"installed into {FILES}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``pretrain`` verb."""
    p = subparsers.add_parser("pretrain", help="multi-task pre-training from a recipe (e.g. lam-chon-small)")
    p.add_argument("--recipe", default="lam-chon-small", help="shipped recipe name or a recipe YAML file")
    p.add_argument("--preset", default=None, help="scale up: another model preset (dpa2-medium, dpa2-paper)")
    p.add_argument("--steps", type=int, default=None, help="override the recipe's step budget")
    p.add_argument("--minutes", type=float, default=None, help="wall-time budget (min); with --steps, first to end")
    p.add_argument("--device", default=None, help="cpu, cuda (default: automatic)")
    p.add_argument("--frames", type=int, default=None, help="cap frames per task (tiny test runs)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", default=None, help="run folder (default lam_lab_runs/RECIPE); resumes from it")
    p.add_argument("--restart", action="store_true", help="ignore checkpoints in --out and start from step 0")
    p.add_argument("--install", action="store_true", help="copy the model and its card into lam_lab/pretrained/files")
    add_set(p, "train.lr=0.001 --set tasks.rxn-xtb.weight=2")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_pretrain)
