"""The Lab's Distill tab on its CPU defaults, driven as a user drives it, for each kind of teacher.

Teachers: ``lab-delta`` (what the Lab itself makes: Fine-tune · Δ on its defaults, from ``lam-chon-small``, N = 50
frames of rxn-dft, then handed to Distill), ``lam-chon-delta`` (the shipped Δ model, the tab's default teacher) and
``lam-chon-small`` (its rxn-xtb head, an xTB-level model). For each: the panel's own check against ωB97X/6-31G(d)
on the reaction's frames no seed came from (student, teacher, GFN2-xTB alone; the issue's target: student ≤ 1.3× the
teacher), and reactive MD from the verified DFT saddle with teacher and student on the same starts (reactant/product
fractions; target: within 1 of 8 trajectories).

Usage: python benchmarks/lab_distill.py [--teachers lab-delta,lam-chon-delta,lam-chon-small] [--reaction diels-alder]
    [--trajectories 8] [--set init_steps=24000 --set "temperatures=300, 600"] -> benchmarks/results/lab_distill.json

``--set`` changes a widget of the Distill panel before Start (as a user would type it), to measure other settings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result  # noqa: E402


def lab_delta_teacher(out_root: str):
    """The Δ model the Lab's Fine-tune · Δ tab makes on its defaults (the model it offers to Distill)."""
    from lam_lab.ui import FinetunePanel

    panel = FinetunePanel(out_root=out_root)
    panel.mode.value = "Δ on GFN2-xTB"
    t0 = time.perf_counter()
    panel.start()
    res = panel.wait()
    recipe = {"pretrained": panel.pretrained.label, "data": panel.downstream.value, "frames": panel.frames.value,
              "steps": panel.steps.value, "seconds": time.perf_counter() - t0}
    return res.model, recipe


def reactive(model, reaction: str, trajectories: int, head: str | None = None) -> dict:
    """Reactive MD from the reaction's verified saddle (ReactiveConfig defaults): ends and reactive trajectories."""
    from lam_lab.md.calculator import LAMCalculator
    from lam_lab.md.reactive import ReactiveConfig, builtin_ts, run_reactive

    t0 = time.perf_counter()
    cfg = ReactiveConfig(n_trajectories=trajectories, seed=0)
    r = run_reactive(builtin_ts(reaction), LAMCalculator(model, head=head), cfg)
    return {"fractions": r.fractions, "reactive": sum(o.kind == "reactive" for o in r.outcomes),
            "kinds": [o.kind for o in r.outcomes], "ts_method": r.ts.method, "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    import lam_lab as ll
    from lam_lab.distill.seeds import heldout_frames
    from lam_lab.ui import DistillPanel
    from lam_lab.ui._baseline import baseline_alone

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teachers", default="lab-delta,lam-chon-delta,lam-chon-small")
    p.add_argument("--reaction", default="diels-alder")
    p.add_argument("--trajectories", type=int, default=8)
    p.add_argument("--out-root", default="lam_lab_runs/lab_distill")
    p.add_argument("--out", default="lab_distill")
    p.add_argument("--set", action="append", default=[], metavar="WIDGET=VALUE",
                   help="a Distill panel widget's value (repeatable), e.g. init_steps=24000")
    a = p.parse_args(argv)
    rows = []
    for name in a.teachers.split(","):
        recipe: dict = {}
        if name == "lab-delta":
            teacher, recipe = lab_delta_teacher(a.out_root)
        else:  # a shipped model (lam-chon-small: its rxn-xtb head, the panel's default head)
            teacher = ll.pretrained.load(name)
        panel = DistillPanel(teacher=teacher, systems=a.reaction, out_root=a.out_root)
        for item in a.set:
            key, value = item.split("=", 1)
            widget = getattr(panel, key)
            widget.value = type(widget.value)(value)
        settings = {k: getattr(panel, k).value for k in ("n_rounds", "md_steps", "init_steps", "train_steps",
                                                          "temperatures", "student")}
        t0 = time.perf_counter()
        panel.start()
        res = panel.wait()
        wall = time.perf_counter() - t0
        check = panel.check
        model, head = panel.teacher.resolve()
        base = baseline_alone(heldout_frames([a.reaction]), check.label)
        row = {"teacher": name, "teacher_recipe": recipe, "panel": settings, "distill_seconds": wall,
               "unseen_frames": check.n_frames, "label": check.label,
               "teacher_force_rmse_mev_per_A": check.teacher.force_rmse_mev_per_A,
               "student_force_rmse_mev_per_A": check.student.force_rmse_mev_per_A,
               "xtb_force_rmse_mev_per_A": base.scores.force_rmse_mev_per_A if base else None,
               "student_over_teacher": check.student_over_teacher,
               "student_over_teacher_by_part": {k: {"frames": n, "ratio": r} for k, (n, r) in check.by_part.items()},
               "student_vs_teacher_fixed_frames_mev_per_A": [r.monitor_f_rmse for r in res.rounds],
               "md_teacher": reactive(model, a.reaction, a.trajectories, head),
               "md_student": reactive(res.student, a.reaction, a.trajectories)}
        # each trajectory has two ends: one trajectory's ends flipping moves an end fraction by at most 1/K
        row["md_fraction_gap_trajectories"] = max(
            abs(row["md_teacher"]["fractions"][k] - row["md_student"]["fractions"][k]) * a.trajectories
            for k in ("reactant", "product"))
        rows.append(row)
        print(f"{name}: teacher {row['teacher_force_rmse_mev_per_A']:.0f}, student "
              f"{row['student_force_rmse_mev_per_A']:.0f}, GFN2-xTB {row['xtb_force_rmse_mev_per_A']:.0f} meV/Å on "
              f"{check.n_frames} unseen frames: student/teacher {row['student_over_teacher']:.2f}; "
              f"distill {wall:.0f} s; "
              f"reactive MD teacher {row['md_teacher']['reactive']}/{a.trajectories} "
              f"(reactant {row['md_teacher']['fractions']['reactant']:.0%}), student "
              f"{row['md_student']['reactive']}/{a.trajectories} (reactant "
              f"{row['md_student']['fractions']['reactant']:.0%})", flush=True)
    write_result(a.out, {"rows": rows, "settings": {k: v for k, v in vars(a).items() if k != "out_root"}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
