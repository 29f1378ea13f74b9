"""MD panel: run MD (a lam_lab model, GFN2-xTB or EMT) on a TS, a SMILES molecule or a file with a live
energy/temperature plot, then play the trajectory back with bonds that form and break (ReactionPlayer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import ipywidgets as w
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lam_lab.data.errors import DataError
from lam_lab.ui._jobs import BackgroundJob, JobContext, JobStopped
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
            ctx.progress(fraction, "running EMT MD…")

        return hot_cluster_md(progress=progress)

    def _show_demo(self, demo: Any) -> None:
        self.show(demo.frames, energies=demo.energies, times=demo.times, title=demo.description)


def md_figure() -> go.FigureWidget:
    """Empty live MD plot: potential and total energy (eV, relative to the start) and temperature (K) vs time (fs)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("energy", "temperature"), horizontal_spacing=0.1)
    fig.add_trace(go.Scatter(x=[], y=[], name="potential energy", mode="lines", line=dict(color="#1f77b4")), row=1, col=1)
    fig.add_trace(go.Scatter(x=[], y=[], name="total energy", mode="lines", line=dict(color="#ff7f0e")), row=1, col=1)
    fig.add_trace(go.Scatter(x=[], y=[], name="temperature", mode="lines", line=dict(color="#d62728")), row=1, col=2)
    fig.update_xaxes(title_text="time (fs)", rangemode="tozero")
    fig.update_yaxes(title_text="E − E₀ (eV)", row=1, col=1)
    fig.update_yaxes(title_text="T (K)", rangemode="tozero", row=1, col=2)
    # legend under the plots: above them it sat on the subplot titles
    fig.update_layout(height=330, margin=dict(l=60, r=10, t=40, b=90), legend=dict(orientation="h", yanchor="top", y=-0.3, x=0))
    return go.FigureWidget(fig)


def md_summary(res: Any) -> str:
    """One plain line about an MD run; the total-energy drift only for NVE (a thermostat changes E_tot on purpose)."""
    import numpy as np

    from lam_lab.ui._figures import fmt

    cfg = res.config
    t = float(np.mean(res.temperature)) if len(res.temperature) else float("nan")
    line = (f"{cfg.ensemble.upper()} {res.steps_done}/{cfg.steps} steps ({res.steps_done * cfg.timestep:.1f} fs), "
            f"{len(res.steps)} frames, mean T {fmt(t, '.0f', 'K')}")
    if cfg.ensemble == "nve":
        line += f", total-energy drift {fmt(res.drift(), '.3g', 'meV/atom/ps')}"
    line += f", {res.wall_time:.1f} s"
    return line if res.completed else f"{line} — {res.status}: {res.reason}"


