"""Exploration MD of a distillation: the teacher drives Langevin MD (guarded) from every start at every temperature."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from lam_lab.data.frame import Frame
from lam_lab.distill.teacher import frame_from_snapshot
from lam_lab.md.runner import MDConfig, MDRunner


@dataclass
class Exploration:
    """Frames one exploration produced (teacher energy/forces attached as label "teacher") and how the runs ended."""

    frames: list[Frame] = field(default_factory=list)
    runs: int = 0
    guard_stops: int = 0
    stopped: bool = False
    reasons: list[str] = field(default_factory=list)  # guard reasons, one per stopped run


def default_md_config() -> MDConfig:
    """Langevin at 0.5 fs with the default guards; a guard ends only that run (on_guard="stop")."""
    return MDConfig(ensemble="langevin", timestep=0.5, friction=0.01, on_guard="stop")


class Explorer:
    """Runs the teacher's MD round after round; each (start, temperature) trajectory continues where it ended.

    A trajectory stopped by a guard restarts from its original structure with fresh velocities next round.
    """

    def __init__(self, starts: Sequence[Atoms], calculator: Calculator, temperatures: Sequence[float],
                 md: MDConfig | None = None, sample_every: int = 10, seed: int = 0):
        if not len(temperatures):
            raise ValueError("distillation needs at least one exploration temperature (K)")
        if any(float(t) < 0 for t in temperatures):
            raise ValueError(f"temperatures must be >= 0 K, got {list(temperatures)}")
        self.starts = [a.copy() for a in starts]
        self.calculator = calculator
        self.temperatures = [float(t) for t in temperatures]
        self.md = md or default_md_config()
        self.sample_every = int(sample_every)
        self.seed = int(seed)
        self._state: dict[tuple[int, int], Atoms] = {}

    def run(self, round_index: int, steps: int, stop_event: threading.Event | None = None,
            include_start: bool = False) -> Exploration:
        """``steps`` MD steps per (start, temperature), frames every ``sample_every`` steps (step 0 only if asked)."""
        out = Exploration()
        for i, start in enumerate(self.starts):
            for j, temp in enumerate(self.temperatures):
                if stop_event is not None and stop_event.is_set():
                    out.stopped = True
                    return out
                prev = self._state.get((i, j))
                cfg = dataclasses.replace(
                    self.md, temperature=temp, steps=int(steps), interval=self.sample_every, trajectory=None,
                    keep_frames=True, keep_momenta=prev is not None, on_guard="stop",
                    seed=_seed(self.seed, self.md.seed, round_index, i, j))
                runner = MDRunner(prev if prev is not None else start, self.calculator, cfg)
                with _forward_stop(stop_event, runner):
                    res = runner.run()
                out.runs += 1
                if res.status == "guard":
                    out.guard_stops += 1
                    out.reasons.append(f"start {i} at {temp:g} K: {res.reason}")
                    self._state.pop((i, j), None)
                else:
                    self._state[(i, j)] = res.atoms
                info = {"distill_round": int(round_index), "start": i, "md_temperature": temp}
                out.frames.extend(frame_from_snapshot(a, info) for a in res.frames
                                  if include_start or a.info.get("step", 0) > 0)
                if res.status == "stopped":
                    out.stopped = True
                    return out
        return out


def _seed(seed: int, md_seed: int | None, *keys: int) -> int | None:
    """A distinct, reproducible velocity/noise seed per (round, start, temperature); None keeps MD unseeded."""
    if md_seed is None:
        return None
    return int(np.random.SeedSequence([seed, md_seed, *keys]).generate_state(1)[0])


@contextlib.contextmanager
def _forward_stop(stop_event: threading.Event | None, runner: MDRunner) -> Iterator[None]:
    """While the block runs, a set ``stop_event`` asks ``runner`` to end after its current step."""
    if stop_event is None:
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if stop_event.wait(0.05):
                runner.request_stop("distillation stop requested")
                return

    thread = threading.Thread(target=watch, name="distill-stop-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


__all__ = ["Exploration", "Explorer", "default_md_config"]
