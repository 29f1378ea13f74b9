"""`lam-lab finetune` (fine-tune / Δ-ML / AtomFT / FF pre-training → fine-tune) and `lam-lab learning-curve`."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lam_lab.train.config import ConfigError, TrainConfig


@dataclass
class PretrainSpec:
    """Force-field pre-training before the fine-tune (seed 003): data set, label, frames, steps."""

    data: str = "water-ff"
    label: str | None = None
    frames: int | None = None
    preset: str = "dpa2-small"
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class FinetuneSpec:
    """A ``lam-lab finetune --config`` file: the arguments of ``lam_lab.finetune`` plus data sources."""

    data: str
    pretrained: str | None = "lam-chon-small"
    mode: str = "finetune"
    label: str | None = None
    baseline: str = "gfn2-xtb"
    branch: str | None = None
    frames: int | None = None
    freeze: str | int = "none"
    replay: float = 0.0
    new_elements: str = "error"
    alpha: float = 0.1
    preset: str = "dpa2-small"
    validation: float | str | None = None  # a fraction split off (seeded) or another source
    info_split: bool = False  # use the frames' own info['split'] (train / val) instead
    seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)
    pretrain: PretrainSpec | None = None
    out_dir: str = "auto"  # a new lam_lab_runs/finetune-<time> folder per run


def load_spec(path: str | None, args: argparse.Namespace) -> FinetuneSpec:
    """The run spec from a YAML file (if given) with command-line flags on top; bad keys name their path."""
    from lam_lab.train.config import from_dict, read_config_file

    raw: dict[str, Any] = {}
    if path:
        raw = read_config_file(path)
    for f in fields(FinetuneSpec):
        value = getattr(args, f.name, None)
        if value is not None and f.name not in ("train", "pretrain"):
            raw[f.name] = value
    if args.pretrained is not None and args.pretrained.lower() == "none":
        raw["pretrained"] = None
    if args.steps is not None:
        raw.setdefault("train", {})["steps"] = args.steps
    if args.minutes is not None:
        raw.setdefault("train", {})["minutes"] = args.minutes
    if args.device is not None:
        raw.setdefault("train", {})["device"] = args.device
    if "data" not in raw:
        raise ConfigError("name the downstream data: lam-lab finetune DATA (or data: in the config)", source=path, field="data")
    spec = from_dict(FinetuneSpec, raw, "", path)
    spec.train.check(path)
    return spec


def _splits(spec: FinetuneSpec, source: str | None):
    from lam_lab.train.data import split_validation
    from lam_lab.train.run import load_source

    base = Path(source).parent if source else None
    ds = load_source(spec.data, "data", base, source)
    if spec.info_split:
        return ds.where(split="train"), ds.where(split="val") or None
    if isinstance(spec.validation, str):
        return ds, load_source(spec.validation, "validation", base, source)
    return split_validation(ds, spec.validation, seed=spec.seed)


def cmd_finetune(args: argparse.Namespace) -> int:
    """Fine-tune from a pre-trained model (or FF pre-train first) and print the validation table."""
    spec = load_spec(args.config, args)
    train_ds, val = _splits(spec, args.config)
    kwargs = dict(mode=spec.mode, label=spec.label, baseline=spec.baseline, branch=spec.branch, frames=spec.frames,
                  freeze=spec.freeze, replay=spec.replay, new_elements=spec.new_elements, alpha=spec.alpha,
                  validation=val, config=spec.train)
    out = args.out or spec.out_dir
    fresh = out == "auto"
    if fresh:  # a new folder: a second run never lands on the first one's files
        from lam_lab.train.rundir import auto_dir

        out = auto_dir(prefix="finetune")
    try:
        res = _run(spec, train_ds, out, not args.quiet, kwargs)
    except BaseException:
        if fresh:  # a run that failed before writing anything leaves no empty folder behind
            from lam_lab.train.rundir import discard_if_empty

            discard_if_empty(out)
        raise
    print(f"{res.mode}: {res.train.steps} steps, head {res.head!r} from "
          f"{'branch ' + repr(res.branch) if res.branch else 'a fresh head'}, label {res.label!r}")
    if res.metrics is not None:
        print(res.metrics)
    if res.path is not None:
        print(f"model: {res.path}")
    return 0


def _run(spec: FinetuneSpec, train_ds: Any, out: str | Path, progress: bool, kwargs: dict[str, Any]) -> Any:
    """``finetune`` (after force-field pre-training when the spec asks for it); its FinetuneResult."""
    from lam_lab.finetune import ff_pretrain_finetune, finetune

    if spec.pretrain is None:
        return finetune(train_ds, pretrained=spec.pretrained, preset=spec.preset, out_dir=out, seed=spec.seed,
                        progress=progress, **kwargs)
    p = spec.pretrain
    both = ff_pretrain_finetune(train_ds, pretrain_data=p.data, pretrain_label=p.label, preset=p.preset,
                                pretrain_frames=p.frames, pretrain_config=p.train, out_dir=out, seed=spec.seed,
                                progress=progress, **kwargs)
    print(f"force-field pre-training: {both.pretrain.steps} steps on {p.data}")
    return both.finetuned


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
                           on_row=lambda r: print(f"  {r.method} N={r.n}: F RMSE {r.f_rmse:.1f} meV/Å", flush=True), **kw)
    print(curve.table())
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(curve.to_dict(), indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.html:
        curve.figure().write_html(args.html, include_plotlyjs="cdn")
        print(f"wrote {args.html}")
    return 0


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``finetune`` and ``learning-curve`` verbs."""
    ft = subparsers.add_parser("finetune", help="fine-tune / Δ-ML / AtomFT from a pre-trained model")
    ft.add_argument("data", nargs="?", default=None, help="downstream data: built-in name or file")
    ft.add_argument("--config", default=None, help="YAML run spec (configs/finetune-*.yaml, configs/ff-pretrain-*.yaml)")
    ft.add_argument("--pretrained", default=None, help="shipped name, model file, or 'none' (from scratch)")
    ft.add_argument("--mode", choices=["finetune", "delta", "atomft", "scratch"], default=None)
    ft.add_argument("--label", default=None, help="high-level label set (default: the data's default)")
    ft.add_argument("--baseline", default=None, help="baseline label set for Δ (default gfn2-xtb)")
    ft.add_argument("--branch", default=None, help="pre-trained head to start from (default: best zero-shot)")
    ft.add_argument("--frames", type=int, default=None, help="use N training frames (seeded subset)")
    ft.add_argument("--freeze", default=None, help="none, descriptor, or a number of repformer layers")
    ft.add_argument("--replay", type=float, default=None, help="weight of replayed pre-training tasks")
    ft.add_argument("--new-elements", dest="new_elements", choices=["error", "init"], default=None)
    ft.add_argument("--alpha", type=float, default=None, help="AtomFT bound (eV per atom)")
    ft.add_argument("--preset", default=None, help="architecture for --mode scratch")
    ft.add_argument("--validation", default=None, help="fraction to split off, or a data source")
    ft.add_argument("--info-split", dest="info_split", action="store_const", const=True, default=None,
                    help="use the frames' info['split'] train/val")
    ft.add_argument("--seed", type=int, default=None)
    ft.add_argument("--steps", type=int, default=None)
    ft.add_argument("--minutes", type=float, default=None)
    ft.add_argument("--device", default=None)
    ft.add_argument("--out", default=None, help="run folder (default: a new lam_lab_runs/finetune-<time>)")
    ft.add_argument("--quiet", action="store_true")
    ft.set_defaults(func=cmd_finetune)
    _float_or_str(ft, "validation")

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


def _float_or_str(parser: argparse.ArgumentParser, dest: str) -> None:
    """Make ``--dest`` a float when it parses as one (a split fraction), else keep the string (a source)."""
    for action in parser._actions:
        if action.dest == dest:
            action.type = lambda s: float(s) if s.replace(".", "", 1).isdigit() else s
