"""`lam-lab finetune [DATA] [--config FILE] [--set KEY=VALUE ...]`: fine-tune, Δ-ML, AtomFT, FF pre-training.

The run file is a :class:`lam_lab.finetune.FinetuneConfig` plus where the data come from (``data``,
``validation``, ``info_split``), an optional force-field pre-training (``pretrain``) and ``out_dir``.
Its class, :class:`FinetuneRun`, is built on first use: ``lam_lab.finetune`` imports torch, and the
other verbs should not wait for that.
"""

from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lam_lab.cli.common import UNSET, add_set, float_or_str, int_or_str, none_or_str, overrides
from lam_lab.config import ConfigError, Overrides, load_config
from lam_lab.train.config import TrainConfig

FLAGS = {"data": "data", "pretrained": "pretrained", "mode": "mode", "label": "label", "baseline": "delta.baseline",
         "branch": "branch", "frames": "frames", "freeze": "freeze", "replay": "replay.weight",
         "new_elements": "new_elements", "alpha": "atomft.alpha", "preset": "preset", "validation": "validation",
         "info_split": "info_split", "seed": "seed", "steps": "train.steps", "minutes": "train.minutes",
         "device": "train.device", "out": "out_dir"}


@dataclass
class PretrainSpec:
    """Force-field pre-training before the fine-tune (seed 003): data set, label, frames, preset, trainer."""

    data: str = "water-ff"
    label: str | None = None
    frames: int | None = None
    preset: str = "dpa2-small"
    train: TrainConfig = field(default_factory=TrainConfig)


@functools.cache
def run_class() -> type:
    """:class:`FinetuneRun`: a ``lam-lab finetune`` run file, the FinetuneConfig and data, pre-training, output."""
    from lam_lab.finetune import FinetuneConfig

    @dataclass
    class FinetuneRun(FinetuneConfig):
        """A ``lam-lab finetune`` run file: the FinetuneConfig and the data, pre-training and output folder."""

        data: str | None = None  # downstream data: built-in name or file
        validation: float | str | None = None  # a fraction split off (seeded) or another source
        info_split: bool = False  # use the frames' own info['split'] (train / val) instead
        pretrain: PretrainSpec | None = None
        out_dir: str = "auto"  # a new lam_lab_runs/finetune-<time> folder per run

    FinetuneRun.__qualname__ = "FinetuneRun"
    return FinetuneRun


def __getattr__(name: str) -> type:
    """``FinetuneRun`` (and its old name ``FinetuneSpec``), built on first use."""
    if name in ("FinetuneRun", "FinetuneSpec"):  # FinetuneSpec: its name before it became a FinetuneConfig
        return run_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_run(path: str | Path | None, changes: Overrides = None) -> Any:
    """The run file (if given) with overrides on top (``{"a.b": v}`` or ``"a.b=v"``); bad keys name their path."""
    spec = load_config(path, run_class(), changes, what="fine-tuning run file")
    if spec.data is None:
        raise ConfigError("name the downstream data: lam-lab finetune DATA (or data: in the config)",
                          source=None if path is None else str(path), field="data")
    return spec


def load_spec(path: str | None, args: argparse.Namespace) -> Any:
    """The run spec from a YAML file (if given) with the command line's ``--set`` and flags on top."""
    return load_run(path, overrides(args, FLAGS, nullable=("pretrained",)))


def _splits(spec: Any, source: str | None):
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
    replay_data = None
    if args.config is None and spec.mode == "delta" and spec.pretrained and spec.pretrain is None:
        spec, replay_data = _delta_continuation(spec, args)
    train_ds, val = _splits(spec, args.config)
    out: str | Path = spec.out_dir
    fresh = out == "auto"
    if args.resume and (fresh or spec.pretrain is not None):
        raise ConfigError("--resume continues the stopped fine-tune in its run folder: name it with --out DIR"
                          if fresh else "--resume continues a fine-tune, not one with force-field pre-training "
                          "(pretrain:); run it again without --resume", source=args.config, field="out_dir")
    if fresh:  # a new folder: a second run never lands on the first one's files
        from lam_lab.train.rundir import auto_dir

        out = auto_dir(prefix="finetune")
    try:
        res = _run(spec, train_ds, val, out, not args.quiet, replay_data, args.resume)
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


