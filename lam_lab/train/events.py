"""Training events and their subscribers: a tqdm bar, a JSONL log, or any callable."""

from __future__ import annotations

import json
import math
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal

from lam_lab.json_safe import json_safe

if TYPE_CHECKING:
    from lam_lab.train.loss import LossTerms

Kind = Literal["start", "step", "validation", "checkpoint", "stop", "end"]


@dataclass
class Event:
    """One report from the training loop (energies meV/atom, forces meV/Å, times s).

    ``train_rmse`` maps task → {"e": meV/atom, "f": meV/Å} over the steps since the last step
    event; ``validation`` maps task → metrics (same units) when validation ran; ``timing`` splits
    the wall time since the last event into data (prepare + collate + transfer) and compute
    (forward + backward + optimizer) so a slow data path shows up. ``terms`` holds the last step's
    unweighted loss terms (energy eV²/atom², force (eV/Å)², virial) and the gradient norm; ``loss``
    is the mean weighted loss over the window (step events) or the best-model score (validation
    events: Σ_k w_k (pf_e_limit·E_rmse² + pf_f_limit·F_rmse²)/Σ_k w_k in eV units).
    """

    kind: Kind
    step: int
    total_steps: int | None = None
    budget_s: float | None = None
    epoch: dict[str, int] = field(default_factory=dict)
    task: str | None = None
    lr: float | None = None
    loss: float | None = None
    terms: dict[str, float] = field(default_factory=dict)
    prefactors: dict[str, float] = field(default_factory=dict)
    train_rmse: dict[str, dict[str, float]] = field(default_factory=dict)
    validation: dict[str, dict[str, float]] = field(default_factory=dict)
    steps_per_s: float | None = None
    eta_s: float | None = None
    elapsed_s: float = 0.0
    progress: float = 0.0
    device: str = "cpu"
    timing: dict[str, float] = field(default_factory=dict)
    path: str | None = None  # checkpoint written (kind "checkpoint")
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (NaN/inf become None)."""
        return json_safe(asdict(self))


Callback = Callable[[Event], Any]


class EventBus:
    """Fans events out to subscribers; a failing subscriber is reported once and then skipped."""

    def __init__(self, subscribers: Iterable[Callback] = ()):
        self._subs: list[Callback] = list(subscribers)
        self._lock = threading.Lock()
        self._broken: set[int] = set()

    def subscribe(self, fn: Callback) -> None:
        """Add a subscriber (thread-safe)."""
        with self._lock:
            self._subs.append(fn)

    def emit(self, event: Event) -> None:
        """Send ``event`` to every subscriber, in order."""
        with self._lock:
            subs = list(self._subs)
        for fn in subs:
            if id(fn) in self._broken:
                continue
            try:
                fn(event)
            except Exception as exc:  # a broken plot must not kill a long training run
                self._broken.add(id(fn))
                warnings.warn(f"training event subscriber {fn!r} failed and is now skipped: {exc!r}", stacklevel=2)

    def close(self) -> None:
        """Close subscribers that have a ``close`` method."""
        for fn in self._subs:
            close = getattr(fn, "close", None)
            if callable(close):
                close()


class StepWindow:
    """The trainer's stats since the last step event: per-task squared errors, loss, data vs compute time."""

    def __init__(self) -> None:
        self.sq: dict[str, list[float]] = {}
        self.steps, self.loss, self.data_s, self.compute_s = 0, 0.0, 0.0, 0.0
        self.t0 = time.perf_counter()

    def add(self, task: str, terms: "LossTerms", data_s: float, compute_s: float) -> None:
        s = self.sq.setdefault(task, [0.0, 0, 0.0, 0])
        for k, x in enumerate((terms.e_sq, terms.n_e, terms.f_sq, terms.n_f)):
            s[k] += x
        self.steps += 1
        self.loss += float(terms.total.detach())
        self.data_s += data_s
        self.compute_s += compute_s

    def rmse(self) -> dict[str, dict[str, float]]:
        r = lambda sq, n: 1000 * math.sqrt(sq / n) if n else float("nan")  # noqa: E731
        return {t: {"e": r(s[0], s[1]), "f": r(s[2], s[3])} for t, s in self.sq.items()}


class JSONLLogger:
    """Appends each event as one JSON line to ``path`` (flushed per line, safe to tail)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a")

    def __call__(self, event: Event) -> None:
        self._fh.write(json.dumps(event.to_dict()) + "\n")
        self._fh.flush()

    def close(self) -> None:
        """Close the file."""
        if not self._fh.closed:
            self._fh.close()


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The events of a JSONL log as dicts."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class TqdmProgress:
    """A tqdm bar over the step budget (or the time budget, in seconds) with loss and RMSE."""

    def __init__(self, **tqdm_kwargs: Any):
        self._kw = tqdm_kwargs
        self._bar = None
        self._by_time = False

    def __call__(self, event: Event) -> None:
        from tqdm.auto import tqdm

        if event.kind == "start":
            self._by_time = event.total_steps is None and event.budget_s is not None
            total = round(event.budget_s) if self._by_time else event.total_steps
            unit = "s" if self._by_time else "step"
            initial = 0 if self._by_time else event.step
            self._bar = tqdm(total=total, initial=initial, unit=unit, desc="train", **self._kw)
            return
        if self._bar is None:
            return
        if event.kind == "step":
            now = round(event.elapsed_s) if self._by_time else event.step
            self._bar.update(max(now - self._bar.n, 0))
            post = {"loss": f"{event.loss:.3g}" if event.loss is not None else "-", "lr": f"{event.lr:.2g}"}
            for task, r in event.train_rmse.items():
                post[f"{task[:10]} F"] = f"{r.get('f', float('nan')):.0f}"
            self._bar.set_postfix(post, refresh=False)
        elif event.kind == "validation":
            nan = float("nan")
            parts = [f"{t}: E {m.get('e_rmse', nan):.1f} F {m.get('f_rmse', nan):.0f}"
                     for t, m in event.validation.items()]
            self._bar.write(f"step {event.step} validation " + "; ".join(parts) + " (meV/atom, meV/Å)")
        elif event.kind in ("end", "stop"):
            self.close()

    def close(self) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
