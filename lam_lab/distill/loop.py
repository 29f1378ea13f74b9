"""The distillation loop: teacher MD → student–teacher force deviation → trust window → teacher labels → retrain."""

from __future__ import annotations

import datetime as _dt
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
from ase import Atoms

from lam_lab.data.dataset import Dataset
from lam_lab.data.frame import Frame
from lam_lab.distill.events import DistillRound, RoundEvent
from lam_lab.distill.explore import Explorer
from lam_lab.distill.select import check_trust, force_rmse, max_force_deviation, predict, trust_select
from lam_lab.distill.teacher import (LABEL, as_atoms_list, check_elements, label_frames, resolve_teacher,
                                     teacher_head, teacher_provenance)
from lam_lab.train.events import Callback, EventBus, JSONLLogger

if TYPE_CHECKING:
    from lam_lab.md.runner import MDConfig
    from lam_lab.potential import Potential
    from lam_lab.train.config import TrainConfig


@dataclass
class DistillResult:
    """What a distillation returns: the student (last weights), the round records, whether it converged, files."""

    student: "Potential"
    rounds: list[DistillRound]
    converged: bool
    path: Path | None  # student.pt (None without out_dir)
    stopped: bool = False
    out_dir: Path | None = None
    train_set: Dataset | None = None  # every teacher-labelled frame the student was trained on
    wall_time_s: float = 0.0
    teacher: str = ""
    head: str = ""

    def summary(self) -> str:
        """One line per round: frames, accurate/candidate/failed fractions, selected, RMSE vs teacher."""
        lines = [f"{'round':>5}{'frames':>8}{'accurate':>10}{'candid.':>9}{'failed':>8}{'added':>7}"
                 f"{'max dev':>9}{'F RMSE':>9}{'n_train':>9}"]
        for r in self.rounds:
            f = lambda n: f"{100 * r.fraction(n):.1f}%" if r.n_frames else "-"  # noqa: E731
            lines.append(f"{r.round:>5}{r.n_frames:>8}{f(r.n_accurate):>10}{f(r.n_candidates):>9}{f(r.n_failed):>8}"
                         f"{r.n_selected:>7}{r.max_dev_mean:>9.3f}{r.student_f_rmse:>9.1f}{r.n_train:>9}")
        state = "converged" if self.converged else ("stopped" if self.stopped else "round limit reached")
        lines.append(f"({state}; max dev eV/Å, F RMSE vs teacher meV/Å; {self.wall_time_s:.1f} s)")
        return "\n".join(lines)


