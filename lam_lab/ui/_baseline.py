"""GFN2-xTB alone next to a model in the panels: its scores and parity points on the same test frames.

A reader judges a Δ-ML or fine-tuned model by how much it improves on the cheap method it starts from,
so wherever a panel shows a model's errors against a DFT label it also shows GFN2-xTB's stored labels
scored against the same label on the same frames. GFN2-xTB energies have another zero than DFT's, so
its energy error is only given (and plotted) with a per-element offset removed.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from lam_lab.ui._figures import fmt

BASELINE = "gfn2-xtb"
BASELINE_NAME = "GFN2-xTB alone"
BASELINE_COLOR = "#ff7f0e"  # the model's points are plotly's default blue


@dataclass
class BaselineAlone:
    """GFN2-xTB's scores against ``label`` on the test frames and its parity points (E/N eV/atom, forces eV/Å).

    ``parity['e_pred']`` has the per-element energy offset (fitted on these frames) removed.
    """

    label: str
    scores: Any  # lam_lab.evaluation.Scores
    parity: dict[str, np.ndarray]

    def curve_row(self) -> Any:
        """The learning-curve row of the baseline alone (drawn as a dashed line)."""
        from lam_lab.experiments.learning_curve import CurveRow

        return CurveRow.from_scores(BASELINE_NAME, "0", 0, self.scores)


def is_dft_label(label: str | None) -> bool:
    """Whether ``label`` names a DFT label set (not GFN-xTB, a force field or EMT): the baseline row makes sense."""
    name = (label or "").lower()
    return bool(name) and not name.startswith(("gfn", "xtb", "emt", "tip3p", "ff")) and name != BASELINE


def baseline_alone(test: Sequence[Any], label: str | None, baseline: str = BASELINE) -> BaselineAlone | None:
    """GFN2-xTB alone on ``test`` against ``label``; None unless that is a DFT label and every frame has xTB labels."""
    from lam_lab.evaluation import offset_removed, parity, reference, score

    frames = list(test)
    if not frames or not is_dft_label(label) or not any(label in f.labels for f in frames):
        return None
    if any(baseline not in f.labels or f.labels[baseline].energy is None or f.labels[baseline].forces is None
           for f in frames):
        return None
    pred = reference(frames, baseline)
    par = parity(pred, frames, label, max_forces=None)
    keep = [f for f in frames if label in f.labels and f.labels[label].energy is not None]
    if len(keep):
        par["e_pred"] = par["e_ref"] + offset_removed(par["e_pred"] - par["e_ref"], keep)
    return BaselineAlone(label, score(pred, frames, label), par)


def add_baseline_points(fig: Any, reference: np.ndarray, predicted: np.ndarray, unit: str,
                        name: str = BASELINE_NAME) -> Any:
    """``fig`` (a parity plot) with the baseline's points as a second, orange trace, its RMSE in an annotation."""
    import plotly.graph_objects as go

    ref, pred = np.asarray(reference, float).ravel(), np.asarray(predicted, float).ravel()
    if not ref.size:
        return fig
    rmse = float(np.sqrt(np.mean((pred - ref) ** 2)))
    fig.data[0].name = "model"
    fig.add_trace(go.Scattergl(x=ref, y=pred, mode="markers", name=name,
                               marker=dict(size=4, opacity=0.45, color=BASELINE_COLOR, symbol="x")))
    fig.data = (fig.data[0], fig.data[2], fig.data[1])  # the y = x line last, on top of both point clouds
    values = np.concatenate([np.asarray(v, float) for tr in fig.data[:2] for v in (tr.x, tr.y)])
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    fig.data[2].x, fig.data[2].y = [lo, hi], [lo, hi]
    fig.add_annotation(text=f"{html.escape(name)}: RMSE {fmt(rmse, '.4g', unit)}", showarrow=False, xref="paper",
                       yref="paper", x=0.02, y=0.98, xanchor="left", yanchor="top",
                       font=dict(color=BASELINE_COLOR, size=12), bgcolor="rgba(255,255,255,0.7)")
    fig.update_layout(showlegend=True, legend=dict(x=0.98, y=0.02, xanchor="right", yanchor="bottom"))
    return fig


COLUMNS = [("frames", "n_frames", "d"), ("E RMSE", "energy_rmse_mev_per_atom", ".2f"),
           ("E RMSE*", "energy_rmse_offset_removed_mev_per_atom", ".2f"), ("F RMSE", "force_rmse_mev_per_A", ".1f"),
           ("F MAE", "force_mae_mev_per_A", ".1f"), ("|Δ barrier|", "barrier_err_ev", ".3f")]


def comparison_html(rows: Sequence[tuple[str, Any]], caption: str, label: str, raw_energy: bool = True) -> str:
    """(name, Scores) rows as an HTML table; the baseline's raw E RMSE is "—" (its energies have another zero), and
    without ``raw_energy`` that column is left out (models whose energy zero is not the label's)."""
    cell = "padding:1px 8px;text-align:right"
    columns = [c for c in COLUMNS if raw_energy or c[1] != "energy_rmse_mev_per_atom"]
    head = f"<th style='{cell}'>method</th>" + "".join(f"<th style='{cell}'>{c}</th>" for c, _, _ in columns)
    body = ""
    for name, s in rows:
        tds = []
        for _, key, spec in columns:
            v = getattr(s, key)
            text = "—" if name == BASELINE_NAME and key == "energy_rmse_mev_per_atom" else (
                str(v) if spec == "d" else fmt(v, spec))
            tds.append(f"<td style='{cell}'>{html.escape(text)}</td>")
        style = " style='color:#b35900'" if name == BASELINE_NAME else ""
        body += f"<tr{style}><td style='{cell};text-align:left'>{html.escape(name)}</td>{''.join(tds)}</tr>"
    n = max((getattr(s, "barrier_reactions", 0) for _, s in rows), default=0)
    barrier = f"barrier eV (the mean over the {n} reactions with a TS and a reactant frame)" if n > 1 else "barrier eV"
    return (f"<div><b>{html.escape(caption)}</b><table>{head}{body}</table><span style='color:#666'>errors against "
            f"{html.escape(label)} on the same frames; energy meV/atom (E RMSE*: per-element offsets removed), force "
            f"meV/Å, {barrier}</span></div>")
