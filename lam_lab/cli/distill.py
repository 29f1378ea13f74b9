"""`lam-lab distill TEACHER SYSTEMS... [--config FILE] [--set KEY=VALUE ...]`: distil a model into the fast student.

The run file is a :class:`lam_lab.distill.DistillConfig` plus the teacher, the starting systems, seed
frames and the output folder.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from lam_lab.cli.common import add_set, overrides
from lam_lab.config import ConfigError, Overrides, load_config
from lam_lab.distill.loop import DistillConfig

FLAGS = {"rounds": "rounds", "md_steps": "md_steps", "train_steps": "train_steps", "out": "out_dir",
         "device": "train.device", "head": "head", "seed": "seed", "trust": "trust", "temperatures": "temperatures"}


@dataclass
class DistillRun(DistillConfig):
    """A distillation run file (YAML/TOML): the :class:`DistillConfig` and the teacher, systems, seeds, output.

    ``systems``: starting structures — files (extxyz, ASE-readable, lam_lab formats), built-in data set
    names, or ``smiles:CCO``; ``init_frames``: a file of seed geometries (relabelled by the teacher).
    """

    teacher: str | None = None
    systems: list[str] = field(default_factory=list)
    init_frames: str | None = None
    out_dir: str = "auto"  # a new lam_lab_runs/distill-<time> folder per run


DistillSpec = DistillRun  # the name before the run file became a DistillConfig


def load_run(path: str | Path | None, changes: Overrides = None) -> DistillRun:
    """A validated :class:`DistillRun` from a YAML/TOML file (or the defaults) with ``key.path=value`` overrides."""
    return load_config(path, DistillRun, changes, what="distillation run file")


load_spec = load_run


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
    spec = load_run(args.config, overrides(args, FLAGS))
    teacher = args.teacher or spec.teacher
    if not teacher:
        raise ConfigError("no teacher: give TEACHER or 'teacher:' in the run file", field="teacher")
    systems = load_systems(list(args.systems) or spec.systems)
    init = None
    if spec.init_frames:
        from lam_lab.data import read

        init = read(spec.init_frames)
    from lam_lab.distill import distill, distill_config

    res = distill(teacher, systems, distill_config(spec), init_frames=init, out_dir=spec.out_dir,
                  progress=not args.quiet)
    print(res.summary())
    print(f"student: {res.path}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``distill`` verb."""
    d = subparsers.add_parser("distill",
                              help="distil a fine-tuned model into the fast student (teacher MD + trust window)")
    d.add_argument("teacher", nargs="?", default=None, help="teacher model file or shipped model name")
    d.add_argument("systems", nargs="*", help="starting structures: files, built-in data set names or smiles:...")
    d.add_argument("--config", default=None, help="run file (see configs/distill-*.yaml)")
    d.add_argument("--head", default=None, help="teacher head (needed for multi-head teachers)")
    d.add_argument("--trust", nargs=2, type=float, metavar=("LO", "HI"),
                   help="trust window on the max force deviation, eV/Å")
    d.add_argument("--temperatures", nargs="+", type=float, help="exploration temperatures, K")
    d.add_argument("--rounds", type=int, default=None)
    d.add_argument("--md-steps", type=int, default=None)
    d.add_argument("--train-steps", type=int, default=None)
    d.add_argument("--seed", type=int, default=None)
    d.add_argument("--out", default=None, help="output folder (student.pt, rounds.jsonl, train.lamh5; default: a new "
                   "lam_lab_runs/distill-<time>)")
    d.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: automatic)")
    add_set(d, "train.lr=0.001 --set md.timestep=1.0")
    d.add_argument("--quiet", action="store_true", help="no progress output")
    d.set_defaults(func=cmd_distill)
