"""Training speed and equal-wall-time accuracy of dpa2-small vs DeePMD-kit 3.x DPA-2 small, plus the zero-shot table.

Cases (same frames both sides, DeePMD-kit's copy written by lam_lab's deepmd/npy writer into a temp dir):
  rxn-xtb  built-in GFN2-xTB molecules/reactions, seeded 90/10 train/test split (headline figures)
  water    real DFT water (shared/data/water-deepmd: data_0..2 train, data_3 test; read in place)
Per case, on each side, from a fresh model, batch 1, the same threads:
  1. step timing: ``--steps`` training steps; s/step over the log windows after the first one
     (ours: the trainer's step events, one every ``disp`` steps; theirs: "total wall time" lines).
  2. equal wall time: ours ``ll.train(minutes=T)`` with the trainer's defaults; theirs DeePMD-kit's
     example recipe (exp LR 1e-3 -> 3.51e-8, prefactors e 0.02->1, f 1000->1) with numb_steps set to
     the steps its measured s/step fits in T minutes; then energy/force RMSE of both on the test set.
DeePMD-kit's model is model_speed.deepmd_params (the same hyper-parameters as our dpa2-small preset).

Zero-shot table (in the spirit of DPA-2's Table 2): the multi-task model (shipped lam-chon-small, or
``--multitask PATH``) vs a single-task dpa2-small trained on rxn-xtb alone (Claisen left out, as in the
multi-task recipe) for the same budget (the multi-task card's steps and batch), both tested on rxn-dft's
held-out test split with GFN2-xTB labels as they are, and with wB97X/6-31G* labels after refitting only
the energy bias on rxn-dft's train split.

    python benchmarks/train_speed.py                        # -> benchmarks/results/train_speed.json
    python benchmarks/train_speed.py --quick                # smoke run (~3 min) -> train_speed_quick.json
    python benchmarks/train_speed.py --minutes 10 --steps 200 --threads 2 --multitask PATH
    python benchmarks/train_speed.py --zero-shot-only --zs-minutes 30   # just the table, into the existing JSON
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WATER, WATER_NAME, deepmd_thread_env, write_result  # noqa: E402
from model_speed import deepmd_params  # noqa: E402  (one mapping of our preset onto DeePMD-kit's DPA-2)

from lam_lab.datasets.rxn_dft import TEST_REACTIONS  # noqa: E402  (held out of lam-chon-small's pre-training too)

HERE = Path(__file__).resolve().parent
DP = HERE / ".venv-deepmd" / "bin" / "dp"
DEEPMD_PYTHON = HERE / ".venv-deepmd" / "bin" / "python"
XTB, DFT = "gfn2-xtb", "wb97x/6-31g*"
# DeePMD-kit's examples (examples/water/dpa2/input_torch_small.json): its standard LR and loss
DEEPMD_LR = {"type": "exp", "decay_steps": 5000, "start_lr": 1e-3, "stop_lr": 3.51e-8}
DEEPMD_LOSS = {"type": "ener", "start_pref_e": 0.02, "limit_pref_e": 1, "start_pref_f": 1000, "limit_pref_f": 1,
               "start_pref_v": 0, "limit_pref_v": 0}
REFERENCE = {"deepmd_dpa2_small_s_per_step": 0.60, "deepmd_se_e2_a_s_per_step": 0.19, "structure": "192-atom water",
             "threads": 2, "source": "issue 5 (project owners' measurement, not this run)"}


@dataclass
class Case:
    """One benchmark case: train/test frames, their label set, and where DeePMD-kit's copies are."""

    name: str
    train: Any  # lam_lab Dataset
    test: Any
    label: str
    note: str
    train_dir: Path | None = None
    test_dir: Path | None = None


