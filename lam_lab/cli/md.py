"""`lam-lab md`: MD (or reactive MD from a TS) with a model file, GFN2-xTB or EMT, from the command line.

The flags build an MDConfig (a ReactiveConfig with ``--reactive K``); ``--set KEY=VALUE`` changes any
other key of it (``--set guards.every=5``, ``--set nh_chain=4``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ase import Atoms

from lam_lab.cli.common import add_set
from lam_lab.data.errors import DataError

EXIT_GUARD = 3  # the run was stopped by a guard; the frames before it are written


def _reaction_names() -> list[str]:
    from lam_lab.datasets.reactions import ALL_REACTIONS

    return [r.name for r in ALL_REACTIONS]


def resolve_system(system: str, args: argparse.Namespace) -> Any:
    """A TransitionState (reaction name or TS file) or Atoms (structure file or SMILES) for ``system``."""
    from lam_lab.md.reactive import TransitionState, builtin_ts, find_ts

    name = system[3:] if system.startswith("ts:") else system
    if name in _reaction_names():
        if args.ts_calc is None:  # the shipped verified saddle (DFT when verified, else GFN2-xTB)
            ts = builtin_ts(name)
            print(f"TS: {ts.method}, barrier {ts.barrier:.3f} eV", file=sys.stderr)
            return ts
        from lam_lab.sampling.neb import NEBConfig
        from lam_lab.sampling.ts import TSConfig

        print(f"finding and verifying the {name} TS on {args.ts_calc} (CI-NEB, Sella, modes, IRC) ...", file=sys.stderr)
        cfg = TSConfig(neb=NEBConfig(n_images=args.neb_images, steps=args.neb_steps, seed=args.seed))
        ts = find_ts(name, args.ts_calc, cfg, seed=args.seed)
        print(f"TS: {ts.method}, barrier {ts.barrier:.3f} eV", file=sys.stderr)
        return ts
    path = Path(system)
    if path.exists():
        from ase.io import read

        try:
            frames = read(str(path), ":")
        except Exception as exc:
            raise DataError(f"cannot read a structure: {type(exc).__name__}: {exc}", source=str(path)) from exc
        if not frames:
            raise DataError("no frames", source=str(path))
        if {"reactant", "ts", "product"} <= {str(f.info.get("role")) for f in frames}:
            return TransitionState.load(path)
        try:
            return frames[args.index]
        except IndexError:
            raise DataError(f"has {len(frames)} frames, asked for index {args.index}", source=str(path),
                            frame=args.index) from None
    from rdkit import RDLogger

    from lam_lab.sampling.molecules import smiles_to_atoms

    RDLogger.DisableLog("rdApp.*")  # a name that is not SMILES gets our message, not RDKit's parse trace
    try:
        return smiles_to_atoms(system, seed=args.seed)[0]
    except DataError:
        import difflib

        names = _reaction_names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"{system!r} is not a reaction, an existing file, or a SMILES RDKit can parse{hint} "
                        f"(the {len(names)} reactions: {', '.join(names)})", field="system") from None
    finally:
        RDLogger.EnableLog("rdApp.*")


def _guards(args: argparse.Namespace):
    from lam_lab.md.guards import GuardConfig

    return GuardConfig(min_distance=args.min_distance or None, max_force=args.max_force or None,
                       max_temperature=args.max_temperature)


def _with_sets(cfg: Any, args: argparse.Namespace) -> Any:
    """The config built from the flags with the ``--set`` overrides on top."""
    if not args.set:
        return cfg
    from lam_lab.config import load_config

    return load_config(cfg, type(cfg), args.set)


def cmd_md(args: argparse.Namespace) -> int:
    """Run plain MD, or ``--reactive K`` trajectories from a TS, and print what happened."""
    from lam_lab.md.reactive import ReactiveConfig, ReactiveMD, TransitionState
    from lam_lab.md.runner import MDConfig, MDRunner, calculator_factory

    factory = calculator_factory(args.calculator, head=args.head, device=args.device)
    system = resolve_system(args.system, args)
    summary: dict
    if args.reactive:
        if not isinstance(system, TransitionState):
            raise DataError("--reactive needs a reaction name or a TS file with reactant/ts/product frames",
                            field="system")
        out = Path(args.output or "md_reactive")
        out.mkdir(parents=True, exist_ok=True)
        system.save(out / "ts.extxyz")
        cfg = ReactiveConfig(n_trajectories=args.reactive, steps=args.steps, timestep=args.timestep,
                             temperature=args.temperature, interval=args.interval, ensemble=args.ensemble,
                             seed=args.seed, guards=_guards(args), output_dir=str(out))
        cfg = _with_sets(cfg, args)
        res = ReactiveMD(system, factory, cfg, on_outcome=lambda o: print(
            f"trajectory {o.index}: {o.backward} <- TS -> {o.forward} ({o.kind})"
            + (f" [{o.failure}]" if o.failure else ""), file=sys.stderr)).run()
        print(res.summary())
        summary = res.to_dict()
        code = 0
    else:
        atoms = system.ts if isinstance(system, TransitionState) else system
        if not isinstance(atoms, Atoms):
            raise DataError("no structure to run", field="system")
        cfg = MDConfig(ensemble=args.ensemble, temperature=args.temperature, steps=args.steps, timestep=args.timestep,
                       interval=args.interval, friction=args.friction, taut=args.taut, seed=args.seed,
                       trajectory=args.output or "md.traj", guards=_guards(args), on_guard="stop")
        cfg = _with_sets(cfg, args)
        runner = MDRunner(atoms, factory(atoms), cfg)
        if not args.quiet:
            runner.add_observer(lambda r: print(f"step {r.step:>7}  t {r.time:9.1f} fs  Epot {r.epot:13.5f} eV  "
                                                f"Etot {r.etot:13.5f} eV  T {r.temperature:8.1f} K", file=sys.stderr),
                                every=max(args.interval, args.steps // 20 or 1))
        res = runner.run()
        print(res.summary())
        print(f"trajectory: {res.trajectory} ({len(res.steps)} frames)")
        if res.trip:
            print(f"lam-lab md: stopped by a guard at {res.trip}", file=sys.stderr)
        summary = res.to_dict()
        code = EXIT_GUARD if res.status == "guard" else 0
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return code


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``md`` verb."""
    md = subparsers.add_parser("md", help="molecular dynamics / reactive MD from a transition state",
                               description="Run MD with a lam_lab model file, GFN2-xTB ('xtb') or EMT ('emt'). "
                               "SYSTEM is a built-in reaction (its TS is found by CI-NEB), a TS file with "
                               "reactant/ts/product frames, a structure file, or a SMILES string.")
    md.add_argument("calculator", help="model file, 'xtb' or 'emt'")
    md.add_argument("system",
                    help="reaction name (e.g. claisen, diels-alder, hcn-hnc), TS file, structure file or SMILES")
    md.add_argument("--ensemble", default="nve", choices=["nve", "langevin", "bussi", "nose-hoover"])
    md.add_argument("--temperature", type=float, default=300.0, help="K (initial velocities and thermostat)")
    md.add_argument("--steps", type=int, default=1000, help="MD steps (per half with --reactive)")
    md.add_argument("--timestep", type=float, default=0.5, help="fs")
    md.add_argument("--interval", type=int, default=10, help="write a frame every k steps")
    md.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs")
    md.add_argument("--taut", type=float, default=100.0, help="Bussi / Nosé–Hoover time constant, fs")
    md.add_argument("--seed", type=int, default=0)
    md.add_argument("--index", type=int, default=-1, help="frame of a structure file (default: last)")
    md.add_argument("--output", default=None, help="trajectory .traj/.xyz (default md.traj); folder with --reactive")
    md.add_argument("--reactive", type=int, default=0, metavar="K", help="K two-way trajectories from the TS")
    md.add_argument("--ts-calc", default=None, help="search (and verify) the TS on this calculator instead of using "
                    "the shipped verified saddle")
    md.add_argument("--neb-images", type=int, default=9)
    md.add_argument("--neb-steps", type=int, default=400)
    md.add_argument("--min-distance", type=float, default=0.5, help="guard, Å (0: off)")
    md.add_argument("--max-force", type=float, default=50.0, help="guard, eV/Å (0: off)")
    md.add_argument("--max-temperature", type=float, default=None, help="guard, K (default: automatic)")
    md.add_argument("--head", default=None, help="model head (multi-task models)")
    md.add_argument("--device", default=None, help="cpu, cuda (default: automatic)")
    md.add_argument("--json", default=None, help="also write a JSON summary here")
    add_set(md, "guards.every=5")
    md.add_argument("--quiet", action="store_true", help="no progress lines")
    md.set_defaults(func=cmd_md)
