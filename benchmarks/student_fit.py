"""How closely can a student follow its Δ teacher? The Lab's first fit, offline, for several students.

The seed frames are those of the Lab's Distill tab for one reaction (``rxn-dft`` train geometries and
``SEED_XTB_FRAMES`` ``rxn-xtb`` geometries, with ``SEEDED_FIT`` rattled copies), labelled by the teacher. Each
variant is fitted to them and scored on its own training frames (force RMSE vs the labels it was fitted to) and
on the reaction's frames no seed came from, against ωB97X/6-31G(d) beside the teacher and GFN2-xTB alone on the
same frames; one MD force call of each model on the reaction's TS is timed (median of 30, ms, 1 thread).

Variants: ``student`` (the Lab's student and recipe), ``student-xtb`` (the same student fitted to GFN2-xTB's own
labels on the same geometries: can it follow a smooth surface it has every label of?), ``dpa2-1layer`` (a
one-layer DPA-2 with a 5 Å list as the student, at lr 3e-3; at 2e-2 it diverges), ``student-pretrained`` (the
student first trained on the GFN2-xTB labels of ``rxn-xtb``'s train split, then fitted like ``student``); the
student's capacity one knob at a time: ``student-wide`` (embedding 128 channels, axis 32), ``student-basis40`` and
``student-basis12`` (radial B-splines, 20 in the preset), ``student-fit256`` (fitting net 256³). ``--seed`` changes
the initial weights and batches (the spread between seeds is the noise on a variant's figures); ``--md-frames N``
adds N teacher-labelled frames of the teacher's own MD to the seeds.

Usage: python benchmarks/student_fit.py [--teacher lam-chon-delta] [--reaction diels-alder]
    [--variants student,student-wide,...] [--steps 24000] [--pretrain-steps 60000]
    [--md-frames 2700] [--seed 0] [--out student_fit]
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

DPA2_ONE_LAYER = {"kind": "dpa2", "repinit_rcut": 5.0, "repinit_sel": 80, "repformer_layers": 1, "g1_dim": 64,
                  "g2_dim": 16, "fitting_neuron": (128, 128, 128)}
VARIANTS = {  # name: (build_model overrides of the "student" preset, lr, labels)
    "student": ({}, None, "teacher"),
    "student-xtb": ({}, None, "gfn2-xtb"),
    "dpa2-1layer": (DPA2_ONE_LAYER, 3e-3, "teacher"),
    "student-pretrained": ({}, None, "teacher"),  # first pre-trained on rxn-xtb's train split (--pretrain-steps)
    # the student's capacity, one knob at a time
    "student-wide": ({"repinit_neuron": (128,), "repinit_axis": 32}, None, "teacher"),
    "student-basis40": ({"student_basis": 40}, None, "teacher"),
    "student-basis12": ({"student_basis": 12}, None, "teacher"),
    "student-fit256": ({"fitting_neuron": (256, 256, 256)}, None, "teacher"),
}


def pretrained_student(steps: int):
    """The Lab's student pre-trained on ``rxn-xtb``'s train split (GFN2-xTB labels of many C/H/N/O reactions) with
    the seeded-fit recipe; its val force RMSE (meV/Å) beside it."""
    import lam_lab as ll
    from lam_lab.distill import distill_config
    from lam_lab.distill.seeds import SEEDED_FIT, XTB_SET
    from lam_lab.models import build_model
    from lam_lab.train.trainer import train

    data = ll.datasets.load(XTB_SET)
    cfg = distill_config().train.replace(lr=SEEDED_FIT.lr, batch_atoms=SEEDED_FIT.batch_atoms, threads=1)
    res = train(build_model("student", ["C", "H", "N", "O"]), data.where(split="train"), steps=steps, config=cfg,
                out_dir=None, labels="gfn2-xtb", validation=data.where(split="val"), progress=False)
    return res.model, res.metrics.rows[0].f_rmse


def seed_set(teacher, reaction: str, md_frames: int = 0):
    """The Lab's first-fit frames for ``reaction`` (and ``md_frames`` of the teacher's MD), labelled by the teacher
    (label set "teacher") and by GFN2-xTB."""
    import numpy as np

    from lam_lab.data.frame import Labels
    from lam_lab.delta import RuntimeBaseline, delta_spec
    from lam_lab.distill.seeds import SEEDED_FIT, rattled_copies, reaction_frames
    from lam_lab.distill.teacher import label_frames
    from lam_lab.ui.distill_panel import SEED_XTB_FRAMES

    frames = reaction_frames([reaction], xtb_frames=SEED_XTB_FRAMES)
    ds = label_frames(teacher, "default", frames, "seeds", "teacher")
    ds = ds + label_frames(teacher, "default", rattled_copies(list(ds), SEEDED_FIT.rattle_copies,
                                                              SEEDED_FIT.rattle_sigma), "seeds", "teacher")
    if md_frames:
        ds = ds + label_frames(teacher, "default", teacher_md_frames(teacher, reaction, md_frames), "seeds", "teacher")
    xtb = RuntimeBaseline(delta_spec(teacher))
    for f in ds:
        b = xtb(f.to_atoms())
        f.labels["gfn2-xtb"] = Labels(float(b["energy"]), np.asarray(b["forces"]), None)
    return ds


def teacher_md_frames(teacher, reaction: str, n_frames: int, every: int = 10, seed: int = 1) -> list:
    """``n_frames`` geometries of the teacher's own Langevin MD (0.5 fs, every ``every`` steps) at 300, 600 and 1000 K
    from the reaction's verified TS and both minima: geometries beyond the seeds' rattled copies."""
    import lam_lab as ll
    from lam_lab.data.frame import Frame
    from lam_lab.md.reactive import builtin_ts
    from lam_lab.md.runner import run_md

    ts = builtin_ts(reaction)
    runs = [(t, start) for t in (300.0, 600.0, 1000.0) for start in (ts.ts, ts.reactant, ts.product)]
    out = []
    for k, (temperature, start) in enumerate(runs):
        n = n_frames // len(runs) + (k < n_frames % len(runs))
        res = run_md(start, ll.LAMCalculator(teacher), ensemble="langevin", temperature=temperature, steps=n * every,
                     interval=every, friction=0.002, seed=seed + k)  # 1/fs
        out += [Frame.from_atoms(a, info={"source": "teacher-md", "temperature": temperature}) for a in res.frames[-n:]]
    return out


def force_call_ms(model, atoms, repeats: int = 30) -> float:
    """Median wall time of one MD force call of ``model`` through ``LAMCalculator`` on ``atoms`` (ms)."""
    import lam_lab as ll
    from lam_lab.ui.distill_panel import force_call_seconds

    return 1000 * force_call_seconds(ll.LAMCalculator(model), atoms, repeats)


def main(argv: list[str] | None = None) -> int:
    import torch

    import lam_lab as ll
    from lam_lab.data.dataset import Dataset
    from lam_lab.distill import distill_config
    from lam_lab.distill.seeds import SEEDED_FIT, heldout_frames
    from lam_lab.distill.select import force_rmse, predict
    from lam_lab.evaluation import predict as predict_label
    from lam_lab.evaluation import reference, score
    from lam_lab.md.reactive import builtin_ts
    from lam_lab.models import build_model
    from lam_lab.train.trainer import train

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default="lam-chon-delta")
    p.add_argument("--reaction", default="diels-alder")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--steps", type=int, default=24000, help="training steps of each fit (the Lab's first fit: 24000)")
    p.add_argument("--pretrain-steps", type=int, default=60000, help="student-pretrained: steps on rxn-xtb")
    p.add_argument("--md-frames", type=int, default=0, help="add this many frames of the teacher's own MD (300–1000 K "
                   "from the TS and both minima) to the seeds")
    p.add_argument("--seed", type=int, default=0, help="seed of each student's initial weights and batches")
    p.add_argument("--out", default="student_fit")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    teacher = ll.pretrained.load(a.teacher)
    seeds = seed_set(teacher, a.reaction, a.md_frames)
    unseen = Dataset(heldout_frames([a.reaction]), name="unseen")
    dft = "wb97x/6-31g*"
    ts = builtin_ts(a.reaction).ts
    t_pred = predict_label(teacher, unseen)  # GFN2-xTB added back
    teacher_scores, t_forces = score(t_pred, unseen, dft), t_pred.forces
    xtb_pred = reference(unseen, "gfn2-xtb")
    xtb_scores = score(xtb_pred, unseen, dft)

    def per_frame(forces) -> list[float]:
        """Force RMSE (meV/Å) of each unseen frame vs ωB97X: one distorted frame can carry a whole score."""
        return [force_rmse([p], [f.labels[dft].forces]) for p, f in zip(forces, unseen)]

    elements = sorted({s for f in seeds for s in f.to_atoms().get_chemical_symbols()})
    rows = []
    for name in a.variants.split(","):
        options, lr, label = VARIANTS[name]
        torch.manual_seed(a.seed)
        if name == "student-pretrained":
            model, pre_val = pretrained_student(a.pretrain_steps)
        else:
            model, pre_val = build_model("student", elements, **options), None
        cfg = distill_config().train.replace(lr=lr or SEEDED_FIT.lr, batch_atoms=SEEDED_FIT.batch_atoms, threads=1,
                                            seed=a.seed)
        t0 = time.perf_counter()
        model = train(model, seeds, steps=a.steps, config=cfg, out_dir=None, labels=label, progress=False).model
        wall = time.perf_counter() - t0
        own = list(seeds)[:: max(1, len(seeds) // 400)]
        pred = predict_label(model, unseen)
        s = score(pred, unseen, dft)
        row = {"variant": name, "options": {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
               "lr": cfg.lr, "labels": label, "steps": a.steps, "train_seconds": wall,
               "pretrain_steps": a.pretrain_steps if pre_val is not None else None,
               "pretrain_val_force_rmse_mev_per_A": pre_val,
               "own_frames_force_rmse_mev_per_A": force_rmse(predict(model, own).forces,
                                                             [f.labels[label].forces for f in own]),
               "unseen_force_rmse_mev_per_A": s.force_rmse_mev_per_A,
               "unseen_vs_teacher_mev_per_A": force_rmse(pred.forces, t_forces),
               # against the labels it was fitted to (the teacher's, or GFN2-xTB's own on these frames)
               "unseen_vs_own_labels_mev_per_A": force_rmse(pred.forces, t_forces if label == "teacher" else
                                                            [f.labels[label].forces for f in unseen]),
               "unseen_frames_force_rmse_mev_per_A": per_frame(pred.forces),
               "over_teacher": s.force_rmse_mev_per_A / teacher_scores.force_rmse_mev_per_A,
               "force_call_ms": force_call_ms(model, ts)}
        rows.append(row)
        print(f"{name}: own frames {row['own_frames_force_rmse_mev_per_A']:.0f} vs its {label} labels; unseen "
              f"{row['unseen_force_rmse_mev_per_A']:.0f} vs ωB97X ({row['over_teacher']:.2f}× the teacher's "
              f"{teacher_scores.force_rmse_mev_per_A:.0f}, GFN2-xTB {xtb_scores.force_rmse_mev_per_A:.0f}), "
              f"{row['unseen_vs_own_labels_mev_per_A']:.0f} vs its {label} labels; {row['force_call_ms']:.2f} ms a "
              f"force call; "
              f"{wall:.0f} s", flush=True)
    write_result(a.out, {"teacher": a.teacher, "reaction": a.reaction, "seed_frames": len(seeds),
                         "unseen_frames": len(unseen), "label": dft,
                         "teacher_force_rmse_mev_per_A": teacher_scores.force_rmse_mev_per_A,
                         "by_unseen_frame": [
                             {"source": f.info.get("source"), "teacher": t, "xtb": x,
                              "max_force_eV_per_A": float(abs(f.labels[dft].forces).max())}
                             for f, t, x in zip(unseen, per_frame(t_forces), per_frame(xtb_pred.forces))],
                         "xtb_force_rmse_mev_per_A": xtb_scores.force_rmse_mev_per_A,
                         "teacher_force_call_ms": force_call_ms(teacher, ts), "rows": rows,
                         "settings": vars(a)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
