"""Data panel: open a built-in set or a file, see its summary, element coverage, label histograms and frames."""

from __future__ import annotations

import html
import importlib
from pathlib import Path
from typing import Any, Sequence

import ipywidgets as w
import plotly.graph_objects as go

from lam_lab.data import DataError, Dataset, Summary, read
from lam_lab.ui import plots
from lam_lab.ui._figures import figure_output, figure_row, fmt, show_figure  # noqa: F401 (show_figure: panels import it here)
from lam_lab.ui._nglview import import_nglview


def builtin_names() -> list[str]:
    """Names from ``lam_lab.datasets.available()``, or [] while that module is absent."""
    try:
        mod = importlib.import_module("lam_lab.datasets")
    except ImportError:
        return []
    available = getattr(mod, "available", None)
    if available is None:
        return []
    return [item if isinstance(item, str) else str(getattr(item, "name", item)) for item in available()]


def load_builtin(name: str) -> Dataset:
    """A built-in data set by name (or a file/folder by path): :func:`lam_lab.data.io.load_source`."""
    from lam_lab.data.io import load_source

    return load_source(name)


def summary_html(s: Summary) -> str:
    """A :class:`Summary` as an HTML table (energies eV/atom, forces eV/Å)."""
    e = html.escape
    rows = [
        ("frames", f"{s.n_frames}"),
        ("atoms / frame", f"{s.atoms_min}–{s.atoms_max} (mean {s.atoms_mean:.1f})"),
        ("periodic frames", f"{s.periodic_frames}"),
        ("elements", ", ".join(f"{el} {n}" for el, n in s.elements.items())),
    ]
    p = s.provenance
    for name, lp in p.labels.items():
        sw = " ".join(x for x in (lp.software, lp.version) if x)
        rows.append((f"label {name}", f"{lp.method}{'/' + lp.basis if lp.basis else ''}{f' ({sw})' if sw else ''}"))
    rows += [(k, str(v)) for k, v in (("builder", p.builder), ("seed", p.seed), ("source", short_source(p.source)))
             if v is not None]
    th = "<th style='text-align:left;padding-right:12px'>"
    head = "".join(f"<tr>{th}{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    stats = ""
    if s.label_sets:
        cols = ["frames", "E/atom mean", "E/atom std", "|F| mean", "|F| max", "F rms"]
        keys = ["frames", "e_per_atom_mean", "e_per_atom_std", "f_norm_mean", "f_norm_max", "f_rms"]
        body = "".join(
            f"<tr><td style='padding:1px 5px 1px 0;white-space:nowrap'>{e(name)}</td>"
            + "".join(f"<td style='text-align:right;padding:1px 5px'>{_fmt(st[k], k)}</td>" for k in keys) + "</tr>"
            for name, st in s.label_sets.items()
        )
        stats = ("<table style='margin-top:6px'><tr><th style='text-align:left;white-space:nowrap'>label set</th>"
                 + "".join(f"<th style='text-align:right;padding:1px 5px;white-space:nowrap'>{c}</th>" for c in cols)
                 + f"</tr>{body}</table><div style='color:#666'>energies eV/atom, forces eV/Å</div>")
    return f"<div><b>{e(s.name)}</b><table>{head}</table>{stats}</div>"


def short_source(source: str | None) -> str | None:
    """A file inside the installed package as "lam_lab/…" (where the package lives says nothing to a reader)."""
    if not source:
        return source
    root = Path(__file__).resolve().parents[1]
    try:
        return str(Path("lam_lab") / Path(source).resolve().relative_to(root))
    except (ValueError, OSError):
        return source


def _fmt(value: float, key: str) -> str:
    return f"{int(value)}" if key == "frames" else fmt(value, ".4g")


def error_html(message: str) -> str:
    """A red box holding a data error's text (file, frame and field included)."""
    return ("<div style='border:1px solid #d62728;background:#fdecea;color:#8a1c1c;padding:6px;border-radius:4px'>"
            "<b>Could not load the data</b>"
            f"<pre style='white-space:pre-wrap;margin:4px 0 0'>{html.escape(message)}</pre></div>")


class DataPanel(w.VBox):
    """Browse data sets: built-in or from a file/folder, summary, coverage, histograms, frames, compare two.

    Every button calls a method (``load``, ``load_path``, ``compare``, ``show_frame``), so the panel
    works the same from Python; a bad file shows its :class:`DataError` text in the panel.
    """

    def __init__(self, dataset: Dataset | None = None, builtins: Sequence[str] | None = None, **kwargs: Any):
        names = list(builtin_names() if builtins is None else builtins)
        self.dataset: Dataset | None = None
        self.other: Dataset | None = None
        self.error: str = ""
        self.figures: dict[str, go.Figure] = {}
        self.builtin = w.Dropdown(options=names, description="Built-in", disabled=not names,
                                  layout=w.Layout(width="260px"))
        self.path = w.Text(placeholder="file or folder: extxyz, ASE db, DeePMD, HDF5, lam-h5",
                           layout=w.Layout(width="380px"))
        load_b = w.Button(description="Load", disabled=not names, tooltip="load the chosen built-in set")
        open_b = w.Button(description="Open", tooltip="read the file or folder")
        load_b.on_click(lambda _: self._guard(self.load, self.builtin.value))
        open_b.on_click(lambda _: self._guard(self.load_path, self.path.value))
        self.compare_source = w.Text(placeholder="compare with: built-in name or path", layout=w.Layout(width="380px"))
        cmp_b = w.Button(description="Compare")
        clear_b = w.Button(description="Clear compare")
        cmp_b.on_click(lambda _: self._guard(self.compare, self.compare_source.value))
        clear_b.on_click(lambda _: self.clear_compare())
        self.message = w.HTML("")
        self.summary = w.HBox([], layout=w.Layout(flex_flow="row wrap"))  # two sets: side by side when they fit
        self.coverage_out, self.compare_out = figure_output(), figure_output()
        self.energy_out, self.force_out = figure_output(), figure_output()
        for out in (self.coverage_out, self.compare_out, self.energy_out, self.force_out):
            out.layout.display = "none"  # until a set is loaded: no empty boxes
        # numbered from 1 like every frame number a user reads; show_frame() takes the 0-based index
        self.frame_slider = w.IntSlider(1, min=1, max=1, description="Frame", continuous_update=False,
                                        layout=w.Layout(width="420px"))
        self.frame_slider.observe(lambda ch: self.show_frame(ch["new"] - 1), names="value")
        self.frame_info = w.HTML("")
        self._view: Any = None
        self.view_box = w.Box([], layout=w.Layout(width="100%"))
        hint = "" if names else " (no built-in sets in this install yet: open a file)"
        super().__init__([
            w.HTML(f"<b>Data</b>{html.escape(hint)}"),
            w.HBox([self.builtin, load_b, self.path, open_b]),
            w.HBox([self.compare_source, cmp_b, clear_b]),
            self.message, self.summary, figure_row(self.coverage_out, self.compare_out),
            figure_row(self.energy_out, self.force_out),
            w.HTML("<b>Structures</b>"), w.HBox([self.frame_slider, self.frame_info]), self.view_box,
        ], **kwargs)
        self.add_class("lam-data-panel")
        if dataset is not None:
            self.set_dataset(dataset)

    # -- actions -------------------------------------------------------------------------------
    def load(self, name: str) -> Dataset | None:
        """Open the built-in set ``name``; returns it (None and an error message when it fails)."""
        return self._guard(lambda: self.set_dataset(load_builtin(name)))

    def load_path(self, path: str | Path, format: str | None = None) -> Dataset | None:
        """Read a file or folder (any format ``lam_lab.data.read`` knows) and show it."""
        if not str(path).strip():
            return self._fail("give a file or folder path")
        return self._guard(lambda: self.set_dataset(read(Path(str(path).strip()).expanduser(), format=format)))

    def set_dataset(self, ds: Dataset) -> Dataset:
        """Show ``ds`` (summary, plots, structure browser)."""
        self.dataset = ds
        self.frame_slider.max = max(1, len(ds))
        self.refresh()
        if self.frame_slider.value != 1:
            self.frame_slider.value = 1  # the slider's observer shows the first frame
        else:
            self.show_frame(0)
        return ds

    def compare(self, source: str | Path | Dataset) -> Dataset | None:
        """Overlay a second set (a Dataset, a built-in name or a path) on the plots and tables."""
        def _load() -> Dataset:
            from lam_lab.data.io import load_source

            name = source if isinstance(source, Dataset) else str(Path(str(source).strip()).expanduser())
            other = load_source(name)
            self.other = other
            self.refresh()
            return other
        if self.dataset is None:
            return self._fail("load a data set before comparing")
        return self._guard(_load)

    def clear_compare(self) -> None:
        """Drop the comparison set."""
        self.other = None
        self.refresh()

    def refresh(self) -> None:
        """Redraw tables and plots from the current set(s)."""
        self.error, self.message.value = "", ""
        sets = self.datasets()
        if not sets:
            return
        summaries = {name: ds.summary() for name, ds in sets.items()}
        self.summary.children = [w.HTML(summary_html(s), layout=w.Layout(margin="0 24px 8px 0", flex="0 0 auto"))
                                 for s in summaries.values()]
        counts = {name: s.elements for name, s in summaries.items()}
        first = next(iter(sets))
        self.figures = {
            "coverage": plots.coverage_table(counts[first], f"element coverage: {first}"),
            "energy": plots.label_histograms(sets, "energy"),
            "force": plots.label_histograms(sets, "force"),
        }
        if len(sets) > 1:
            self.figures["compare"] = plots.coverage_bars(counts)
        else:
            show_figure(self.compare_out, None)
        outputs = {"coverage": self.coverage_out, "compare": self.compare_out, "energy": self.energy_out,
                   "force": self.force_out}
        for key, fig in self.figures.items():
            show_figure(outputs[key], fig)

    def datasets(self) -> dict[str, Dataset]:
        """The shown set and the comparison set by display name (names made unique)."""
        out: dict[str, Dataset] = {}
        for ds in (self.dataset, self.other):
            if ds is not None:
                name = ds.name if ds.name not in out else f"{ds.name} (2)"
                out[name] = ds
        return out

    def show_frame(self, index: int) -> None:
        """Show frame ``index`` (0-based; the slider reads index + 1) of the current set in 3D, with its labels."""
        if self.dataset is None or not len(self.dataset):
            return
        index = int(min(max(0, index), len(self.dataset) - 1))
        if self.frame_slider.value != index + 1:
            self.frame_slider.value = index + 1  # observer calls back here once
            return
        frame = self.dataset[index]
        labels = ", ".join(f"{k}: E {v.energy:.4f} eV" for k, v in frame.labels.items() if v.energy is not None)
        self.frame_info.value = (f"{html.escape(frame.formula)} · {frame.n_atoms} atoms"
                                 f"{' · periodic' if frame.is_periodic else ''}"
                                 f"{' · ' + html.escape(labels) if labels else ''}")
        self._show_structure(frame.to_atoms())

    def _show_structure(self, atoms: Any) -> None:
        nv = import_nglview()
        if self._view is None:
            self._view = nv.show_ase(atoms)
            self._view.layout = w.Layout(width="100%", height="360px")
            self.view_box.children = [self._view]
        else:
            for cid in list(self._view._ngl_component_ids):
                self._view.remove_component(cid)
            self._view.add_structure(nv.ASEStructure(atoms))
        if atoms.pbc.any():
            self._view.add_unitcell()

    # -- errors ----------------------------------------------------------------------------------
    def _guard(self, fn: Any, *args: Any) -> Any:
        """Run an action; a data problem becomes the panel's message instead of a traceback."""
        try:
            return fn(*args)
        except (DataError, FileNotFoundError, KeyError, OSError) as exc:
            return self._fail(str(exc) if not isinstance(exc, KeyError) else f"unknown data set {exc}")

    def _fail(self, message: str) -> None:
        self.error = message
        self.message.value = error_html(message)
        return None
