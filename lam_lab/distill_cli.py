"""`lam-lab distill TEACHER SYSTEMS... [--config distill.yaml]`: distil a fine-tuned model into the fast student."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lam_lab.md.runner import MDConfig
from lam_lab.train.config import ConfigError, TrainConfig


def _md_default() -> MDConfig:
    from lam_lab.distill.explore import default_md_config

    return default_md_config()


@dataclass
class DistillSpec:
    """A distillation run file (YAML/TOML): every argument of ``lam_lab.distill`` plus the trainer and MD recipes.

    ``systems``: starting structures — files (extxyz, ASE-readable, lam_lab formats), built-in data set
    names, or ``smiles:CCO``; ``init_frames``: a file of seed geometries (relabelled by the teacher).
    """

    teacher: str | None = None
    systems: list[str] = field(default_factory=list)
    head: str | None = None
    student: str = "student"
    student_options: dict[str, Any] = field(default_factory=dict)
    trust: list[float] = field(default_factory=lambda: [0.1, 1.5])  # eV/Å
    temperatures: list[float] = field(default_factory=lambda: [300.0, 600.0])  # K
    rounds: int = 5
    md_steps: int = 200
    sample_every: int = 10
    max_new: int = 100
    train_steps: int = 500
    init_steps: int | None = None
    init_frames: str | None = None
    converge: float = 0.99
    seed: int = 0
    out_dir: str = "auto"  # a new lam_lab_runs/distill-<time> folder per run
    device: str | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    md: MDConfig = field(default_factory=_md_default)


def load_spec(path: str | Path | None, overrides: list[str] | None = None) -> DistillSpec:
    """A validated :class:`DistillSpec` from a YAML/TOML file (or the defaults) with ``key.path=value`` overrides."""
    from lam_lab.train.config import apply_override, from_dict, read_config_file

    raw: dict[str, Any] = {}
    source = str(path) if path is not None else "command line"
    if path is not None:
        raw = read_config_file(path, "distillation run file")
    for item in overrides or []:
        apply_override(raw, item, source)
    if isinstance(raw.get("md"), dict):  # MD keys refine the exploration default (Langevin), not MDConfig's NVE
        raw["md"] = {"ensemble": "langevin", "on_guard": "stop", **raw["md"]}
    spec = from_dict(DistillSpec, raw, "", source)
    spec.train.check(source)
    if len(spec.trust) != 2:
        raise ConfigError(f"trust must be [lo, hi] in eV/Å, got {spec.trust}", source=source, field="trust")
    return spec


def load_systems(specs: list[str]) -> list:
    """ASE Atoms of every system spec: ``smiles:...``, a built-in data set name, or a structure file."""
    from lam_lab.data import DataError

    atoms = []
    for spec in specs:
        if spec.startswith("smiles:"):
            from lam_lab.sampling import smiles_to_atoms

            atoms.extend(smiles_to_atoms(spec[len("smiles:"):]))
        else:
            atoms.extend(_source_atoms(spec))
    if not atoms:
        raise DataError("no starting structure: give SYSTEMS or 'systems:' in the run file", field="systems")
    return atoms


def _source_atoms(spec: str) -> list:
    """ASE Atoms of a built-in data set or a data/structure file (plain structure files are read by ASE)."""
    from ase.io import read as ase_read

    from lam_lab.data import DataError
    from lam_lab.data.errors import UnknownSourceError
    from lam_lab.data.io import load_source

    try:
        return [f.to_atoms() for f in load_source(spec)]
    except UnknownSourceError:
        raise DataError("system is neither smiles:..., a built-in data set nor an existing file", source=spec,
                        field="systems") from None
    except DataError as first:  # plain structure files without labels: ASE reads them
        try:
            return list(ase_read(spec, index=":"))
        except Exception as exc:  # ASE raises many kinds for files it cannot parse
            raise DataError(f"not a structure file lam_lab or ASE can read ({first.message}; ASE: "
                            f"{type(exc).__name__}: {exc})", source=spec, field="systems") from None


def cmd_distill(args: argparse.Namespace) -> int:
    """Run a distillation and print the round table."""
    overrides = list(args.set or [])
    for key, value in (("rounds", args.rounds), ("md_steps", args.md_steps), ("train_steps", args.train_steps),
                       ("out_dir", args.out), ("device", args.device), ("head", args.head), ("seed", args.seed)):
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.trust:
        overrides.append(f"trust=[{args.trust[0]}, {args.trust[1]}]")
    if args.temperatures:
        overrides.append(f"temperatures=[{', '.join(str(t) for t in args.temperatures)}]")
    spec = load_spec(args.config, overrides)
    teacher = args.teacher or spec.teacher
    if not teacher:
        raise ConfigError("no teacher: give TEACHER or 'teacher:' in the run file", field="teacher")
    systems = load_systems(list(args.systems) or spec.systems)
    init = None
    if spec.init_frames:
        from lam_lab.data import read

        init = read(spec.init_frames)
    from lam_lab.distill import distill

    res = distill(teacher, systems, head=spec.head, student=spec.student, trust=tuple(spec.trust),
                  temperatures=spec.temperatures, rounds=spec.rounds, md_steps=spec.md_steps,
                  sample_every=spec.sample_every, max_new=spec.max_new, init_frames=init,
                  train_steps=spec.train_steps, config=spec.train, out_dir=spec.out_dir, progress=not args.quiet,
                  device=spec.device, seed=spec.seed, student_options=spec.student_options, md=spec.md,
                  converge=spec.converge, init_steps=spec.init_steps)
    print(res.summary())
    print(f"student: {res.path}")
    return 0


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``distill`` verb."""
    d = subparsers.add_parser("distill", help="distil a fine-tuned model into the fast student (teacher MD + trust window)")
    d.add_argument("teacher", nargs="?", default=None, help="teacher model file or shipped model name")
    d.add_argument("systems", nargs="*", help="starting structures: files, built-in data set names or smiles:...")
    d.add_argument("--config", default=None, help="run file (see configs/distill-*.yaml)")
    d.add_argument("--head", default=None, help="teacher head (needed for multi-head teachers)")
    d.add_argument("--trust", nargs=2, type=float, metavar=("LO", "HI"), help="trust window on the max force deviation, eV/Å")
    d.add_argument("--temperatures", nargs="+", type=float, help="exploration temperatures, K")
    d.add_argument("--rounds", type=int, default=None)
    d.add_argument("--md-steps", type=int, default=None)
    d.add_argument("--train-steps", type=int, default=None)
    d.add_argument("--seed", type=int, default=None)
    d.add_argument("--out", default=None, help="output folder (student.pt, rounds.jsonl, train.lamh5; default: a new lam_lab_runs/distill-<time>)")
    d.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: automatic)")
    d.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any key, e.g. train.lr=0.001")
    d.add_argument("--quiet", action="store_true", help="no progress output")
    d.set_defaults(func=cmd_distill)
