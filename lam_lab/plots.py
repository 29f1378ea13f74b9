"""Plotly figures the engine's reports need (the Lab's panels use them too): curves, parity, MD traces, 3D playback."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from ase.data import chemical_symbols, covalent_radii
from ase.data.colors import jmol_colors
from plotly.subplots import make_subplots

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def loss_curves(history: Sequence[Mapping[str, Any]], title: str = "training") -> go.Figure:
    """Per-task force RMSE (meV/Å) of training windows (lines) and validations (markers) against step, log axes."""
    fig = go.Figure()
    tasks = sorted({t for e in history for key in ("train_rmse", "validation") for t in (e.get(key) or {})})
    for k, task in enumerate(tasks):
        color = COLORS[k % len(COLORS)]
        tr = [(e["step"], e["train_rmse"][task]["f"]) for e in history
              if e.get("kind") == "step" and (e.get("train_rmse") or {}).get(task, {}).get("f")]
        va = [(e["step"], e["validation"][task]["f_rmse"]) for e in history
              if e.get("kind") == "validation" and (e.get("validation") or {}).get(task, {}).get("f_rmse")]
        if tr:
            fig.add_scatter(x=[s for s, _ in tr], y=[v for _, v in tr], mode="lines", name=f"{task} train",
                            line=dict(color=color, width=1))
        if va:
            fig.add_scatter(x=[s for s, _ in va], y=[v for _, v in va], mode="lines+markers", name=f"{task} validation",
                            line=dict(color=color, width=2, dash="dot"))
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="force RMSE (meV/Å)", template="plotly_white",
                      height=380)
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def parity(reference: Sequence[float], predicted: Sequence[float], title: str = "parity",
           unit: str = "eV", baseline: tuple[str, Sequence[float], Sequence[float]] | None = None) -> go.Figure:
    """Predicted vs reference scatter with the y = x line and RMSE/MAE (in ``unit``) in the title.

    ``baseline``: (name, reference, predicted) of a method alone on the same points (e.g. "GFN2-xTB alone" under a
    Δ model), drawn behind the model with its RMSE in the legend.
    """
    ref, pred = np.asarray(reference, dtype=float).ravel(), np.asarray(predicted, dtype=float).ravel()
    if ref.shape != pred.shape:
        raise ValueError(f"reference and predicted differ in length: {ref.shape} vs {pred.shape}")
    err = pred - ref
    rmse, mae = (float(np.sqrt(np.mean(err**2))), float(np.mean(np.abs(err)))) if len(err) else (float("nan"),) * 2
    points = [ref, pred]
    traces = []
    if baseline is not None:
        name = baseline[0]
        b_ref, b_pred = np.asarray(baseline[1], float).ravel(), np.asarray(baseline[2], float).ravel()
        b_rmse = float(np.sqrt(np.mean((b_pred - b_ref) ** 2))) if len(b_ref) else float("nan")
        traces.append(go.Scattergl(x=b_ref, y=b_pred, mode="markers", name=f"{name} (RMSE {b_rmse:.4g})",
                                   marker=dict(size=4, opacity=0.35, color="#bbb")))
        points += [b_ref, b_pred]
    allv = np.concatenate(points)
    lo, hi = (float(allv.min()), float(allv.max())) if allv.size else (0.0, 1.0)
    traces += [
        go.Scattergl(x=ref, y=pred, mode="markers", marker=dict(size=4, opacity=0.6), name=f"model (RMSE {rmse:.4g})"),
        go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(color="#888", dash="dash"), name="y = x"),
    ]
    fig = go.Figure(traces)
    fig.update_layout(title=f"{title} — RMSE {rmse:.4g} {unit}, MAE {mae:.4g} {unit}", height=380,
                      showlegend=baseline is not None, legend=dict(orientation="h", y=-0.2),
                      xaxis_title=f"reference ({unit})", yaxis_title=f"model ({unit})",
                      margin=dict(l=60, r=10, t=50, b=50))
    fig.update_yaxes(scaleanchor="x")
    return fig


def grouped_bars(rows: Sequence[Mapping[str, Any]], x: str, y: str, group: str, title: str, unit: str,
                 log: bool = False) -> go.Figure:
    """Bars of ``y`` per ``x`` for each ``group`` (e.g. force RMSE per N for each method)."""
    fig = go.Figure()
    for k, g in enumerate(dict.fromkeys(r[group] for r in rows)):
        sel = [r for r in rows if r[group] == g]
        fig.add_bar(x=[str(r[x]) for r in sel], y=[r[y] for r in sel], name=str(g),
                    marker_color=COLORS[k % len(COLORS)])
    fig.update_layout(title=title, yaxis_title=unit, barmode="group", template="plotly_white", height=360)
    if log:
        fig.update_yaxes(type="log")
    return fig


def baseline_line(fig: go.Figure, value: float | None, name: str, log: bool = False, **where: Any) -> None:
    """A dashed horizontal line at ``value`` labelled ``name`` (a reference method alone, e.g. GFN2-xTB).

    ``log``: the y axis is (or will be) logarithmic. plotly places a shape there by its data value but an
    annotation by log10 of it, so the label gets log10(value); unlogged, it sat at 10^value and stretched
    the autorange to e.g. 1e45.
    """
    if value is None or not np.isfinite(value) or (log and value <= 0):
        return
    label_y = {"annotation_y": float(np.log10(value))} if log else {}
    fig.add_hline(y=value, line=dict(color="#444", dash="dash", width=1.5), annotation_text=name,
                  annotation_position="top left", **label_y, **where)


def curve_lines(rows: Sequence[Mapping[str, Any]], x: str, y: str, group: str, title: str, unit: str,
                baseline: Mapping[str, Any] | None = None) -> go.Figure:
    """Lines of ``y`` against ``x`` for each ``group`` on log–log axes (learning curves); ``baseline`` a dashed line."""
    fig = go.Figure()
    for k, g in enumerate(dict.fromkeys(r[group] for r in rows)):
        sel = sorted((r for r in rows if r[group] == g), key=lambda r: r[x])
        fig.add_scatter(x=[r[x] for r in sel], y=[r[y] for r in sel], mode="lines+markers", name=str(g),
                        line=dict(color=COLORS[k % len(COLORS)]))
    if baseline is not None:
        baseline_line(fig, baseline.get(y), str(baseline.get(group, "baseline")), log=True)
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=unit, template="plotly_white", height=380)
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


# (row key, baseline key, title): the baseline method alone has another zero of energy, so its line is the
# energy error with per-element offsets removed (generous to it: the models' biases come from the train split)
LC_PANELS = (("energy_rmse_mev_per_atom", "energy_rmse_offset_removed_mev_per_atom", "energy RMSE (meV/atom)"),
             ("force_rmse_mev_per_A", "force_rmse_mev_per_A", "force RMSE (meV/Å)"),
             ("barrier_err_ev", "barrier_err_ev", "|barrier error| (eV)"))


def learning_curve_figure(rows: Sequence[Mapping[str, Any]], baseline: Mapping[str, Any] | None,
                          title: str) -> go.Figure:
    """Errors vs training frames N (log axes), one line per method, the baseline alone as a dashed line per panel."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for _, _, t in LC_PANELS])
    for k, method in enumerate(dict.fromkeys(r["method"] for r in rows)):
        sel = sorted((r for r in rows if r["method"] == method), key=lambda r: r["n"])
        for col, (key, _, _) in enumerate(LC_PANELS, start=1):
            fig.add_scatter(x=[r["n"] for r in sel], y=[r[key] for r in sel], mode="lines+markers", name=method,
                            legendgroup=method, showlegend=col == 1, line={"color": f"hsl({k * 67 % 360},65%,45%)"},
                            row=1, col=col)
    if baseline is not None:
        for col, (_, key, _) in enumerate(LC_PANELS, start=1):
            name = str(baseline["method"]) + (" (offsets removed)" if key != LC_PANELS[col - 1][0] else "")
            baseline_line(fig, baseline.get(key), name, log=True, row=1, col=col)
    fig.update_xaxes(type="log", title_text="training frames N")
    fig.update_yaxes(type="log")
    fig.update_layout(title=title, height=420, width=1200)
    return fig


