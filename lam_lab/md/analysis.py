"""Reaction-event analysis of trajectories: per-frame bond graphs with hysteresis, bond events, distances (Å).

A pair (a, b) becomes bonded when its distance drops below ``f_on·(r_a + r_b)`` and stays bonded
until it exceeds ``f_off·(r_a + r_b)`` (covalent radii, Å). The gap between the two thresholds keeps
a vibrating bond near one threshold from flickering on and off every frame. Distances use the
minimum image in periodic directions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Literal, Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols, covalent_radii

from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame


@dataclass(frozen=True)
class BondCriteria:
    """Bond thresholds as multiples of the covalent-radius sum; ``radii`` overrides radii per element (Å)."""

    # H-H at 0.74 Å is 1.19 x (0.31 + 0.31): a smaller f_on would miss H2; f_off leaves room to vibrate
    f_on: float = 1.25
    f_off: float = 1.45
    radii: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.f_on <= self.f_off:
            raise ValueError(f"need 0 < f_on <= f_off, got f_on={self.f_on}, f_off={self.f_off}")
        unknown = sorted(set(self.radii) - set(chemical_symbols[1:]))
        if unknown:
            raise ValueError(f"radii given for unknown elements {unknown}")

    def radius(self, numbers: np.ndarray) -> np.ndarray:
        """Covalent radius (Å) of each atomic number, overrides applied."""
        r = covalent_radii[np.asarray(numbers, dtype=int)].astype(float)
        for sym, value in self.radii.items():
            r[np.asarray(numbers) == chemical_symbols.index(sym)] = value
        return r


@dataclass
class TrajectoryData:
    """A trajectory as arrays: numbers [n], positions [T, n, 3] Å, cells [T, 3, 3] Å, pbc [3], times [T]."""

    numbers: np.ndarray
    positions: np.ndarray
    cells: np.ndarray
    pbc: np.ndarray
    times: np.ndarray
    time_unit: str  # "fs" when times were given, else "frame" (times are frame indices)

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return len(self.positions)

    @property
    def symbols(self) -> list[str]:
        """Chemical symbols of the atoms."""
        return [chemical_symbols[z] for z in self.numbers]


@dataclass
class BondEvent:
    """A bond formed or broken at ``frame`` (time in the trajectory's unit); distance in Å at that frame."""

    frame: int
    time: float
    kind: Literal["formed", "broken"]
    i: int
    j: int
    pair: str  # e.g. "C-H"
    distance: float

    @property
    def label(self) -> str:
        """Short text such as ``"C0–H3 formed"`` (atom indices from 0)."""
        a, b = self.pair.split("-")
        return f"{a}{self.i}–{b}{self.j} {self.kind}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (with ``label``)."""
        return {**asdict(self), "label": self.label}


@dataclass
class BondAnalysis:
    """Bond graph of every frame (``bonds[t]``: int [n_bonds, 2], i < j, sorted) and the bond events."""

    numbers: np.ndarray
    bonds: list[np.ndarray]
    events: list[BondEvent]
    times: np.ndarray
    time_unit: str
    criteria: BondCriteria

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return len(self.bonds)

    @property
    def n_bonds(self) -> np.ndarray:
        """Number of bonds per frame."""
        return np.array([len(b) for b in self.bonds], dtype=int)

    def bonds_at(self, frame: int) -> set[tuple[int, int]]:
        """Bonded pairs (i < j) at ``frame``."""
        return {(int(i), int(j)) for i, j in self.bonds[frame]}

    def events_between(self, start: int, stop: int) -> list[BondEvent]:
        """Events with ``start <= frame < stop``."""
        return [e for e in self.events if start <= e.frame < stop]

    def event_pairs(self, limit: int | None = None) -> list[tuple[int, int]]:
        """Distinct atom pairs that take part in events, in order of first event."""
        seen: dict[tuple[int, int], None] = {}
        for e in self.events:
            seen.setdefault((e.i, e.j), None)
        pairs = list(seen)
        return pairs if limit is None else pairs[:limit]


@dataclass
class DistanceSeries:
    """Distances (Å) of chosen atom pairs over time: ``values[t, k]`` for ``pairs[k]``, named ``labels[k]``."""

    pairs: list[tuple[int, int]]
    labels: list[str]
    times: np.ndarray
    time_unit: str
    values: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        """``{label: distances [T]}``."""
        return {lab: self.values[:, k] for k, lab in enumerate(self.labels)}


# -- input ------------------------------------------------------------------------------------------
def as_trajectory(
    trajectory: Iterable[Atoms | Frame] | np.ndarray | TrajectoryData,
    numbers: Sequence[int] | None = None,
    cell: np.ndarray | None = None,
    pbc: Sequence[bool] | bool = False,
    times: Sequence[float] | None = None,
    timestep: float | None = None,
) -> TrajectoryData:
    """Arrays from ASE Atoms, Frames (or a Dataset), or positions [T, n, 3] Å with ``numbers``.

    ``times`` (fs, one per frame) or ``timestep`` (fs between frames) set the time axis; without
    either, times are frame indices (unit ``"frame"``). Every frame must hold the same atoms.
    """
    if isinstance(trajectory, TrajectoryData):
        return trajectory
    if isinstance(trajectory, np.ndarray) and trajectory.dtype != object:
        pos = np.asarray(trajectory, dtype=float)
        if pos.ndim != 3 or pos.shape[2] != 3:
            raise DataError(f"positions must have shape [T, n, 3], got {pos.shape}", field="positions")
        if numbers is None:
            raise DataError("a positions array needs numbers= (atomic numbers)", field="numbers")
        nums = np.asarray(numbers, dtype=int).reshape(-1)
        if len(nums) != pos.shape[1]:
            raise DataError(f"{len(nums)} atomic numbers for {pos.shape[1]} atoms", field="numbers")
        box = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=float).reshape(3, 3)
        cells = np.broadcast_to(box, (len(pos), 3, 3)).copy()
        pbc_arr = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy()
    else:
        nums, pos_list, cell_list, pbc_arr = None, [], [], None
        for t, item in enumerate(trajectory):
            if isinstance(item, Atoms):
                z, x, c, p = item.numbers, item.positions, np.array(item.cell), item.pbc
            elif isinstance(item, Frame):
                z, x, c, p = item.numbers, item.positions, item.cell, item.pbc
            else:
                raise DataError(f"expected ase.Atoms or Frame, got {type(item).__name__}", frame=t)
            if nums is None:
                nums, pbc_arr = np.asarray(z, dtype=int).copy(), np.asarray(p, dtype=bool).copy()
            elif len(z) != len(nums) or np.any(z != nums):
                raise DataError("atoms differ from frame 0 (a trajectory keeps the same atoms)", frame=t,
                                field="numbers")
            pos_list.append(np.asarray(x, dtype=float))
            cell_list.append(np.asarray(c, dtype=float))
        if nums is None:
            raise DataError("trajectory has no frames")
        pos, cells = np.stack(pos_list), np.stack(cell_list)
    if np.any(pbc_arr) and np.any(np.abs(np.linalg.det(cells)) < 1e-9):
        raise DataError("periodic trajectory needs a non-degenerate cell in every frame", field="cell")
    n_frames = len(pos)
    if times is not None:
        t_arr, unit = np.asarray(times, dtype=float).reshape(-1), "fs"
        if len(t_arr) != n_frames:
            raise DataError(f"{len(t_arr)} times for {n_frames} frames", field="times")
    elif timestep is not None:
        t_arr, unit = np.arange(n_frames) * float(timestep), "fs"
    else:
        t_arr, unit = np.arange(n_frames, dtype=float), "frame"
    return TrajectoryData(nums, pos, cells, pbc_arr, t_arr, unit)


