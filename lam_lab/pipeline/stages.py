"""The pipeline's stages, in order; each reads earlier stages' artefacts and writes its own under ``out/<stage>/``."""

from __future__ import annotations

import dataclasses
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lam_lab.evaluation import label_spread, offset_removed
from lam_lab.pipeline.config import PipelineConfig
from lam_lab.pipeline.state import StageRecord
from lam_lab.train.rundir import replacing_runs

DELTA_MODES = {"delta", "delta-finetune"}


@dataclass
class Context:
    """What every stage gets: settings, output folder, device, earlier records, a logger and a stop flag."""

    cfg: PipelineConfig
    out: Path
    records: dict[str, StageRecord] = field(default_factory=dict)
    log: Callable[[str], None] = print
    stop_event: threading.Event | None = None
    progress: bool = True

    def dir(self, stage: str) -> Path:
        """The stage's folder (created)."""
        d = self.out / stage
        d.mkdir(parents=True, exist_ok=True)
        return d

    def rel(self, path: str | Path) -> str:
        """A path relative to the pipeline's folder (records stay valid when the folder moves)."""
        return str(Path(path).resolve().relative_to(self.out.resolve()))

    def path(self, stage: str, role: str) -> Path:
        """An artefact of an earlier stage by its role."""
        return self.out / self.records[stage].files[role]


def write_json(path: Path, obj: Any) -> Path:
    """Atomic JSON (NaN as null)."""
    from lam_lab.atomic import atomic_write_text
    from lam_lab.json_safe import dumps

    return atomic_write_text(path, dumps(obj))


