"""MD panel: run MD (a lam_lab model, GFN2-xTB or EMT) on a TS, a SMILES molecule or a file with a live
energy/temperature plot, then play the trajectory back with bonds that form and break (ReactionPlayer)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import ipywidgets as w
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lam_lab.data.errors import DataError
from lam_lab.ui._figures import fit_width
from lam_lab.ui._jobs import BackgroundJob, JobContext, JobPanel, JobStopped
from lam_lab.ui._live import message_html
from lam_lab.ui._sources import XTB, ModelPicker, reaction_names, resolve_system, shipped_models
from lam_lab.ui.data_panel import error_html


class PlaybackPanel(w.VBox):
    """Plays a trajectory file (anything ``ase.io.read`` knows) or a demo MD with bonds and events per frame."""

    def __init__(self, **kwargs: Any):
        self.player: Any = None
        self.error = ""
        self.path = w.Text(placeholder="trajectory file: .traj, .extxyz, .xyz …", layout=w.Layout(width="380px"))
        self.timestep = w.FloatText(value=0.0, description="fs/frame", layout=w.Layout(width="170px"),
                                    tooltip="time between frames; 0 shows frame numbers")
        open_b = w.Button(description="Open")
        open_b.on_click(lambda _: self.open_trajectory(self.path.value, self.timestep.value or None))
        self.job = BackgroundJob(self._demo_job, start_label="Demo MD", on_done=self._show_demo)
        self.job.start_button.tooltip = "a few seconds of EMT MD of a hot Cu13 cluster, in the background"
        self.message = w.HTML("")
        self.box = w.Box([])
        super().__init__([
            w.HTML("<b>Playback</b>: bonds are recomputed in every frame; formed (green) and broken (red) "
                   "bonds are marked in 3D and on the timeline."),
            w.HBox([self.path, self.timestep, open_b]), self.job.widget, self.message, self.box,
        ], **kwargs)

    def show(self, trajectory: Any, energies: Sequence[float] | None = None, times: Sequence[float] | None = None,
             **options: Any) -> Any:
        """Show a :class:`ReactionPlayer` of ``trajectory`` (Atoms, Frames or [T, n, 3] positions) and return it."""
        from lam_lab.ui.player import ReactionPlayer

        self.player = ReactionPlayer(trajectory, energies=energies, times=times, **options)
        self.box.children = [self.player]
        self.message.value, self.error = "", ""
        return self.player

    def open_trajectory(self, path: str | Path, timestep: float | None = None) -> Any:
        """Read every frame of ``path`` with ASE and play it; a bad file shows its error here."""
        from ase.io import read as ase_read

        try:
            p = Path(str(path).strip()).expanduser()
            if not p.is_file():
                raise FileNotFoundError(f"no such file: {p}")
            frames = ase_read(p, index=":")
            return self.show(frames, timestep=timestep, title=p.name)
        except (DataError, OSError, ValueError, KeyError, IndexError) as exc:
            self.error = f"{path}: {exc}"
            self.message.value = error_html(self.error)
            return None

    def run_demo(self, wait: bool = False) -> bool:
        """Start the demo MD in the background (as the button does); ``wait`` blocks until shown."""
        started = self.job.start()
        if wait:
            self.job.wait()
        return started

    def _demo_job(self, ctx: JobContext) -> Any:
        from lam_lab.ui._demo import hot_cluster_md

        def progress(fraction: float) -> None:
            ctx.check()
            ctx.progress(fraction, "EMT MD of a hot Cu13 cluster…")

        return hot_cluster_md(progress=progress)

    def _show_demo(self, demo: Any) -> None:
        self.show(demo.frames, energies=demo.energies, times=demo.times, title=demo.description)


def md_figure() -> go.FigureWidget:
    """Empty live MD plot: potential and total energy (eV, relative to the start) and temperature (K) vs time (fs)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("energy", "temperature"), horizontal_spacing=0.1)
    fig.add_trace(go.Scatter(x=[], y=[], name="potential energy", mode="lines", line=dict(color="#1f77b4")),
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=[], y=[], name="total energy", mode="lines", line=dict(color="#ff7f0e")), row=1, col=1)
    fig.add_trace(go.Scatter(x=[], y=[], name="temperature", mode="lines", line=dict(color="#d62728")), row=1, col=2)
    fig.update_xaxes(title_text="time (fs)", rangemode="tozero")
    fig.update_yaxes(title_text="E − E₀ (eV)", row=1, col=1)
    fig.update_yaxes(title_text="T (K)", rangemode="tozero", row=1, col=2)
    # legend under the plots: above them it sat on the subplot titles
    fig.update_layout(height=330, margin=dict(l=60, r=10, t=40, b=90),
                      legend=dict(orientation="h", yanchor="top", y=-0.3, x=0))
    return fit_width(go.FigureWidget(fig))


