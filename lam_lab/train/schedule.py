"""Learning-rate schedules as functions of run progress (0 → 1 of the step or time budget)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LRSchedule:
    """Learning rate (1/unit of loss gradient) at a fraction ``progress`` ∈ [0, 1] of the run.

    Driving the schedule by progress instead of the step index makes it scale with the run: with
    ``minutes=10`` the warm-up and the decay follow the elapsed-time fraction, so a short run still
    spends most of its time at a useful learning rate and only anneals at its very end.

    kinds:
      ``"cosine"``  (default) linear warm-up over ``warmup`` of the run, then cosine decay from ``lr``
                    to ``lr * final_ratio``;
      ``"exp"``     DeePMD-kit / DPA-2 paper (Eq. 41 companion): ``lr * (final_ratio) ** progress``,
                    i.e. exponential decay from ``lr`` to ``lr * final_ratio`` at the end (no warm-up
                    unless asked);
      ``"linear"``  warm-up then linear decay to ``lr * final_ratio``;
      ``"constant"`` warm-up then constant ``lr``.
    """

    kind: str = "cosine"
    lr: float = 1e-3
    warmup: float = 0.05
    final_ratio: float = 0.05

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown schedule {self.kind!r}; choose one of {sorted(KINDS)}")
        if not (self.lr > 0 and 0 <= self.warmup < 1 and 0 < self.final_ratio <= 1):
            raise ValueError(f"bad schedule values lr={self.lr}, warmup={self.warmup}, final_ratio={self.final_ratio}")

    def decay(self, progress: float) -> float:
        """The decay factor γ(t)/γ0 ∈ [final_ratio, 1] after warm-up (what Eq. 41's prefactors follow)."""
        p = min(max(progress, 0.0), 1.0)
        if self.kind == "constant":
            return 1.0
        if self.kind == "exp":
            # the paper's decay: Eq. 41 is written against it, lr/lr0 = final_ratio ** p
            q = (p - self.warmup) / (1 - self.warmup) if p > self.warmup else 0.0
            return self.final_ratio**q
        q = (p - self.warmup) / (1 - self.warmup) if p > self.warmup else 0.0
        if self.kind == "linear":
            return 1.0 - (1.0 - self.final_ratio) * q
        return self.final_ratio + (1.0 - self.final_ratio) * 0.5 * (1.0 + math.cos(math.pi * q))

    def warm(self, progress: float) -> float:
        """Warm-up factor ∈ (0, 1]: linear ramp over the first ``warmup`` of the run."""
        if self.warmup <= 0 or progress >= self.warmup:
            return 1.0
        return max(progress / self.warmup, 0.01)

    def __call__(self, progress: float) -> float:
        """Learning rate at ``progress``."""
        return self.lr * self.warm(progress) * self.decay(progress)


KINDS = ("cosine", "exp", "linear", "constant")


@dataclass
class Budget:
    """How long a run lasts: a step count, a wall-time budget (s), or both (whichever ends first)."""

    steps: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.steps is None and self.seconds is None:
            raise ValueError("a run needs steps or minutes")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be ≥ 1, got {self.steps}")
        if self.seconds is not None and self.seconds <= 0:
            raise ValueError(f"minutes must be > 0, got {self.seconds / 60}")

    def progress(self, step: int, elapsed: float) -> float:
        """Fraction of the run done after ``step`` steps and ``elapsed`` seconds."""
        parts = []
        if self.steps is not None:
            parts.append(step / self.steps)
        if self.seconds is not None:
            parts.append(elapsed / self.seconds)
        return min(max(parts), 1.0)

    def done(self, step: int, elapsed: float) -> bool:
        """True once the step count or the time budget is used up."""
        return (self.steps is not None and step >= self.steps) or (self.seconds is not None and elapsed >= self.seconds)

    def eta(self, step: int, elapsed: float, steps_per_s: float) -> float | None:
        """Seconds left (None before the speed is known)."""
        left = []
        if self.steps is not None and steps_per_s > 0:
            left.append((self.steps - step) / steps_per_s)
        if self.seconds is not None:
            left.append(self.seconds - elapsed)
        return max(min(left), 0.0) if left else None
