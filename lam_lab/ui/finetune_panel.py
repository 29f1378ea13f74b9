"""Fine-tune · Δ panel: a pre-trained branch (or none) on few expensive labels; live curves, parity, learning curve."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import ipywidgets as w
import numpy as np

from lam_lab.data import Dataset
from lam_lab.data.errors import DataError
from lam_lab.data.selection import holdout_split
from lam_lab.ui import plots
from lam_lab.ui._baseline import BASELINE_NAME, add_baseline_points, baseline_alone, comparison_html
from lam_lab.ui._figures import empty_figure, figure_output, figure_row, fmt
from lam_lab.ui._jobs import FORM_ERRORS, BackgroundJob, JobContext, JobPanel, JobStopped, plain_error
from lam_lab.ui._live import LiveCurves, message_html, metrics_html, step_words
from lam_lab.ui._sources import ModelPicker, parse_floats
from lam_lab.ui.data_panel import builtin_names, load_builtin, show_figure
from lam_lab.ui.train_panel import TINY, cpu_threads, has_gpu

MODES = {"fine-tune": "finetune", "Δ on GFN2-xTB": "delta", "AtomFT correction": "atomft", "from scratch": "scratch"}
MAX_TEST = 48  # test frames scored for parity (and validated during training)


def test_split(ds: Dataset, seed: int = 0) -> tuple[Dataset, Dataset]:
    """(pool, test) as the panel uses them: :func:`lam_lab.data.selection.holdout_split`, ≤ MAX_TEST test frames."""
    return holdout_split(ds, seed=seed, max_test=MAX_TEST)


def parity_data(model: Any, head: str, test: Dataset, label: str, baseline: str | None) -> dict[str, np.ndarray]:
    """Reference vs model E/N (eV/atom) and force components (eV/Å) on ``test``; a Δ model gets its baseline added."""
    from lam_lab.evaluation import parity, predict

    return parity(predict(model, test, head, baseline=baseline), test, label, max_forces=None)


def two_line_title(fig: Any) -> Any:
    """A parity plot's "what — RMSE …, MAE …" title on two lines: in half a panel one line was cut off."""
    text = fig.layout.title.text or ""
    fig.update_layout(title=dict(text=text.replace(" — ", "<br><sub>", 1) + ("</sub>" if " — " in text else "")),
                      margin=dict(t=70))
    return fig


def titled_curve(fig: Any) -> Any:
    """A learning-curve figure fitted to the panel: full width, each y axis titled with its subplot's quantity."""
    fig.update_layout(width=None, height=380)
    short = {"energy RMSE, offsets removed (meV/atom)": "E RMSE (meV/atom)"}
    titles = [a for a in fig.layout.annotations or () if a.yref == "paper"]  # not the baseline lines' labels
    for k, ann in enumerate(titles, start=1):
        fig.update_yaxes(title_text=short.get(ann.text, ann.text), row=1, col=k)
    return fig


def method_name(mode: str, pretrained: bool) -> str:
    """The learning-curve name of a run: scratch, finetune, delta-scratch, delta-finetune, atomft."""
    if mode == "delta":
        return "delta-finetune" if pretrained else "delta-scratch"
    return mode