def md_traces(times: Sequence[float], epot: Sequence[float], etot: Sequence[float], temperature: Sequence[float],
              events: Sequence[Mapping[str, Any]] = (), title: str = "MD") -> go.Figure:
    """Potential/total energy (eV, relative to the first frame) and temperature (K) vs time (fs), with bond events."""
    t = np.asarray(times, float)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("energy (eV, relative)", "temperature (K)"))
    e0 = float(np.asarray(etot)[0]) if len(etot) else 0.0
    fig.add_scatter(x=t, y=np.asarray(epot) - e0, name="E_pot", row=1, col=1)
    fig.add_scatter(x=t, y=np.asarray(etot) - e0, name="E_tot", row=1, col=1)
    fig.add_scatter(x=t, y=temperature, name="T", row=2, col=1, line=dict(color="#d62728"))
    for ev in events:
        color = "#2ca02c" if ev["kind"] == "formed" else "#9467bd"
        fig.add_vline(x=ev["time"], line=dict(color=color, dash="dot", width=1))
    fig.update_layout(title=title, template="plotly_white", height=420)
    fig.update_xaxes(title_text="time (fs)", row=2, col=1)
    return fig


def _bond_segments(positions: np.ndarray, bonds: np.ndarray) -> tuple[list, list, list]:
    xs, ys, zs = [], [], []
    for i, j in np.asarray(bonds, int).reshape(-1, 2):
        for arr, k in ((xs, 0), (ys, 1), (zs, 2)):
            arr += [positions[i, k], positions[j, k], None]
    return xs, ys, zs


