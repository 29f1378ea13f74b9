"""Distill panel: a teacher drives MD, frames in the trust window train a fast student; per-round chart, speed-up."""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lam_lab.data.errors import DataError
from lam_lab.ui._baseline import BASELINE_NAME, baseline_alone, comparison_html
from lam_lab.ui._figures import fit_width, fmt
from lam_lab.ui._jobs import JobContext, JobPanel, JobStopped
from lam_lab.ui._live import fmt_duration, message_html
from lam_lab.ui._sources import ModelPicker, parse_floats, resolve_systems, shipped_models
from lam_lab.ui.train_panel import cpu_threads, has_gpu

STUDENTS: dict[str, dict[str, Any]] = {
    "student": {},
    "student-tiny": {"repinit_neuron": (8,), "repinit_axis": 4, "fitting_neuron": (16, 16), "student_basis": 8},
}
# the teacher a chemist distils: lam-chon-small's rxn-xtb head (365 meV/Å vs ωB97X on the unseen Diels–Alder frames)
# is worse there than GFN2-xTB alone (257); lam-chon-delta is at 57, and its student (91) beats xTB alone
DEFAULT_TEACHER = "lam-chon-delta"
SEED_XTB_FRAMES = 100  # rxn-xtb frames per built-in reaction in the first fit (with its rxn-dft train frames)
# (RoundEvent field, legend name, colour): how the explored frames fell against the trust window
FRACTIONS = (("accurate", "already good (below the window)", "#2ca02c"),
             ("candidates", "learn from these (inside)", "#ff7f0e"),
             ("failed", "too far off, skipped (above)", "#d62728"))


def round_figure() -> go.FigureWidget:
    """Empty per-round chart: fractions of explored frames (left), deviation and error in meV/Å (right, log)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("frames the teacher's MD visited", "student vs teacher"),
                        horizontal_spacing=0.12)
    for _, name, color in FRACTIONS:
        fig.add_trace(go.Bar(x=[], y=[], name=name, marker_color=color), row=1, col=1)
    fig.add_trace(go.Scatter(x=[], y=[], name="largest per-atom force gap (mean over frames)", mode="lines+markers"),
                  row=1, col=2)
    fig.add_trace(go.Scatter(x=[], y=[], name="force RMSE vs teacher, round's new frames", mode="lines+markers"),
                  row=1, col=2)
    fig.add_trace(go.Scatter(x=[], y=[], name="force RMSE vs teacher, fixed frames never trained on",
                             mode="lines+markers"), row=1, col=2)
    fig.update_layout(barmode="stack", height=360, margin=dict(l=60, r=10, t=40, b=110),
                      legend=dict(orientation="h", yanchor="top", y=-0.25, x=0))
    fig.update_xaxes(title_text="round (0 = first fit)", dtick=1, range=[-0.5, 3.5])
    fig.update_yaxes(title_text="fraction of frames", tickformat=".0%", range=[0, 1], row=1, col=1)
    fig.update_yaxes(title_text="force error (meV/Å)", type="log", range=[1, 4], row=1, col=2)
    return fit_width(go.FigureWidget(fig))


def round_status(e: Any, total: int) -> str:
    """One round in plain words (the progress line)."""
    if e.round == 0:
        return (f"first fit done on {e.n_train} frames labelled by the teacher; "
                f"student's force error vs teacher {fmt(e.student_f_rmse, '.0f', 'meV/Å')}")
    n = e.n_frames or 0
    parts = [f"round {e.round} of {total}: checked {n} frames of teacher MD",
             f"{round(e.accurate * n) if n else 0} already good, {round(e.candidates * n) if n else 0} to learn from, "
             f"{round(e.failed * n) if n else 0} too far off",
             f"student vs teacher {fmt(e.student_f_rmse, '.0f', 'meV/Å')}"]
    if e.converged:
        parts.append("converged")
    return "; ".join(parts)


def result_sentence(res: Any) -> str:
    """How the distillation ended, in plain words: rounds, the student's error vs the teacher first and last."""
    errs = [r.student_f_rmse for r in res.rounds[1:]]  # on each round's new MD frames, before retraining
    fixed = [r.monitor_f_rmse for r in res.rounds if _finite(r.monitor_f_rmse)]  # the same frames after each round
    how = ("converged: almost every frame the teacher visited is below the trust window" if res.converged else
           "stopped" if res.stopped else "used all its rounds")

    def trend(xs: list[float]) -> str:
        if len(xs) < 2:
            return fmt(xs[0] if xs else float("nan"), ".0f", "meV/Å")
        return f"{'fell' if xs[-1] < xs[0] else 'did not fall'}, {fmt(xs[0], '.0f')} → {fmt(xs[-1], '.0f', 'meV/Å')}"

    on_fixed = f"; on the fixed frames it never trained on it {trend(fixed)}" if fixed else ""
    return (f"Done ({how}) after {len(errs)} round(s): the student's force error vs the teacher on new MD frames "
            f"{trend(errs)}{on_fixed}; {res.rounds[-1].n_train if res.rounds else 0} teacher-labelled training "
            "frames.")


