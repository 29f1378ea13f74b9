"""Energy + forces time of dpa2-small and the student, side by side with DeePMD-kit 3.x (PyTorch backend).

Structures: the 192-atom DFT water box (``shared/data/water-deepmd/data_0`` frame 0, read in place;
a generated 64-molecule box if absent) and a batch of 16 cyclohexene molecules (16 × C6H10, RDKit
conformers). float32, CPU (and CUDA when present), threads set equally on both sides.

DeePMD-kit runs in its own venv (``benchmarks/deepmd_env.sh`` builds it) through ``_deepmd_side.py``,
in the same run; if it cannot run, ``ratio_vs_deepmd`` is null with ``deepmd_error`` and the owners'
reference figures are quoted instead. Times of ours include the neighbor list (vesin) and batching,
as DeePMD-kit's ``model(coord, atype, box)`` includes its own; ``model_only`` rows leave it out;
``md`` rows are one MD force call through ``LAMCalculator`` with a warm Verlet cache (``lam_lab.nn.verlet``,
skin 1 Å: no new pair search; the student on CPU takes its autograd-free path), the figure that matters in MD.
Headline figures: 1 thread.

Usage: python benchmarks/model_speed.py [--quick] [--threads 1 2] [--no-deepmd]   -> benchmarks/results/model_speed.json
(build DeePMD-kit's venv once first: bash benchmarks/deepmd_env.sh)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WATER, WATER_NAME, water_box, write_result  # noqa: E402
from _deepmd_side import count_flops  # noqa: E402  (the same FLOP count on both sides)

HERE = Path(__file__).resolve().parent
DEEPMD_PYTHON = HERE / ".venv-deepmd" / "bin" / "python"
# measured by the project owners: DeePMD-kit 3.x pure-PyTorch path, 192-atom water, 2 threads, CPU
REFERENCE = {"deepmd_dpa2_small_ms": 335.0, "deepmd_se_e2_a_ms": 87.0, "atoms": 192, "threads": 2,
             "source": "project owners' measurement (not this run)"}


def timed(fn: Callable[[], Any], warmup: int, repeat: int, sync: Callable[[], None] = lambda: None) -> dict[str, float]:
    """Best and median wall time (s) of ``fn`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return {"best_s": min(times), "median_s": statistics.median(times)}


def structures() -> dict[str, dict[str, Any]]:
    """name → {frames (list of lam_lab Frames), type_map, note}: the water box and the molecule batch."""
    from lam_lab.data.frame import Frame

    water_dir = WATER / "data_0"
    try:
        from lam_lab.data.io import read

        ds = read(water_dir)
        f0 = ds[0] if hasattr(ds, "__getitem__") else ds.frames[0]
        water = Frame(numbers=f0.numbers, positions=f0.positions, cell=f0.cell, pbc=f0.pbc)
        note = f"{WATER_NAME}/data_0 frame 0"
    except Exception as err:  # noqa: BLE001 - fall back to a generated box, and say so
        a = water_box(64)
        water = Frame(numbers=a.numbers, positions=a.positions, cell=a.cell.array, pbc=a.pbc)
        note = f"generated 64-molecule box ({type(err).__name__}: {err})"
    return {
        "water192": {"frames": [water], "type_map": ["O", "H"], "note": note},
        "mol16x16": {"frames": molecules(16), "type_map": ["C", "H"], "note": "16 × C6H10 (cyclohexene), no cell"},
    }


def molecules(count: int) -> list:
    """``count`` RDKit conformers of cyclohexene (C6H10, 16 atoms) as non-periodic Frames (Å)."""
    import numpy as np
    from rdkit import Chem
    from rdkit.Chem import AllChem

    from lam_lab.data.frame import Frame

    mol = Chem.AddHs(Chem.MolFromSmiles("C1CCC=CC1"))
    ids = AllChem.EmbedMultipleConfs(mol, numConfs=count, randomSeed=7)
    numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    rng = np.random.default_rng(0)
    frames = []
    for k in range(count):
        pos = mol.GetConformer(ids[k % len(ids)]).GetPositions() + rng.normal(scale=0.05, size=(len(numbers), 3))
        frames.append(Frame(numbers=numbers, positions=pos))
    return frames


def matmul_peak(n: int, device: str, sync: Callable[[], None]) -> float:
    """Measured float32 matmul rate (FLOP/s) of an n×n torch.mm on this device and thread count."""
    import torch

    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    t = timed(lambda: torch.mm(a, b), warmup=1, repeat=5, sync=sync)["best_s"]
    return 2.0 * n ** 3 / t


def profile_top(fn: Callable[[], Any], calls: int = 3, top: int = 12) -> list[dict[str, Any]]:
    """torch.profiler's top ops by self CPU time for ``fn``: name, ms per call, share of the total."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            fn()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [{"op": e.key, "self_ms_per_call": e.self_cpu_time_total / 1e3 / calls,
             "share": e.self_cpu_time_total / total, "calls_per_eval": e.count / calls} for e in events[:top]]


def ours(args, structs: dict, devices: list[str], peaks: dict[str, float]) -> tuple[list[dict], list[dict]]:
    """Time lam_lab's dpa2-small and student on every structure and device; also the dpa2-small profile."""
    import torch

    from lam_lab.models import build_model
    from lam_lab.nn.batch import collate

    rows, profile = [], []
    for device in devices:
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        for preset in ("dpa2-small", "student"):
            for sname, s in structs.items():
                model = build_model(preset, s["type_map"]).to(device).eval()
                frames = s["frames"]

                def total():
                    graphs = [model.prepare(f, with_labels=False) for f in frames]
                    return model(collate(graphs).to(device), forces=True)

                batch = collate([model.prepare(f, with_labels=False) for f in frames]).to(device, model.dtype)

                def model_only():
                    return model(batch, forces=True)

                md_step = md_caller(model, frames, device)

                t_total = timed(total, args.warmup, args.repeat, sync)
                t_model = timed(model_only, args.warmup, args.repeat, sync)
                t_md = timed(md_step, args.warmup, args.repeat, sync)
                flops = count_flops(model_only)
                n_atoms = sum(len(f) for f in frames)
                row = {"side": "lam_lab", "model": preset, "structure": sname, "device": device, "atoms": n_atoms,
                       "params": sum(p.numel() for p in model.parameters()),
                       "best_ms": 1e3 * t_total["best_s"], "median_ms": 1e3 * t_total["median_s"],
                       "model_only_best_ms": 1e3 * t_model["best_s"], "model_only_median_ms": 1e3 * t_model["median_s"],
                       "us_per_atom_best": 1e6 * t_total["best_s"] / n_atoms, "flops": flops,
                       "md_best_ms": 1e3 * t_md["best_s"], "md_median_ms": 1e3 * t_md["median_s"],
                       "md_us_per_atom_best": 1e6 * t_md["best_s"] / n_atoms,
                       "gflop_per_s": flops / t_model["best_s"] / 1e9,
                       "peak_fraction": flops / t_model["best_s"] / peaks[device]}
                rows.append(row)
                print(_line(row))
                if device == "cpu" and preset == "dpa2-small" and sname == "water192":
                    profile = profile_top(model_only)
    return rows, profile


def md_caller(model, frames: list, device: str) -> Callable[[], Any]:
    """One MD force call as users get it: a :class:`LAMCalculator` per frame (warm Verlet cache; a student on
    CPU takes its autograd-free path), every call moving the atoms by ±1 mÅ (no new pair search)."""
    import numpy as np

    from lam_lab.md.calculator import LAMCalculator

    systems = []
    for k, f in enumerate(frames):
        atoms = f.to_atoms()
        atoms.calc = LAMCalculator(model, device=device)
        kick = np.random.default_rng(k).choice([-1e-3, 1e-3], size=f.positions.shape)
        systems.append((atoms, f.positions.copy(), kick))
    step = [0]

    def call():
        step[0] += 1
        sign = 1.0 if step[0] % 2 else 0.0
        out = []
        for atoms, pos, dj in systems:
            atoms.positions = pos + sign * dj
            out.append(atoms.get_forces())
        return out

    return call


def deepmd_params(type_map: list[str], kind: str) -> dict[str, Any]:
    """DeePMD-kit model_params: "dpa2" mirrors our dpa2-small (examples' input_torch_small.json with
    use_three_body false, our rcuts/sel/dims); "se_e2_a" is the examples' DeepPot-SE (water/se_e2_a)."""
    from lam_lab.models import PRESETS

    c = PRESETS["dpa2-small"]
    fitting = {"neuron": list(c.fitting_neuron), "resnet_dt": c.fitting_resnet_dt, "precision": "float32", "seed": 1}
    if kind == "se_e2_a":
        sel = {"O": 46, "H": 92, "C": 46}
        desc = {"type": "se_e2_a", "sel": [sel[t] for t in type_map], "rcut_smth": 0.5, "rcut": 6.0,
                "neuron": [25, 50, 100], "resnet_dt": False, "axis_neuron": 16, "type_one_side": True,
                "precision": "float32", "seed": 1}
        return {"type_map": type_map, "descriptor": desc, "fitting_net": fitting}
    desc = {
        "type": "dpa2",
        "repinit": {"tebd_dim": c.tebd_dim, "rcut": c.repinit_rcut, "rcut_smth": c.repinit_rcut_smth,
                    "nsel": c.repinit_sel, "neuron": list(c.repinit_neuron), "axis_neuron": c.repinit_axis,
                    "activation_function": c.activation, "use_three_body": False},
        "repformer": {"rcut": c.repformer_rcut, "rcut_smth": c.repformer_rcut_smth, "nsel": c.repformer_sel,
                      "nlayers": c.repformer_layers, "g1_dim": c.g1_dim, "g2_dim": c.g2_dim,
                      "attn2_hidden": c.g2_attn_hidden, "attn2_nhead": c.g2_attn_heads,
                      "attn1_hidden": c.loc_attn_hidden, "attn1_nhead": c.loc_attn_heads,
                      "axis_neuron": c.repformer_axis, "update_h2": False, "update_g1_has_conv": True,
                      "update_g1_has_grrg": True, "update_g1_has_drrd": True, "update_g1_has_attn": c.loc_attn,
                      "update_g2_has_g1g1": c.g1g1, "update_g2_has_attn": c.g2_attn, "update_style": "res_residual",
                      "update_residual": 0.01, "update_residual_init": "norm", "attn2_has_gate": True,
                      "use_sqrt_nnei": True, "g1_out_conv": True, "g1_out_mlp": True},
        "precision": "float32",
        # ours always adds linear(f⁰) to the repinit output (DeePMD's add_tebd_to_repinit_out)
        "add_tebd_to_repinit_out": True,
        "seed": 1,
    }
    return {"type_map": type_map, "descriptor": desc, "fitting_net": fitting}


def theirs(args, structs: dict, tmp: Path) -> tuple[list[dict], str | None]:
    """Run _deepmd_side.py in DeePMD-kit's venv on the same structures; (rows, error or None)."""
    import numpy as np

    if not DEEPMD_PYTHON.exists():
        return [], f"{DEEPMD_PYTHON} not found: run benchmarks/deepmd_env.sh to build DeePMD-kit's venv"
    spec = {"threads": args.threads, "warmup": args.warmup, "repeat": args.repeat, "models": {}, "structures": {},
            "pairs": []}
    for sname, s in structs.items():
        tm = s["type_map"]
        frames = s["frames"]
        data = {"coord": np.stack([f.positions for f in frames]),
                "atype": np.stack([[tm.index(_symbol(z)) for z in f.numbers] for f in frames])}
        if frames[0].pbc.any():
            data["box"] = np.stack([f.cell.reshape(9) for f in frames])
        path = tmp / f"{sname}.npz"
        np.savez(path, **data)
        spec["structures"][sname] = str(path)
        for kind in ("dpa2", "se_e2_a"):
            spec["models"][f"{kind}:{sname}"] = deepmd_params(tm, kind)
            spec["pairs"].append([f"{kind}:{sname}", sname])
    spec_path = tmp / "spec.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "CUDA_VISIBLE_DEVICES": ""}
    try:
        proc = subprocess.run([str(DEEPMD_PYTHON), str(HERE / "_deepmd_side.py"), str(spec_path)], env=env,
                              capture_output=True, text=True, timeout=args.deepmd_timeout)
    except subprocess.TimeoutExpired:
        return [], f"DeePMD-kit side timed out after {args.deepmd_timeout} s"
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("DEEPMD_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
        return [], f"DeePMD-kit side failed (exit {proc.returncode}): " + " | ".join(tail)
    res = json.loads(line.split(" ", 1)[1])
    rows = []
    for r in res["rows"]:
        kind = r["model"].split(":")[0]
        rows.append({"side": "deepmd-kit", "model": kind, "structure": r["structure"], "device": "cpu",
                     "atoms": r["atoms"], "params": r["params"], "best_ms": 1e3 * r["best_s"],
                     "median_ms": 1e3 * r["median_s"], "us_per_atom_best": 1e6 * r["best_s"] / r["atoms"],
                     "flops": r["flops"], "deepmd_version": res["deepmd_version"], "custom_op": res["custom_op"],
                     "threads": res["threads"]})
        print(_line(rows[-1]))
    return rows, None


def _symbol(z: int) -> str:
    from ase.data import chemical_symbols

    return chemical_symbols[int(z)]


def _line(r: dict) -> str:
    extra = (f"  model-only {r['model_only_best_ms']:8.1f} ms  MD (warm Verlet) {r['md_best_ms']:8.2f} ms  "
             f"{r['peak_fraction']:6.1%} of mm peak") if "peak_fraction" in r else ""
    flops = f"{r['flops'] / 1e9:7.2f} GFLOP" if isinstance(r.get("flops"), int) else ""
    return (f"{r['side']:>10} {r['model']:>10} {r['structure']:>9} {r['device']:>4} {r['atoms']:4d} atoms: "
            f"best {r['best_ms']:8.1f} ms  median {r['median_ms']:8.1f} ms  {r['us_per_atom_best']:7.1f} µs/atom  "
            f"{flops}{extra}")


def _find(rows: list[dict], side: str, model: str, structure: str = "water192", device: str = "cpu") -> dict | None:
    want = (side, model, structure, device)
    return next((r for r in rows if (r["side"], r["model"], r["structure"], r["device"]) == want), None)


def _ratio(a: dict | None, b: dict | None, key: str = "best_ms") -> float | None:
    return None if a is None or b is None else a[key] / b[key]


def summary(rows: list[dict], threads: int) -> dict[str, float | None]:
    """The headline ratios (best times) among the rows measured with ``threads`` threads."""
    rows = [r for r in rows if r["threads"] == threads]
    find = lambda side, model, st="water192": _find(rows, side, model, st)  # noqa: E731
    return {
        "ratio_vs_deepmd": _ratio(find("lam_lab", "dpa2-small"), find("deepmd-kit", "dpa2")),
        "ratio_vs_deepmd_median": _ratio(find("lam_lab", "dpa2-small"), find("deepmd-kit", "dpa2"), "median_ms"),
        "ratio_vs_deepmd_molecules": _ratio(find("lam_lab", "dpa2-small", "mol16x16"),
                                            find("deepmd-kit", "dpa2", "mol16x16")),
        "student_vs_deepmd_se_e2_a": _ratio(find("lam_lab", "student"), find("deepmd-kit", "se_e2_a")),
        "student_speedup": _ratio(find("lam_lab", "dpa2-small"), find("lam_lab", "student")),
        "student_speedup_model_only": _ratio(find("lam_lab", "dpa2-small"), find("lam_lab", "student"),
                                             "model_only_best_ms"),
        "student_speedup_molecules": _ratio(find("lam_lab", "dpa2-small", "mol16x16"),
                                            find("lam_lab", "student", "mol16x16")),
        # MD force calls with a warm Verlet cache (both models), the figure the ≥ 20× target is about
        "student_speedup_md": _ratio(find("lam_lab", "dpa2-small"), find("lam_lab", "student"), "md_best_ms"),
        "student_speedup_md_median": _ratio(find("lam_lab", "dpa2-small"), find("lam_lab", "student"), "md_median_ms"),
        "student_speedup_md_molecules": _ratio(find("lam_lab", "dpa2-small", "mol16x16"),
                                               find("lam_lab", "student", "mol16x16"), "md_best_ms"),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repeats, smaller matmul")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                   help="intra-op thread counts, each set equally on both sides; the first gives the headline "
                        "figures (default: 1 2)")
    p.add_argument("--no-deepmd", action="store_true", help="skip DeePMD-kit (ratio null, reference quoted)")
    p.add_argument("--deepmd-timeout", type=int, default=900, help="seconds for the DeePMD-kit side")
    args = p.parse_args()
    args.warmup, args.repeat = (1, 5) if args.quick else (3, 15)
    thread_counts = list(dict.fromkeys(args.threads))
    os.environ["OMP_NUM_THREADS"] = str(thread_counts[0])
    import torch

    load_before = os.getloadavg()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    syncs = {"cpu": lambda: None, "cuda": getattr(torch.cuda, "synchronize", lambda: None)}
    structs = structures()
    rows, profiles, peaks, errors = [], {}, {}, {}
    for k, n in enumerate(thread_counts):
        args.threads = n
        torch.set_num_threads(n)
        devs = devices if k == 0 else ["cpu"]  # thread count does not matter on the GPU
        peak = {d: matmul_peak((1024 if args.quick else 2048) if d == "cpu" else 8192, d, syncs[d]) for d in devs}
        peaks[n] = {d: v / 1e9 for d, v in peak.items()}
        print(f"\n== threads {n}, load average {os.getloadavg()[0]:.2f}; float32 mm peak: "
              + ", ".join(f"{d} {v / 1e9:.1f} GFLOP/s" for d, v in peak.items()))
        ours_rows, profiles[n] = ours(args, structs, devs, peak)
        deepmd_rows, errors[n] = ([], "skipped (--no-deepmd)") if args.no_deepmd else (None, None)
        if deepmd_rows is None:
            with tempfile.TemporaryDirectory() as tmp:
                deepmd_rows, errors[n] = theirs(args, structs, Path(tmp))
        if errors[n]:
            print(f"DeePMD-kit: {errors[n]}")
        rows += [{**r, "threads": n} for r in ours_rows + deepmd_rows]
    by_threads = {n: summary(rows, n) for n in thread_counts}
    head = thread_counts[0]
    for n, ratios in by_threads.items():
        shown = ", ".join(f"{k} {'n/a' if v is None else f'{v:.3f}'}" for k, v in ratios.items())
        print(f"\n-- {n} thread(s): " + shown)
        print("   dpa2-small water192 CPU, top ops by self time: "
              + ", ".join(f"{e['op']} {e['share']:.0%}" for e in profiles[n][:6]))
    find = lambda model: _find([r for r in rows if r["threads"] == head], "lam_lab", model)  # noqa: E731
    torch.set_num_threads(head)  # what write_result's machine() records
    write_result("model_speed", {
        **by_threads[head],
        "deepmd_error": errors[head],
        "headline_threads": head,
        "by_threads": {str(n): {**v, "deepmd_error": errors[n]} for n, v in by_threads.items()},
        "reference": REFERENCE,
        "dpa2_small_water192_cpu_ms": find("dpa2-small")["best_ms"],
        "student_water192_cpu_ms": find("student")["best_ms"],
        "dpa2_small_water192_cpu_md_ms": find("dpa2-small")["md_best_ms"],
        "student_water192_cpu_md_ms": find("student")["md_best_ms"],
        "matmul_peak_gflop_per_s": {str(n): v for n, v in peaks.items()},
        "rows": rows,
        "profile_dpa2_small_water192_cpu": {str(n): v for n, v in profiles.items()},
        "structures": {k: {"atoms": sum(len(f) for f in v["frames"]), "frames": len(v["frames"]), "source": v["note"]}
                       for k, v in structs.items()},
        "threads": thread_counts, "warmup": args.warmup, "repeat": args.repeat, "quick": args.quick,
        "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg()),
        "notes": ("Times depend on the load of this 2-core machine (see loadavg before/after): compare "
                  "ratios measured in the same run. With 2 threads and one core busy elsewhere, every "
                  "parallel op waits for the descheduled thread, so 2-thread times are dominated by op "
                  "count x scheduler slices, on both sides; the 1-thread figures show compute cost. "
                  "Times of both sides include the neighbor list; both return energy + forces "
                  "(DeePMD-kit also its virial from the same backward). lam_lab trims neighbor slots that "
                  "are padding for every atom; DeePMD-kit computes all sel slots. se_e2_a is DeePMD-kit's "
                  "water example (axis 16, [25,50,100], fitting 240^3), not the student's hyperparameters. "
                  "FLOPs count matmul-like ops only (torch flop_counter registry). DeePMD-kit runs on CPU "
                  "only (its venv has CPU torch)."),
    })


if __name__ == "__main__":
    main()
