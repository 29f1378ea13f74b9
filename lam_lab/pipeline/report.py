"""``report.html``: one self-contained page (plotly.js inlined, no CDN) from the pipeline's artefacts."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from lam_lab import plots

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;
color:#222}
h1{margin-bottom:0}h2{border-bottom:2px solid #eee;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right;font-size:.9em}th{background:#f6f6f6}
td:first-child,th:first-child{text-align:left}
.note{background:#fff8e1;border-left:4px solid #f0ad4e;padding:.5em 1em}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}
.muted{color:#777;font-size:.9em}"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "–" if not np.isfinite(v) else (f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}")
    if isinstance(v, dict):
        return ", ".join(f"{k} {n}" for k, n in v.items())
    return html.escape(str(v))


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """An HTML table of ``rows`` with (key, header) columns."""
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(k, ''))}</td>" for k, _ in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def figure(fig: Any) -> str:
    """A plotly figure as a div (plotly.js is inlined once in the page head)."""
    return fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})


def _read(out: Path, records: Mapping[str, Any], stage: str, role: str) -> Any:
    rec = records.get(stage)
    if rec is None or role not in rec.files:
        return None
    path = out / rec.files[role]
    return json.loads(path.read_text()) if path.suffix == ".json" else path


def _hist_figure(hists: Mapping[str, Any], quantity: str, unit: str) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, h in hists.items():
        e = np.asarray(h[quantity]["edges"])
        if len(e) > 1:
            fig.add_bar(x=(e[1:] + e[:-1]) / 2, y=h[quantity]["counts"], name=f"{name} ({h['label']})", opacity=0.6)
    fig.update_layout(barmode="overlay", title=f"{quantity} distribution", xaxis_title=unit, yaxis_title="count",
                      template="plotly_white", height=340)
    return fig


def section_data(summary: Mapping[str, Any]) -> str:
    """Data set table, element coverage and label distributions."""
    import plotly.graph_objects as go

    rows = summary["rows"]
    spread = (("e_std_mev", "E/atom spread, per-element offsets removed (meV)") if any("e_std_mev" in r for r in rows)
              else ("e_std", "E/atom std (eV)"))  # files of older runs
    out = ["<h2>1. Data sets</h2>", table(rows, [("set", "set"), ("label", "label set"), ("method", "method"),
                                                    ("frames", "frames"), ("atoms", "atoms/frame"),
                                                    ("periodic", "periodic"), spread, ("f_rms", "F rms (eV/Å)")])]
    cov = go.Figure()
    for r in {r["set"]: r for r in rows}.values():
        cov.add_bar(x=list(r["elements"]), y=list(r["elements"].values()), name=r["set"])
    cov.update_layout(title="element coverage (atoms)", barmode="group", template="plotly_white", height=340)
    cov.update_yaxes(type="log")
    hists = summary["histograms"]
    force_hist = figure(_hist_figure(hists, "force", "|F| (eV/Å)"))
    out.append(f"<div class='grid'><div>{figure(cov)}</div><div>{force_hist}</div></div>")
    out.append(figure(_hist_figure(hists, "energy", "E/atom, per-element offsets removed (eV)")))
    return "\n".join(out)


def section_pretrain(card: Mapping[str, Any] | None, history: Any) -> str:
    """The multi-task model: where it comes from, its test errors and loss curves."""
    if card is None:
        return ""
    t = card["training"]
    out = ["<h2>2. Multi-task pre-training</h2>",
           f"<p><b>{html.escape(card['name'])}</b> ({html.escape(str(card['preset']))}, "
           f"{card['parameters']:,} parameters, "
           f"heads {', '.join(card['heads'])}): {t['steps']} steps in {t['wall_time_s'] / 60:.0f} min on "
           f"{html.escape(t['hardware'])}.</p>",
           "<p class='muted'>Test errors per head (E meV/atom, F meV/Å; std = the labels' standard deviation):</p>",
           table(card["test"], [("set", "set"), ("label", "label"), ("frames", "frames"), ("e_rmse", "E RMSE"),
                                ("e_std", "E std"), ("f_rmse", "F RMSE"), ("f_std", "F std")])]
    if history:
        out.append(figure(plots.loss_curves(history, "pre-training: force RMSE per task")))
    return "\n".join(out)


_OLD_KEYS = {"e_rmse": "energy_rmse_mev_per_atom", "f_rmse": "force_rmse_mev_per_A", "barrier_err": "barrier_err_ev",
             "barrier_ref": "barrier_ref_ev", "barrier_pred": "barrier_pred_ev"}
BARRIER_MEAN = "{} (eV, mean over the reactions)"  # several held-out reactions: each one's barrier, averaged
E_COLS = [("energy_rmse_mev_per_atom", "E RMSE (meV/atom)"),
          ("energy_rmse_offset_removed_mev_per_atom", "E RMSE, offsets removed (meV/atom)")]


def _rows(rows: Sequence[Mapping[str, Any]] | None, baseline: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows with the unit-named keys (files of older runs use short names, barriers in eV), the baseline alone last.

    The baseline's raw energy error is left blank: its energies have another zero (only offset-removed errors compare).
    """
    out = [{_OLD_KEYS.get(k, k): v for k, v in r.items()} for r in rows or []]
    if baseline:
        out.append({**{_OLD_KEYS.get(k, k): v for k, v in baseline.items()}, "energy_rmse_mev_per_atom": float("nan")})
    return out