# -- geometry ---------------------------------------------------------------------------------------
def close_pairs(positions: np.ndarray, cutoff: float, cell: np.ndarray | None = None,
                pbc: Sequence[bool] | bool = False, where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) nearer than ``cutoff`` Å and their minimum-image distances (Å).

    Non-finite or absurd coordinates raise a DataError (prefixed by ``where``) before the compiled neighbor search.
    """
    from vesin import NeighborList

    from lam_lab.nn.neighbor_list import check_geometry

    pos = np.ascontiguousarray(positions, dtype=np.float64)
    pbc_arr = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    box = np.zeros((3, 3)) if cell is None or not pbc_arr.any() else np.asarray(cell, dtype=np.float64)
    if len(pos) < 2:
        return np.zeros((0, 2), dtype=int), np.zeros(0)
    check_geometry(pos, box if pbc_arr.any() else None, where)  # NaN or 1e6 Å would kill the interpreter in vesin
    i, j, d = NeighborList(cutoff=float(cutoff), full_list=False).compute(pos, box, pbc_arr.tolist(), quantities="ijd")
    keep = i != j  # an atom next to its own periodic image is not a bond
    a, b, d = np.minimum(i, j)[keep], np.maximum(i, j)[keep], d[keep]
    if len(d) == 0:
        return np.zeros((0, 2), dtype=int), np.zeros(0)
    # several periodic images of one pair can fall inside the cutoff: keep the nearest (minimum image)
    key = a.astype(np.int64) * len(pos) + b
    order = np.lexsort((d, key))
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    sel = order[first]
    return np.stack([a[sel], b[sel]], axis=1).astype(int), d[sel]


def pair_distance(positions: np.ndarray, pairs: np.ndarray, cell: np.ndarray | None = None,
                  pbc: Sequence[bool] | bool = False) -> np.ndarray:
    """Minimum-image distances (Å) of the given pairs [k, 2]."""
    pairs = np.asarray(pairs, dtype=int).reshape(-1, 2)
    vec = positions[pairs[:, 1]] - positions[pairs[:, 0]]
    pbc_arr = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    if pbc_arr.any() and len(vec):
        from ase.geometry import find_mic

        vec, _ = find_mic(vec, cell, pbc_arr)
    return np.linalg.norm(vec, axis=1)


# -- analysis ---------------------------------------------------------------------------------------
def analyze_bonds(
    trajectory: Iterable[Atoms | Frame] | np.ndarray | TrajectoryData,
    criteria: BondCriteria | None = None,
    **trajectory_options: Any,
) -> BondAnalysis:
    """Bond graph per frame with hysteresis, and the bond-formed/broken events between frames.

    The first frame has no history, so its pairs are split at the midpoint of the two thresholds.
    ``trajectory_options`` go to :func:`as_trajectory` (``numbers``, ``cell``, ``pbc``, ``times``, ``timestep``).
    """
    crit = criteria or BondCriteria()
    traj = as_trajectory(trajectory, **trajectory_options)
    n = len(traj.numbers)
    radius = crit.radius(traj.numbers)
    cutoff = crit.f_off * 2.0 * float(radius.max()) if n else 0.0
    symbols = traj.symbols
    bonds: list[np.ndarray] = []
    events: list[BondEvent] = []
    prev = np.zeros(0, dtype=np.int64)  # bonded pair keys i*n + j of the previous frame
    for t in range(traj.n_frames):
        cell, pos = traj.cells[t], traj.positions[t]
        pairs, d = close_pairs(pos, cutoff, cell, traj.pbc, where=f"frame {t}: ")
        rsum = radius[pairs[:, 0]] + radius[pairs[:, 1]]
        keys = pairs[:, 0].astype(np.int64) * n + pairs[:, 1]
        if t == 0:
            bonded = d < 0.5 * (crit.f_on + crit.f_off) * rsum
        else:
            bonded = (d < crit.f_on * rsum) | (np.isin(keys, prev) & (d <= crit.f_off * rsum))
        cur = np.sort(keys[bonded])
        bonds.append(np.stack([cur // n, cur % n], axis=1).astype(int) if len(cur) else np.zeros((0, 2), dtype=int))
        if t > 0:
            for kind, changed in (("broken", np.setdiff1d(prev, cur)), ("formed", np.setdiff1d(cur, prev))):
                if not len(changed):
                    continue
                cp = np.stack([changed // n, changed % n], axis=1)
                dist = pair_distance(pos, cp, cell, traj.pbc)
                for (i, j), dij in zip(cp.tolist(), dist.tolist()):
                    events.append(BondEvent(t, float(traj.times[t]), kind, i, j, f"{symbols[i]}-{symbols[j]}", dij))
        prev = cur
    return BondAnalysis(traj.numbers.copy(), bonds, events, traj.times.copy(), traj.time_unit, crit)


def distance_series(
    trajectory: Iterable[Atoms | Frame] | np.ndarray | TrajectoryData,
    pairs: Sequence[tuple[int, int]],
    **trajectory_options: Any,
) -> DistanceSeries:
    """Minimum-image distances (Å) of ``pairs`` in every frame, labelled like ``"C0–H3"``."""
    traj = as_trajectory(trajectory, **trajectory_options)
    pair_arr = np.asarray(pairs, dtype=int).reshape(-1, 2)
    n = len(traj.numbers)
    if len(pair_arr) and (pair_arr.min() < 0 or pair_arr.max() >= n):
        raise DataError(f"pair indices must lie in 0..{n - 1}, got {pair_arr.tolist()}", field="pairs")
    values = np.stack([pair_distance(traj.positions[t], pair_arr, traj.cells[t],
                                     traj.pbc) for t in range(traj.n_frames)])
    sym = traj.symbols
    labels = [f"{sym[i]}{i}–{sym[j]}{j}" for i, j in pair_arr.tolist()]
    return DistanceSeries([tuple(p) for p in pair_arr.tolist()], labels, traj.times.copy(), traj.time_unit,
                          values.reshape(traj.n_frames, len(pair_arr)))


__all__ = [
    "BondCriteria", "TrajectoryData", "BondEvent", "BondAnalysis", "DistanceSeries",
    "as_trajectory", "close_pairs", "pair_distance", "analyze_bonds", "distance_series",
]