def md_summary(res: Any) -> str:
    """One plain line about an MD run; the total-energy drift only for NVE (a thermostat changes E_tot on purpose)."""
    import numpy as np

    from lam_lab.ui._figures import fmt

    cfg = res.config
    t = float(np.mean(res.temperature)) if len(res.temperature) else float("nan")
    line = (f"{cfg.ensemble.upper()}: {res.steps_done} of {cfg.steps} steps ({res.steps_done * cfg.timestep:.1f} fs), "
            f"{len(res.steps)} frames, mean temperature {fmt(t, '.0f', 'K')}")
    if cfg.ensemble == "nve":
        line += f", total-energy drift {fmt(res.drift(), '.3g', 'meV/atom/ps')}"
    line += f", {res.wall_time:.1f} s"
    return line if res.completed else f"{line} — {res.status}: {res.reason}"


START_POINTS = ("transition state", "reactant", "product")
DEFAULT_REACTION = "diels-alder"  # from its TS with GFN2-xTB the default run reacts (product after ~40 fs at 500 K)


@dataclass
class Outcome:
    """Where an MD run from a built-in reaction ended: "product", "reactant" or None (still between them)."""

    side: str | None
    time_fs: float | None  # when it got there (and stayed), None when it did not
    sentence: str  # the same in plain words
    short: str  # a few words for the status line


def reaction_outcome(frames: Sequence[Any], times: Sequence[float], ts: Any,
                     start: str = "transition state") -> Outcome:
    """Classify the end of a run on ``ts``'s reaction by the bonds that differ between reactant and product.

    An end counts as a side when those bonds match that side (with the hysteresis of
    :func:`lam_lab.md.analysis.analyze_bonds`, from the first frame on) and each of their distances is nearer
    to that side's value than to the transition state's.
    """
    import numpy as np

    from lam_lab.md.analysis import analyze_bonds
    from lam_lab.md.reactive import bond_graph, classify_graph

    r_graph, p_graph = bond_graph(ts.reactant), bond_graph(ts.product)
    pairs = sorted(r_graph ^ p_graph)
    along = analyze_bonds(list(frames))

    def dist(atoms: Any) -> np.ndarray:
        return np.array([atoms.get_distance(i, j) for i, j in pairs])

    d_ts, d_side = dist(ts.ts), {"reactant": dist(ts.reactant), "product": dist(ts.product)}

    def side_at(k: int) -> str | None:
        label = classify_graph(along.bonds_at(k), r_graph, p_graph, only_reacting=True)
        if label == "other":
            return None
        d = dist(frames[k])
        return label if np.all(np.abs(d - d_side[label]) < np.abs(d - d_ts)) else None

    labels = [side_at(k) for k in range(len(frames))]
    side = labels[-1]
    symbols = ts.ts.get_chemical_symbols()

    def names(bonds: Iterable[tuple[int, int]]) -> str:  # atoms from 0, as the player names them
        return " and ".join(f"{symbols[i]}{i}–{symbols[j]}{j}" for i, j in sorted(bonds))

    if side is None:
        return Outcome(None, None, f"The run ended between reactant and product (bonds {names(pairs)} half made): "
                       "run it longer, or again from another start.", "ended between reactant and product")
    k = len(labels) - 1
    while k > 0 and labels[k - 1] == side:
        k -= 1
    t = float(times[k]) if len(times) > k else None
    when = f" after {t:.0f} fs" if t is not None else ""
    graphs = {"reactant": r_graph, "product": p_graph}
    other = "product" if side == "reactant" else "reactant"
    formed, gone = graphs[side] - graphs[other], graphs[other] - graphs[side]
    changes = "; ".join([f"{names(formed)} formed"] * bool(formed) + [f"{names(gone)} came apart"] * bool(gone))
    if start == side:
        return Outcome(side, t, f"No reaction: it stayed the {side} (bonds {names(pairs)} as they were).",
                       f"no reaction, stayed the {side}")
    if start == "transition state" and side == "product":
        return Outcome(side, t, f"From the transition state the atoms rolled downhill to the product{when}: "
                       f"{changes} — it reacted.", f"reached the product{when}")
    if start == "transition state":
        return Outcome(side, t, f"From the transition state the atoms rolled back to the reactant{when}: {changes} "
                       "(from the TS about half the runs go each way; run again for another start).",
                       f"reached the reactant{when}")
    return Outcome(side, t, f"It reacted: the {start} became the {side}{when} ({changes}).",
                   f"reacted to the {side}{when}")


