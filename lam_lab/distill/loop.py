"""The distillation loop: teacher MD → student–teacher force deviation → trust window → teacher labels → retrain."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Mapping, Sequence

import numpy as np
from ase import Atoms

from lam_lab.data.dataset import Dataset
from lam_lab.data.frame import Frame
from lam_lab.distill.events import DistillRound, RoundEvent, print_round
from lam_lab.distill.explore import Explorer, default_md_config
from lam_lab.distill.seeds import rattled_copies
from lam_lab.distill.select import check_trust, force_rmse, max_force_deviation, predict, trust_select
from lam_lab.distill.teacher import (
    LABEL,
    as_atoms_list,
    check_elements,
    label_frames,
    resolve_teacher,
    teacher_head,
    teacher_provenance,
)
from lam_lab.md.runner import MDConfig
from lam_lab.train.config import TrainConfig
from lam_lab.train.events import Callback, EventBus, JSONLLogger

if TYPE_CHECKING:
    from lam_lab.potential import Potential


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
                 f"{'max dev':>9}{'F RMSE':>9}{'n_train':>9}{'fixed':>8}"]
        for r in self.rounds:
            f = lambda n, r=r: f"{100 * r.fraction(n):.1f}%" if r.n_frames else "-"  # noqa: E731
            lines.append(f"{r.round:>5}{r.n_frames:>8}{f(r.n_accurate):>10}{f(r.n_candidates):>9}{f(r.n_failed):>8}"
                         f"{r.n_selected:>7}{r.max_dev_mean:>9.3f}{r.student_f_rmse:>9.1f}{r.n_train:>9}"
                         + (f"{r.monitor_f_rmse:>8.1f}" if r.monitor_f_rmse == r.monitor_f_rmse else f"{'n/a':>8}"))
        state = "converged" if self.converged else ("stopped" if self.stopped else "round limit reached")
        lines.append(f"({state}; max dev eV/Å, F RMSE vs teacher meV/Å: on the round's new MD frames, and after the "
                     f"round on the fixed frames never trained on; {self.wall_time_s:.1f} s)")
        return "\n".join(lines)


def _train_default() -> TrainConfig:
    # lr 5e-3 (trainer default 2e-3): the student's force error vs a Δ teacher on held-out Diels–Alder frames after
    # 2.5 min of training on the same teacher-labelled frames 171 → 150 meV/Å, in the loop (6000 + 3×1500 steps)
    # 188 → 172; its fitting net, embedding width, basis size or a 6 Å cutoff changed nothing (±10 meV/Å)
    return TrainConfig(batch_atoms=64, lr=5e-3)


@dataclass
class DistillConfig:
    """Everything :func:`distill` does, with its defaults: the one source for the API, the CLI, pipeline and Lab.

    ``student``: a preset name (``student_options``: its ``build_model`` overrides); ``trust`` = [lo, hi)
    on the largest per-atom |F_student − F_teacher| (eV/Å); ``temperatures`` (K) of the teacher's
    Langevin exploration ``md``; per round ``md_steps`` per start and temperature, a frame every
    ``sample_every`` steps, at most ``max_new`` frames added and ``train_steps`` of retraining
    (``init_steps`` for round 0, default ``train_steps``); it stops when a fraction ≥ ``converge`` of a
    round's frames is below lo. ``monitor`` teacher-labelled seed frames (at most a quarter of them) are set
    aside, never trained on, and scored after every round (``monitor_f_rmse``); the other seeds join round 0 with
    ``rattle_copies`` teacher-labelled copies each, every coordinate displaced by N(0, ``rattle_sigma`` Å).
    ``train``: the trainer's recipe (several small molecules per step buy a steadier gradient for the cheap
    student). ``device`` is accepted as an override of ``train.device``.
    """

    ALIASES: ClassVar[dict[str, str]] = {"device": "train.device", "config": "train"}

    head: str | None = None  # teacher head (needed for multi-head teachers)
    student: str = "student"
    student_options: dict[str, Any] = field(default_factory=dict)
    trust: list[float] = field(default_factory=lambda: [0.1, 1.5])  # eV/Å
    temperatures: list[float] = field(default_factory=lambda: [300.0, 600.0])  # K
    rounds: int = 5
    md_steps: int = 200
    sample_every: int = 10
    max_new: int = 100
    train_steps: int = 500
    init_steps: int | None = None
    converge: float = 0.99
    seed: int = 0
    monitor: int = 16  # seed frames set aside (never trained on): the student's error on them after every round
    rattle_copies: int = 0  # teacher-labelled copies of each training seed, displaced by rattle_sigma Å
    rattle_sigma: float = 0.05
    train: TrainConfig = field(default_factory=_train_default)
    md: MDConfig = field(default_factory=default_md_config)

    def check(self, source: str | None = None) -> None:
        """Raise :class:`ConfigError` (with the key path) for a trust window or count :func:`distill` cannot use."""
        from lam_lab.config import ConfigError

        self.train.check(source)
        if len(self.trust) != 2:
            raise ConfigError(f"trust must be [lo, hi] in eV/Å, got {self.trust}", source=source, field="trust")
        least = {"rounds": 0, "md_steps": 1, "sample_every": 1, "max_new": 0, "train_steps": 1, "monitor": 0,
                 "rattle_copies": 0, "rattle_sigma": 0}
        for name, value in least.items():
            if getattr(self, name) < value:
                raise ConfigError(f"must be >= {value}, got {getattr(self, name)}", source=source, field=name)
        if not 0 < self.converge <= 1:
            raise ConfigError(f"must be in (0, 1], got {self.converge}", source=source, field="converge")


def distill_config(config: Any = None, **overrides: Any) -> DistillConfig:
    """A :class:`DistillConfig` from a config (instance, dict, file; a TrainConfig is the ``train`` section) and
    keyword overrides (``device`` None keeps the config's)."""
    from lam_lab.config import load_config

    if isinstance(config, TrainConfig):
        config, overrides = None, {"train": config, **overrides}
    if isinstance(config, DistillConfig) and type(config) is not DistillConfig:  # a CLI run file: its API part
        config = {f.name: getattr(config, f.name) for f in fields(DistillConfig)}
    if "device" in overrides:
        device = overrides.pop("device")
        if device is not None:
            overrides["device"] = str(device)
    if isinstance(config, DistillConfig) and not overrides:
        return config
    return load_config(config, DistillConfig, overrides)


def distill(teacher: "Potential | str | os.PathLike", systems: Sequence[Atoms] | Dataset,
            config: "DistillConfig | TrainConfig | Mapping[str, Any] | str | Path | None" = None, *,
            init_frames: Dataset | Sequence[Frame | Atoms] | None = None, out_dir: str | os.PathLike | None = "auto",
            callbacks: Iterable[Callback] = (), stop_event: threading.Event | None = None, progress: bool = True,
            **overrides: Any) -> DistillResult:
    """Distil ``teacher`` into a fast student on the chemistry of ``systems`` (settings: :class:`DistillConfig`).

    ``config`` is a DistillConfig (or a dict or YAML file of one); keyword ``overrides`` change its fields
    (``rounds=3, trust=(0.1, 1.5)``); ``student`` may also be a Potential to continue. Round 0 fits the
    student to teacher-labelled seed frames (``init_frames``, relabelled by the teacher; default:
    ``systems`` + a short teacher MD). Each round k ≥ 1 runs teacher MD from every start and temperature
    and measures per frame the largest per-atom force deviation; frames inside the trust window join the
    training set with the teacher's labels and the student is retrained from its current weights; frames
    ≥ hi count as failed. The exploration is the teacher's own MD, so a large deviation means the student
    is wrong there (as in DP-GEN): the default hi (1.5 eV/Å) only screens out teacher failures, lo (0.1
    eV/Å) is about the force error the student can reach on reactive molecules. It stops on convergence,
    after ``rounds`` rounds, or when ``stop_event`` is set (the student so far saved). Each round emits a
    :class:`RoundEvent` to ``callbacks`` (the trainer's own Events too). Under ``out_dir`` ("auto":
    lam_lab_runs/distill-<time>; None: nothing written): ``student.pt``, ``rounds.jsonl``, ``train.lamh5``.
    """
    from lam_lab.md.calculator import LAMCalculator, default_device

    t_start = time.perf_counter()
    student = overrides.pop("student") if not isinstance(overrides.get("student", ""), str) else None
    cfg = distill_config(config, **overrides)
    lo, hi = check_trust(tuple(cfg.trust))
    seed, temperatures = cfg.seed, tuple(cfg.temperatures)
    t_model, source = resolve_teacher(teacher)
    head = teacher_head(t_model, cfg.head, source)
    starts = as_atoms_list(systems)
    seeds_in = None if init_frames is None else list(init_frames)
    stud = _student_model(student or cfg.student, cfg.student_options, t_model.type_map, starts, seeds_in)
    dev = default_device(cfg.train.device)
    out = _out_dir(out_dir)
    run = _Session(stud, cfg.train, dev, out, EventBus(list(callbacks) + ([print_round] if progress else [])),
                   JSONLLogger(out / "rounds.jsonl") if out is not None else None,
                   dict(source=source, head=head, lo=lo, hi=hi, temperatures=temperatures, seed=seed),
                   cfg.rounds, stop_event, progress, t_start)
    explorer = Explorer(starts, LAMCalculator(t_model, head=head, device=dev), temperatures, md=cfg.md,
                        sample_every=cfg.sample_every, seed=seed)
    converged = False
    try:
        train_ds, stopped = _first_round(run, explorer, t_model, seeds_in, max(cfg.md_steps // 2, cfg.sample_every),
                                         cfg.init_steps or cfg.train_steps, cfg.monitor,
                                         (cfg.rattle_copies, cfg.rattle_sigma))
        # -- rounds 1..N: explore, judge, label, retrain -------------------------------------------
        for k in range(1, cfg.rounds + 1):
            if stopped or _is_set(stop_event):
                stopped = True
                break
            rec, train_ds = _round(k, explorer, stud, train_ds, (lo, hi), cfg.md_steps, cfg.max_new, cfg.converge,
                                   seed, stop_event, run.fit, t_model, head, source, cfg.train_steps)
            converged, stopped = rec.converged, rec.stopped
            rec.monitor_f_rmse = run.monitor_rmse()
            run.finish_round(rec, train_ds if rec.n_selected else None)
            if rec.converged or rec.stopped:
                break
    finally:
        run.close()
    return DistillResult(stud, run.records, converged, run.student_path, stopped, out, train_ds,
                         time.perf_counter() - t_start, source, head)


def _student_model(student: "str | Potential", options: Mapping[str, Any] | None, type_map: Sequence[str],
                   starts: Sequence[Atoms], seeds_in: Sequence | None) -> "Potential":
    """A student preset built on the elements of the systems (and seed frames), or the given student if it has them."""
    from lam_lab.models import build_model
    from lam_lab.potential import Potential

    elements = check_elements(type_map, starts, "systems")
    if seeds_in is not None:
        extra = check_elements(type_map, seeds_in, "init_frames")
        elements = [s for s in type_map if s in set(elements) | set(extra)]
    if isinstance(student, Potential):
        missing = sorted(set(elements) - set(student.type_map))
        if missing:
            raise ValueError(f"the student's type map {student.type_map} lacks {missing} present in the systems")
        return student
    return build_model(student, elements, **dict(options or {}))


@dataclass
class _Session:
    """What the rounds of one distillation share: the student and its training recipe, where results go, who
    hears about them (``meta``: teacher source and head, trust lo/hi, temperatures, seed)."""

    stud: "Potential"
    cfg: TrainConfig
    device: Any
    out: Path | None
    bus: EventBus
    log: JSONLLogger | None
    meta: dict[str, Any]
    rounds: int
    stop_event: threading.Event | None
    progress: bool
    t_start: float
    records: list[DistillRound] = field(default_factory=list)
    monitor: Dataset | None = None  # teacher-labelled frames never trained on

    def monitor_rmse(self) -> float:
        """The student's force RMSE vs the teacher on the monitor frames (meV/Å; NaN without them)."""
        if not self.monitor:
            return float("nan")
        return force_rmse(predict(self.stud, list(self.monitor)).forces, [f.labels[LABEL].forces for f in self.monitor])

    @property
    def student_path(self) -> Path | None:
        """Where the student is saved after each round (None without an output folder)."""
        return self.out / "student.pt" if self.out is not None else None

    def finish_round(self, rec: DistillRound, train_ds: Dataset | None) -> None:
        """Record a round: save the student (and the training set when it grew), log and emit its event."""
        from lam_lab.models import save

        rec.elapsed_s = time.perf_counter() - self.t_start
        self.records.append(rec)
        if self.out is not None:
            save(self.stud, self.student_path, extra={"distill": _meta(rec=rec, **self.meta)})
            if train_ds is not None:
                from lam_lab.data import write

                write(train_ds, self.out / "train.lamh5", format="lam-h5")
        event = RoundEvent.from_round(rec, self.rounds, str(self.student_path) if self.student_path else None)
        if self.log is not None:
            self.log(event)
        self.bus.emit(event)

    def fit(self, train_ds: Dataset, steps: int, k: int, warm: bool) -> tuple[float, bool]:
        """Train the student ``steps`` steps on ``train_ds`` (warm: keep its bias); (seconds, stopped)."""
        from lam_lab.train.trainer import train

        run_cfg = self.cfg.replace(fit_bias=self.cfg.fit_bias and not warm, seed=self.cfg.seed + k)
        t0 = time.perf_counter()
        res = train(self.stud, train_ds, steps=steps, config=run_cfg, out_dir=None, callbacks=[self.bus.emit],
                    device=self.device, stop_event=self.stop_event, labels=LABEL, progress=self.progress)
        return time.perf_counter() - t0, res.stopped

    def close(self) -> None:
        """Close the round log and the event bus."""
        if self.log is not None:
            self.log.close()
        self.bus.close()


def _first_round(run: _Session, explorer: Explorer, t_model: "Potential", seeds_in: Sequence | None,
                 boot_steps: int, steps: int, n_monitor: int = 0, rattle: tuple[int, float] = (0, 0.0)
                 ) -> tuple[Dataset, bool]:
    """Round 0: teacher-labelled seed frames (``seeds_in``, or the starts and ``boot_steps`` of teacher MD) with
    ``rattle`` = (copies, Å) rattled copies of the trained ones, and the first fit of ``steps`` steps; the training
    set and whether a stop was asked for."""
    source, head = run.meta["source"], run.meta["head"]
    t0 = time.perf_counter()
    if seeds_in is None:
        boot = explorer.run(0, boot_steps, run.stop_event, include_start=True)
        seed_frames, guard_stops, md_runs = boot.frames, boot.guard_stops, boot.runs
    else:
        seed_frames, guard_stops, md_runs = seeds_in, 0, 0
    train_ds = label_frames(t_model, head, seed_frames, "distill-train", source, info={"distill_round": 0})
    train_ds.provenance = teacher_provenance(source, head)
    if 0 < n_monitor <= len(train_ds) // 4:  # a fixed check the student never trains on
        order = np.random.default_rng(run.meta["seed"]).permutation(len(train_ds))
        run.monitor = Dataset([train_ds[int(i)] for i in order[:n_monitor]], name="distill-monitor")
        train_ds = Dataset([train_ds[int(i)] for i in sorted(order[n_monitor:])], name=train_ds.name,
                           provenance=train_ds.provenance)
    n_seed = len(train_ds)
    if rattle[0] > 0:  # monitor frames stay out: their copies would leak them into training
        copies = rattled_copies(list(train_ds), rattle[0], rattle[1], run.meta["seed"])
        train_ds = train_ds + label_frames(t_model, head, copies, train_ds.name, source, info={"distill_round": 0})
    explore_s = time.perf_counter() - t0
    train_s, stopped = (0.0, True) if _is_set(run.stop_event) else run.fit(train_ds, steps, 0, False)
    e_rmse = force_rmse(predict(run.stud, list(train_ds)).forces, [f.labels[LABEL].forces for f in train_ds])
    n0 = len(train_ds)
    run.finish_round(DistillRound(0, n0, 0, n0, 0, n0, float("nan"), float("nan"), e_rmse, n0,
                                  0 if stopped and train_s == 0 else steps, md_runs, guard_stops,
                                  stopped=stopped, timing={"explore_s": explore_s, "train_s": train_s},
                                  message=f"initial fit on {n0} teacher-labelled frames"
                                  + (f" ({n0 - n_seed} of them rattled copies)" if n0 > n_seed else "")
                                  + (" (stopped)" if stopped else ""), monitor_f_rmse=run.monitor_rmse()),
                     train_ds)
    return train_ds, stopped


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
    if out_dir == "auto":  # unique even for two runs started in the same second
        from lam_lab.train.rundir import auto_dir

        return auto_dir(prefix="distill")
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _meta(source: str, head: str, lo: float, hi: float, rec: DistillRound, temperatures: Sequence[float],
          seed: int) -> dict[str, Any]:
    """What the student file records about how it was made."""
    return {"teacher": source, "teacher_head": head, "trust": [lo, hi],
            "temperatures": [float(t) for t in temperatures], "round": rec.round, "n_train": rec.n_train,
            "converged": rec.converged, "seed": seed, "student_f_rmse_vs_teacher": rec.student_f_rmse}


__all__ = ["distill", "DistillConfig", "distill_config", "DistillResult"]