def section_finetune(metrics: Mapping[str, Any], ft: Mapping[str, Any]) -> str:
    """Zero-shot, fine-tune/Δ table (with the baseline alone), learning curve, parity of the best model, curves."""
    cols = [("method", "method"), ("n", "N train"), *E_COLS, ("force_rmse_mev_per_A", "F RMSE (meV/Å)"),
            ("barrier_ref_ev", BARRIER_MEAN.format("barrier DFT")),
            ("barrier_pred_ev", BARRIER_MEAN.format("barrier model")),
            ("barrier_err_ev", BARRIER_MEAN.format("|Δ barrier|"))]
    base = ft.get("baseline")
    zero = list(metrics["zero_shot"])
    if base:
        zero.append({"head": f"{base['method']} (no model)", "label": base.get("label", ""),
                     "frames": base.get("n_frames"),
                     "e_rmse": base["energy_rmse_offset_removed_mev_per_atom"], "f_rmse": base["force_rmse_mev_per_A"]})
    out = ["<h2>3. Zero-shot, fine-tuning and Δ-ML on the held-out reaction</h2>",
           "<p class='muted'>Zero-shot: each pre-trained head, energy bias refit on the downstream train split only "
           "(Eq. 6)"
           + ("; the baseline alone: its stored labels, energy offsets removed" if base else "") + ".</p>",
           table(zero, [("head", "head"), ("label", "label"), ("frames", "frames"),
                        ("e_rmse", "E RMSE (meV/atom)"), ("f_rmse", "F RMSE (meV/Å)")]),
           table(_rows(ft["rows"], base), cols)]
    rows = _rows(ft["rows"])
    key, unit = "force_rmse_mev_per_A", "F RMSE (meV/Å)"
    if len({r["n"] for r in rows}) > 1:
        title = "learning curve: force error on the held-out reaction"
        out.append(figure(plots.curve_lines(rows, "n", key, "method", title, unit, baseline=base)))
    else:
        fig = plots.grouped_bars(rows, "method", key, "n", "force error on the held-out reaction", unit)
        plots.baseline_line(fig, (base or {}).get(key), str((base or {}).get("method", "")))
        out.append(figure(fig))
    best = ft["best"]
    p = best["parity"]
    title = f"best ({best['method']}, N={best['n']}): energy per atom"
    bp, name = (base or {}).get("parity"), str((base or {}).get("method", "baseline"))
    same = bool(bp) and len(bp["f_ref"]) == len(p["f_ref"])  # the baseline alone on the same points
    e_base = (f"{name}, offsets removed", bp["e_ref"], bp["e_pred"]) if same else None
    e_fig = figure(plots.parity(p["e_ref"], p["e_pred"], title, "eV/atom", baseline=e_base))
    f_fig = figure(plots.parity(p["f_ref"], p["f_pred"], "force components", "eV/Å",
                                baseline=(name, bp["f_ref"], bp["f_pred"]) if same else None))
    out.append(f"<div class='grid'><div>{e_fig}</div><div>{f_fig}</div></div>")
    hist = ft.get("histories", {})
    if hist:
        merged = [{**e, "train_rmse": _retag(e.get("train_rmse"), tag), "validation": _retag(e.get("validation"), tag)}
                  for tag, h in hist.items() for e in h]
        out.append(figure(plots.loss_curves(merged, "fine-tuning runs: force RMSE (train lines, validation dots)")))
    return "\n".join(out)