class MDPanel(JobPanel):
    """Run MD from the panel: model (shipped / trained here / file / GFN2-xTB / EMT), system (a built-in reaction
    started at its transition state, reactant or product; SMILES, file, Cu13), ensemble, temperature (K), steps;
    live plot; the trajectory goes to the player, and a run on a reaction says where it ended, in words.

    By default: Diels–Alder from its verified GFN2-xTB transition state with GFN2-xTB, so the default run reacts.
    :meth:`run` / :meth:`stop` / :meth:`wait` are what the buttons do; ``panel.result`` is the
    :class:`lam_lab.md.runner.MDResult`, ``panel.outcome`` the :class:`Outcome`, ``panel.player`` the player.
    """

    run_prefix = None  # MD keeps its frames in memory (the player); it writes no run folder

    def __init__(self, model: Any = None, system: str | None = None, **kwargs: Any):
        from lam_lab.md.runner import ENSEMBLES

        super().__init__(start_label="Run MD", **kwargs)
        self.outcome: Outcome | None = None
        self.ts: Any = None  # the TransitionState of the last run's reaction (None for other systems)
        self._where = ""  # " from the <start> of <reaction>" for the summary line
        self.series: dict[str, list[float]] = {"time": [], "epot": [], "etot": [], "temperature": []}
        reactions = reaction_names()
        default = DEFAULT_REACTION if DEFAULT_REACTION in reactions else (reactions[0] if reactions else "Cu13")
        self.model = ModelPicker("model", calculators=True, auto_head=False, default_head="rxn-xtb")
        if model is not None:
            self.model.add(model, "given model")
        elif default in reactions or not shipped_models():
            self.model.select(XTB)  # the reference the verified saddles were found on: the run reacts
        self.system = w.Combobox(value=system or default, options=reactions + ["Cu13", "CCO"],
                                 description="system", ensure_option=False, layout=w.Layout(width="330px"),
                                 placeholder="reaction name, SMILES, file, Cu13")
        self.start_at = w.Dropdown(options=START_POINTS, value=START_POINTS[0], description="start at",
                                   layout=w.Layout(width="240px"), tooltip="for a reaction: where the run starts")
        self.ensemble = w.Dropdown(options=list(ENSEMBLES), value="langevin", description="ensemble",
                                   layout=w.Layout(width="220px"))
        self.temperature = w.FloatText(value=500.0, description="T (K)", layout=w.Layout(width="160px"))
        self.steps = w.IntText(value=300, description="steps", layout=w.Layout(width="150px"))
        self.timestep = w.FloatText(value=0.5, description="dt (fs)", layout=w.Layout(width="150px"))
        self.interval = w.IntText(value=5, description="every", layout=w.Layout(width="140px"),
                                  tooltip="record every k steps")
        self.live = md_figure()
        self.playback = PlaybackPanel()
        from lam_lab.ui._uncertainty import UncertaintyBox

        self.uncertainty = UncertaintyBox(self.model, lambda: self.player)
        self.system.observe(lambda _: self._system_changed(), names="value")
        self._system_changed()
        self.children = [
            w.HTML("<b>MD</b>: molecular dynamics with a lam_lab model or a reference method. A reaction started at "
                   "its transition state rolls downhill to reactant or product — bonds form and break."),
            self.model, w.HBox([self.system, self.start_at, self.ensemble, self.temperature],
                               layout=w.Layout(flex_flow="row wrap")),
            w.HBox([self.steps, self.timestep, self.interval]), self.job.widget, self.message, self.live,
            self.playback, self.uncertainty,
        ]
        self.add_class("lam-md-panel")

    @property
    def player(self) -> Any:
        """The :class:`ReactionPlayer` of the last run (or opened file), None before."""
        return self.playback.player

    def run(self) -> bool:
        """Start MD in the background with the form's settings; False when one runs or the form is wrong."""
        return self.start()

    def _system_changed(self) -> None:
        is_reaction = self.system.value.strip() in reaction_names()
        self.start_at.disabled = not is_reaction
        self.start_at.layout.display = "" if is_reaction else "none"

    def _start_atoms(self, spec: str) -> Any:
        """The first structure: a reaction's TS (the xTB saddle for GFN2-xTB), reactant or product; else the system."""
        from lam_lab.md.reactive import builtin_ts, verified_reactions

        self.ts = None
        if spec not in reaction_names():
            return resolve_system(spec)[0]
        level = "xtb" if self.model.choice.value == XTB and spec in verified_reactions("xtb") else "best"
        self.ts = builtin_ts(spec, level)
        return {"transition state": self.ts.ts, "reactant": self.ts.reactant, "product": self.ts.product}[
            self.start_at.value].copy()

    def _prepare(self) -> tuple:
        from lam_lab.md.runner import MDConfig

        calc, head = self.model.resolve()
        atoms = self._start_atoms(self.system.value.strip())
        cfg = MDConfig(ensemble=self.ensemble.value, temperature=float(self.temperature.value),
                       steps=int(self.steps.value), timestep=float(self.timestep.value),
                       interval=max(1, int(self.interval.value)), on_guard="stop")
        where = f" from the {self.start_at.value} of {self.system.value.strip()}" if self.ts is not None else ""
        self._where = where
        self.message.value = message_html(f"{cfg.ensemble} MD of {atoms.get_chemical_formula()}{where} with "
                                          f"{self.model.label} at {cfg.temperature:.0f} K, {cfg.steps} steps of "
                                          f"{cfg.timestep} fs…")
        self.series = {k: [] for k in self.series}
        self.result, self.outcome = None, None
        with self.live.batch_update():
            for tr in self.live.data:
                tr.x, tr.y = [], []
        return atoms, calc, head, cfg

    def _job(self, ctx: JobContext, atoms: Any, calc: Any, head: str | None, cfg: Any) -> Any:
        from lam_lab.md.runner import MDRunner, calculator_factory

        runner = MDRunner(atoms, calculator_factory(calc, head=head), cfg)
        total_fs = cfg.steps * cfg.timestep

        def observe(rec: Any) -> None:
            s = self.series
            for k, v in (("time", rec.time), ("epot", rec.epot), ("etot", rec.etot), ("temperature", rec.temperature)):
                s[k].append(float(v))
            e0 = s["epot"][0]
            with self.live.batch_update():
                self.live.data[0].x, self.live.data[0].y = list(s["time"]), [e - e0 for e in s["epot"]]
                self.live.data[1].x, self.live.data[1].y = list(s["time"]), [e - e0 for e in s["etot"]]
                self.live.data[2].x, self.live.data[2].y = list(s["time"]), list(s["temperature"])
            ctx.progress(rec.step / max(cfg.steps, 1), f"step {rec.step} of {cfg.steps} ({rec.time:.0f} of "
                                                       f"{total_fs:.0f} fs), temperature {rec.temperature:.0f} K")
            if ctx.stop_requested:
                runner.request_stop("Stop pressed")

        runner.add_observer(observe)
        res = runner.run()
        self.result = res
        self._show(res)
        if res.status == "stopped":
            raise JobStopped(res)
        return res

    def _show(self, res: Any) -> None:
        words = [md_summary(res) + (f"; started{self._where}" if self._where else "")]
        if self.ts is not None and len(res.frames) >= 1:
            try:
                self.outcome = reaction_outcome(res.frames, res.times, self.ts, self.start_at.value)
                words.append(self.outcome.sentence)
            except (ValueError, IndexError) as exc:  # e.g. a reaction whose ends share one bond graph
                words.append(f"(where it ended is unknown: {exc})")
        if len(res.frames) >= 1:
            title = (f"{res.frames[0].get_chemical_formula()}, {self.model.label}, {res.config.ensemble} "
                     f"{res.config.temperature:.0f} K")
            self.playback.show(res.frames, energies=res.epot, times=res.times, title=title)
        self.message.value = "".join(message_html(t, ok=res.status != "guard" or k > 0) for k, t in enumerate(words))

    def _finished(self, res: Any) -> None:
        if self.outcome is not None:
            self.job.status.value = f"done: {self.outcome.short}"
        if self.player is not None:
            n = len(self.player.events)
            self.message.value += message_html(f"{self.player.n_frames} frames, {n} bond event{'' if n == 1 else 's'}"
                                               " — press play or click an event")