def trajectory_3d(numbers: Sequence[int], positions: np.ndarray, bonds: Sequence[np.ndarray],
                  times: Sequence[float] | None = None, title: str = "trajectory", max_frames: int = 120) -> go.Figure:
    """An animated 3D view (play button and slider) whose bonds are recomputed for every frame."""
    numbers = np.asarray(numbers)
    positions = np.asarray(positions, float)
    step = max(1, len(positions) // max_frames)
    idx = list(range(0, len(positions), step))
    colors = ["rgb({},{},{})".format(*(255 * jmol_colors[z]).astype(int)) for z in numbers]
    sizes = [8 + 14 * covalent_radii[z] for z in numbers]
    labels = [chemical_symbols[z] for z in numbers]

    def traces(k: int) -> list:
        p = positions[k]
        bx, by, bz = _bond_segments(p, bonds[k])
        return [go.Scatter3d(x=bx, y=by, z=bz, mode="lines", line=dict(color="#888", width=6), hoverinfo="skip"),
                go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="markers", text=labels,
                             marker=dict(color=colors, size=sizes, line=dict(color="#333", width=1)))]

    label = (lambda k: f"{times[k]:.0f} fs") if times is not None else (lambda k: str(k))
    frames = [go.Frame(data=traces(k), name=str(k)) for k in idx]
    lo, hi = positions.min(axis=(0, 1)), positions.max(axis=(0, 1))
    span = float(max(hi - lo)) / 2 + 1.0
    mid = (hi + lo) / 2
    axis = lambda c: dict(range=[mid[c] - span, mid[c] + span], visible=False)  # noqa: E731
    fig = go.Figure(data=traces(idx[0]), frames=frames)
    fig.update_layout(
        title=title, height=480, showlegend=False, template="plotly_white",
        scene=dict(xaxis=axis(0), yaxis=axis(1), zaxis=axis(2), aspectmode="cube",
                   camera=dict(eye=dict(x=0.85, y=0.85, z=0.55))),
        updatemenus=[dict(type="buttons", x=0.05, y=0.05, buttons=[
            dict(label="▶ play", method="animate",
                 args=[None, dict(frame=dict(duration=80, redraw=True), fromcurrent=True)]),
            dict(label="❚❚ pause", method="animate",
                 args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False))])])],
        sliders=[dict(x=0.2, len=0.75, currentvalue=dict(prefix="t = "), steps=[
            dict(label=label(k), method="animate",
                 args=[[str(k)], dict(mode="immediate", frame=dict(duration=0, redraw=True))])
            for k in idx])])
    return fig
