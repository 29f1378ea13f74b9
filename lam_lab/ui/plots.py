"""Plotly figure builders for the panels: element coverage, label histograms (eV/atom, eV/Å), parity plots."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import plotly.graph_objects as go
from ase.data import atomic_numbers, chemical_symbols
from plotly.subplots import make_subplots

from lam_lab.data.dataset import Dataset
from lam_lab.plots import parity  # noqa: F401  (the engine's; panels import it from here)

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
MAX_HIST_VALUES = 100_000  # larger samples are thinned (seeded) to keep the figure light


def table_position(z: int) -> tuple[int, int]:
    """(row, group) of element ``z`` in the periodic table; lanthanides/actinides on rows 9 and 10."""
    if z == 1:
        return 1, 1
    if z == 2:
        return 1, 18
    starts = [(3, 2), (11, 3), (19, 4), (37, 5), (55, 6), (87, 7)]
    for start, period in reversed(starts):
        if z >= start:
            k = z - start
            if period <= 3:
                return period, k + 1 if k < 2 else k + 11
            if period <= 5:
                return period, k + 1
            if 2 <= k <= 16:  # La..Lu, Ac..Lr
                return period + 3, k + 1
            return period, k + 1 if k < 2 else k - 13
    raise ValueError(f"no periodic-table position for Z={z}")


def coverage_table(counts: Mapping[str, int], title: str = "element coverage") -> go.Figure:
    """Periodic table coloured by log10(atom count) of each element present; absent ones grey."""
    z_grid = np.full((10, 18), np.nan)
    base = np.full((10, 18), np.nan)
    xs, ys, syms, tcolor, hover = [], [], [], [], []
    top = max([2, *(int(c) for c in counts.values())])  # dark cells get white symbols
    for z in range(1, 104):
        row, col = table_position(z)
        sym, count = chemical_symbols[z], int(counts.get(chemical_symbols[z], 0))
        base[row - 1, col - 1] = 0.0
        if count:
            z_grid[row - 1, col - 1] = np.log10(count)
        xs.append(col - 1)
        ys.append(row - 1)
        syms.append(sym)
        tcolor.append("#aaa" if not count else "#fff" if np.log10(count) > 0.55 * np.log10(top) else "#000")
        hover.append(f"{sym} (Z={z}): {count} atoms")
    fig = go.Figure([
        go.Heatmap(z=base, colorscale=[[0, "#f0f0f0"], [1, "#f0f0f0"]], showscale=False, hoverinfo="skip", xgap=2,
                   ygap=2),
        go.Heatmap(z=z_grid, colorscale="YlGnBu", xgap=2, ygap=2, hoverinfo="skip",
                   zmin=0, zmax=max(1.0, float(np.nanmax(z_grid)) if np.isfinite(z_grid).any() else 1.0),
                   colorbar=dict(title="log₁₀ atoms", thickness=12)),
        go.Scatter(x=xs, y=ys, text=syms, mode="text", textfont=dict(color=tcolor, size=11), hovertext=hover,
                   hoverinfo="text", showlegend=False),
    ])
    fig.update_yaxes(autorange="reversed", visible=False, scaleanchor="x")
    fig.update_xaxes(visible=False)
    fig.update_layout(title=title, height=300, margin=dict(l=10, r=10, t=40, b=10), plot_bgcolor="white")
    return fig


def coverage_bars(counts_by_set: Mapping[str, Mapping[str, int]], title: str = "element coverage") -> go.Figure:
    """Grouped bars: fraction of atoms of each element, one colour per data set."""
    elements = sorted({el for c in counts_by_set.values() for el in c}, key=lambda s: atomic_numbers[s])
    fig = go.Figure()
    for k, (name, counts) in enumerate(counts_by_set.items()):
        total = max(1, sum(counts.values()))
        fig.add_trace(go.Bar(x=elements, y=[counts.get(el, 0) / total for el in elements], name=name,
                             marker_color=COLORS[k % len(COLORS)],
                             customdata=[counts.get(el, 0) for el in elements],
                             hovertemplate="%{x}: %{y:.1%} (%{customdata} atoms)<extra>" + name + "</extra>"))
    fig.update_layout(title=title, barmode="group", height=300, yaxis=dict(title="fraction of atoms", tickformat=".0%"),
                      margin=dict(l=50, r=10, t=40, b=30), legend=dict(orientation="h", yanchor="bottom", y=1.02, x=1,
                                                                       xanchor="right"))
    return fig


def _thin(values: np.ndarray, limit: int = MAX_HIST_VALUES) -> np.ndarray:
    if len(values) <= limit:
        return values
    return np.random.default_rng(0).choice(values, size=limit, replace=False)


def energy_per_atom(ds: Dataset, label: str) -> np.ndarray:
    """Energies per atom (eV/atom) of the frames carrying ``label``."""
    return np.array([f.labels[label].energy / len(f) for f in ds
                     if label in f.labels and f.labels[label].energy is not None])


def force_norms(ds: Dataset, label: str) -> np.ndarray:
    """Per-atom force magnitudes (eV/Å) of the frames carrying ``label``."""
    parts = [np.linalg.norm(f.labels[label].forces, axis=1) for f in ds
             if label in f.labels and f.labels[label].forces is not None]
    return np.concatenate(parts) if parts else np.zeros(0)


def label_histograms(datasets: Mapping[str, Dataset], quantity: str = "energy", bins: int = 40) -> go.Figure:
    """One row per label set, data sets overlaid: E/atom (eV/atom) or |F| (eV/Å) histograms.

    Label sets of different methods sit on very different energy scales, so each gets its own axis (the
    label set is named in its x-axis title). Two or more data sets are compared as probability densities
    on shared bins (their sizes differ); every set is in the legend.
    """
    if quantity not in ("energy", "force"):
        raise ValueError(f"quantity must be 'energy' or 'force', got {quantity!r}")
    extract, unit = (energy_per_atom, "E/atom (eV/atom)") if quantity == "energy" else (force_norms, "|F| (eV/Å)")
    labels = list(dict.fromkeys(lab for ds in datasets.values() for lab in ds.label_sets))
    rows = max(1, len(labels))
    density = len(datasets) > 1
    fig = make_subplots(rows=rows, cols=1, vertical_spacing=0.22 if rows > 1 else 0.0)
    in_legend: set[str] = set()
    for r, lab in enumerate(labels, start=1):
        values = {name: _thin(extract(ds, lab)) for name, ds in datasets.items()}
        finite = [v[np.isfinite(v)] for v in values.values() if len(v)]
        lo, hi = (min(float(v.min()) for v in finite if len(v)), max(float(v.max()) for v in finite if len(v))) \
            if any(len(v) for v in finite) else (0.0, 1.0)
        size = (hi - lo) / bins if hi > lo else 1.0
        for k, (name, v) in enumerate(values.items()):
            if not len(v):
                continue
            fig.add_trace(go.Histogram(x=v, name=name, xbins=dict(start=lo, end=hi + size, size=size),
                                       histnorm="probability density" if density else "",
                                       opacity=0.6 if density else 0.85, marker_color=COLORS[k % len(COLORS)],
                                       legendgroup=name, showlegend=name not in in_legend,
                                       hovertemplate=f"{lab}: " + "%{x}<br>%{y:.3g}<extra>" + name + "</extra>"),
                          row=r, col=1)
            in_legend.add(name)
        fig.update_xaxes(title_text=f"{unit} · {lab}", row=r, col=1)
        count = "frames" if quantity == "energy" else "atoms"
        fig.update_yaxes(title_text=f"density (per {unit.split('(')[1][:-1]})" if density else count, row=r, col=1)
    if not labels:
        fig.update_xaxes(title_text=f"{unit} · no labels")
    title = "energy per atom" if quantity == "energy" else "force magnitude per atom"
    fig.update_layout(barmode="overlay", height=140 + 200 * rows, title=dict(text=title, x=0.01, xanchor="left"),
                      margin=dict(l=60, r=10, t=80, b=50), showlegend=True,
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1))
    return fig
