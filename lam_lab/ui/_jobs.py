"""Background jobs for panels: one worker thread, a progress bar, a status line and a Stop button."""

from __future__ import annotations

import threading
import traceback
from typing import Any, Callable

import ipywidgets as w


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
            self.status.value = f"failed: {exc}"
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
                    self.status.value = f"failed: {exc}"
        finally:
            self.start_button.disabled, self.stop_button.disabled = False, True