class MDPanel(w.VBox):
    """Run MD from the panel: model (shipped / trained here / file / GFN2-xTB / EMT), system (reaction TS,
    SMILES, file, Cu13), ensemble, temperature (K), steps; live plot; the trajectory goes to the player.

    :meth:`run` / :meth:`stop` / :meth:`wait` are what the buttons do; ``panel.result`` is the
    :class:`lam_lab.md.runner.MDResult`, ``panel.player`` the :class:`ReactionPlayer` showing it.
    """

    def __init__(self, model: Any = None, system: str | None = None, **kwargs: Any):
        from lam_lab.md.runner import ENSEMBLES

        self.result: Any = None
        self.error = ""
        self.series: dict[str, list[float]] = {"time": [], "epot": [], "etot": [], "temperature": []}
        self.model = ModelPicker("model", calculators=True, auto_head=False, default_head="rxn-xtb")
        if model is not None:
            self.model.add(model, "given model")
        elif not shipped_models():
            self.model.select(XTB)
        reactions = reaction_names()
        self.system = w.Combobox(value=system or (reactions[0] if reactions else "Cu13"), options=reactions + ["Cu13", "CCO"],
                                 description="system", ensure_option=False, layout=w.Layout(width="330px"),
                                 placeholder="reaction name (starts at its TS), SMILES, file, Cu13")
        self.ensemble = w.Dropdown(options=list(ENSEMBLES), value="langevin", description="ensemble", layout=w.Layout(width="220px"))
        self.temperature = w.FloatText(value=500.0, description="T (K)", layout=w.Layout(width="160px"))
        self.steps = w.IntText(value=400, description="steps", layout=w.Layout(width="150px"))
        self.timestep = w.FloatText(value=0.5, description="dt (fs)", layout=w.Layout(width="150px"))
        self.interval = w.IntText(value=5, description="every", layout=w.Layout(width="140px"), tooltip="record every k steps")
        self.job = BackgroundJob(self._job, start_label="Run MD", on_done=self._finished, on_start=self.run)
        self.message = w.HTML("")
        self.live = md_figure()
        self.playback = PlaybackPanel()
        from lam_lab.ui._uncertainty import UncertaintyBox

        self.uncertainty = UncertaintyBox(self.model, lambda: self.player)
        super().__init__([
            w.HTML("<b>MD</b>: molecular dynamics with a lam_lab model or a reference method. A reaction name starts "
                   "from its transition state, so the atoms roll downhill to reactant or product — bonds form and break."),
            self.model, w.HBox([self.system, self.ensemble, self.temperature]),
            w.HBox([self.steps, self.timestep, self.interval]), self.job.widget, self.message, self.live, self.playback,
            self.uncertainty,
        ], **kwargs)
        self.add_class("lam-md-panel")

    @property
    def player(self) -> Any:
        """The :class:`ReactionPlayer` of the last run (or opened file), None before."""
        return self.playback.player

    def run(self) -> bool:
        """Start MD in the background with the form's settings; False when one runs or the form is wrong."""
        if self.job.running:
            return False
        from lam_lab.md.runner import MDConfig

        try:
            calc, head = self.model.resolve()
            atoms = resolve_system(self.system.value)[0]
            cfg = MDConfig(ensemble=self.ensemble.value, temperature=float(self.temperature.value), steps=int(self.steps.value),
                           timestep=float(self.timestep.value), interval=max(1, int(self.interval.value)), on_guard="stop")
        except (DataError, ValueError, OSError) as exc:
            return self._fail(str(exc))
        self.error = ""
        self.message.value = message_html(f"{cfg.ensemble} MD of {atoms.get_chemical_formula()} with {self.model.label} "
                                          f"at {cfg.temperature:.0f} K, {cfg.steps} × {cfg.timestep} fs…")
        self.series = {k: [] for k in self.series}
        with self.live.batch_update():
            for tr in self.live.data:
                tr.x, tr.y = [], []
        return self.job.start(atoms, calc, head, cfg)

    def stop(self) -> None:
        """End the run after the step in progress; the frames so far are played."""
        self.job.stop()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the run ends (and the player is shown); returns the MDResult."""
        self.job.wait(timeout)
        return self.result

    def _job(self, ctx: JobContext, atoms: Any, calc: Any, head: str | None, cfg: Any) -> Any:
        from lam_lab.md.runner import MDRunner, calculator_factory

        try:
            runner = MDRunner(atoms, calculator_factory(calc, head=head), cfg)
        except (DataError, ValueError, KeyError, TypeError) as exc:
            self._fail(str(exc))
            raise

        def observe(rec: Any) -> None:
            s = self.series
            for k, v in (("time", rec.time), ("epot", rec.epot), ("etot", rec.etot), ("temperature", rec.temperature)):
                s[k].append(float(v))
            e0 = s["epot"][0]
            with self.live.batch_update():
                self.live.data[0].x, self.live.data[0].y = list(s["time"]), [e - e0 for e in s["epot"]]
                self.live.data[1].x, self.live.data[1].y = list(s["time"]), [e - e0 for e in s["etot"]]
                self.live.data[2].x, self.live.data[2].y = list(s["time"]), list(s["temperature"])
            ctx.progress(rec.step / max(cfg.steps, 1), f"step {rec.step}/{cfg.steps} · T {rec.temperature:.0f} K")
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
        if len(res.frames) >= 1:
            title = f"{res.frames[0].get_chemical_formula()}, {self.model.label}, {res.config.ensemble} {res.config.temperature:.0f} K"
            self.playback.show(res.frames, energies=res.epot, times=res.times, title=title)
        self.message.value = message_html(md_summary(res), ok=res.status != "guard")

    def _finished(self, res: Any) -> None:
        if self.player is not None:
            n = len(self.player.events)
            self.message.value += message_html(f"{self.player.n_frames} frames, {n} bond event{'' if n == 1 else 's'} — "
                                               "press play or click an event")

    def _fail(self, text: str) -> bool:
        self.error = text
        self.message.value = message_html(text, ok=False)
        return False