def load_cases(names: list[str], quick: bool, tmp: Path) -> list[Case]:
    """The requested cases, exported to deepmd/npy under ``tmp`` with lam_lab's writer."""
    import lam_lab as ll
    from lam_lab.data import read, write

    out = []
    for name in names:
        if name == "rxn-xtb":
            train, test = ll.datasets.load("rxn-xtb").split((0.9, 0.1), seed=0)
            case = Case(name, train, test[:100] if quick else test, XTB, "built-in rxn-xtb, seeded 90/10 split")
        elif name == "water":
            if not (WATER / "data_3").is_dir():
                print(f"water: {WATER} not found, case skipped")
                continue
            train = read(WATER / "data_0", format="deepmd") + read(WATER / "data_1", format="deepmd") + read(
                WATER / "data_2", format="deepmd")
            test = read(WATER / "data_3", format="deepmd")
            case = Case(name, train, test[:8] if quick else test, train.default_label(),
                        f"{WATER_NAME} data_0..2 train, data_3 test")
        else:
            raise SystemExit(f"unknown case {name!r} (rxn-xtb, water)")
        case.train_dir, case.test_dir = tmp / name / "train", tmp / name / "test"
        write(case.train, case.train_dir, format="deepmd", label=case.label)
        write(case.test, case.test_dir, format="deepmd", label=case.label)
        print(f"{name}: {len(case.train)} train / {len(case.test)} test frames, label {case.label}, "
              f"{_mean_atoms(case.train):.1f} atoms/frame")
        out.append(case)
    return out


def _mean_atoms(ds) -> float:
    return sum(len(f) for f in ds) / max(len(ds), 1)


# -- lam_lab side ---------------------------------------------------------------------------------------

def ours_train(case: Case, steps: int | None, minutes: float | None, disp: int, seed: int) -> tuple[dict, Any]:
    """Train a fresh dpa2-small with the trainer's defaults (logging every ``disp`` steps); (row, model)."""
    import lam_lab as ll
    from lam_lab.train import TrainConfig

    model = ll.build_model("dpa2-small", case.train.elements, seed=seed)
    cfg = TrainConfig(log_every=disp, log_seconds=1e9)  # log windows like DeePMD-kit's disp_freq; no effect on training
    res = ll.train(model, case.train, steps=steps, minutes=minutes, config=cfg, out_dir=None, progress=False)
    events = [h for h in res.history if h["kind"] == "step"]
    if len(events) >= 2:  # windows after the first one (it holds the one-off costs)
        s_per_step = (events[-1]["elapsed_s"] - events[0]["elapsed_s"]) / (events[-1]["step"] - events[0]["step"])
        timed = events[-1]["step"] - events[0]["step"]
    else:
        s_per_step, timed = res.wall_time_s / max(res.steps, 1), 0
    train_s = events[-1]["elapsed_s"] if events else res.wall_time_s
    return {"side": "lam_lab", "steps": res.steps, "s_per_step": s_per_step, "timed_steps": timed,
            "train_wall_s": train_s, "run_wall_s": res.wall_time_s}, res.model


def ours_errors(model, case: Case) -> dict[str, float]:
    """Energy (meV/atom) and force (meV/Å) RMSE of ``model`` on the case's test frames."""
    import lam_lab as ll

    row = ll.evaluate(model, case.test, label=case.label, parity=False).rows[0]
    return {"e_rmse": row.e_rmse, "f_rmse": row.f_rmse, "test_frames": row.n_frames}


# -- DeePMD-kit side --------------------------------------------------------------------------------------