def check_words(student_f: float, teacher_f: float, baseline_f: float) -> list[str]:
    """What the check against DFT says, from the force RMSEs (meV/Å) of student, teacher and GFN2-xTB alone on the
    same unseen frames: the student/teacher ratio against ``KEEPS_ACCURACY`` and any model no better than xTB."""
    from lam_lab.distill.check import KEEPS_ACCURACY

    ratio = student_f / teacher_f
    words = [f"student / teacher force RMSE: <b>{fmt(ratio, '.2f')}×</b> (a student within {KEEPS_ACCURACY}× "
             f"keeps its teacher's accuracy)"]
    if ratio > KEEPS_ACCURACY:
        lost = f"it is {student_f - teacher_f:.0f} meV/Å less accurate than its teacher here"
        if student_f < baseline_f:
            lost += f", still {baseline_f / student_f:.1f}× more accurate than {BASELINE_NAME}"
        words.append(lost)
    worse = [f"{who} ({f:.0f} meV/Å)" for who, f in (("the teacher", teacher_f), ("the student", student_f))
             if f >= baseline_f]
    if worse:
        words.append(f"but {' and '.join(worse)} {'is' if len(worse) == 1 else 'are'} no better than "
                     f"{BASELINE_NAME} on these frames ({baseline_f:.0f} meV/Å)")
    return words


def _finite(value: Any) -> bool:
    """True for a non-zero finite number."""
    return bool(value) and bool(np.isfinite(value))


def force_call_seconds(calc: Any, atoms: Any, repeats: int = 5) -> float:
    """Median wall time (s) of one energy+forces call of ``calc`` on slightly moved copies of ``atoms``."""
    a = atoms.copy()
    a.calc = calc
    a.get_forces()  # warm-up: neighbor-list code paths, allocator
    rng = np.random.default_rng(0)
    times = []
    for _ in range(repeats):
        a.positions = atoms.positions + rng.normal(scale=1e-3, size=atoms.positions.shape)
        t0 = time.perf_counter()
        a.get_forces()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


