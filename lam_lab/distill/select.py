"""Trust-window bookkeeping of distillation: student–teacher force deviation (eV/Å) and frame selection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from lam_lab.evaluation import Prediction

if TYPE_CHECKING:
    from lam_lab.data.frame import Frame
    from lam_lab.potential import Potential


@dataclass
class Selection:
    """Frames sorted by the trust window [lo, hi) of their max force deviation (indices into the candidates).

    ``accurate``: deviation < lo (the student already agrees); ``candidate``: lo ≤ deviation < hi (worth
    labelling); ``failed``: ≥ hi or not finite (too far off to trust, not used, as in DP-GEN);
    ``selected``: the candidates actually taken (at most ``max_new``, a seeded random subset).
    """

    deviation: np.ndarray  # eV/Å per frame
    accurate: np.ndarray
    candidate: np.ndarray
    failed: np.ndarray
    selected: np.ndarray
    trust: tuple[float, float]

    @property
    def n(self) -> int:
        """Number of frames judged."""
        return len(self.deviation)

    def fractions(self) -> dict[str, float]:
        """accurate / candidates / failed / selected as fractions of all frames (NaN when there are none)."""
        n = self.n
        f = (lambda k: float(k) / n) if n else (lambda k: float("nan"))
        return {"accurate": f(len(self.accurate)), "candidates": f(len(self.candidate)),
                "failed": f(len(self.failed)), "selected": f(len(self.selected))}


def check_trust(trust: Sequence[float]) -> tuple[float, float]:
    """``trust`` as (lo, hi) eV/Å with 0 ≤ lo < hi; ValueError otherwise."""
    try:
        lo, hi = (float(x) for x in trust)
    except (TypeError, ValueError):
        raise ValueError(f"trust must be a pair (lo, hi) in eV/Å, got {trust!r}") from None
    if not (0.0 <= lo < hi):
        raise ValueError(f"trust window needs 0 <= lo < hi (eV/Å), got ({lo}, {hi})")
    return lo, hi


def trust_select(deviation: Sequence[float] | np.ndarray, trust: Sequence[float], max_new: int | None = None,
                 seed: int = 0) -> Selection:
    """Sort frames into accurate / candidate / failed by their deviation (eV/Å) and pick ≤ ``max_new`` candidates."""
    lo, hi = check_trust(trust)
    dev = np.asarray(deviation, dtype=np.float64).reshape(-1)
    finite = np.isfinite(dev)
    accurate = np.flatnonzero(finite & (dev < lo))
    candidate = np.flatnonzero(finite & (dev >= lo) & (dev < hi))
    failed = np.flatnonzero(~finite | (dev >= hi))
    if max_new is not None and max_new < 0:
        raise ValueError(f"max_new must be >= 0 or None, got {max_new}")
    if max_new is None or len(candidate) <= max_new:
        selected = candidate.copy()
    else:
        from lam_lab.data.selection import subset_indices

        selected = candidate[subset_indices(len(candidate), max_new, seed)]  # the one frame-picking rule
    return Selection(dev, accurate, candidate, failed, selected, (lo, hi))


def max_force_deviation(forces_a: Sequence[np.ndarray], forces_b: Sequence[np.ndarray]) -> np.ndarray:
    """Per frame, the largest per-atom norm |F_a − F_b| (eV/Å) — DP-GEN's max_devi_f for a pair of models."""
    if len(forces_a) != len(forces_b):
        raise ValueError(f"{len(forces_a)} frames of forces against {len(forces_b)}")
    out = np.empty(len(forces_a))
    for k, (a, b) in enumerate(zip(forces_a, forces_b)):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            raise ValueError(f"frame {k}: force arrays of shapes {a.shape} and {b.shape}")
        out[k] = np.sqrt(((a - b) ** 2).sum(axis=1)).max(initial=0.0)
    return out


def force_rmse(forces_a: Sequence[np.ndarray], forces_b: Sequence[np.ndarray]) -> float:
    """RMSE over all force components of two models on the same frames (meV/Å)."""
    if not len(forces_a):
        return float("nan")
    d = np.concatenate([np.asarray(a, float).reshape(-1) - np.asarray(b, float).reshape(-1)
                        for a, b in zip(forces_a, forces_b)])
    return float(1000.0 * np.sqrt(np.mean(d**2))) if d.size else float("nan")


def predict(model: "Potential", frames: Sequence["Frame"], head: str | None = None, virial: bool = False,
            max_atoms: int = 4096) -> Prediction:
    """The network's own energies (eV), forces (eV/Å) and virials (eV, periodic frames) — no Δ baseline added.

    :func:`lam_lab.evaluation.predict` with ``baseline=None``: distillation compares networks (a Δ teacher's
    baseline is added where the teacher labels, see :mod:`lam_lab.distill.teacher`).
    """
    from lam_lab.evaluation import predict as evaluate_predict

    return evaluate_predict(model, frames, head, baseline=None, virial=virial, max_atoms=max_atoms)


__all__ = ["Prediction", "Selection", "check_trust", "trust_select", "max_force_deviation", "force_rmse", "predict"]