def deepmd_train(case: Case, steps: int, disp: int, threads: int, seed: int, work: Path, timeout: float) -> dict:
    """``dp --pt train`` of DeePMD-kit's DPA-2 small for ``steps`` on the case's frames; s/step from its log."""
    from lam_lab.data.io.deepmd import find_systems

    work.mkdir(parents=True)
    inp = {"model": deepmd_params(case.train.elements, "dpa2"), "learning_rate": DEEPMD_LR, "loss": DEEPMD_LOSS,
           "training": {"training_data": {"systems": [str(p) for p in find_systems(case.train_dir)], "batch_size": 1},
                        "numb_steps": steps, "seed": seed, "disp_file": "lcurve.out", "disp_freq": disp,
                        "save_freq": max(1, steps // 4)}}
    (work / "input.json").write_text(json.dumps(inp, indent=1))
    log = work / "train.log"
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        # the neighbor statistics only check sel (given here) and take minutes on water: skipped
        proc = subprocess.Popen([str(DP), "--pt", "train", "input.json", "--skip-neighbor-stat"], cwd=work, stdout=fh,
                                stderr=subprocess.STDOUT, env=deepmd_thread_env(threads))
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()  # the newest checkpoint (save_freq) is still scored
            proc.wait()
    text = log.read_text()
    windows = [(int(b), float(w)) for b, w in re.findall(r"Batch\s+(\d+): total wall time = ([\d.]+) s", text)]
    row = {"side": "deepmd-kit", "exit": proc.returncode, "process_wall_s": time.perf_counter() - t0, "log": log.name,
           "steps": windows[-1][0] if windows else 0, "train_wall_s": sum(w for _, w in windows)}
    if len(windows) >= 2:
        timed = windows[-1][0] - windows[0][0]
        row.update(s_per_step=sum(w for _, w in windows[1:]) / timed, timed_steps=timed)
    elif windows:
        row.update(s_per_step=windows[0][1] / windows[0][0], timed_steps=0)
    if proc.returncode != 0 and not windows:
        row["error"] = " | ".join(text.strip().splitlines()[-6:])
    ckpts = sorted(work.glob("model.ckpt-*.pt"), key=lambda p: int(re.findall(r"-(\d+)\.pt", p.name)[0]))
    row["checkpoint"] = str(ckpts[-1]) if ckpts else None  # scored, then named without its temporary folder
    return row


def deepmd_errors(checkpoint: str, case: Case, threads: int) -> dict[str, Any]:
    """Energy (meV/atom) and force (meV/Å) RMSE of a DeePMD-kit checkpoint on the test frames (its venv)."""
    proc = subprocess.run([str(DEEPMD_PYTHON), str(HERE / "_deepmd_train_side.py"), checkpoint, str(case.test_dir),
                           str(threads)], capture_output=True, text=True, env=deepmd_thread_env(threads), timeout=1800)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("DEEPMD_TEST ")), None)
    if line is None:
        return {"error": " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])}
    res = json.loads(line.split(" ", 1)[1])
    return {"e_rmse": res["e_rmse"], "f_rmse": res["f_rmse"], "test_frames": res["frames"]}


# -- one case ------------------------------------------------------------------------------------------------

def run_case(case: Case, args, tmp: Path) -> dict[str, Any]:
    """Step timing and the equal-wall-time comparison of one case."""
    out: dict[str, Any] = {"case": case.name, "note": case.note, "train_frames": len(case.train),
                           "test_frames": len(case.test), "mean_atoms": _mean_atoms(case.train)}
    disp = max(1, args.steps // 10)
    ours, _ = ours_train(case, args.steps, None, disp, args.seed)
    out["timing"] = {"lam_lab": ours}
    _say(case.name, "timing", ours, _mean_atoms(case.train))
    budget_s = 60 * args.minutes
    theirs = None
    if not args.skip_deepmd:
        theirs = deepmd_train(case, args.steps, disp, args.threads, args.seed, tmp / case.name / "dp-timing",
                              timeout=args.deepmd_timeout)
        out["timing"]["deepmd-kit"] = theirs
        _say(case.name, "timing", theirs, _mean_atoms(case.train))
    out["ratio_vs_deepmd"] = ours["s_per_step"] / theirs["s_per_step"] if theirs and theirs.get("s_per_step") else None

    ours_eq, model = ours_train(case, None, args.minutes, 10, args.seed)
    ours_eq.update(ours_errors(model, case))
    out["equal_time"] = {"minutes": args.minutes, "lam_lab": ours_eq}
    _say(case.name, "equal-time", ours_eq, _mean_atoms(case.train))
    if theirs and theirs.get("s_per_step"):
        n = max(2, round(budget_s / theirs["s_per_step"]))
        th = deepmd_train(case, n, max(1, n // 20), args.threads, args.seed, tmp / case.name / "dp-equal-time",
                          timeout=3 * budget_s + 300)
        th.update(deepmd_errors(th["checkpoint"], case,
                                args.threads) if th["checkpoint"] else {"error": "no checkpoint"})
        out["equal_time"]["deepmd-kit"] = th
        _say(case.name, "equal-time", th, _mean_atoms(case.train))
    th = out["equal_time"].get("deepmd-kit", {})
    for row in (theirs or {}, th):  # scored: named without the temporary folder, which is gone once the run ends
        if row.get("checkpoint"):
            row["checkpoint"] = Path(row["checkpoint"]).name
    out["equal_time_force_rmse_ratio"] = ours_eq["f_rmse"] / th["f_rmse"] if th.get("f_rmse") else None
    return out


def _say(case: str, what: str, r: dict, atoms: float) -> None:
    sps = r.get("s_per_step")
    rate = f"{sps:7.3f} s/step  {1 / sps:6.2f} frames/s  {atoms / sps:7.1f} atoms/s" if sps else "no timing"
    err = f"  E {r['e_rmse']:8.1f} meV/atom  F {r['f_rmse']:7.1f} meV/Å" if "f_rmse" in r else ""
    bad = f"  ERROR {r['error']}" if r.get("error") else ""
    print(f"{case:>8} {what:>10} {r['side']:>10}: {r.get('steps', 0):6d} steps in {r.get('train_wall_s', 0):6.1f} s  "
          f"{rate}{err}{bad}", flush=True)


# -- zero-shot table --------------------------------------------------------------------------------------------

def multitask_model(path: str | None) -> tuple[Any, dict, str]:
    """(model, card dict, where from): ``path`` if given, else the shipped lam-chon-small."""
    import lam_lab as ll

    if path:
        card = Path(path).with_suffix(".card.json")
        return ll.load(path), (json.loads(card.read_text()) if card.is_file() else {}), str(path)
    return ll.pretrained.load("lam-chon-small"), ll.pretrained.card("lam-chon-small", as_dict=True), "lam-chon-small"


def zero_shot(args) -> dict[str, Any]:
    """Multi-task vs single-task (rxn-xtb) errors on rxn-dft's test split, GFN2 labels and DFT after bias refit."""
    import lam_lab as ll
    from lam_lab.data.dataset import Dataset
    from lam_lab.train import TrainConfig

    try:
        mt, card, source = multitask_model(args.multitask)
    except Exception as err:  # noqa: BLE001 - the table is skipped, and says why
        return {"error": f"no multi-task model ({type(err).__name__}: {err}); pass --multitask PATH"}
    dft = ll.datasets.load("rxn-dft")
    train = Dataset([f for f in dft if f.info.get("split") == "train"], "rxn-dft-train")
    test = Dataset([f for f in dft if f.info.get("split") == "test"], "rxn-dft-test")
    tr = card.get("training", {})
    steps = args.zs_steps or (tr.get("budget") or {}).get("steps") or tr.get("steps") or 1000
    steps = min(steps, 10) if args.quick else steps
    minutes = args.zs_minutes
    cfg = TrainConfig(batch_atoms=tr.get("batch_atoms"), lr=tr.get("lr", TrainConfig.lr),
                      seed=tr.get("seed", args.seed),
                      schedule=tr.get("schedule", TrainConfig.schedule))
    rxn = ll.datasets.load("rxn-xtb")
    rxn = rxn[[i for i, f in enumerate(rxn) if f.info.get("reaction") not in TEST_REACTIONS]]  # as lam-chon-small
    single = ll.build_model("dpa2-small", rxn.elements, seed=args.seed)
    t0 = time.perf_counter()
    res = ll.train(single, rxn, steps=None if minutes else steps, minutes=minutes, config=cfg, out_dir=None,
                   progress=False)
    single_budget = {"steps": res.steps, "wall_s": time.perf_counter() - t0, "frames": len(rxn),
                     "batch_atoms": cfg.batch_atoms, "lr": cfg.lr}
    models = [(f"multi-task [{h}]", mt, h) for h in args.zs_heads if h in mt.heads]
    models.append(("single-task rxn-xtb", res.model, next(iter(res.model.heads))))
    rows = []
    for name, model, head in models:
        row = {"model": name, "head": head}
        for tag, label in (("gfn2", XTB), ("dft", DFT)):
            m = model
            if tag == "dft":  # only the energy bias moves: a per-element shift fitted on rxn-dft's train split
                m = copy.deepcopy(model)
                m.fit_energy_bias(train, head=head, label=label)
            r = ll.evaluate(m, test, head=head, label=label, parity=False).rows[0]
            row.update({f"{tag}_e_rmse": r.e_rmse, f"{tag}_f_rmse": r.f_rmse, f"{tag}_e_std": r.e_std,
                        f"{tag}_f_std": r.f_std})
        rows.append(row)
    print(f"\nzero-shot on rxn-dft test ({len(test)} frames: {', '.join(TEST_REACTIONS)}); multi-task: {source}")
    print(f"{'model':<26}{'GFN2 E meV/atom':>16}{'GFN2 F meV/Å':>14}{'DFT E meV/atom':>16}{'DFT F meV/Å':>13}")
    for r in rows:
        print(f"{r['model']:<26}{r['gfn2_e_rmse']:>16.1f}{r['gfn2_f_rmse']:>14.1f}{r['dft_e_rmse']:>16.1f}{r['dft_f_rmse']:>13.1f}")
    return {"multitask": source, "multitask_training": tr, "single_task_budget": single_budget,
            "test_frames": len(test), "bias_refit_frames": len(train), "rows": rows,
            "note": "DFT columns: energy bias refitted on rxn-dft's train split (wB97X/6-31G*), nothing else changed; "
                    "e_std/f_std are the label spreads (an RMSE below them beats predicting the mean)"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: a few steps and seconds per side (~3 min)")
    p.add_argument("--minutes", type=float, default=5.0, help="training minutes per side for equal-time accuracy")
    p.add_argument("--steps", type=int, default=200, help="training steps per side for the step timing")
    p.add_argument("--threads", type=int, default=2, help="torch threads, equal on both sides")
    p.add_argument("--cases", nargs="+", default=["rxn-xtb", "water"], help="rxn-xtb (headline) and/or water")
    p.add_argument("--skip-deepmd", action="store_true", help="lam_lab only (ratios null)")
    p.add_argument("--skip-zero-shot", action="store_true")
    p.add_argument("--zero-shot-only", action="store_true",
                   help="only the zero-shot table, written into the existing results file (other figures kept)")
    p.add_argument("--multitask", help="multi-task model file (default: the shipped lam-chon-small)")
    p.add_argument("--zs-heads", nargs="+", default=["rxn-xtb", "rxn-dft"], help="multi-task heads in the table")
    p.add_argument("--zs-steps", type=int, help="single-task steps (default: the multi-task card's)")
    p.add_argument("--zs-minutes", type=float, help="single-task minutes instead of steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--deepmd-timeout", type=float, default=3600, help="seconds for DeePMD-kit's step-timing run")
    p.add_argument("--out", help="result name under benchmarks/results (default train_speed, or train_speed_quick)")
    args = p.parse_args()
    if args.quick:
        args.steps, args.minutes = min(args.steps, 6), min(args.minutes, 0.2)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    if not args.skip_deepmd and not DP.exists():
        print(f"{DP} not found (bash benchmarks/deepmd_env.sh builds it): DeePMD-kit skipped")
        args.skip_deepmd = True
    load_before = os.getloadavg()
    if args.zero_shot_only:
        path = Path(__file__).resolve().parent / "results" / f"{args.out or 'train_speed'}.json"
        previous = json.loads(path.read_text()) if path.exists() else {}
        previous["zero_shot"] = zero_shot(args)
        previous["zero_shot"]["threads"] = args.threads
        write_result(args.out or "train_speed", previous)
        return
    with tempfile.TemporaryDirectory(prefix="train_speed-") as tmp:
        results = [run_case(c, args, Path(tmp)) for c in load_cases(args.cases, args.quick, Path(tmp))]
    zs = {"skipped": True} if args.skip_zero_shot else zero_shot(args)
    head = results[0] if results else {}
    by_case = {r["case"]: r for r in results}
    print("\n" + "  ".join(f"{r['case']}: ratio_vs_deepmd {_fmt(r['ratio_vs_deepmd'])} (target ≤ 0.67), "
                           f"equal_time_force_rmse_ratio {_fmt(r['equal_time_force_rmse_ratio'])} (target ≤ 1)"
                           for r in results))
    write_result(args.out or ("train_speed_quick" if args.quick else "train_speed"), {
        "ratio_vs_deepmd": head.get("ratio_vs_deepmd"),
        "equal_time_force_rmse_ratio": head.get("equal_time_force_rmse_ratio"),
        "headline_case": head.get("case"),
        **{f"{k}_{c}": r[k] for c, r in by_case.items() for k in ("ratio_vs_deepmd", "equal_time_force_rmse_ratio")},
        "targets": {"ratio_vs_deepmd": 0.67, "equal_time_force_rmse_ratio": 1.0},
        "cases": by_case, "zero_shot": zs, "reference": REFERENCE,
        "deepmd_recipe": {"learning_rate": DEEPMD_LR, "loss": DEEPMD_LOSS, "batch_size": 1},
        "threads": args.threads, "steps": args.steps, "minutes": args.minutes, "quick": args.quick,
        "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg()),
        "notes": ("s/step excludes the first log window on both sides and includes the neighbor list, data and "
                  "optimizer; train_wall_s is the training loop only (ours after input stats/bias fit, theirs the "
                  "sum of its log windows). Errors: energy RMSE per atom (meV/atom), force RMSE over components "
                  "(meV/Å) on the same test frames. Shared CPU: compare ratios from the same run."),
    })


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


if __name__ == "__main__":
    main()