def _retag(per_task: Mapping[str, Any] | None, tag: str) -> dict[str, Any]:
    """A one-task entry of a training history under the run's tag (the last task's, if there are several)."""
    values = list((per_task or {}).values())
    return {tag: values[-1]} if values else {}


def section_distill(rounds: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]) -> str:
    """Per-round candidate fractions, student vs teacher (and the baseline alone) errors and speed."""
    import plotly.graph_objects as go

    out = ["<h2>4. Distillation into the student</h2>"]
    if rounds:
        fig = go.Figure()
        for key in ("accurate", "selected", "failed"):
            fig.add_bar(x=[r["round"] for r in rounds], y=[r.get(key, 0) for r in rounds], name=key)
        fig.update_layout(barmode="stack", title="candidates per round (fractions)", xaxis_title="round",
                          template="plotly_white", height=320)
        out.append(figure(fig))
    rows = _rows(metrics["student_vs_teacher"])
    for r in rows:
        if str(r.get("model", "")).endswith(" alone"):
            r["energy_rmse_mev_per_atom"] = float("nan")
    out.append(table(rows, [("model", "model"), *E_COLS, ("force_rmse_mev_per_A", "F RMSE (meV/Å)"),
                            ("barrier_err_ev", BARRIER_MEAN.format("|Δ barrier|"))]))
    there = metrics.get("student_vs_teacher_md_reaction") or {}
    if there.get("rows"):
        out.append(f"<p>Where the student runs: {html.escape(there['reaction'])}'s {there['frames']} frames that no "
                   "model trained on (the validation split of the downstream set):</p>")
        parts = [(f"force_rmse_{tag}_mev_per_A", f"F RMSE, {label} ({there[f'frames_{tag}']})")
                 for tag, label in (("first_selection", "first selection"), ("extra_rounds", "extra rounds (hotter)"))
                 if f"frames_{tag}" in there]
        out.append(table(_rows(there["rows"]), [("model", "model"), ("force_rmse_mev_per_A", "F RMSE (meV/Å)"), *parts,
                                                ("barrier_err_ev", "|Δ barrier| (eV)")]))
    speed = metrics["speed"]
    out.append("<p class='muted'>MD force-call cost of the networks (µs/atom/step, best of repeated calls, warm "
               "neighbor cache); a Δ teacher also pays its GFN2-xTB baseline at run time, the student does not:</p>"
               + table(speed["rows"], [("system", "system"), ("atoms", "atoms"), ("teacher", "teacher"),
                                       ("student", "student")]))
    if speed.get("speedup"):
        out.append(f"<p>Student speed-up: <b>{speed['speedup']:.1f}×</b>.</p>")
    return "\n".join(out)