class FinetunePanel(JobPanel):
    """Fine-tune, Δ-learn (on GFN2-xTB) or AtomFT-correct a pre-trained model — or train from scratch —
    on N frames of a downstream set; then parity plots on the test split and a learning-curve comparison.

    Buttons call :meth:`start`, :meth:`stop`, :meth:`learning_curve`; :meth:`wait` blocks. Runs go
    through :func:`lam_lab.finetune`; each finished run adds a point to ``panel.rows`` (the comparison).
    """

    run_prefix = "finetune"

    def __init__(self, pretrained: Any = None, dataset: Dataset | None = None, out_root: str | Path = "lam_lab_runs",
                 frames: int = 50, steps: int | None = None, **kwargs: Any):
        super().__init__(out_root=out_root, start_label="Start", **kwargs)
        self.rows: list[Any] = []  # CurveRow per finished run (and per learning-curve point)
        self.figures: dict[str, Any] = {}
        self.baseline: Any = None  # GFN2-xTB alone on the last run's test frames (BaselineAlone), when it has labels
        self.scores: Any = None  # the last run's model on its test frames (lam_lab.evaluation.Scores)
        self._dataset = dataset
        self._offered: dict[str, Dataset] = {}  # data sets made in other tabs (e.g. DFT-labelled uncertain frames)
        self.pretrained = ModelPicker("pre-trained", auto_head=True)
        self.pretrained.head.description = "branch"
        if pretrained is not None:
            self.pretrained.add(pretrained, "given model")
        names = builtin_names()
        self.downstream = w.Dropdown(options=(["given data set"] if dataset is not None else []) + names,
                                     description="downstream", layout=w.Layout(width="300px"),
                                     style={"description_width": "initial"})
        if dataset is None and "rxn-dft" in names:
            self.downstream.value = "rxn-dft"
        self.path = w.Text(placeholder="…or a file/folder of your own", layout=w.Layout(width="260px"))
        self.mode = w.ToggleButtons(options=list(MODES), value="fine-tune", style={"button_width": "150px"})
        self.frames = w.IntText(value=frames, description="N frames", layout=w.Layout(width="170px"))
        self.steps = w.IntText(value=steps or (2000 if has_gpu() else 200), description="steps",
                               layout=w.Layout(width="170px"))
        self.lc_job = BackgroundJob(lambda ctx, *a: self._guarded(self._lc_job, ctx, *a), start_label="Learning curve",
                                    on_start=self.learning_curve)
        self.lc_sizes = w.Text(value="10, 25, 50", description="sizes N", layout=w.Layout(width="220px"))
        self.curves = LiveCurves("fine-tuning (solid: train, dashed: test split)", height=300)
        self.metrics = w.HTML("")
        self.e_out, self.f_out, self.lc_out = figure_output(), figure_output(), figure_output()
        show_figure(self.e_out, empty_figure("energy per atom (test split)", "reference (eV/atom)", "model (eV/atom)",
                                             "parity plot after a run"))
        show_figure(self.f_out, empty_figure("force components (test split)", "reference (eV/Å)", "model (eV/Å)",
                                             "parity plot after a run"))
        show_figure(self.lc_out, empty_figure("runs in this panel: force error vs N", "training frames N",
                                              "force RMSE (meV/Å)", "each finished run adds a point", x_type="log"))
        self.children = [
            w.HTML("<b>Fine-tune · Δ</b>: start from a pre-trained branch (DPA-2 paper: fine-tuning needs far fewer "
                   "labels), learn only the difference to GFN2-xTB (Δ-ML), or keep the base frozen and learn a bounded "
                   "correction α·Σtanh(Oᵢ) (AtomFT)."),
            self.pretrained, w.HBox([self.downstream, self.path]), self.mode, w.HBox([self.frames, self.steps]),
            self.job.widget, self.message, self.curves.figure, self.metrics, figure_row(self.e_out, self.f_out),
            w.HTML("<b>Learning curve</b>: every mode at each N, same frames and steps, errors on the test split"),
            w.HBox([self.lc_sizes, self.lc_job.widget]), figure_row(self.lc_out),
        ]
        self.add_class("lam-finetune-panel")

    # -- the form -----------------------------------------------------------------------------------
    def dataset(self) -> Dataset:
        """The downstream set chosen (path field first, then the dropdown)."""
        from lam_lab.data import read

        if self.path.value.strip():
            return read(Path(self.path.value.strip()).expanduser())
        if self.downstream.value == "given data set":
            return self._dataset
        if self.downstream.value in self._offered:
            return self._offered[self.downstream.value]
        if not self.downstream.value:
            raise DataError("choose a downstream data set or give a file", field="downstream")
        return load_builtin(self.downstream.value)

    def offer_dataset(self, dataset: Dataset, label: str, join: str | None = "rxn-dft") -> str:
        """List ``dataset`` as a downstream choice (not selected); joined to the built-in ``join`` set when that
        set has its labels on the same SCF surface, so new DFT frames add to the Δ set. Returns the option's name."""
        from lam_lab.distill.uncertainty import can_join

        name = label
        if join in builtin_names():
            base = load_builtin(join)
            if can_join(dataset, base):
                dataset = Dataset(list(base) + list(dataset), name=f"{join} + {dataset.name}",
                                  provenance=base.provenance)
                name = f"{join} + {label}"
        self._offered[name] = dataset
        current = self.downstream.value
        self.downstream.options = [o for o in self.downstream.options if o not in self._offered] + list(self._offered)
        self.downstream.value = current
        self.message.value = message_html(f"New data set: {name} ({len(dataset)} frames) — choose it under downstream")
        return name

    def _settings(self) -> dict[str, Any]:
        from lam_lab.train.config import TrainConfig

        mode = MODES[self.mode.value]
        model, branch = (None, None) if mode == "scratch" else self.pretrained.resolve()
        ds = self.dataset()
        pool, test = test_split(ds)
        label = ds.default_label()
        steps = max(1, int(self.steps.value))
        cfg = TrainConfig(log_every=max(1, min(10, steps // 40)), log_seconds=2.0,
                          threads=None if has_gpu() else cpu_threads())
        if model is not None:
            preset = model.config
        else:
            from lam_lab.models import PRESETS

            preset = PRESETS["dpa2-small"] if has_gpu() else dataclasses.replace(PRESETS["dpa2-small"], **TINY)
        return dict(dataset=pool, validation=test, pretrained=model, mode=mode, label=label, branch=branch,
                    frames=int(self.frames.value) or None, steps=steps, config=cfg, preset=preset)

    # -- actions (start / stop / wait: JobPanel, over both jobs) ----------------------------------------
    @property
    def jobs(self) -> tuple[BackgroundJob, ...]:
        """The fine-tuning run and the learning curve (one at a time)."""
        return (self.job, self.lc_job)

    def _prepare(self) -> tuple:
        """The form's settings for :func:`lam_lab.finetune`; placeholders reset."""
        import lam_lab.finetune  # noqa: F401 - the engine part this panel drives

        settings = self._settings()
        self.run_prefix = f"finetune-{settings['mode']}"
        self.metrics.value = ""
        n = settings["frames"] or "all"
        self.message.value = message_html(f"{self.mode.value} on {settings['label']} with N = {n}…")
        self.curves.reset(["default"], title=f"{self.mode.value}, N = {settings['frames'] or 'all'}")
        return (settings,)

    def _job(self, ctx: JobContext, s: dict[str, Any]) -> Any:
        from lam_lab.evaluation import parity, predict, score
        from lam_lab.experiments.learning_curve import CurveRow
        from lam_lab.finetune import finetune

        def on_event(event: Any) -> None:
            self.curves(event)
            if event.kind in ("step", "validation"):
                ctx.progress(event.progress, step_words(event, self.mode.value))

        res = finetune(s["dataset"], pretrained=s["pretrained"], mode=s["mode"], label=s["label"], branch=s["branch"],
                       frames=s["frames"], preset=s["preset"], validation=s["validation"], steps=s["steps"],
                       config=s["config"], out_dir=self.out_dir, callbacks=[on_event], stop_event=ctx.stop_event,
                       progress=False)
        self.curves.flush()
        self.result = res
        baseline = "gfn2-xtb" if s["mode"] == "delta" else None
        ctx.progress(1.0, f"scoring the model on the {len(s['validation'])} test frames…")
        test, label = s["validation"], s["label"]
        pred = predict(res.model, test, res.head, baseline=baseline)  # run once: scores and parity from it
        n = int(res.model.metadata.get("extra", {}).get("finetune", {}).get("frames") or len(s["dataset"]))
        self.scores, self.baseline = score(pred, test, label), baseline_alone(test, label)
        self.rows.append(CurveRow.from_scores(method_name(s["mode"], s["pretrained"] is not None), str(n), n,
                                              self.scores, res.train.wall_time_s, res.train.steps, res.branch))
        self._parity_figures(parity(pred, test, label, max_forces=None))
        self._show_comparison()
        if res.train.stopped:
            raise JobStopped(res)
        return res

    def _parity_figures(self, par: dict[str, np.ndarray]) -> None:
        """Energy and force parity of the model on the test split, GFN2-xTB alone as a second trace when known."""
        e_fig = plots.parity(par["e_ref"], par["e_pred"], "energy per atom (test split)", "eV/atom")
        f_fig = plots.parity(par["f_ref"], par["f_pred"], "force components (test split)", "eV/Å")
        if self.baseline is not None:
            b = self.baseline.parity
            add_baseline_points(e_fig, b["e_ref"], b["e_pred"], "eV/atom", f"{BASELINE_NAME} (offsets removed)")
            add_baseline_points(f_fig, b["f_ref"], b["f_pred"], "eV/Å")
        self.figures["parity_e"], self.figures["parity_f"] = two_line_title(e_fig), two_line_title(f_fig)

    def _finished(self, res: Any) -> None:
        show_figure(self.e_out, self.figures["parity_e"])
        show_figure(self.f_out, self.figures["parity_f"])
        branch = res.branch or "a fresh head"
        zs = ", ".join(f"{h} {fmt(v, '.0f')}" for h, v in res.zero_shot.items())
        self.message.value = message_html(f"done: {res.mode} from {branch}"
                                          + (f" (zero-shot F RMSE meV/Å: {zs})" if zs else "")
                                          + (f"; saved {res.path}" if res.path else ""))
        caption = f"test split after {res.train.steps} steps"
        if self.baseline is not None and self.scores is not None:
            rows = [(f"{res.mode} model", self.scores), (BASELINE_NAME, self.baseline.scores)]
            self.metrics.value = comparison_html(rows, caption, self.baseline.label)
        else:
            self.metrics.value = metrics_html(res.metrics, caption)
        for fn in self.on_model:
            fn(res.model, f"{res.mode} ({len(self.rows)})")

    # -- learning curve -----------------------------------------------------------------------------
    def learning_curve(self, sizes: Sequence[int] | None = None, methods: Sequence[str] | None = None,
                       steps: int | None = None) -> bool:
        """Train every mode (``methods``: learning-curve names) at each N in the background and plot errors vs N."""
        if self.busy:
            return False
        try:
            from lam_lab.experiments.learning_curve import METHODS

            if sizes is None:
                sizes = [int(v) for v in parse_floats(self.lc_sizes.value, "sizes N") if v == int(v)]
            s = self._settings()
        except FORM_ERRORS as exc:
            return self._fail(plain_error(exc))
        methods = list(methods or (METHODS if s["pretrained"] is not None else ["scratch", "delta-scratch"]))
        return self._launch(self.lc_job, s, list(sizes), methods, steps or s["steps"], new_folder=False)

    def _lc_job(self, ctx: JobContext, s: dict[str, Any], sizes: list[int], methods: list[str], steps: int) -> Any:
        from lam_lab.experiments.learning_curve import learning_curve

        ds = self.dataset()  # the learning curve makes its own split (info['split'] train/test)
        total, done = len(sizes) * len(methods), []

        def on_row(row: Any) -> None:
            done.append(row)
            self.rows.append(row)
            self._show_comparison()
            ctx.progress(len(done) / total, f"{len(done)} of {total} runs done; last: {row.method} on {row.n} frames, "
                                            f"force error {fmt(row.f_rmse, '.0f', 'meV/Å')}")
            ctx.check()

        test = ds.where(split="test")
        self.baseline = baseline_alone(test, s["label"]) if len(test) else None
        curve = learning_curve(ds, pretrained=s["pretrained"], sizes=sizes, methods=methods, label=s["label"],
                               steps=steps, config=s["config"], preset=s["preset"], on_row=on_row)
        curve.baseline = self.baseline.curve_row() if self.baseline is not None else None
        fig = titled_curve(curve.figure())
        self.figures["learning_curve"] = fig
        show_figure(self.lc_out, fig)
        return curve

    def _show_comparison(self) -> None:
        from lam_lab.experiments.learning_curve import LearningCurve

        base = self.baseline.curve_row() if self.baseline is not None else None
        fig = titled_curve(LearningCurve(list(self.rows), {"dataset": "runs in this panel", "test": "test split"},
                                         base).figure())
        self.figures["comparison"] = fig
        show_figure(self.lc_out, fig)
