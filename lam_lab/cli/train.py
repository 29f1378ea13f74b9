"""`lam-lab train CONFIG` (a RunConfig file, ``--set`` any key) and `lam-lab test MODEL DATASET`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lam_lab.cli.common import add_set, overrides

TRAIN_FLAGS = {"steps": "train.steps", "minutes": "train.minutes", "out": "out_dir", "device": "train.device",
               "resume": "resume"}


def cmd_train(args: argparse.Namespace) -> int:
    """Train from a YAML/TOML run file; config errors are reported before any training."""
    from lam_lab.train.run import run_file

    result = run_file(args.config, overrides(args, TRAIN_FLAGS), progress=not args.quiet)
    print(f"trained {result.steps} steps in {result.wall_time_s:.1f} s" + (" (stopped)" if result.stopped else ""))
    if result.metrics is not None:
        print(result.metrics)
    for what, path in (("model", result.final), ("best", result.best), ("checkpoint", result.checkpoint)):
        if path is not None:
            print(f"{what}: {path}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    """Print the error table of a saved model on one or more data sets (built-in names or files)."""
    from lam_lab.models import load
    from lam_lab.train.metrics import evaluate
    from lam_lab.train.run import load_source

    model = load(args.model)
    sets = {}
    for src in args.dataset:
        ds = load_source(src, "dataset")
        sets[ds.name if ds.name not in sets else src] = ds
    table = evaluate(model, sets, head=args.head, label=args.label, batch_size=args.batch_size, device=args.device)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(table.to_dict(), indent=2))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``train`` and ``test`` verbs."""
    tr = subparsers.add_parser("train", help="train a model from a YAML/TOML run file")
    tr.add_argument("config", help="run file (see configs/*.yaml)")
    tr.add_argument("--steps", type=int, default=None, help="override train.steps")
    tr.add_argument("--minutes", type=float, default=None, help="override train.minutes (wall-time budget)")
    tr.add_argument("--out", default=None, help="override out_dir")
    tr.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: automatic)")
    tr.add_argument("--resume", action="store_const", const=True, default=None,
                    help="continue from the newest checkpoint in out_dir")
    add_set(tr, "train.lr=0.005")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=cmd_train)

    te = subparsers.add_parser("test", help="error table (RMSE/MAE, WARMSE) of a model on data sets")
    te.add_argument("model", help="model file (lam_lab.save / model.pt / best.pt)")
    te.add_argument("dataset", nargs="+", help="built-in data set names or files")
    te.add_argument("--head", default=None)
    te.add_argument("--label", default=None)
    te.add_argument("--batch-size", type=int, default=8)
    te.add_argument("--device", default=None)
    te.add_argument("--json", default=None, help="also write the table as JSON here")
    te.set_defaults(func=cmd_test)
