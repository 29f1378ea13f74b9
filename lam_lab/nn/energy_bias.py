"""Per-element energy bias by least squares: Σ_z c_mz e_bias(z) = E*_m (Eq. 6)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lam_lab.data.errors import DataError
from lam_lab.nn.batch import frame_types


def type_counts(types_per_frame: Sequence[np.ndarray], n_types: int) -> np.ndarray:
    """c_mz: atoms of each type in each frame, [M, n_types]."""
    return np.stack([np.bincount(np.asarray(t, dtype=np.int64),
                                 minlength=n_types) for t in types_per_frame]).astype(np.float64)


def solve_energy_bias(counts: np.ndarray, energies: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """Eq. 6: least-squares e_bias [n_types] (eV) from counts [M, n_types] and frame energies [M] (eV).

    Types absent from the data keep ``previous`` (0 when not given). When the counts are collinear
    (e.g. every frame is (H₂O)_n) the minimum-norm solution is returned, as the paper's footnote allows.
    """
    counts = np.asarray(counts, dtype=np.float64)
    energies = np.asarray(energies, dtype=np.float64).reshape(-1)
    if counts.ndim != 2 or counts.shape[0] != energies.shape[0]:
        raise ValueError(f"counts {counts.shape} and energies {energies.shape} do not match")
    if counts.shape[0] == 0:
        raise DataError("no frames with an energy label: cannot fit the energy bias (Eq. 6)", field="energy")
    bias = np.zeros(counts.shape[1]) if previous is None else np.array(previous, dtype=np.float64)
    present = counts.sum(0) > 0
    sol, *_ = np.linalg.lstsq(counts[:, present], energies, rcond=None)
    bias[present] = sol
    return bias


def fit_energy_bias_from(items, type_map: Sequence[str], label: str | None = None,
                         previous: np.ndarray | None = None, source: str | None = None) -> np.ndarray:
    """Eq. 6 over prepared Graphs or Frames (``label`` chooses the label set of Frames).

    Frames without energy are skipped.
    """
    from lam_lab.nn.batch import Graph

    types, energies = [], []
    for m, item in enumerate(items):
        if isinstance(item, Graph):
            energy, t = item.energy, item.types
        else:
            lab = pick_label(item, label, m, source)
            energy = None if lab is None else lab.energy
            t = frame_types(item.numbers, type_map, source=source, frame=m)
        if energy is not None:
            types.append(t)
            energies.append(energy)
    if not energies:
        raise DataError(f"no frame has an energy for label {label!r}: cannot fit the energy bias (Eq. 6)",
                        source=source, field="energy")
    return solve_energy_bias(type_counts(types, len(type_map)), np.array(energies), previous)


def pick_label(frame, label: str | None, index: int | None = None, source: str | None = None):
    """The Labels of ``label`` (None if the frame lacks it); with ``label=None`` the frame's only label set."""
    if label is not None:
        return frame.labels.get(label)
    if not frame.labels:
        return None
    if len(frame.labels) > 1:
        raise DataError(f"frame has several label sets {sorted(frame.labels)}: name one with label=...",
                        source=source, frame=index, field="labels")
    return next(iter(frame.labels.values()))
