"""Farthest-point selection of frames (re-exported from :mod:`lam_lab.data.selection`)."""

from __future__ import annotations

from typing import Iterable

from lam_lab.data.dataset import Dataset
from lam_lab.data.frame import Frame
from lam_lab.data.selection import farthest_point_indices, fingerprint


def select_fps(frames: Dataset | Iterable[Frame], n: int, seed: int = 0, keep: Iterable[int] = ()) -> list[int]:
    """Indices of ``n`` frames: those in ``keep`` first, the rest by farthest-point sampling (seeded)."""
    frames = list(frames)
    keep = list(dict.fromkeys(int(k) for k in keep))
    rest = [i for i in range(len(frames)) if i not in set(keep)]
    picks = farthest_point_indices(Dataset([frames[i] for i in rest]), max(n - len(keep), 0), seed=seed)
    return keep + [rest[i] for i in picks]


__all__ = ["fingerprint", "farthest_point_indices", "select_fps"]