def histogram(values: np.ndarray, bins: int = 40) -> dict[str, list[float]]:
    """Counts and bin edges (what the report draws; the raw labels stay in the package)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    counts, edges = np.histogram(values, bins=bins) if values.size else (np.zeros(0), np.zeros(1))
    return {"counts": counts.tolist(), "edges": edges.tolist()}


# -- 1. data -------------------------------------------------------------------------------------------
def stage_data(ctx: Context) -> tuple[dict[str, str], dict[str, Any]]:
    """Summary table (with the Δ labels of the downstream set), element counts and label histograms of the sets."""
    from lam_lab import datasets

    rows, hist = [], {}
    for name in ctx.cfg.data.sets:
        ds = datasets.load(name)
        s = ds.summary()
        for label in s.label_sets:
            lp = s.provenance.labels.get(label)
            rows.append(_data_row(name, label, lp.method if lp else label, ds, s))
        ft = ctx.cfg.finetune
        if name == ft.dataset and {ft.label, ft.baseline} <= set(ds.label_sets):  # what a Δ model learns
            from lam_lab.delta import delta_dataset

            d = delta_dataset(ds, ft.label, ft.baseline)
            rows.append(_data_row(name, d.label_sets[0], d.provenance.labels[d.label_sets[0]].method, d, s))
        label = ds.default_label() if len(ds.label_sets) == 1 else ds.label_sets[-1]
        with_e = [f for f in ds if label in f.labels and f.labels[label].energy is not None]
        e = offset_removed(np.array([f.labels[label].energy / len(f) for f in with_e]), with_e)
        fn = np.concatenate([np.linalg.norm(f.labels[label].forces, axis=1) for f in ds
                             if label in f.labels and f.labels[label].forces is not None])
        hist[name] = {"label": label, "energy": histogram(e), "force": histogram(fn)}
        ctx.log(f"data: {name}: {len(ds)} frames, labels {ds.label_sets}")
    path = write_json(ctx.dir("data") / "summary.json", {"rows": rows, "histograms": hist})
    frames = sum(r["frames"] for r in rows if not r["label"].startswith("delta:"))
    return {"summary": ctx.rel(path)}, {"sets": len(ctx.cfg.data.sets), "frames": frames}


def _data_row(name: str, label: str, method: str, ds: Any, s: Any) -> dict[str, Any]:
    """One label set of a data set: frames, atoms, spread of E/atom with per-element offsets removed (meV), F rms."""
    e_std, _ = label_spread(list(ds), label)
    forces = [f.labels[label].forces.ravel() for f in ds if label in f.labels and f.labels[label].forces is not None]
    f_rms = float(np.sqrt(np.mean(np.concatenate(forces) ** 2))) if forces else float("nan")
    return {"set": name, "label": label, "method": method, "frames": sum(label in f.labels for f in ds),
            "atoms": f"{s.atoms_min}-{s.atoms_max}", "periodic": s.periodic_frames, "elements": s.elements,
            "e_std_mev": e_std, "f_rms": f_rms}


# -- 2. pre-training -----------------------------------------------------------------------------------
def stage_pretrain(ctx: Context) -> tuple[dict[str, str], dict[str, Any]]:
    """The multi-task model: the shipped one (copied with its card) or a fresh run of its recipe."""
    import shutil

    from lam_lab import pretrained

    spec, d = ctx.cfg.pretrain, ctx.dir("pretrain")
    if spec.source == "shipped":
        src = pretrained.path(spec.model)
        model = d / "model.pt"
        shutil.copy2(src, model)
        card = src.with_suffix("").with_suffix(".card.json")
        shutil.copy2(card, d / "card.json")
        history = src.with_suffix("").with_suffix(".history.json")
        files = {"model": ctx.rel(model), "card": ctx.rel(d / "card.json")}
        if history.exists():
            shutil.copy2(history, d / "history.json")
            files["history"] = ctx.rel(d / "history.json")
        ctx.log(f"pretrain: shipped model {spec.model}")
        return files, {"source": "shipped", "name": spec.model}
    from lam_lab.pretrained.recipe import load_recipe, pretrain

    recipe = load_recipe(spec.model).replace(preset=spec.preset, steps=spec.steps, minutes=spec.minutes,
                                             device=ctx.cfg.device, frames=spec.frames, seed=ctx.cfg.seed)
    with replacing_runs():  # a run of other settings in d/run moves aside (a killed one with checkpoints resumes)
        res = pretrain(recipe, d / "run", resume=True, progress=ctx.progress, stop_event=ctx.stop_event)
    shutil.copy2(res.model_path, d / "model.pt")
    write_json(d / "card.json", res.card)
    write_json(d / "history.json", res.card.get("history", []))
    ctx.log(f"pretrain: {res.card['training']['steps']} steps")
    return ({"model": ctx.rel(d / "model.pt"), "card": ctx.rel(d / "card.json"),
             "history": ctx.rel(d / "history.json")},
            {"source": "scratch", "steps": res.card["training"]["steps"]})


# -- 3. fine-tuning and Δ-ML ---------------------------------------------------------------------------
def stage_finetune(ctx: Context) -> tuple[dict[str, str], dict[str, Any]]:
    """Each mode × N on the downstream set; errors on the held-out test split against the high-level labels."""
    from lam_lab import datasets
    from lam_lab.finetune import finetune, finetune_config
    from lam_lab.pipeline.evaluation import baseline_score, downstream_splits, score

    spec, d = ctx.cfg.finetune, ctx.dir("finetune")
    train_all, val, test = downstream_splits(datasets.load(spec.dataset))
    pre = ctx.path("pretrain", "model")
    common = finetune_config(label=spec.label, baseline=spec.baseline, steps=spec.steps, minutes=spec.minutes,
                             device=ctx.cfg.device, seed=ctx.cfg.seed)  # what every mode × N shares
    rows, files, histories = [], {}, {}
    for n in spec.sizes:
        for mode in spec.modes:
            tag = f"{mode}-n{n}"
            pretrained = None if mode in ("scratch", "delta") else str(pre)
            with replacing_runs():  # a re-run (killed, or other settings) moves the older run in d/tag aside
                res = finetune(train_all, common, pretrained=pretrained, frames=min(n, len(train_all)),
                               mode="delta" if mode in DELTA_MODES else mode, validation=val, out_dir=d / tag,
                               progress=ctx.progress, stop_event=ctx.stop_event)
            files[f"model:{tag}"] = ctx.rel(res.path)
            histories[tag] = res.train.history
            row = {"method": mode, "n": min(n, len(train_all)), **score(res.model, test, spec.label, spec.baseline)}
            rows.append(row)
            ctx.log(f"finetune: {tag}: F RMSE {row['force_rmse_mev_per_A']:.0f} meV/Å, "
                    f"barrier error {row['barrier_err_ev']:.3f} eV (mean over {row['barrier_reactions']} reactions)")
    best = min(rows, key=lambda r: r["force_rmse_mev_per_A"])
    files["best"] = files[f"model:{best['method']}-n{best['n']}"]
    base = baseline_score(test, spec.label, spec.baseline)
    base_row = {"method": f"{spec.baseline} alone", "n": 0, **base} if base else None
    if base_row:
        ctx.log(f"finetune: {spec.baseline} alone on the same frames: "
                f"F RMSE {base_row['force_rmse_mev_per_A']:.0f} meV/Å")
    files["results"] = ctx.rel(write_json(d / "results.json", {"rows": rows, "best": best, "baseline": base_row,
                                                                "histories": histories}))
    return files, {"best": f"{best['method']} N={best['n']}", "best_f_rmse": best["force_rmse_mev_per_A"]}


# -- 4. distillation -----------------------------------------------------------------------------------
def stage_distill(ctx: Context) -> tuple[dict[str, str], dict[str, Any]]:
    """The best fine-tuned model teaches the student where it will be scored and run (:func:`distill_inputs`)."""
    from lam_lab.distill import distill, distill_config

    spec, d = ctx.cfg.distill, ctx.dir("distill")
    cfg = distill_config(student=spec.student, trust=(spec.trust_lo, spec.trust_hi), temperatures=spec.temperatures,
                         rounds=spec.rounds, md_steps=spec.md_steps, max_new=spec.max_new, train_steps=spec.train_steps,
                         init_steps=spec.init_steps, rattle_copies=spec.rattle_copies, rattle_sigma=spec.rattle_sigma,
                         device=ctx.cfg.device, seed=ctx.cfg.seed,
                         **{f"train.{k}": v for k in ("lr", "batch_atoms") if (v := getattr(spec, k)) is not None})
    starts, seeds = distill_inputs(ctx.cfg)
    ctx.log(f"distill: teacher MD from {len(starts)} structure(s); first fit on "
            f"{len(seeds) if seeds is not None else 'MD'} frames relabelled by the teacher")
    events: list[dict[str, Any]] = []
    with replacing_runs():  # a re-run moves the older run in d/run aside
        res = distill(str(ctx.path("finetune", "best")), starts, cfg, init_frames=seeds, out_dir=d / "run",
                      progress=ctx.progress, stop_event=ctx.stop_event,
                      callbacks=[lambda e: events.append(e.to_dict()) if getattr(e, "kind", "") == "round" else None])
    student = d / "student.pt"
    from lam_lab.models import save

    save(res.student, student, extra={"teacher": ctx.records["finetune"].files["best"]})
    write_json(d / "rounds.json", events)
    ctx.log(f"distill: {len(events)} rounds, converged={res.converged}")
    return ({"student": ctx.rel(student), "rounds": ctx.rel(d / "rounds.json")},
            {"rounds": len(events), "converged": bool(res.converged)})


def distill_inputs(cfg: PipelineConfig) -> tuple[list[Any], list[Any] | None]:
    """Exploration starts and round-0 frames (geometries; the teacher labels them) of the distillation.

    Starts: the xTB reactant, highest NEB image and product (rxn-xtb) of each held-out reaction (the test split
    of the downstream set, where the student is scored) and the verified TS of the MD stage's reaction. Seeds
    (``seed_frames``): the downstream set's train-split geometries of the MD stage's reaction (the teacher's own
    training data there, TS-centred),
    ``heldout_frames`` rxn-xtb frames of each held-out reaction and ``md_frames`` of the MD stage's reaction
    (none at the geometry of a downstream frame they would be scored on), and the MD TS.
    """
    from lam_lab import datasets
    from lam_lab.distill.seeds import XTB_SET, reaction_frames
    from lam_lab.md.reactive import builtin_ts
    from lam_lab.pipeline.evaluation import downstream_splits

    spec = cfg.distill
    train, _, test = downstream_splits(datasets.load(cfg.finetune.dataset))
    held_out = sorted({str(f.info["reaction"]) for f in test if f.info.get("reaction")})
    stationary = ("reactant", "path-max", "ts", "product")
    starts = [f.to_atoms() for f in datasets.load(XTB_SET) if f.info.get("reaction") in held_out
              and f.info.get("role") in stationary]
    starts.append(builtin_ts(cfg.md.reaction).ts)
    if not spec.seed_frames:
        return starts, None
    held = reaction_frames(held_out, splits=(), xtb_frames=spec.heldout_frames, exclude=list(test))
    held = [f for f in held if f.info.get("role") not in stationary]  # those are the test's own geometries
    md = reaction_frames([cfg.md.reaction], splits=(), xtb_frames=spec.md_frames) if spec.md_frames else []
    # the starts themselves are not seeds: the held-out reaction's xTB stationary points are test geometries.
    # Of the teacher's own training frames only the MD reaction's: a student for the job, not for every reaction
    # (with all 2,176 seeds its first fit saw each frame less than once)
    own = list(train.where(reaction=[cfg.md.reaction]))
    return starts, own + held + md + [starts[-1]]


# -- 5. reactive MD ------------------------------------------------------------------------------------
def stage_md(ctx: Context) -> tuple[dict[str, str], dict[str, Any]]:
    """Trajectories from the shipped TS with the student and, on the same starts, its teacher (a Δ teacher with its
    baseline added back) and GFN2-xTB alone: fractions of each, bond events, one joined path that reacts."""
    from ase.io import write

    from lam_lab.md.calculator import LAMCalculator
    from lam_lab.md.reactive import ReactiveConfig, builtin_ts, run_reactive

    spec, d = ctx.cfg.md, ctx.dir("md")
    ts = builtin_ts(spec.reaction)
    cfg = ReactiveConfig(n_trajectories=spec.trajectories, steps=spec.steps, temperature=spec.temperature,
                         timestep=spec.timestep, seed=ctx.cfg.seed, output_dir=str(d / "trajectories"))
    res = run_reactive(ts, LAMCalculator(str(ctx.path("distill", "student")), device=ctx.cfg.device), cfg)
    teacher = run_reactive(ts, LAMCalculator(str(ctx.path("finetune", "best")), device=ctx.cfg.device),
                           dataclasses.replace(cfg, output_dir=str(d / "teacher-trajectories")))
    xtb = run_reactive(ts, "xtb", dataclasses.replace(cfg, output_dir=str(d / "xtb-trajectories")))
    rank = lambda o: (o.kind == "reactive", len(o.bonds.events) if o.bonds else 0, len(o.frames))  # noqa: E731
    # the student's path if one reacts, else the teacher's, else GFN2-xTB's: the report always shows a reaction
    runs = {"student": res, "teacher": teacher, "gfn2-xtb": xtb}
    by = next((k for k, r in runs.items() if any(o.kind == "reactive" for o in r.outcomes)), "student")
    show = max(runs[by].outcomes, key=rank)
    traj = d / "shown.extxyz"
    write(traj, show.frames, format="extxyz")
    summary = res.to_dict()
    summary.update(shown=show.index, shown_by=by, teacher=teacher.to_dict(), xtb=xtb.to_dict())
    write_json(d / "reactive.json", summary)
    for name, r in runs.items():
        ctx.log(f"md: {name} {r.summary()}")
    return ({"trajectory": ctx.rel(traj), "results": ctx.rel(d / "reactive.json")},
            {"reactive_fraction": res.reactive_fraction, "teacher_reactive_fraction": teacher.reactive_fraction,
             "xtb_reactive_fraction": xtb.reactive_fraction, **{f"ends_{k}": v for k, v in res.fractions.items()}})


# -- 6. evaluation -------------------------------------------------------------------------------------
def stage_evaluate(ctx: Context) -> tuple[dict[str, str], dict[str, Any]]:
    """Zero-shot, fine-tuned/Δ and student-vs-teacher errors on the held-out reaction, and MD speed of each."""
    from lam_lab import datasets
    from lam_lab.models import load
    from lam_lab.pipeline.evaluation import baseline_score, downstream_splits, md_speed, score, zero_shot_rows
    from lam_lab.pretrained.delta_card import selection_parts

    spec = ctx.cfg.finetune
    _, _, test = downstream_splits(datasets.load(spec.dataset))
    ft = json.loads(ctx.path("finetune", "results").read_text())
    teacher = load(ctx.path("finetune", "best"))
    student = load(ctx.path("distill", "student"))
    teacher_row = {"model": f"teacher ({ft['best']['method']} N={ft['best']['n']})",
                   **score(teacher, test, spec.label, spec.baseline)}
    student_row = {"model": "student", **score(student, test, spec.label, spec.baseline)}
    base = baseline_score(test, spec.label, spec.baseline)
    rows = [teacher_row, student_row] + ([{"model": f"{spec.baseline} alone", **base}] if base else [])
    # where the student runs: the MD reaction's frames that no model trained on (its val split)
    there = datasets.load(spec.dataset).where(reaction=ctx.cfg.md.reaction, split="val")
    there_base = baseline_score(there, spec.label, spec.baseline) if len(there) else None
    md_rows = [{"model": "teacher", **score(teacher, there, spec.label, spec.baseline)},
               {"model": "student", **score(student, there, spec.label, spec.baseline)}] if len(there) else []
    md_rows += [{"model": f"{spec.baseline} alone", **there_base}] if there_base else []
    parts = selection_parts(there)
    for row, model in zip(md_rows, (teacher, student, None)):  # the extra rounds' frames are the hotter ones
        for tag, part in parts.items():
            got = score(model, part, spec.label, spec.baseline) if model is not None else \
                baseline_score(part, spec.label, spec.baseline)
            row[f"force_rmse_{tag}_mev_per_A"] = got["force_rmse_mev_per_A"] if got else None
    speed = md_speed({"teacher": ctx.path("finetune", "best"), "student": ctx.path("distill", "student")},
                     device=ctx.cfg.device)
    zero = zero_shot_rows(load(ctx.path("pretrain", "model")), datasets.load(spec.dataset), spec.label)
    out = {"zero_shot": zero, "finetune": ft["rows"], "baseline": ft.get("baseline"), "student_vs_teacher": rows,
           "student_vs_teacher_md_reaction": {"reaction": ctx.cfg.md.reaction, "frames": len(there), "rows": md_rows,
                                              **{f"frames_{tag}": len(part) for tag, part in parts.items()}},
           "speed": speed}
    path = write_json(ctx.dir("evaluate") / "metrics.json", out)
    su = speed.get("speedup")
    tf, sf = teacher_row["force_rmse_mev_per_A"], student_row["force_rmse_mev_per_A"]
    ctx.log(f"evaluate: held-out reactions: teacher F {tf:.0f}, student F {sf:.0f} meV/Å; student speed-up {su}")
    ratio = md_rows[1]["force_rmse_mev_per_A"] / md_rows[0]["force_rmse_mev_per_A"] if md_rows else float("nan")
    if md_rows:
        ctx.log(f"evaluate: {ctx.cfg.md.reaction} (where the student runs, {len(there)} unseen frames): teacher F "
                f"{md_rows[0]['force_rmse_mev_per_A']:.0f}, student F {md_rows[1]['force_rmse_mev_per_A']:.0f} meV/Å "
                f"(student/teacher {ratio:.2f}{by_selection_ratios(md_rows, parts)})")
    return {"metrics": ctx.rel(path)}, {"teacher_f_rmse": tf, "student_f_rmse": sf, "student_speedup": su,
                                        "md_reaction_student_over_teacher": ratio}


def by_selection_ratios(rows: list[dict[str, Any]], parts: dict[str, Any]) -> str:
    """``; first selection 1.17, extra rounds 1.42`` (student/teacher per part) for a log line."""
    out = [f"{tag.replace('_', ' ')} {rows[1][key] / rows[0][key]:.2f}" for tag in parts
           if (key := f"force_rmse_{tag}_mev_per_A") and rows[0].get(key)]
    return "; " + ", ".join(out) if out else ""


STAGES: list[tuple[str, Callable[[Context], tuple[dict[str, str], dict[str, Any]]], list[str]]] = [
    ("data", stage_data, []),
    ("pretrain", stage_pretrain, []),
    ("finetune", stage_finetune, ["pretrain"]),
    ("distill", stage_distill, ["finetune"]),
    ("md", stage_md, ["distill"]),
    ("evaluate", stage_evaluate, ["pretrain", "finetune", "distill"]),
]
SECTIONS = {"data": "data", "pretrain": "pretrain", "finetune": "finetune", "distill": "distill", "md": "md",
            "evaluate": "finetune"}
