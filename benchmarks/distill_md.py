"""Distilled student vs its teacher: MD speed (µs/atom/step), force error against DFT, NVE drift, linear scaling.

Teacher: ``--teacher PATH`` (a fine-tuned model file, e.g. from ``ll.finetune``; ``--head`` for a multi-head
file), or, without it, a dpa2-small teacher trained here for a few minutes on rxn-dft's train split ('wb97x/6-31g*')
(too short to fit the forces well: its figures test the pipeline, the lead's run with the real teacher
gives the numbers that count).
The teacher is distilled (``lam_lab.distill``) for Claisen MD: exploration starts from the Claisen reactant,
highest NEB image and product as shipped in rxn-xtb (geometries only; no DFT Claisen TS is verified yet, so
``builtin_ts("claisen")`` refuses), seed frames are the rxn-dft train-split geometries relabelled by the
teacher. No DFT label of the test split is used before the final evaluation.

Reported:
- force RMSE (meV/Å) of teacher and student against the DFT labels of rxn-dft's test split (the held-out
  Claisen reaction, frames with info['split'] == 'test'); ``force_error_ratio`` = student / teacher;
- MD step cost (µs/atom/step, NVE through the lam_lab runner with guards off; teacher and student runs
  alternate, 7 each, medians) of both on a 16-atom
  molecule and a 64-H2O box (192 atoms), CPU (and CUDA when present); ``student_speedup`` = teacher / student
  time on the water box (the molecule ratio is reported too);
- MD step cost and peak memory (peak RSS from /proc VmHWM,
                                else resource.getrusage; one subprocess per size) on water boxes from ~100 to
  ~10,000 atoms (quick: up to ~1,000), with the fitted exponent of time ∝ atoms^k (1 = linear);
- the student's NVE energy drift (meV/atom/ps, absolute slope) on the Claisen reactant at 300 K.
Targets: student ≥ 20× faster than dpa2-small at ≤ 1.3× its force error.

Usage: python benchmarks/distill_md.py [--quick] [--teacher FILE [--head NAME]] [--threads 1]
    -> benchmarks/results/distill_md.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import water_box, write_result  # noqa: E402

DFT = "wb97x/6-31g*"
TARGETS = {"student_speedup": 20.0, "force_error_ratio": 1.3}
SETTINGS = {  # quick: a few minutes on one core; default: the lead's full run
    "quick": dict(teacher_minutes=2.0, rounds=2, md_steps=100, init_steps=600, train_steps=200,
                  temperatures=(300.0, 800.0),
                  starts=("reactant", "ts"), speed_steps=10, nve_steps=400, scale_student=(33, 100, 333),
                  scale_teacher=(33, 100), scale_steps=3),
    "full": dict(teacher_minutes=10.0, rounds=5, md_steps=300, init_steps=3000, train_steps=600,
                 temperatures=(300.0, 600.0, 1000.0), starts=("reactant", "ts", "product"), speed_steps=30,
                 nve_steps=4000, scale_student=(33, 100, 333, 1000, 3333), scale_teacher=(33, 100, 333), scale_steps=3),
}


def data():
    """rxn-dft train and test splits (info['split'])."""
    import lam_lab as ll
    from lam_lab.data import Dataset

    ds = ll.datasets.load("rxn-dft")
    part = lambda s: Dataset([f for f in ds if f.info.get("split") == s], name=f"rxn-dft-{s}", provenance=ds.provenance)  # noqa: E731
    return part("train"), part("test")


def claisen_structures():
    """The Claisen reactant, TS (highest CI-NEB image) and product of rxn-xtb, as a TransitionState-like record."""
    from types import SimpleNamespace

    import lam_lab as ll

    roles = {f.info.get("role"): f.to_atoms() for f in ll.datasets.load("rxn-xtb")
             if f.info.get("reaction") == "claisen"}
    return SimpleNamespace(reactant=roles["reactant"], ts=roles["path-max"], product=roles["product"])


def quick_teacher(train, minutes: float, out: Path):
    """dpa2-small trained ``minutes`` on the DFT labels of ``train`` (a stand-in for a fine-tuned model)."""
    import lam_lab as ll

    model = ll.build_model("dpa2-small", ["H", "C", "N", "O"])
    t0 = time.perf_counter()
    model = ll.train(model, train, minutes=minutes, labels=DFT, out_dir=None, progress=False).model
    ll.save(model, out, extra={"benchmark": "distill_md quick teacher", "minutes": minutes, "label": DFT})
    return model, time.perf_counter() - t0


def force_rmse_dft(model, test, head: str | None) -> float:
    """Force RMSE (meV/Å) against the DFT labels."""
    import lam_lab as ll

    return float(ll.evaluate(model, test, head=head, label=DFT, parity=False).rows[0].f_rmse)


class MDTimer:
    """NVE steps of one model on one structure through the lam_lab runner (guards off), warm calculator."""

    def __init__(self, model, atoms, head: str | None = None, device: str = "cpu"):
        from lam_lab.md.calculator import LAMCalculator
        from lam_lab.md.guards import GuardConfig

        self.atoms, self.device = atoms, device
        self.calc = LAMCalculator(model, head=head, device=device)
        self.guards = GuardConfig(min_distance=None, max_force=None, max_temperature=float("inf"), check_finite=False,
                                  every=10**9)
        self.seconds_per_step(2)  # warm-up: kernels, Verlet list, allocations

    def seconds_per_step(self, steps: int, seed: int = 1) -> float:
        from lam_lab.md.runner import run_md

        res = run_md(self.atoms, self.calc, ensemble="nve", steps=steps, interval=steps, guards=self.guards,
                     keep_frames=False, seed=seed)
        return res.wall_time / max(res.steps_done, 1)

    def row(self, runs: list[float], steps: int) -> dict:
        per_step = float(np.median(runs))
        return {"atoms": len(self.atoms), "steps": int(steps), "repeats": len(runs), "device": self.device,
                "ms_per_step": 1000 * per_step, "us_per_atom_step": 1e6 * per_step / len(self.atoms),
                "ms_per_step_runs": [1000 * r for r in runs]}


def md_cost(model, atoms, steps: int, head: str | None = None, device: str = "cpu", repeats: int = 3) -> dict:
    """µs per atom per MD step of one model, the median of ``repeats`` runs."""
    timer = MDTimer(model, atoms, head, device)
    return timer.row([timer.seconds_per_step(steps, seed=1 + k) for k in range(repeats)], steps)


def md_speedup(teacher, student, atoms, steps: int, head: str | None, device: str, repeats: int = 7) -> dict:
    """Teacher and student MD step cost measured in alternation (T, S, T, S, ...), so that a machine whose
    speed drifts (a shared VM) moves both alike; speedup = median teacher / median student time."""
    t, s = MDTimer(teacher, atoms, head, device), MDTimer(student, atoms, None, device)
    t_runs, s_runs = [], []
    for k in range(repeats):
        t_runs.append(t.seconds_per_step(steps, seed=1 + k))
        s_runs.append(s.seconds_per_step(steps, seed=1 + k))
    return {"teacher": t.row(t_runs, steps), "student": s.row(s_runs, steps),
            "speedup": float(np.median(t_runs) / np.median(s_runs)),
            "speedup_per_repeat": [a / b for a, b in zip(t_runs, s_runs)]}


def peak_rss_mb() -> float:
    """Peak resident memory of this process (MB): VmHWM, which (unlike ru_maxrss) starts afresh at exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def scale_worker(model_path: str, molecules: int, steps: int, device: str, threads: int) -> None:
    """(subprocess) MD step cost and peak memory of one water box; prints one JSON line."""
    import torch

    import lam_lab as ll

    torch.set_num_threads(threads)
    model = ll.load(model_path)
    atoms = water_box(molecules, seed=0)
    base = peak_rss_mb()
    row = md_cost(model, atoms, steps, device=device)
    row["peak_rss_mb"] = peak_rss_mb()
    row["base_rss_mb"] = base  # after imports, model and box: peak − base is what the MD itself needed
    row["md_rss_mb"] = row["peak_rss_mb"] - base
    if device.startswith("cuda"):
        row["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print("RESULT " + json.dumps(row))


def scaling(model_path: Path, sizes, steps: int, device: str, threads: int, name: str) -> dict:
    """Rows of :func:`scale_worker` per size and the fitted exponent of ms/step ∝ atoms^k."""
    rows = []
    for n in sizes:
        cmd = [sys.executable, __file__, "--_scale", str(model_path), str(n), str(steps), device, str(threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not line:
            rows.append({"molecules": n, "error": (proc.stderr or proc.stdout)[-500:]})
        else:
            rows.append({"model": name, "molecules": n, **json.loads(line[-1][7:])})
        print(rows[-1], flush=True)
    ok = [r for r in rows if "ms_per_step" in r]
    k = float(np.polyfit(np.log([r["atoms"] for r in ok]), np.log([r["ms_per_step"] for r in ok]),
                         1)[0]) if len(ok) > 1 else None
    return {"rows": rows, "time_exponent": k}


def _molecule_speedup(speed: list[dict]) -> float:
    """The student's MD speed-up over the teacher on the molecule, CPU."""
    return next(r["speedup"] for r in speed if r["system"] == "molecule" and r["device"] == "cpu")


def speed_rows(teacher, student, head: str, ts, test, s: dict) -> list[dict]:
    """MD speed of teacher and student on the Claisen molecule and the 192-atom water box, CPU (and CUDA)."""
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    systems = {"molecule": ts.reactant if len(ts.reactant) >= 14 else max((f.to_atoms() for f in test), key=len),
               "water192": water_box(64, seed=0)}
    speed = []
    for dev in devices:
        for sname, atoms in systems.items():
            pair = md_speedup(teacher, student, atoms, s["speed_steps"], head, dev)
            speed.append({"system": sname, "device": dev, **pair})
            print(f"{sname} {dev}: teacher {pair['teacher']['us_per_atom_step']:.0f}, student "
                  f"{pair['student']['us_per_atom_step']:.0f} µs/atom/step -> {pair['speedup']:.1f}x", flush=True)
    return speed


def update_speed(teacher, student, head: str, ts, test, s: dict) -> None:
    """--speed-only: new speed rows and headline in the existing results file (the rest is kept as it was)."""
    path = Path(__file__).resolve().parent / "results" / "distill_md.json"
    payload = json.loads(path.read_text())
    speed = speed_rows(teacher, student, head, ts, test, s)
    headline = next(r for r in speed if r["system"] == "water192" and r["device"] == "cpu")
    payload["student_speedup"] = headline["speedup"]
    payload["meets_targets"]["speed"] = headline["speedup"] >= TARGETS["student_speedup"]
    payload["student_speedup_molecule"] = _molecule_speedup(speed)
    payload["speed"] = speed
    payload["speed_remeasured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    write_result("distill_md", payload)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="a few minutes: short teacher, 2 rounds, boxes up to ~1,000 atoms")
    p.add_argument("--teacher", default=None, help="fine-tuned teacher model file (default: train a quick one)")
    p.add_argument("--head", default=None, help="teacher head (multi-head files)")
    p.add_argument("--teacher-minutes", type=float, default=None,
                   help="budget of the teacher trained here (quick 2, default 10)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="work folder (default: lam_lab_runs/bench-distill-md)")
    p.add_argument("--speed-only", action="store_true",
                   help="re-measure the MD speed of the teacher and the already distilled student "
                        "(OUT/distill/student.pt) and update the speed figures of the existing results file")
    p.add_argument("--_scale", nargs=5, help=argparse.SUPPRESS)
    return p


def _teacher(args: argparse.Namespace, s: dict, work: Path, train) -> tuple:
    """(teacher, its file, its training seconds or None, head): --teacher's file, else a quick one trained here."""
    import lam_lab as ll

    if args.teacher:
        teacher, teacher_path, teacher_train_s = ll.load(args.teacher), Path(args.teacher), None
    else:
        teacher_path = work / "teacher.pt"
        teacher, teacher_train_s = quick_teacher(train, args.teacher_minutes or s["teacher_minutes"], teacher_path)
    head = args.head or (teacher.heads[0] if len(teacher.heads) == 1 else None)
    if head is None:
        raise SystemExit(f"the teacher has heads {teacher.heads}: name one with --head")
    n_params = sum(x.numel() for x in teacher.parameters())
    print(f"teacher {teacher_path} head {head} ({teacher.config.kind}, {n_params} params)")
    return teacher, teacher_path, teacher_train_s, head


def _print_round(event) -> None:
    if event.kind == "round":
        print(f"  round {event.round}: {event.message}", flush=True)


def main() -> None:
    args = _parser().parse_args()
    if args._scale:
        path, n, steps, device, threads = args._scale
        scale_worker(path, int(n), int(steps), device, int(threads))
        return
    import torch
    from md_nve_drift import nve

    import lam_lab as ll
    from lam_lab.distill import distill

    torch.set_num_threads(args.threads)
    s = SETTINGS["quick" if args.quick else "full"]
    work = Path(args.out or "lam_lab_runs/bench-distill-md")
    work.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    train, test = data()

    teacher, teacher_path, teacher_train_s, head = _teacher(args, s, work, train)

    ts = claisen_structures()
    if args.speed_only:
        update_speed(teacher, ll.load(work / "distill" / "student.pt"), head, ts, test, s)
        return

    # -- distillation for Claisen MD ------------------------------------------------------------------
    starts = [getattr(ts, role) for role in s["starts"]]
    res = distill(teacher, starts, head=head, temperatures=s["temperatures"], rounds=s["rounds"],
                  md_steps=s["md_steps"], sample_every=10, max_new=100, init_frames=train,
                  train_steps=s["train_steps"], init_steps=s["init_steps"],
                  out_dir=work / "distill", progress=False, seed=0,
                  callbacks=[_print_round])
    student = res.student
    print(res.summary())

    # -- accuracy against DFT -----------------------------------------------------------------------
    f_teacher = force_rmse_dft(teacher, test, head)
    f_student = force_rmse_dft(student, test, None)
    print(f"force RMSE vs DFT on {len(test)} test frames: teacher {f_teacher:.1f}, student {f_student:.1f} meV/Å")

    speed = speed_rows(teacher, student, head, ts, test, s)
    headline = next(r for r in speed if r["system"] == "water192" and r["device"] == "cpu")

    # -- energy conservation (student) ----------------------------------------------------------------
    drift = nve(student, ts.reactant, s["nve_steps"], 0.5, seed=0)
    print(f"student NVE: {drift}")

    # -- linear scaling ------------------------------------------------------------------------------------
    devices = sorted({r["device"] for r in speed})
    student_path = res.path or work / "student.pt"
    scale = {dev: {"student": scaling(student_path, s["scale_student"], s["scale_steps"], dev, args.threads, "student"),
                   "teacher": scaling(teacher_path, s["scale_teacher"], s["scale_steps"], dev, args.threads, "teacher")}
             for dev in devices}

    payload = {
        "student_speedup": headline["speedup"],
        "force_error_ratio": f_student / f_teacher,
        "nve_drift_mev_atom_ps": abs(drift["drift_meV_atom_ps"]),
        "targets": {"student_speedup_min": TARGETS["student_speedup"],
                    "force_error_ratio_max": TARGETS["force_error_ratio"]},
        "meets_targets": {"speed": headline["speedup"] >= TARGETS["student_speedup"],
                          "accuracy": f_student / f_teacher <= TARGETS["force_error_ratio"]},
        "student_speedup_molecule": _molecule_speedup(speed),
        "teacher_f_rmse_dft": f_teacher, "student_f_rmse_dft": f_student, "test_frames": len(test), "dft_label": DFT,
        "teacher": {"path": str(teacher_path), "head": head, "preset": teacher.config.kind,
                    "trained_here": not args.teacher,
                    "train_minutes": None if args.teacher else (args.teacher_minutes or s["teacher_minutes"]),
                    "train_s": teacher_train_s},
        "distill": {"converged": res.converged, "rounds": [r.to_dict() for r in res.rounds], "wall_s": res.wall_time_s,
                    "n_train": len(res.train_set), "starts": list(s["starts"]),
                    "temperatures": list(s["temperatures"])},
        "speed": speed, "nve": drift, "scaling": scale, "quick": args.quick, "threads": args.threads,
        "wall_s": time.perf_counter() - t_all,
    }
    write_result("distill_md", payload)


if __name__ == "__main__":
    main()
