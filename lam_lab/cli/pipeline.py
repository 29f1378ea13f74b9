"""`lam-lab pipeline [--config FILE] [--quick|--tiny] [--set STAGE.KEY=VALUE ...] [--device cpu|cuda] [--out DIR]`."""

from __future__ import annotations

import argparse

from lam_lab.cli.common import add_set, overrides


def cmd_pipeline(args: argparse.Namespace) -> int:
    """Run the whole pipeline headless; a re-run skips unchanged stages."""
    from lam_lab.pipeline import run_pipeline
    from lam_lab.pipeline.config import load_pipeline_config

    scale = "tiny" if args.tiny else ("quick" if args.quick else "default")
    cfg = load_pipeline_config(args.config, scale, overrides(args, {}))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    res = run_pipeline(cfg, out=args.out, device=args.device, progress=not args.quiet)
    print(f"done in {res.seconds / 60:.1f} min; open {res.report}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``pipeline`` verb."""
    p = subparsers.add_parser("pipeline",
                              help="data → pre-training → fine-tune/Δ → distillation → reactive MD → report.html")
    p.add_argument("--config", default=None, help="YAML overriding any stage setting (see lam_lab/pipeline/config.py)")
    p.add_argument("--quick", action="store_true", help="small honest settings for 2 CPU cores (≈ 15 min)")
    p.add_argument("--tiny", action="store_true", help="smoke-test settings (a couple of minutes; numbers meaningless)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--out", default="lam_lab_runs/pipeline",
                   help="output folder (re-runs resume and skip finished stages)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    add_set(p, "finetune.steps=500 --set distill.rounds=2")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_pipeline)