def distill(
    teacher: "Potential | str | os.PathLike",
    systems: Sequence[Atoms] | Dataset,
    head: str | None = None,
    student: "str | Potential" = "student",
    trust: tuple[float, float] = (0.1, 1.5),
    temperatures: Sequence[float] = (300.0, 600.0),
    rounds: int = 5,
    md_steps: int = 200,
    sample_every: int = 10,
    max_new: int = 100,
    init_frames: Dataset | Sequence[Frame | Atoms] | None = None,
    train_steps: int = 500,
    config: "TrainConfig | None" = None,
    out_dir: str | os.PathLike | None = "auto",
    callbacks: Iterable[Callback] = (),
    stop_event: threading.Event | None = None,
    progress: bool = True,
    device: str | None = None,
    seed: int = 0,
    *,
    student_options: Mapping[str, Any] | None = None,
    md: "MDConfig | None" = None,
    converge: float = 0.99,
    init_steps: int | None = None,
) -> DistillResult:
    """Distil ``teacher`` into a fast ``student`` (preset name, or a Potential to continue) on the chemistry of ``systems``.

    Round 0 fits the student to teacher-labelled seed frames (``init_frames``, relabelled by the
    teacher; default: ``systems`` + a short teacher MD) for ``init_steps`` (default ``train_steps``).
    Each round k ≥ 1 runs ``md_steps`` of teacher Langevin MD per start and temperature (K), takes a
    frame every ``sample_every`` steps, and measures per frame the largest per-atom |F_student −
    F_teacher| (eV/Å). Frames with deviation in ``trust`` = [lo, hi) — at most ``max_new`` — join the
    training set with the teacher's labels and the student is retrained from its current weights
    for ``train_steps`` steps (``config``: the trainer's recipe, default TrainConfig(batch_atoms=64): the
    student's step costs little, so several small molecules per step buy a steadier gradient); frames ≥ hi
    count as failed and are not used. The exploration is the teacher's own MD, so a large deviation means
    the student is wrong there, not that the geometry is unphysical (as in DP-GEN, where the model being
    trained explores): the default hi (1.5 eV/Å) only screens out teacher failures, and lo (0.1 eV/Å)
    is about the force error the student can reach on reactive molecules. It stops when a fraction ≥ ``converge`` of a round's frames is
    below lo, after ``rounds`` rounds, or when ``stop_event`` is set (after the current MD/training
    step, the student so far saved). ``md`` sets the exploration integrator (default Langevin 0.5 fs).
    ``student_options`` are ``build_model`` overrides of the student preset. Each round emits a
    :class:`RoundEvent` to ``callbacks`` (the trainer's own Events of each round too). Under
    ``out_dir`` ("auto": lam_lab_runs/distill-<time>; None: nothing written): ``student.pt``,
    ``rounds.jsonl`` and ``train.lamh5`` (the teacher-labelled training set, lam-h5).
    """
    from lam_lab.md.calculator import LAMCalculator, default_device
    from lam_lab.models import build_model, save
    from lam_lab.potential import Potential
    from lam_lab.train.config import TrainConfig

    t_start = time.perf_counter()
    lo, hi = check_trust(trust)
    for name, value, least in (("rounds", rounds, 0), ("md_steps", md_steps, 1), ("sample_every", sample_every, 1),
                               ("max_new", max_new, 0), ("train_steps", train_steps, 1)):
        if int(value) < least:
            raise ValueError(f"distill: {name} must be >= {least}, got {value}")
    if not 0 < converge <= 1:
        raise ValueError(f"distill: converge must be in (0, 1], got {converge}")
    t_model, source = resolve_teacher(teacher)
    head = teacher_head(t_model, head, source)
    starts = as_atoms_list(systems)
    seeds_in = None if init_frames is None else list(init_frames)
    elements = check_elements(t_model.type_map, starts, "systems")
    if seeds_in is not None:
        extra = check_elements(t_model.type_map, seeds_in, "init_frames")
        elements = [s for s in t_model.type_map if s in set(elements) | set(extra)]
    if isinstance(student, Potential):
        stud = student
        missing = sorted(set(elements) - set(stud.type_map))
        if missing:
            raise ValueError(f"the student's type map {stud.type_map} lacks {missing} present in the systems")
    else:
        stud = build_model(student, elements, **dict(student_options or {}))
    dev = default_device(device)
    cfg = config or TrainConfig(batch_atoms=64)
    out = _out_dir(out_dir)

    bus = EventBus(list(callbacks) + ([_print_round] if progress else []))
    log = JSONLLogger(out / "rounds.jsonl") if out is not None else None
    calc = LAMCalculator(t_model, head=head, device=dev)
    explorer = Explorer(starts, calc, temperatures, md=md, sample_every=sample_every, seed=seed)
    records: list[DistillRound] = []
    state = {"converged": False, "stopped": False}
    student_path = out / "student.pt" if out is not None else None

    def finish_round(rec: DistillRound, train_ds: Dataset | None) -> None:
        rec.elapsed_s = time.perf_counter() - t_start
        records.append(rec)
        if out is not None:
            save(stud, student_path, extra={"distill": _meta(source, head, lo, hi, rec, temperatures, seed)})
            if train_ds is not None:
                from lam_lab.data import write

                write(train_ds, out / "train.lamh5", format="lam-h5")
        event = RoundEvent.from_round(rec, rounds, str(student_path) if student_path else None)
        if log is not None:
            log(event)
        bus.emit(event)

    def fit(train_ds: Dataset, steps: int, k: int, warm: bool) -> tuple[float, bool]:
        from lam_lab.train.trainer import train

        run_cfg = cfg.replace(fit_bias=cfg.fit_bias and not warm, seed=cfg.seed + k)
        t0 = time.perf_counter()
        res = train(stud, train_ds, steps=steps, config=run_cfg, out_dir=None, callbacks=[bus.emit], device=dev,
                    stop_event=stop_event, labels=LABEL, progress=progress)
        return time.perf_counter() - t0, res.stopped

    try:
        # -- round 0: the seed frames -------------------------------------------------------------
        t0 = time.perf_counter()
        if seeds_in is None:
            boot = explorer.run(0, max(md_steps // 2, sample_every), stop_event, include_start=True)
            seed_frames = boot.frames
            guard_stops, md_runs = boot.guard_stops, boot.runs
        else:
            seed_frames, guard_stops, md_runs = seeds_in, 0, 0
        train_ds = label_frames(t_model, head, seed_frames, "distill-train", source, info={"distill_round": 0})
        train_ds.provenance = teacher_provenance(source, head)
        explore_s = time.perf_counter() - t0
        train_s, stopped = (0.0, True) if _is_set(stop_event) else fit(train_ds, init_steps or train_steps, 0, False)
        e_rmse = force_rmse(predict(stud, list(train_ds)).forces, [f.labels[LABEL].forces for f in train_ds])
        n0 = len(train_ds)
        finish_round(DistillRound(0, n0, 0, n0, 0, n0, float("nan"), float("nan"), e_rmse, n0,
                                  0 if stopped and train_s == 0 else (init_steps or train_steps), md_runs, guard_stops,
                                  stopped=stopped, timing={"explore_s": explore_s, "train_s": train_s},
                                  message=f"initial fit on {n0} teacher-labelled frames" + (" (stopped)" if stopped else "")),
                     train_ds)
        state["stopped"] = stopped

        # -- rounds 1..N: explore, judge, label, retrain -------------------------------------------
        for k in range(1, rounds + 1):
            if state["stopped"] or _is_set(stop_event):
                state["stopped"] = True
                break
            rec, train_ds = _round(k, explorer, stud, train_ds, (lo, hi), md_steps, max_new, converge, seed,
                                   stop_event, fit, t_model, head, source, train_steps)
            state["converged"], state["stopped"] = rec.converged, rec.stopped
            finish_round(rec, train_ds if rec.n_selected else None)
            if rec.converged or rec.stopped:
                break
    finally:
        if log is not None:
            log.close()
        bus.close()
    return DistillResult(stud, records, state["converged"], student_path, state["stopped"], out, train_ds,
                         time.perf_counter() - t_start, source, head)


def _round(k: int, explorer: Explorer, stud: "Potential", train_ds: Dataset, trust: tuple[float, float], md_steps: int,
           max_new: int, converge: float, seed: int, stop_event: threading.Event | None, fit, t_model: "Potential",
           head: str, source: str, train_steps: int) -> tuple[DistillRound, Dataset]:
    """One round k ≥ 1: its record and the (possibly grown) training set."""
    t0 = time.perf_counter()
    ex = explorer.run(k, md_steps, stop_event)
    explore_s = time.perf_counter() - t0
    if ex.stopped:
        return DistillRound(k, 0, 0, 0, 0, 0, float("nan"), float("nan"), float("nan"), len(train_ds), 0, ex.runs,
                            ex.guard_stops, stopped=True, timing={"explore_s": explore_s},
                            message="stopped during exploration"), train_ds
    frames = ex.frames
    t1 = time.perf_counter()
    f_student = predict(stud, frames).forces
    f_teacher = [f.labels[LABEL].forces for f in frames]
    deviation = max_force_deviation(f_student, f_teacher)
    sel = trust_select(deviation, trust, max_new, seed=seed * 1000 + k)
    deviation_s = time.perf_counter() - t1
    rmse = force_rmse(f_student, f_teacher)
    converged = sel.n > 0 and len(sel.accurate) >= converge * sel.n
    finite = deviation[np.isfinite(deviation)]
    dev_mean = float(finite.mean()) if finite.size else float("nan")
    dev_max = float(finite.max()) if finite.size else float("nan")
    rec = DistillRound(k, sel.n, len(sel.accurate), len(sel.candidate), len(sel.failed), 0, dev_mean, dev_max, rmse,
                       len(train_ds), 0, ex.runs, ex.guard_stops, converged=converged,
                       timing={"explore_s": explore_s, "deviation_s": deviation_s})
    notes = [f"{len(ex.reasons)} MD run(s) ended by a guard"] if ex.reasons else []
    if converged:
        rec.message = f"converged: {len(sel.accurate)}/{sel.n} frames below {trust[0]} eV/Å"
        return rec, train_ds
    if not len(sel.selected):
        rec.message = "; ".join(notes + [f"no frame inside the trust window {trust} eV/Å: nothing to add"])
        return rec, train_ds
    chosen = [frames[i] for i in sel.selected]
    if any(f.is_periodic for f in chosen):  # MD snapshots carry no virial: relabel for it
        chosen = list(label_frames(t_model, head, chosen, "distill-new", source))
    train_ds = Dataset(list(train_ds) + chosen, name=train_ds.name, provenance=train_ds.provenance)
    train_s, stopped = fit(train_ds, train_steps, k, True)
    rec.n_selected, rec.n_train, rec.train_steps, rec.stopped = len(chosen), len(train_ds), train_steps, stopped
    rec.timing["train_s"] = train_s
    rec.message = "; ".join(notes + [f"added {len(chosen)} of {len(sel.candidate)} candidates"]
                            + (["training stopped"] if stopped else []))
    return rec, train_ds


def _is_set(event: threading.Event | None) -> bool:
    return event is not None and event.is_set()


def _out_dir(out_dir: str | os.PathLike | None) -> Path | None:
    if out_dir is None:
        return None
    path = Path("lam_lab_runs") / _dt.datetime.now().strftime("distill-%Y%m%d-%H%M%S") if out_dir == "auto" else Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _meta(source: str, head: str, lo: float, hi: float, rec: DistillRound, temperatures: Sequence[float],
          seed: int) -> dict[str, Any]:
    """What the student file records about how it was made."""
    return {"teacher": source, "teacher_head": head, "trust": [lo, hi], "temperatures": [float(t) for t in temperatures],
            "round": rec.round, "n_train": rec.n_train, "converged": rec.converged, "seed": seed,
            "student_f_rmse_vs_teacher": rec.student_f_rmse}


def _print_round(event: Any) -> None:
    """Progress line per round on stderr (other events are the trainer's bar's business)."""
    if getattr(event, "kind", None) != "round":
        return
    pct = lambda x: "-" if x != x else f"{100 * x:.0f}%"  # noqa: E731
    print(f"distill round {event.round}/{event.total_rounds}: {event.n_frames} frames, accurate {pct(event.accurate)}, "
          f"candidates {pct(event.candidates)}, failed {pct(event.failed)}, added {event.n_selected}, "
          f"F RMSE vs teacher {event.student_f_rmse:.1f} meV/Å, train set {event.n_train} — {event.message}",
          file=sys.stderr)


__all__ = ["distill", "DistillResult"]