class DistillPanel(JobPanel):
    """Distil a teacher into a student preset with :func:`lam_lab.distill` (exploration MD at the given
    temperatures, trust window on the max force deviation); ``start``/``stop``/``wait`` as the buttons."""

    run_prefix = "distill"

    def __init__(self, teacher: Any = None, systems: str = "diels-alder", out_root: str | Path = "lam_lab_runs",
                 rounds: int | None = None, **kwargs: Any):
        super().__init__(out_root=out_root, start_label="Start", **kwargs)
        gpu = has_gpu()
        self.rounds: list[Any] = []  # RoundEvent records
        self.summary: dict[str, float] = {}
        self.check: Any = None  # student and teacher vs DFT on the reaction's unseen frames (ReferenceCheck)
        self.teacher = ModelPicker("teacher", default_head="rxn-xtb")
        if teacher is not None:
            self.teacher.add(teacher, "given model")
        elif DEFAULT_TEACHER in shipped_models():  # a DFT-level teacher: GFN2-xTB + the shipped Δ model
            self.teacher.select(DEFAULT_TEACHER)
        self.systems = w.Text(value=systems, description="systems", layout=w.Layout(width="420px"),
                              tooltip="comma-separated: reaction names (reactant + TS), SMILES, structure files")
        self.student = w.Dropdown(options=list(STUDENTS), value="student",
                                  description="student", layout=w.Layout(width="220px"))
        self.trust_lo = w.FloatText(value=0.1, description="trust lo", layout=w.Layout(width="160px"))
        self.trust_hi = w.FloatText(value=1.5, description="hi (eV/Å)", layout=w.Layout(width="170px"))
        # 300 K on a CPU: hotter exploration outruns a student trained for a minute (its error then rises)
        self.temperatures = w.Text(value="300, 600" if gpu else "300", description="T (K)",
                                   layout=w.Layout(width="200px"))
        # CPU defaults measured on Diels-Alder at 300 K (4 rounds × 80 MD steps): force RMSE vs ωB97X on the 17 unseen
        # Diels–Alder frames of rxn-dft, student / teacher (benchmarks/lab_distill.py), before the rattled copies:
        #   lam-chon-delta (70 meV/Å), 4000 + 4×1000 steps at lr 5e-3                           190: 2.70×  173 s
        #   lam-chon-small, rxn-xtb head (365 meV/Å), the same                                   359: 0.98×  171 s
        #   the Lab's own Δ teacher (Fine-tune · Δ defaults, 205 meV/Å), the same                250: 1.22×  142 s
        # with nine rattled copies per seed, 12000 + 4×1500 steps of 64 atoms at lr 2e-2:
        #   lam-chon-delta                                                                         136: 1.93×  484 s
        #   lam-chon-small, rxn-xtb head                                                           355: 0.97×  334 s
        #   the Lab's own Δ teacher                                                                220: 1.07×  447 s
        # and the same with 256-atom steps:
        #   lam-chon-delta                                                                         112: 1.59×  299 s
        #   lam-chon-small, rxn-xtb head                                                           365: 1.00×  294 s
        #   the Lab's own Δ teacher                                                                212: 1.04×  305 s
        # and with the teachers of the 43-reaction rxn-dft (15 unseen frames; lam-chon-delta 57, the Lab's Δ 182 meV/Å):
        #   lam-chon-delta                                                                         117: 2.04×  305 s
        #   lam-chon-small, rxn-xtb head                                                           308: 0.98×  327 s
        #   the Lab's own Δ teacher                                                                195: 1.07×  334 s
        # and with a 24000-step first fit (these defaults; beside a DFT labelling job):
        #   lam-chon-delta                                                                          91: 1.59×  523 s
        #   lam-chon-small, rxn-xtb head                                                           316: 1.01×  500 s
        #   the Lab's own Δ teacher                                                                190: 1.05×  538 s
        # Offline, on the teacher-labelled frames of a lam-chon-delta run (24000 steps; student vs ωB97X, meV/Å): 97;
        # + 200 frames of teacher MD at 600 K from reactant and product with rattled copies 89; + 2250 teacher MD
        # frames at 300–1000 K 90 (without the rattled copies 109); fitting net 256³ 89, axis 32 100, 40 B-splines
        # 100, 6 Å cutoff 101 (12000 steps), dpa2-small as the student 165 (2000 steps, 9 steps/s). The student's
        # error on its own training frames (107) is as large as on unseen ones: it underfits this teacher. On GFN2-xTB's
        # own labels of the same frames it does little better (85 / 74, benchmarks/student_fit.py): the student's limit.
        self.n_rounds = w.IntText(value=rounds if rounds is not None else (5 if gpu else 4), description="rounds",
                                  layout=w.Layout(width="150px"))
        self.md_steps = w.IntText(value=200 if gpu else 80, description="MD steps", layout=w.Layout(width="160px"))
        self.train_steps = w.IntText(value=1500, description="train steps",
                                     layout=w.Layout(width="170px"),
                                     tooltip="training steps of each round after the first")
        self.init_steps = w.IntText(value=24000, description="first fit",
                                    layout=w.Layout(width="170px"),
                                    tooltip="training steps of round 0 (the student starts from scratch there)")
        self.seed_frames = w.Checkbox(value=True, description="first fit on the reaction's data frames",
                                      indent=False, layout=w.Layout(width="300px"),
                                      tooltip="for built-in reactions: the teacher relabels the TS-centred train "
                                              "frames of rxn-dft (geometries only) for the student's first fit")
        self.chart = round_figure()
        self.result_html = w.HTML("")
        self.children = [
            w.HTML("<b>Distill</b>: the teacher runs MD; frames where student and teacher forces disagree by an amount "
                   "inside the trust window get teacher labels and retrain the student (DP-GEN style); it ends when "
                   "almost every explored frame is below the window."),
            self.teacher, self.systems, w.HBox([self.student, self.trust_lo, self.trust_hi, self.temperatures]),
            w.HBox([self.n_rounds, self.md_steps, self.init_steps, self.train_steps]), self.seed_frames,
            self.job.widget, self.message, self.chart,
            self.result_html,
        ]
        self.add_class("lam-distill-panel")

    def _settings(self) -> dict[str, Any]:
        from lam_lab.distill import distill_config

        model, head = self.teacher.resolve()
        if isinstance(model, str):
            raise DataError("the teacher must be a lam_lab model (shipped, trained here, or a file)", field="teacher")
        lo, hi = float(self.trust_lo.value), float(self.trust_hi.value)
        if not 0 <= lo < hi:
            raise DataError(f"trust window needs 0 ≤ lo < hi, got ({lo}, {hi})", field="trust")
        steps = max(1, int(self.train_steps.value))
        systems = resolve_systems(self.systems.value)
        from lam_lab.distill.seeds import SEEDED_FIT, reaction_frames, reaction_names

        reactions, seeds = reaction_names(self.systems.value), None
        if self.seed_frames.value:
            frames = reaction_frames(reactions, xtb_frames=SEED_XTB_FRAMES)
            seeds = frames + list(systems) if frames else None  # the starts too: round 0 then needs no MD
        return dict(teacher=model, head=head, teacher_label=self.teacher.label, systems=systems, reactions=reactions,
                    init_frames=seeds, trust=(lo, hi),
                    temperatures=parse_floats(self.temperatures.value, "temperatures"),
                    rounds=max(0, int(self.n_rounds.value)),
                    md_steps=max(1, int(self.md_steps.value)), train_steps=steps,
                    student_options=STUDENTS[self.student.value],
                    init_steps=max(1, int(self.init_steps.value)),
                    rattle=(SEEDED_FIT.rattle_copies, SEEDED_FIT.rattle_sigma),
                    # the engine's student recipe with the measured seeded-fit lr and batch, this panel's logging
                    # and threads
                    config=distill_config().train.replace(lr=SEEDED_FIT.lr, batch_atoms=SEEDED_FIT.batch_atoms,
                                                          log_every=max(1, steps // 10),
                                                          threads=None if has_gpu() else cpu_threads()))

    def _prepare(self) -> tuple:
        """The form's settings for :func:`lam_lab.distill`; the chart emptied."""
        import lam_lab.distill  # noqa: F401 - the engine part this panel drives

        s = self._settings()
        self.result_html.value, self.rounds, self.result = "", [], None
        self._draw()  # emptied, with the round axis of this run
        seeds = (f"; first fit on {len(s['init_frames'])} frames of the reaction's data, labelled by the teacher"
                 if s["init_frames"] else "")
        self.message.value = message_html(f"distilling {self.teacher.label} into {self.student.value}: the teacher "
                                          f"runs MD from {len(s['systems'])} structure(s){seeds}…")
        return (s,)

    def _job(self, ctx: JobContext, s: dict[str, Any]) -> Any:
        from lam_lab.distill import distill

        total = s["rounds"] + 1

        def on_event(event: Any) -> None:
            if event.kind == "round":
                self.rounds.append(event)
                self._draw()
                ctx.progress((event.round + 1) / total, round_status(event, s["rounds"]))
            elif event.kind == "step" and event.total_steps:
                done = len(self.rounds) + event.step / event.total_steps
                what = ("first fit of the student" if not self.rounds
                        else f"round {len(self.rounds)} of {s['rounds']}: retraining")
                ctx.progress(done / total, f"{what}, step {event.step} of {event.total_steps}")

        res = distill(s["teacher"], s["systems"], head=s["head"], student="student", trust=s["trust"],
                      temperatures=s["temperatures"], rounds=s["rounds"], md_steps=s["md_steps"],
                      sample_every=max(1, s["md_steps"] // 10), train_steps=s["train_steps"],
                      init_steps=s["init_steps"], init_frames=s["init_frames"],
                      config=s["config"], out_dir=self.out_dir, callbacks=[on_event], stop_event=ctx.stop_event,
                      progress=False, student_options=s["student_options"], rattle_copies=s["rattle"][0],
                      rattle_sigma=s["rattle"][1])
        self.result = res
        ctx.progress(1.0, "timing one force call of the teacher and of the student…")
        self._score(res, s)
        self._check_against_dft(res, s)
        if res.stopped:
            raise JobStopped(res)
        return res

    def _score(self, res: Any, s: dict[str, Any]) -> None:
        from lam_lab.md.calculator import LAMCalculator

        atoms = s["systems"][0]
        t_teacher = force_call_seconds(LAMCalculator(s["teacher"], head=res.head or s["head"]), atoms)
        t_student = force_call_seconds(LAMCalculator(res.student), atoms)
        last = res.rounds[-1] if res.rounds else None
        self.summary = {"teacher_ms": 1e3 * t_teacher, "student_ms": 1e3 * t_student, "speedup": t_teacher / t_student,
                        "student_f_rmse": last.student_f_rmse if last else float("nan"),
                        "accurate": last.fraction(last.n_accurate) if last else float("nan"),
                        "n_train": last.n_train if last else 0}
        sm = self.summary
        state = "converged" if res.converged else ("stopped" if res.stopped else "round limit reached")
        self.result_html.value = (
            f"<div><b>Result</b> ({html.escape(state)}, {fmt_duration(res.wall_time_s)}): student "
            f"{sm['student_ms']:.1f} ms vs teacher {sm['teacher_ms']:.1f} ms per force call on "
            f"{html.escape(atoms.get_chemical_formula())} → <b>{fmt(sm['speedup'], '.1f')}× faster</b>; "
            f"force RMSE vs teacher {fmt(sm['student_f_rmse'], '.0f', 'meV/Å')}, {fmt(100 * sm['accurate'], '.0f')} % "
            f"of the last round's frames below the trust window; {sm['n_train']} training frames."
            + (f" Saved {html.escape(str(res.path))}." if res.path else "") + "</div>")

    def _check_against_dft(self, res: Any, s: dict[str, Any]) -> None:
        """Student, teacher and GFN2-xTB alone against DFT on the built-in reactions' frames no seed came from."""
        from lam_lab import datasets
        from lam_lab.distill.check import reference_check
        from lam_lab.distill.seeds import SEED_SET, heldout_frames

        self.check = None
        if not s["reactions"]:
            return
        label, frames = datasets.load(SEED_SET).default_label(), heldout_frames(s["reactions"])
        self.check = check = reference_check(res.student, s["teacher"], frames, label, head=res.head or s["head"])
        if check is None:
            return
        base = baseline_alone(frames, label)
        rows = [("student", check.student), (f"teacher ({s['teacher_label']})", check.teacher)]
        rows += [(BASELINE_NAME, base.scores)] if base is not None else []
        words = check_words(check.student.force_rmse_mev_per_A, check.teacher.force_rmse_mev_per_A,
                            base.scores.force_rmse_mev_per_A if base is not None else float("nan"))
        if check.by_part:
            words.append("by part: " + ", ".join(f"{tag.replace('_', ' ')} {ratio:.2f}× ({n} frames)"
                                                 for tag, (n, ratio) in check.by_part.items()))
        caption = (f"against {label} on the {check.n_frames} frames of {', '.join(s['reactions'])} that no seed came "
                   f"from ({SEED_SET} outside its train split)")
        # a teacher's head may have another energy zero than the label (rxn-xtb: GFN2-xTB's): offsets removed only
        table = comparison_html(rows, caption, label, raw_energy=False)
        self.result_html.value += table + f"<div>{'; '.join(words)}.</div>"

    def _draw(self) -> None:
        r = [e.round for e in self.rounds]
        with self.chart.batch_update():
            for k, (name, _, _) in enumerate(FRACTIONS):
                self.chart.data[k].x, self.chart.data[k].y = r, [float(getattr(e, name) or 0.0) for e in self.rounds]
            dev = [1e3 * e.max_dev_mean if _finite(e.max_dev_mean) else None for e in self.rounds]
            rmse = [e.student_f_rmse if _finite(e.student_f_rmse) else None for e in self.rounds]
            self.chart.data[3].x, self.chart.data[3].y = r, dev
            fixed = [getattr(e, "monitor_f_rmse", None) for e in self.rounds]
            fixed = [v if _finite(v) else None for v in fixed]
            self.chart.data[4].x, self.chart.data[4].y = r, rmse
            self.chart.data[5].x, self.chart.data[5].y = r, fixed
            planned = max(0, int(self.n_rounds.value))  # the axes span the rounds asked for, not a fixed 0-3
            self.chart.layout.xaxis.range = self.chart.layout.xaxis2.range = [-0.5, max(r + [planned, 1]) + 0.5]
            finite = [v for v in dev + rmse + fixed if v]
            if finite:
                self.chart.layout.yaxis2.range = [np.log10(min(finite)) - 0.2, np.log10(max(finite)) + 0.2]

    def _finished(self, res: Any) -> None:
        self.message.value = message_html(result_sentence(res))
        for fn in self.on_model:
            n = len(res.rounds) - 1
            fn(res.student, f"distilled student ({n} round{'' if n == 1 else 's'})")
