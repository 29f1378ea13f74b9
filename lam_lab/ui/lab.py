"""The Lab: one tabbed dashboard (Data, Train, Fine-tune·Δ, Distill, MD) over the lam_lab engine."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Sequence

import ipywidgets as w

from lam_lab.data import Dataset
from lam_lab.ui._jobs import BackgroundJob, JobContext
from lam_lab.ui.data_panel import DataPanel, error_html

LATER = "coming in a later release"


def placeholder(title: str, what: str) -> w.HTML:
    """A tab body that says plainly what will be there and that it is not there yet."""
    return w.HTML(f"<div style='padding:12px;color:#555'><b>{html.escape(title)}</b> — {LATER}.<br>"
                  f"<span style='color:#777'>{html.escape(what)}</span></div>")


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
                   f"bonds are marked in 3D and on the timeline. Running MD from here is {LATER}."),
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

        from lam_lab.data import DataError

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


class Lab(w.VBox):
    """The dashboard: Data and MD playback work now; training, fine-tuning/Δ and distillation tabs say when.

    ``lab.data`` is the :class:`DataPanel`, ``lab.playback`` the :class:`PlaybackPanel`; everything
    they do is also a method, so a script can drive the same Lab.
    """

    TABS = ("Data", "Train", "Fine-tune · Δ", "Distill", "MD")

    def __init__(self, dataset: Dataset | None = None, builtins: Sequence[str] | None = None, **kwargs: Any):
        self.data = DataPanel(dataset=dataset, builtins=builtins)
        self.playback = PlaybackPanel()
        bodies = [
            self.data,
            placeholder("Train", "multi-task DPA-2 pre-training with live loss curves, a Stop button and checkpoints."),
            placeholder("Fine-tune · Δ", "fine-tuning from a pre-trained branch and Δ-learning on top of GFN2-xTB."),
            placeholder("Distill", "teacher-driven exploration and a fast student model."),
            self.playback,
        ]
        self.tabs = w.Tab(children=bodies, titles=list(self.TABS))
        from lam_lab import __version__

        super().__init__([w.HTML(f"<h3 style='margin:4px 0'>lam_lab Lab <small style='color:#888'>v{__version__}</small></h3>"),
                          self.tabs], **kwargs)

    def select(self, tab: str) -> None:
        """Switch to the tab titled ``tab``."""
        self.tabs.selected_index = list(self.TABS).index(tab)
