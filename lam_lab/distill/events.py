"""Round records of a distillation and the event each round sends to subscribers (eV/Å, meV/Å, s)."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from lam_lab.json_safe import json_safe


@dataclass
class DistillRound:
    """What one round did: frames explored, how they fell in the trust window, what was trained.

    Round 0 is the initial fit on the seed frames (all of them "selected"). ``max_dev_mean``/
    ``max_dev_max`` are the mean/largest per-frame max force deviation student vs teacher (eV/Å),
    ``student_f_rmse`` the student's force RMSE against the teacher on the round's frames (meV/Å),
    measured before the round's retraining (round 0: after it, on the seed frames); ``monitor_f_rmse`` the
    same after the round, on the fixed teacher-labelled frames set aside from the seeds and never trained on
    (meV/Å; NaN without them): the curve that says whether the student is learning.
    """

    round: int
    n_frames: int
    n_accurate: int
    n_candidates: int
    n_failed: int
    n_selected: int
    max_dev_mean: float
    max_dev_max: float
    student_f_rmse: float
    n_train: int
    train_steps: int
    md_runs: int = 0
    md_guard_stops: int = 0  # exploration runs ended early by an MD guard (frames before kept)
    converged: bool = False
    stopped: bool = False
    elapsed_s: float = 0.0
    timing: dict[str, float] = field(default_factory=dict)  # explore_s, deviation_s, train_s
    message: str = ""
    monitor_f_rmse: float = float("nan")

    def fraction(self, n: int) -> float:
        """``n`` as a fraction of the frames of this round (NaN without frames)."""
        return n / self.n_frames if self.n_frames else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (NaN/inf become None)."""
        return json_safe(asdict(self))


@dataclass
class RoundEvent:
    """The report of one distillation round (kind "round"), sent to the same callbacks as the trainer's Events.

    ``candidates``/``accurate``/``selected``/``failed`` are fractions of the round's explored frames
    (candidates = inside the trust window, accurate = below it, failed = above it; selected ⊆
    candidates); ``max_dev_mean`` in eV/Å, ``student_f_rmse`` (vs the teacher) in meV/Å.
    """

    round: int
    candidates: float
    accurate: float
    selected: float
    failed: float
    max_dev_mean: float
    student_f_rmse: float
    n_train: int
    elapsed_s: float
    message: str = ""
    kind: Literal["round"] = "round"
    total_rounds: int = 0
    n_frames: int = 0
    n_selected: int = 0
    converged: bool = False
    stopped: bool = False
    path: str | None = None  # the student file written after this round
    monitor_f_rmse: float = float("nan")  # vs the teacher on the fixed frames never trained on (meV/Å)

    @classmethod
    def from_round(cls, r: DistillRound, total_rounds: int, path: str | None = None) -> "RoundEvent":
        """The event of round record ``r``."""
        return cls(round=r.round, candidates=r.fraction(r.n_candidates), accurate=r.fraction(r.n_accurate),
                   selected=r.fraction(r.n_selected), failed=r.fraction(r.n_failed), max_dev_mean=r.max_dev_mean,
                   student_f_rmse=r.student_f_rmse, n_train=r.n_train, elapsed_s=r.elapsed_s, message=r.message,
                   total_rounds=total_rounds, n_frames=r.n_frames, n_selected=r.n_selected, converged=r.converged,
                   stopped=r.stopped, path=path, monitor_f_rmse=r.monitor_f_rmse)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (NaN/inf become None)."""
        return json_safe(asdict(self))


def print_round(event: Any) -> None:
    """Progress line per round on stderr (other events are the trainer's bar's business)."""
    if getattr(event, "kind", None) != "round":
        return
    pct = lambda x: "-" if x != x else f"{100 * x:.0f}%"  # noqa: E731
    fixed = f" ({event.monitor_f_rmse:.1f} on the fixed frames)" if event.monitor_f_rmse == event.monitor_f_rmse else ""
    print(f"distill round {event.round}/{event.total_rounds}: {event.n_frames} frames, accurate {pct(event.accurate)}, "
          f"candidates {pct(event.candidates)}, failed {pct(event.failed)}, added {event.n_selected}, "
          f"F RMSE vs teacher {event.student_f_rmse:.1f} meV/Å{fixed}, train set {event.n_train} — {event.message}",
          file=sys.stderr)


__all__ = ["DistillRound", "RoundEvent", "print_round"]
