"""NVE energy drift (meV/atom/ps) of lam_lab models in MD: a molecule and a small periodic water box.

Each model (the student and dpa2-small presets, or saved model files given with --model) runs NVE
velocity Verlet from 300 K Maxwell–Boltzmann velocities. An untrained model's surface is almost flat,
so a drift on it says little; with ``--fit-steps N`` (default) each preset is first fitted for N
optimizer steps to reference labels — GFN2-xTB frames of allyl vinyl ether sampled by Langevin MD,
and DeePMD-kit's DFT water (../shared/data/water-deepmd; the run starts from a held-out DFT frame,
64 H2O) — so the atoms move on a surface with real forces. Reported per run: drift (slope of E_tot vs time),
largest |E_tot − E_tot(0)|, the Ekin swing (how much energy the surface moved around), RMS force and speed.

Usage: python benchmarks/md_nve_drift.py [--quick] [--model FILE ...] [--fit-steps N] [--dtype float64]
    -> benchmarks/results/md_nve_drift.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WATER, water_box, write_result  # noqa: E402

TYPE_MAP = ["H", "C", "N", "O"]
MOLECULE = "C=COCC=C"  # allyl vinyl ether, the Claisen reactant


def molecule_data(n_frames: int, seed: int = 0):
    """The molecule and GFN2-xTB-labelled frames of it from Langevin MD at 300 and 600 K."""
    from lam_lab.data import Dataset, Frame
    from lam_lab.sampling import MDConfig, sample_md, smiles_to_atoms, xtb_calculator

    mol = smiles_to_atoms(MOLECULE, seed=seed)[0]
    runs = sample_md(mol, xtb_calculator, MDConfig(temperatures=(300.0, 600.0), steps=5 * n_frames, interval=10,
                                                  seed=seed))
    frames = [Frame.from_atoms(a, label="xtb") for r in runs for a in r.frames]
    return mol, Dataset(frames, name="allyl-vinyl-ether-xtb")


def water_data(quick: bool, box_molecules: int = 0):
    """DFT water frames to fit (data_0, plus data_1 unless quick) and a box to run: the first DFT frame of
    data_3 (64 H2O, held out), or a generated box of ``box_molecules`` H2O when that is > 0."""
    from lam_lab.data import Dataset, read

    parts = ["data_0"] if quick else ["data_0", "data_1"]
    frames = [f for part in parts for f in read(WATER / part, format="deepmd", label="dft")]
    start = water_box(box_molecules, seed=0) if box_molecules else read(WATER / "data_3", format="deepmd")[0].to_atoms()
    return start, Dataset(frames, name="water-dft")


def fitted(preset: str, data, steps: int, dtype: str):
    """A fresh preset model, fitted ``steps`` optimizer steps on ``data`` when steps > 0."""
    import lam_lab as ll
    from lam_lab.data import Frame

    model = ll.build_model(preset, TYPE_MAP, dtype=dtype)
    frames = list(data)[:16]
    model.fit_input_stats([Frame(f.numbers, f.positions, f.cell, f.pbc) for f in frames])
    if steps > 0:
        res = ll.train(model, data, steps=steps, out_dir=None, progress=False)
        model = res.model
    return model


def nve(model, atoms, steps: int, timestep: float, seed: int) -> dict:
    """One NVE run; drift and conservation figures."""
    from lam_lab.md import LAMCalculator
    from lam_lab.md.runner import run_md

    t0 = time.perf_counter()
    res = run_md(atoms, LAMCalculator(model), ensemble="nve", temperature=300.0, steps=steps, timestep=timestep,
                 interval=10, seed=seed, on_guard="stop")
    wall = time.perf_counter() - t0
    forces = np.concatenate([f.get_forces() for f in res.frames]) if res.frames else np.zeros((0, 3))
    return {
        "atoms": len(atoms), "steps": int(res.steps_done), "timestep_fs": timestep, "status": res.status,
        "reason": res.reason, "drift_meV_atom_ps": res.drift(), "max_abs_dE_meV_atom": res.fluctuation(),
        "ekin_swing_meV_atom": float(1000 * np.ptp(res.ekin) / len(atoms)) if len(res.ekin) else None,
        "mean_T_K": float(res.temperature.mean()) if len(res.temperature) else None,
        "rms_force_eV_A": float(np.sqrt((forces**2).mean())) if len(forces) else None,
        "ms_per_step": 1000 * wall / max(res.steps_done, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short runs (200 MD steps, 50 fitting steps)")
    p.add_argument("--model", action="append", default=[], help="saved model file(s) to measure instead of presets")
    p.add_argument("--fit-steps", type=int, default=None, help="fitting steps per preset (0: untrained)")
    p.add_argument("--steps", type=int, default=None, help="NVE steps (default 1000, quick 200)")
    p.add_argument("--timestep", type=float, default=0.5, help="fs")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--water-box", type=int, default=0, help="run a generated box of N H2O instead of a DFT frame")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    steps = args.steps or (200 if args.quick else 1000)
    fit_steps = args.fit_steps if args.fit_steps is not None else (50 if args.quick else 1000)
    mol, mol_ds = molecule_data(10 if args.quick else 40)
    box, water_ds = water_data(args.quick, args.water_box)
    systems = {"molecule": (mol, mol_ds), "water": (box, water_ds)}
    rows = []
    if args.model:
        import lam_lab as ll

        for path in args.model:
            model = ll.load(path)
            for name, (atoms, _) in systems.items():
                if set(atoms.get_chemical_symbols()) <= set(model.type_map):
                    rows.append({"model": str(path), "system": name, "trained": True, "dtype": str(model.dtype),
                                 **nve(model, atoms, steps, args.timestep, seed=0)})
                    print(rows[-1])
    else:
        for preset in ("student", "dpa2-small"):
            for name, (atoms, data) in systems.items():
                model = fitted(preset, data, fit_steps, args.dtype)
                rows.append({"model": preset, "system": name, "trained": fit_steps > 0, "fit_steps": fit_steps,
                             "fit_data": data.name or name, "dtype": args.dtype,
                             **nve(model, atoms, steps, args.timestep, seed=0)})
                print({k: rows[-1][k] for k in ("model", "system", "status", "drift_meV_atom_ps", "max_abs_dE_meV_atom",
                                                 "ekin_swing_meV_atom", "rms_force_eV_A", "ms_per_step")})
    write_result("md_nve_drift", {"rows": rows, "quick": args.quick, "steps": steps, "timestep_fs": args.timestep,
                                  "temperature_K": 300.0})


if __name__ == "__main__":
    main()
