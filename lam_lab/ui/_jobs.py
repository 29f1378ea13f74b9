"""Background jobs for panels: one worker thread, a progress bar, a status line and a Stop button; and
:class:`JobPanel`, the base of the panels that run such a job (start / stop / wait / fail, run folders)."""

from __future__ import annotations

import threading
import traceback
from pathlib import Path
from typing import Any, Callable

import ipywidgets as w

from lam_lab.data.errors import DataError
from lam_lab.ui._figures import FitsFigures

# what reading a form or starting an engine call may raise on bad input: shown in the panel, not as a traceback
FORM_ERRORS = (DataError, ValueError, KeyError, TypeError, ImportError, OSError)


class JobStopped(Exception):
    """Raised by :meth:`JobContext.check` when Stop was pressed; ends the job cleanly.

    A job that stopped part-way with something worth keeping raises ``JobStopped(result)``; the
    result lands in :attr:`BackgroundJob.result` as after a normal end.
    """

    def __init__(self, result: Any = None):
        super().__init__("stopped")
        self.result = result


class JobContext:
    """Handed to a job function: report progress and look for a stop request at safe points."""

    def __init__(self, job: "BackgroundJob"):
        self._job = job

    @property
    def stop_requested(self) -> bool:
        """True once Stop was pressed (or :meth:`BackgroundJob.stop` called)."""
        return self._job._stop.is_set()

    @property
    def stop_event(self) -> threading.Event:
        """The job's stop flag, for engine calls that take ``stop_event=`` (trainer, distillation)."""
        return self._job._stop

    def check(self) -> None:
        """Raise :class:`JobStopped` when a stop was requested."""
        if self.stop_requested:
            raise JobStopped()

    def progress(self, fraction: float, message: str = "") -> None:
        """Show ``fraction`` (0..1) done and an optional status message."""
        self._job.progress.value = max(0.0, min(1.0, float(fraction)))
        if message:
            self._job.status.value = message


