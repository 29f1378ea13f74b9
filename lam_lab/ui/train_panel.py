"""Train panel: multi-task pre-training (Eq. 44) with live loss/RMSE curves, Start / Stop / Resume, ETA and metrics."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any, Mapping

import ipywidgets as w

from lam_lab.ui._jobs import JobContext, JobPanel, JobStopped
from lam_lab.ui._live import LiveCurves, device_label, fmt_duration, message_html, metrics_html, step_words

BUILTIN_TASKS = ("rxn-xtb", "metals-emt", "water-ff", "rxn-dft")
TYPE_MAP = ("H", "C", "N", "O", "Al", "Ni", "Cu", "Pd", "Ag", "Pt", "Au")  # every element of the built-in sets
# a few-thousand-parameter DPA-2 that learns something in a minute on one CPU core (demos, tests)
TINY = {"repformer_layers": 1, "g1_dim": 32, "g2_dim": 8, "repinit_neuron": (8, 16), "fitting_neuron": (32, 32)}
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "dpa2-tiny": ("dpa2-small", TINY),
    "dpa2-small": ("dpa2-small", {}),
    "dpa2-medium": ("dpa2-medium", {}),
    "dpa2-paper": ("dpa2-paper", {}),
}


MIN_VALIDATION_FRAMES = 3


def validation_fraction(n_frames: int | None, fraction: float) -> float | None:
    """The fraction of a task's ``n_frames`` set aside for validation: ``fraction``, raised so that at least
    MIN_VALIDATION_FRAMES frames validate (at most half); None when ``fraction`` is 0 or the frames are too
    few to keep 3 for validation and 3 for training. ``n_frames`` None (all of a set): ``fraction``."""
    if not fraction:
        return None
    if not n_frames:
        return float(fraction)
    if n_frames < 2 * MIN_VALIDATION_FRAMES:
        return None
    return min(0.5, max(float(fraction), (MIN_VALIDATION_FRAMES + 0.5) / n_frames))


def has_gpu() -> bool:
    """True when torch sees a CUDA device (the panels then default to larger settings)."""
    import torch

    return torch.cuda.is_available()


def cpu_threads() -> int:
    """Torch threads for a background job: all cores but one, which stays with the kernel and the browser."""
    return max(1, (os.cpu_count() or 2) - 1)


class TaskRow(w.HBox):
    """One training task: on/off, data source (built-in name or file), weight, frames used."""

    def __init__(self, name: str, source: str | None = None, enabled: bool = False, weight: float = 1.0,
                 frames: int | None = None):
        self.name = name
        self.enabled = w.Checkbox(value=enabled, description=name, indent=False, layout=w.Layout(width="130px"))
        self.source = w.Text(value=source or name, layout=w.Layout(width="220px"), tooltip="built-in name or file")
        self.weight = w.BoundedFloatText(value=weight, min=0.0, max=1e6, step=0.5, description="weight",
                                         layout=w.Layout(width="150px"))
        self.frames = w.IntText(value=frames or 0, description="frames", layout=w.Layout(width="160px"),
                                tooltip="use N frames (seeded subset); 0 = all")
        super().__init__([self.enabled, self.source, self.weight, self.frames])


class TrainPanel(JobPanel):
    """Pre-train a DPA-2 on one or several data sets, each task with its own head and weight (Eq. 44).

    Buttons call :meth:`start`, :meth:`stop`, :meth:`resume`; :meth:`wait` blocks (scripts, tests).
    Events of :func:`lam_lab.train` draw the curves (``panel.curves``), the progress bar and the ETA;
    the trained model is ``panel.model`` and ``on_model`` callbacks get it (the Lab hands it to MD).
    """

    run_prefix = "train"

    def __init__(self, tasks: Mapping[str, Any] | None = None, out_root: str | Path = "lam_lab_runs",
                 model: str | None = None, steps: int | None = None, frames: int | None = None, **kwargs: Any):
        super().__init__(out_root=out_root, start_label="Start", **kwargs)
        gpu = has_gpu()
        self.prepared: Any = None
        self.model: Any = None
        self.events: list[Any] = []
        self.data_note = ""  # frames trained on and validated on, per task
        self.model_choice = w.Dropdown(options=list(MODELS), value=model or ("dpa2-small" if gpu else "dpa2-tiny"),
                                       description="model", layout=w.Layout(width="230px"))
        self.steps = w.IntText(value=steps or (5000 if gpu else 300), description="steps",
                               layout=w.Layout(width="170px"))
        self.minutes = w.FloatText(value=0.0, description="minutes", layout=w.Layout(width="170px"),
                                   tooltip="time budget; 0 = none (steps decide)")
        self.lr = w.FloatText(value=2e-3, description="lr", layout=w.Layout(width="160px"))
        self.batch = w.IntText(value=1, description="batch", layout=w.Layout(width="150px"), tooltip="frames per step")
        self.val_fraction = w.BoundedFloatText(value=0.2, min=0.0, max=0.5, step=0.05, description="validation",
                                               layout=w.Layout(width="170px"),
                                               tooltip="fraction of each task's frames kept for validation "
                                                       "(at least 3 frames)")
        n = frames if frames is not None else (0 if gpu else 200)
        default_on = {"rxn-xtb", "metals-emt"}
        self.tasks: dict[str, TaskRow] = {name: TaskRow(name, enabled=name in default_on,
                                                        frames=n) for name in BUILTIN_TASKS}
        self.tasks["file"] = TaskRow("my-data", source="", frames=0)
        self.tasks["file"].source.placeholder = "a file or folder of your own"
        for name, spec in (tasks or {}).items():
            self.set_task(name, **(spec if isinstance(spec, Mapping) else {"source": spec}))
        self.resume_button = w.Button(description="Resume", icon="forward", disabled=True,
                                      tooltip="continue the stopped run from its last checkpoint")
        self.resume_button.on_click(lambda _: self.resume())
        self.device = w.HTML(f"<span style='color:#555'>device: {html.escape(device_label())}</span>")
        self.curves = LiveCurves("loss and RMSE (solid: train, dashed: validation)")
        self.metrics = w.HTML("")
        self.children = [
            w.HTML("<b>Train</b>: multi-task pre-training — one shared DPA-2 descriptor, one fitting head per task, "
                   "each step picks a task with probability ∝ its weight (DPA-2 paper, Eq. 44)."),
            w.HBox([self.model_choice, self.steps, self.minutes, self.lr, self.batch, self.val_fraction],
                   layout=w.Layout(flex_flow="row wrap")),
            w.VBox(list(self.tasks.values())),
            w.HBox([self.job.widget, self.resume_button]), self.device, self.message,
            self.curves.figure, self.metrics,
        ]
        self.add_class("lam-train-panel")

    # -- the form -----------------------------------------------------------------------------------
    def set_task(self, name: str, enabled: bool = True, source: str | None = None, weight: float | None = None,
                 frames: int | None = None) -> None:
        """Switch a task on/off and set its source (built-in name or path), weight and frames (0 = all)."""
        row = self.tasks.get(name)
        if row is None:
            row = self.tasks["file"]
            row.enabled.description, row.name = name, name
            source = source or name
        row.enabled.value = enabled
        if source is not None:
            row.source.value = str(source)
        if weight is not None:
            row.weight.value = float(weight)
        if frames is not None:
            row.frames.value = int(frames)

    def run_config(self) -> Any:
        """The form as a :class:`lam_lab.train.RunConfig` (raises ConfigError naming the bad field)."""
        from lam_lab.train.config import ConfigError, DataSpec, ModelSpec, RunConfig, TrainConfig

        data = {}
        for row in self.tasks.values():
            if not row.enabled.value:
                continue
            if not row.source.value.strip():
                raise ConfigError("give a built-in name or a file for this task", field=f"data.{row.name}.source")
            if row.weight.value <= 0:
                raise ConfigError(f"weight must be > 0, got {row.weight.value}", field=f"data.{row.name}.weight")
            frames = int(row.frames.value) or None
            data[row.name] = DataSpec(source=row.source.value.strip(), weight=float(row.weight.value), frames=frames,
                                      validation=validation_fraction(frames, float(self.val_fraction.value)))
        if not data:
            raise ConfigError("switch on at least one task", field="data")
        preset, overrides = MODELS[self.model_choice.value]
        steps = int(self.steps.value) or None
        minutes = float(self.minutes.value) or None
        log_every = max(1, min(10, (steps or 400) // 40))
        cfg = TrainConfig(steps=steps, minutes=minutes, lr=float(self.lr.value), batch_size=int(self.batch.value),
                          log_every=log_every, log_seconds=2.0, threads=None if has_gpu() else cpu_threads())
        cfg.check()
        # the built-in sets share one type map (the shipped model's); prepare_run would take only the
        # training frames' elements, and a validation frame with an element they lack would then fail
        builtin = all(spec.source in BUILTIN_TASKS for spec in data.values())
        spec = ModelSpec(preset=preset, overrides=dict(overrides), type_map=list(TYPE_MAP) if builtin else None)
        return RunConfig(data=data, model=spec, train=cfg)

    # -- actions (start / stop / wait: JobPanel; Stop writes a checkpoint first) ----------------------
    def _prepare(self) -> tuple:
        cfg = self.run_config()
        self.message.value, self.metrics.value = message_html(f"loading data, building {self.model_choice.value}…"), ""
        self.curves.reset(list(cfg.data), title=f"{self.model_choice.value} on {', '.join(cfg.data)}")
        self.events, self.result = [], None
        return cfg, False

    def resume(self) -> bool:
        """Continue the stopped run from its newest checkpoint (same model, data, folder and curves)."""
        if self.busy:
            return False
        if self.prepared is None or self.out_dir is None:
            return self._fail("nothing to resume: start a run first")
        return self._launch(self.job, self.prepared.config, True, new_folder=False)

    # -- the job (background thread) ----------------------------------------------------------------
    def _job(self, ctx: JobContext, cfg: Any, resume: bool) -> Any:
        from lam_lab.train.run import prepare_run
        from lam_lab.train.trainer import train

        self.resume_button.disabled = True
        if not resume:
            self.prepared = prepare_run(cfg)
            val = self.prepared.validation
            sizes = ", ".join(f"{k}: {len(v)} frames, validating on " + (f"{len(val[k])}" if k in val else
                              f"none (too few frames to keep {MIN_VALIDATION_FRAMES} aside)")
                              for k, v in self.prepared.datasets.items())
            self.data_note = f"training on {sizes}"
            self.message.value = message_html(f"{self.data_note}; checkpoints in {self.out_dir}")
        run = self.prepared

        def on_event(event: Any) -> None:
            self.events.append(event)
            self.curves(event)
            if event.kind == "start":
                self.device.value = f"<span style='color:#555'>device: {html.escape(event.device)}</span>"
            if event.kind in ("step", "validation"):
                ctx.progress(event.progress, step_words(event))

        res = train(run.model, run.datasets, weights=run.weights, config=cfg.train, out_dir=self.out_dir,
                    callbacks=[on_event], validation=run.validation or None, resume=resume,
                    stop_event=ctx.stop_event, labels=run.labels, heads=run.heads, progress=False)
        self.curves.flush()
        self.result, self.model = res, res.model
        self.resume_button.disabled = False
        if res.stopped:
            self.message.value = message_html(f"stopped at step {res.steps}; checkpoint {res.checkpoint} — "
                                              "Resume continues")
            self.metrics.value = metrics_html(res.metrics, f"metrics at step {res.steps}")
            raise JobStopped(res)
        return res

    def _finished(self, res: Any) -> None:
        self.metrics.value = metrics_html(res.metrics,
                                          f"final metrics after {res.steps} steps ({fmt_duration(res.wall_time_s)})")
        self.message.value = message_html(f"done ({self.data_note}): model saved to {res.final}")
        for fn in self.on_model:
            fn(res.model, f"trained here ({self.model_choice.value}, {res.steps} steps)")