def _delta_continuation(spec: Any, args: argparse.Namespace) -> tuple[Any, Any]:
    """A Δ model continued from the command line alone: the API's few-shot recipe (:mod:`lam_lab.continuation`) for
    the flags not given, and the data it replays; other models: the spec unchanged."""
    from lam_lab.continuation import continuation_defaults, describe, own_data, shipped_name
    from lam_lab.delta import delta_spec
    from lam_lab.transfer import resolve_pretrained

    base, source = resolve_pretrained(spec.pretrained)
    if delta_spec(base) is None:
        return spec, None
    given, name = overrides(args, FLAGS, nullable=("pretrained",)), shipped_name(base, source)
    data = own_data(name)
    defaults = continuation_defaults(given, data is not None)
    if defaults:
        print(describe(defaults, name))
    return load_run(None, {**defaults, **given}), data


def _run(spec: Any, train_ds: Any, val: Any, out: str | Path, progress: bool, replay_data: Any = None,
         resume: bool = False) -> Any:
    """``finetune`` (after force-field pre-training when the spec asks for it); its FinetuneResult."""
    from lam_lab.finetune import ff_pretrain_finetune, finetune, finetune_config

    config = finetune_config(spec)
    if spec.pretrain is None:
        return finetune(train_ds, config, validation=val, out_dir=out, progress=progress, replay_data=replay_data,
                        resume=resume)
    p = spec.pretrain
    both = ff_pretrain_finetune(train_ds, pretrain_data=p.data, pretrain_label=p.label, preset=p.preset,
                                pretrain_frames=p.frames, pretrain_config=p.train, out_dir=out, seed=spec.seed,
                                progress=progress, config=config, validation=val)
    print(f"force-field pre-training: {both.pretrain.steps} steps on {p.data}")
    return both.finetuned


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``finetune`` verb."""
    ft = subparsers.add_parser("finetune", help="fine-tune / Δ-ML / AtomFT from a pre-trained model")
    ft.add_argument("data", nargs="?", default=None, help="downstream data: built-in name or file")
    ft.add_argument("--config", default=None,
                    help="YAML run spec (configs/finetune-*.yaml, configs/ff-pretrain-*.yaml)")
    ft.add_argument("--pretrained", type=none_or_str, default=UNSET,
                    help="shipped name, model file, or 'none' (from scratch)")
    ft.add_argument("--mode", default=None, help="finetune, delta, atomft or scratch")
    ft.add_argument("--label", default=None, help="high-level label set (default: the data's default)")
    ft.add_argument("--baseline", default=None, help="baseline label set for Δ (default gfn2-xtb)")
    ft.add_argument("--branch", default=None, help="pre-trained head to start from (default: best zero-shot)")
    ft.add_argument("--frames", type=int, default=None, help="use N training frames (seeded subset)")
    ft.add_argument("--freeze", type=int_or_str, default=None, help="none, descriptor, or a number of repformer layers")
    ft.add_argument("--replay", type=float, default=None, help="weight of replayed pre-training tasks")
    ft.add_argument("--new-elements", dest="new_elements", choices=["error", "init"], default=None)
    ft.add_argument("--alpha", type=float, default=None, help="AtomFT bound (eV per atom)")
    ft.add_argument("--preset", default=None, help="architecture for --mode scratch")
    ft.add_argument("--validation", type=float_or_str, default=None, help="fraction to split off, or a data source")
    ft.add_argument("--info-split", dest="info_split", action="store_const", const=True, default=None,
                    help="use the frames' info['split'] train/val")
    ft.add_argument("--seed", type=int, default=None)
    ft.add_argument("--steps", type=int, default=None)
    ft.add_argument("--minutes", type=float, default=None)
    ft.add_argument("--device", default=None)
    ft.add_argument("--out", default=None, help="run folder (default: a new lam_lab_runs/finetune-<time>)")
    ft.add_argument("--resume", action="store_true", help="continue the stopped run in --out from its last checkpoint")
    add_set(ft, "train.lr=0.001 --set replay.frames=200")
    ft.add_argument("--quiet", action="store_true")
    ft.set_defaults(func=cmd_finetune)