def section_md(reactive: Mapping[str, Any], trajectory: Path | None) -> str:
    """Outcome fractions, bond events, energy/temperature traces and the animated 3D path."""
    from ase.io import read

    from lam_lab.md.analysis import analyze_bonds

    f = reactive["fractions"]
    out = ["<h2>5. Reactive MD from the transition state (student; its teacher and GFN2-xTB on the same starts)</h2>",
           f"<p>{html.escape(reactive['name'])}: {len(reactive['outcomes'])} trajectories from the TS "
           f"({html.escape(reactive['ts_method'])}); student: "
           f"ends reactant {f['reactant']:.0%}, product {f['product']:.0%}, other {f['other']:.0%}; "
           f"reactive (R↔P) {reactive['reactive_fraction']:.0%}.</p>"]
    for key, name in (("teacher", "Teacher"), ("xtb", "GFN2-xTB alone")):
        if reactive.get(key):
            t = reactive[key]
            tf = t["fractions"]
            out.append(f"<p>{name}: ends reactant {tf['reactant']:.0%}, product {tf['product']:.0%}"
                       f", other {tf['other']:.0%}; reactive (R↔P) {t['reactive_fraction']:.0%}.</p>")
    if reactive.get("teacher"):
        by = {"gfn2-xtb": "GFN2-xTB run"}.get(reactive.get("shown_by", "student"), reactive.get("shown_by", "student"))
        out.append(f"<p>The trajectory shown below is the {html.escape(by)}'s "
                   "(the student's when one of its trajectories reacts).</p>")
    out.append(table(reactive["outcomes"], [("index", "trajectory"), ("backward", "−p end"), ("forward", "+p end"),
                                            ("kind", "kind"), ("n_frames", "frames"), ("failure", "stopped by")]))
    if trajectory is None or not Path(trajectory).exists():
        return "\n".join(out)
    frames = read(str(trajectory), ":")
    times = np.array([a.info.get("time_fs", k) for k, a in enumerate(frames)], float)
    ana = analyze_bonds(frames, times=times)
    events = [e.to_dict() for e in ana.events]
    out.append("<p class='muted'>Bond events of the trajectory shown:</p>"
               + table(events, [("time", "time (fs)"), ("kind", "event"), ("pair", "pair"), ("i", "i"), ("j", "j"),
                                ("distance", "distance (Å)")]))
    get = lambda k: [a.info.get(k, np.nan) for a in frames]  # noqa: E731
    out.append(figure(plots.md_traces(times, get("epot"), get("etot"), get("temperature"), events,
                                      "energy and temperature")))
    positions = np.array([a.positions for a in frames])
    out.append(figure(plots.trajectory_3d(frames[0].numbers, positions, ana.bonds, times,
                                          "the reactive path in 3D (bonds per frame)")))
    return "\n".join(out)


def write_report(out: Path, records: Mapping[str, Any], scale: str, device: str, total_s: float) -> Path:
    """Build ``out/report.html`` from the stage records and their files."""
    from plotly.offline import get_plotlyjs

    from lam_lab import __version__
    from lam_lab.atomic import atomic_write_text

    stage_rows = [{"stage": n, "seconds": r.seconds, "skipped": "cached" if r.skipped else "ran",
                   "summary": ", ".join(f"{k} {_fmt(v)}" for k, v in r.summary.items())} for n, r in records.items()]
    note = ("" if scale == "default" else
            f"<p class='note'>These are <b>{scale}</b> settings, sized for a 2-core CPU: few frames, short training, "
            "few trajectories. The numbers show that every stage works, not what the methods can reach; run "
            "<code>lam-lab pipeline</code> without <code>--quick</code> on a GPU for the full settings.</p>")
    metrics = _read(out, records, "evaluate", "metrics")
    parts = [f"<h1>lam_lab pipeline report</h1><p class='muted'>lam_lab {__version__} · settings: {scale} · device: "
             f"{html.escape(device)} · total {total_s / 60:.1f} min</p>", note,
             table(stage_rows, [("stage", "stage"), ("skipped", "this run"), ("seconds", "time (s)"),
                                ("summary", "summary")])]
    summary = _read(out, records, "data", "summary")
    if summary:
        parts.append(section_data(summary))
    parts.append(section_pretrain(_read(out, records, "pretrain", "card"), _read(out, records, "pretrain", "history")))
    ft = _read(out, records, "finetune", "results")
    if metrics and ft:
        parts.append(section_finetune(metrics, ft))
        parts.append(section_distill(_read(out, records, "distill", "rounds") or [], metrics))
    reactive = _read(out, records, "md", "results")
    if reactive:
        parts.append(section_md(reactive, _read(out, records, "md", "trajectory")))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>lam_lab report</title><style>{CSS}</style>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>{''.join(parts)}</body></html>")
    return atomic_write_text(out / "report.html", page)