class BackgroundJob:
    """Runs ``fn(ctx, *args)`` in a daemon thread so the kernel stays free; one job at a time.

    ``widget`` holds [Start] [Stop] progress status. Clicking Start twice (or calling :meth:`start`
    while a job runs) starts nothing new: :meth:`start` returns False. ``on_done(result)`` runs in the
    worker thread after success; errors land in ``error`` and the status line, never in a traceback.
    ``on_start`` replaces what the Start button calls (default :meth:`start` with no arguments).
    """

    def __init__(self, fn: Callable[..., Any] | None = None, start_label: str = "Start",
                 on_done: Callable[[Any], None] | None = None, on_start: Callable[[], Any] | None = None):
        self.fn, self.on_done = fn, on_done
        self.result: Any = None
        self.error: str = ""
        self.state = "idle"  # idle | running | done | stopped | failed
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.start_button = w.Button(description=start_label, button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True)
        self.progress = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width="220px"))
        self.status = w.Label("")
        # a panel that reads its form before starting passes on_start (its own start method)
        self.start_button.on_click(lambda _: (on_start or self.start)())
        self.stop_button.on_click(lambda _: self.stop())
        self.widget = w.HBox([self.start_button, self.stop_button, self.progress, self.status])

    @property
    def stop_event(self) -> threading.Event:
        """Set while a stop is requested (cleared when the next job starts)."""
        return self._stop

    @property
    def running(self) -> bool:
        """True while the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, *args: Any, fn: Callable[..., Any] | None = None, **kwargs: Any) -> bool:
        """Start ``fn`` (or the job's own) with ``args``; False when a job is already running."""
        with self._lock:
            if self.running:
                return False
            target = fn or self.fn
            if target is None:
                raise ValueError("no job function: pass fn= here or to BackgroundJob()")
            self._stop.clear()
            self.result, self.error, self.state = None, "", "running"
            self.progress.value = 0.0
            self.status.value = "running…"
            self.start_button.disabled, self.stop_button.disabled = True, False
            self._thread = threading.Thread(target=self._run, args=(target, args, kwargs), daemon=True)
            self._thread.start()
            return True

    def stop(self) -> None:
        """Ask the job to stop at its next :meth:`JobContext.check`."""
        if self.running:
            self._stop.set()
            self.status.value = "stopping…"

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the job ends (for scripts and tests); returns its result."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.result

    def _run(self, target: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        try:
            result = target(JobContext(self), *args, **kwargs)
        except JobStopped as exc:
            self.result = exc.result
            self.state, self.status.value = "stopped", "stopped"
        except Exception as exc:  # noqa: BLE001 - a failing job reports in the panel, the kernel lives on
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            self.status.value = f"failed: {plain_error(exc)}"
            self._traceback = traceback.format_exc()
        else:
            self.result, self.state = result, "done"
            self.progress.value = 1.0
            self.status.value = "done"
            if self.on_done is not None:
                try:
                    self.on_done(result)
                except Exception as exc:  # noqa: BLE001
                    self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
                    self.status.value = f"failed: {plain_error(exc)}"
        finally:
            self.start_button.disabled, self.stop_button.disabled = False, True


class JobPanel(FitsFigures, w.VBox):
    """Base of the panels that run one background job (Train, Fine-tune · Δ, Distill, MD).

    It owns the :class:`BackgroundJob` (Start/Stop buttons, progress bar, plain-words status line), the
    ``message`` line, ``error``, ``result``, ``on_model`` callbacks and the run folder: every start gets a new
    unique folder ``out_root/<run_prefix>-<time>[-k]`` (:func:`lam_lab.train.rundir.auto_dir`, so two panels
    started in the same second never share one; the engine locks it while it writes), removed again when the
    run wrote nothing. A subclass fills ``self.children`` and implements :meth:`_prepare` (read the form, reset
    the plots; return the job's arguments), :meth:`_job` (the work, in the worker thread) and optionally
    :meth:`_finished` (after success). ``start``/``stop``/``wait`` are what the buttons do.
    """

    run_prefix: str | None = "run"  # folder name prefix under out_root; None: the job writes no files

    def __init__(self, out_root: str | Path = "lam_lab_runs", start_label: str = "Start", **kwargs: Any):
        self.out_root = Path(out_root)
        self.out_dir: Path | None = None
        self.result: Any = None
        self.error = ""
        self.on_model: list[Callable[[Any, str], None]] = []
        self.message = w.HTML("")
        self.job = BackgroundJob(self._work, start_label=start_label, on_done=self._finished, on_start=self.start)
        super().__init__(**kwargs)

    @property
    def jobs(self) -> tuple[BackgroundJob, ...]:
        """Every job of the panel (a subclass with a second one adds it): one runs at a time."""
        return (self.job,)

    @property
    def busy(self) -> bool:
        """True while any of the panel's jobs runs."""
        return any(job.running for job in self.jobs)

    def start(self) -> bool:
        """Start the job with the form's settings in the background; False when busy or the form is wrong."""
        if self.busy:
            return False
        try:
            args = self._prepare()
        except FORM_ERRORS as exc:
            return self._fail(plain_error(exc))
        return self._launch(self.job, *args)

    def stop(self) -> None:
        """Ask the running job to stop at its next safe point (what it made so far is kept)."""
        for job in self.jobs:
            job.stop()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the jobs end (scripts, tests); returns ``result`` (None when the run failed)."""
        for job in self.jobs:
            job.wait(timeout)
        return self.result

    def new_run_folder(self) -> Path:
        """A new, empty, unique run folder under ``out_root`` (made now, so no other run can take its name)."""
        from lam_lab.train.rundir import auto_dir

        return auto_dir(self.out_root, self.run_prefix or "run")

    # -- for subclasses -----------------------------------------------------------------------------
    def _prepare(self) -> tuple:
        """Read the form (raise DataError naming the field), reset the plots; the job's arguments."""
        return ()

    def _job(self, ctx: JobContext, *args: Any) -> Any:
        """The work, in the worker thread; raise :class:`JobStopped` (with what is kept) after a stop."""
        raise NotImplementedError

    def _finished(self, result: Any) -> None:
        """After a successful job, in the worker thread (draw results, hand the model on)."""

    def _launch(self, job: BackgroundJob, *args: Any, new_folder: bool = True) -> bool:
        """Start ``job`` with ``args``; a new run folder first unless ``new_folder`` is False (resume)."""
        if self.busy:
            return False
        self.error = ""
        try:
            folder = self.new_run_folder() if new_folder and self.run_prefix else None
        except (DataError, OSError) as exc:  # out_root unwritable, or a file
            return self._fail(f"cannot make a run folder under {self.out_root}: {plain_error(exc)}")
        if folder is not None:
            self.out_dir = folder
        if job.start(*args):
            return True
        if folder is not None:
            _discard(folder)
        return False

    def _work(self, ctx: JobContext, *args: Any) -> Any:
        return self._guarded(self._job, ctx, *args)

    def _guarded(self, fn: Callable[..., Any], ctx: JobContext, *args: Any) -> Any:
        """Run ``fn(ctx, *args)``: a failure becomes the panel's message; an empty run folder is removed."""
        folder = self.out_dir if self.run_prefix else None
        try:
            return fn(ctx, *args)
        except JobStopped:
            raise
        except Exception as exc:  # noqa: BLE001 - shown in the panel, the job ends "failed", the kernel lives on
            self._fail(plain_error(exc))
            raise
        finally:
            if folder is not None:
                _discard(folder)

    def _fail(self, text: str) -> bool:
        """Show ``text`` as the panel's problem (red box); False, for ``return self._fail(...)``."""
        from lam_lab.ui._live import message_html

        self.error = text
        self.message.value = message_html(text, ok=False)
        return False


def plain_error(exc: BaseException) -> str:
    """An exception as one line for a panel: our own errors as they are, others with their kind."""
    if isinstance(exc, (DataError, ValueError, KeyError, OSError)):
        text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def _discard(folder: Path) -> None:
    """Remove a run folder the run left empty."""
    from lam_lab.train.rundir import discard_if_empty

    try:
        discard_if_empty(folder)
    except OSError:
        pass
