"""Live training curves (plotly FigureWidget fed by trainer Events), ETA text and metric tables for the panels."""

from __future__ import annotations

import html
import math
import threading
import time
from typing import Any, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lam_lab.ui._figures import fit_width, fmt
from lam_lab.ui.plots import COLORS

MIN_REDRAW_S = 0.5  # at most two redraws a second: each sends every trace's arrays to the browser


def fmt_duration(seconds: float | None) -> str:
    """``seconds`` as '1 h 02 min', '3 min 05 s' or '12 s' ('–' when unknown)."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def step_words(event: Any, what: str = "training") -> str:
    """A trainer Event as a plain status line: 'training: step 40 of 300, 3.1 steps a second, about 1 min 24 s left'."""
    total = f" of {event.total_steps}" if getattr(event, "total_steps", None) else ""
    parts = [f"{what}: step {event.step}{total}"]
    rate = getattr(event, "steps_per_s", None)
    if rate:
        parts.append(f"{rate:.1f} steps a second")
    eta = fmt_duration(getattr(event, "eta_s", None))
    if eta != "–":
        parts.append(f"about {eta} left")
    if getattr(event, "kind", "") == "validation":
        parts.append("checking the validation frames")
    return ", ".join(parts)


def device_label(device: Any = None) -> str:
    """The torch device training will use ('cuda:0 (NVIDIA H100)', 'cpu (2 threads)')."""
    import torch

    from lam_lab.md.calculator import default_device

    dev = default_device(device)
    if dev.type == "cuda":
        return f"{dev} ({torch.cuda.get_device_name(dev)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def positive(value: Any) -> float | None:
    """``value`` if it is a finite number > 0 (log axes cannot show the rest), else None."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


class LiveCurves:
    """A FigureWidget of loss, energy RMSE (meV/atom) and force RMSE (meV/Å) against step, log axes.

    Call it with trainer :class:`lam_lab.train.Event` records (it is a trainer callback): step events
    add training points, validation events add validation points (dashed, markers). Safe to call from
    the training thread; redraws are throttled and :meth:`flush` draws what is pending.
    """

    def __init__(self, title: str = "training", height: int = 330):
        fig = make_subplots(rows=1, cols=3, subplot_titles=("loss", "energy RMSE (meV/atom)", "force RMSE (meV/Å)"),
                            horizontal_spacing=0.07)
        fig.update_xaxes(title_text="step", type="log")
        fig.update_yaxes(type="log")
        for col, unit in ((1, "loss"), (2, "E RMSE (meV/atom)"), (3, "F RMSE (meV/Å)")):
            fig.update_yaxes(title_text=unit, title_standoff=4, row=1, col=col)
        # legend under the plots: above them it covered the title in JupyterLab
        fig.update_layout(title=title, height=height + 60, margin=dict(l=50, r=10, t=60, b=100),
                          legend=dict(orientation="h", yanchor="top", y=-0.25, x=0))
        self.figure = fit_width(go.FigureWidget(fig))
        self._series: dict[str, tuple[list[float], list[float]]] = {}
        self._trace: dict[str, int] = {}
        self._lock = threading.Lock()
        self._dirty = False
        self._last = 0.0
        self.points = 0  # points added so far (all series)
        self.reset()  # axes, titles and units before the first run

    def reset(self, tasks: Sequence[str] = (), title: str | None = None) -> None:
        """Drop every curve; pre-create the traces of ``tasks`` (train solid, validation dashed)."""
        with self._lock:
            self._series, self._trace, self.points = {}, {}, 0
            self.figure.data = ()
            self._add("loss · train", 1, COLORS[0], False)
            self._add("loss · validation", 1, COLORS[0], True)
            for k, task in enumerate(tasks):
                self._task_traces(task, k)
            for col in (2, 3):  # an empty trace per subplot: plotly draws no axes for a subplot without one
                self.figure.add_trace(go.Scatter(x=[], y=[], showlegend=False, hoverinfo="skip"), row=1, col=col)
            if title is not None:
                self.figure.layout.title.text = title

    def _add(self, key: str, col: int, color: str, dashed: bool) -> None:
        line = dict(color=color, dash="dash" if dashed else "solid", width=1.5)
        self.figure.add_trace(go.Scatter(x=[], y=[], name=key, mode="lines+markers" if dashed else "lines",
                                         line=line, marker=dict(size=5), legendgroup=key.split(" · ")[0],
                                         showlegend=col != 2),
                              row=1, col=col)
        self._trace[key] = len(self.figure.data) - 1
        self._series[key] = ([], [])

    def _task_traces(self, task: str, k: int | None = None) -> None:
        k = len({s.split(" · ")[0] for s in self._trace}) - 1 if k is None else k
        color = COLORS[(k + 1) % len(COLORS)]
        for what, col in (("E", 2), ("F", 3)):
            for part, dashed in (("train", False), ("validation", True)):
                self._add(f"{task} · {what} {part}", col, color, dashed)

    def _point(self, key: str, x: float, y: Any) -> None:
        y = positive(y)
        if y is None or x <= 0:
            return
        if key not in self._trace:
            self._task_traces(key.split(" · ")[0])
        xs, ys = self._series[key]
        xs.append(x)
        ys.append(y)
        self.points += 1
        self._dirty = True

    def __call__(self, event: Any) -> None:
        """Add the points of one trainer Event (kinds "step", "validation", "end"; others ignored)."""
        kind = getattr(event, "kind", None)
        with self._lock:
            step = float(max(event.step, 1)) if kind in ("step", "validation", "end") else 0.0
            if kind == "step":
                self._point("loss · train", step, event.loss)
                for task, r in event.train_rmse.items():
                    self._point(f"{task} · E train", step, r.get("e"))
                    self._point(f"{task} · F train", step, r.get("f"))
            elif kind == "validation":
                self._point("loss · validation", step, event.loss)
                for task, m in event.validation.items():
                    self._point(f"{task} · E validation", step, m.get("e_rmse"))
                    self._point(f"{task} · F validation", step, m.get("f_rmse"))
            late = time.monotonic() - self._last > MIN_REDRAW_S
            due = self._dirty and (kind in ("end", "stop", "validation") or late)
        if due:
            self.flush()

    def flush(self) -> None:
        """Send the pending points to the figure."""
        with self._lock:
            if not self._dirty:
                return
            with self.figure.batch_update():
                for key, idx in self._trace.items():
                    xs, ys = self._series[key]
                    self.figure.data[idx].x, self.figure.data[idx].y = list(xs), list(ys)
            self._dirty, self._last = False, time.monotonic()

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """(steps, values) of one curve, e.g. ``"loss · train"`` or ``"rxn-xtb · F validation"``."""
        return self._series.get(key, ([], []))


def metrics_html(table: Any, caption: str = "final metrics") -> str:
    """A :class:`lam_lab.train.MetricsTable` as HTML (energies meV/atom, forces meV/Å), WARMSE last."""
    if table is None or not getattr(table, "rows", None):
        return "<i>no validation data: no metrics</i>"
    cols = [("data set", "name", "s"), ("head", "head", "s"), ("frames", "n_frames", "d"), ("E RMSE", "e_rmse", ".2f"),
            ("E MAE", "e_mae", ".2f"), ("E std", "e_std", ".1f"), ("F RMSE", "f_rmse", ".1f"),
            ("F MAE", "f_mae", ".1f"), ("F std", "f_std", ".1f")]
    cell = "padding:1px 8px;text-align:right"
    head = "".join(f"<th style='{cell}'>{c}</th>" for c, _, _ in cols)
    body = ""
    for r in table.rows:
        cells = "".join(f"<td style='{cell}'>{html.escape(_cell(getattr(r, k), f))}</td>" for _, k, f in cols)
        body += f"<tr>{cells}</tr>"
    if len(table.rows) > 1:
        body += (f"<tr style='font-weight:bold'><td style='{cell}'>WARMSE</td><td></td><td></td>"
                 f"<td style='{cell}'>{fmt(table.warmse_e, '.2f')}</td><td></td><td></td>"
                 f"<td style='{cell}'>{fmt(table.warmse_f, '.1f')}</td>"
                 "<td></td><td></td></tr>")
    return (f"<div><b>{html.escape(caption)}</b><table>{head}{body}</table>"
            "<span style='color:#666'>energy meV/atom, force meV/Å; std = spread of the labels</span></div>")


def _cell(value: Any, spec: str) -> str:
    """A table cell: text as is, numbers formatted, NaN/inf as "n/a"."""
    if isinstance(value, str):
        return value
    return f"{value:{spec}}" if isinstance(value, int) and spec == "d" else fmt(value, spec)


def message_html(text: str, ok: bool = True) -> str:
    """A one-line note (grey) or problem (red box) for a panel."""
    if ok:
        return f"<div style='color:#555'>{html.escape(text)}</div>"
    from lam_lab.ui.data_panel import error_html

    return error_html(text).replace("Could not load the data", "Problem")
