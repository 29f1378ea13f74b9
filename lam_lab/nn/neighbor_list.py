"""Neighbor lists padded to ``sel`` (DeePMD-style dense layout), built with the compiled vesin library."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from vesin import NeighborList as _VesinNeighborList


@dataclass
class NeighborList:
    """Per-atom neighbors of one frame, sorted by distance and padded to ``sel``.

    ``index[i, k]`` is the k-th closest neighbor j of atom i (-1 for padding); the displacement is
    ``r_ij = positions[j] - positions[i] + shift[i, k] @ cell`` (Å), with integer cell shifts so that
    the model can differentiate through positions and cell (forces and virial).
    """

    index: np.ndarray  # int64 [n_atoms, sel]
    shift: np.ndarray  # int64 [n_atoms, sel, 3]
    mask: np.ndarray  # bool  [n_atoms, sel]
    distance: np.ndarray  # float64 [n_atoms, sel], padded with +inf
    cutoff: float
    n_dropped: int  # neighbors inside the cutoff that did not fit in sel

    @property
    def sel(self) -> int:
        """Padded width."""
        return self.index.shape[1]

    @property
    def max_neighbors(self) -> int:
        """Largest true neighbor count of any atom (before truncation to sel)."""
        return int(self.mask.sum(1).max(initial=0)) + (1 if self.n_dropped else 0)

    def restrict(self, cutoff: float, sel: int) -> "NeighborList":
        """The same list cut down to a smaller cutoff and width (for the repformer's 4 Å list)."""
        if cutoff > self.cutoff + 1e-12:
            raise ValueError(f"cannot restrict a {self.cutoff} Å list to a larger cutoff {cutoff} Å")
        inside = self.mask & (self.distance < cutoff)
        # rows are sorted by distance, so the neighbors inside the smaller cutoff come first
        count = inside.sum(1)
        dropped = int(np.clip(count - sel, 0, None).sum())
        width = sel
        out_idx = np.full((len(count), width), -1, dtype=np.int64)
        out_shift = np.zeros((len(count), width, 3), dtype=np.int64)
        out_d = np.full((len(count), width), np.inf)
        w = min(width, self.sel)
        keep = inside[:, :w]
        out_idx[:, :w] = np.where(keep, self.index[:, :w], -1)
        out_shift[:, :w] = np.where(keep[..., None], self.shift[:, :w], 0)
        out_d[:, :w] = np.where(keep, self.distance[:, :w], np.inf)
        return NeighborList(out_idx, out_shift, out_idx >= 0, out_d, cutoff, dropped)


MAX_COORDINATE = 1e5  # Å; beyond this the compiled cell list divides by zero (SIGFPE kills the process)


def check_geometry(positions: np.ndarray, cell: np.ndarray | None = None, where: str = "") -> None:
    """ValueError naming the atom when positions (Å) or the cell are non-finite or absurdly large, or without atoms.

    Called before the compiled neighbor search: a NaN or a 1e6 Å coordinate there ends the whole
    interpreter (a notebook kernel dies) instead of raising.
    """
    from lam_lab.data.errors import DataError

    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    if len(pos) == 0:  # a model cannot reshape an empty structure; say so here instead
        raise DataError(f"{where}the structure has no atoms", field="numbers")
    bad = np.flatnonzero(~np.isfinite(pos).all(axis=1))
    if len(bad):
        raise DataError(f"{where}atom {int(bad[0])} has non-finite coordinates {pos[bad[0]].tolist()} "
                        f"({len(bad)} atom(s) with NaN or inf)", field="positions")
    far = np.flatnonzero(np.abs(pos).max(axis=1, initial=0.0) > MAX_COORDINATE) if len(pos) else []
    if len(far):
        raise DataError(f"{where}atom {int(far[0])} is at {pos[far[0]].tolist()} Å, beyond ±{MAX_COORDINATE:g} Å "
                        "(wrong units, or an exploded structure?)", field="positions")
    if cell is not None:
        box = np.asarray(cell, dtype=np.float64)
        if not np.all(np.isfinite(box)) or np.abs(box).max(initial=0.0) > MAX_COORDINATE:
            raise DataError(f"{where}cell {box.tolist()} is non-finite or larger than {MAX_COORDINATE:g} Å",
                            field="cell")


def neighbor_list(
    positions: np.ndarray,
    cutoff: float,
    sel: int | None = None,
    cell: np.ndarray | None = None,
    pbc: Sequence[bool] | bool = False,
    warn_dropped: bool = True,
) -> NeighborList:
    """Full neighbor list within ``cutoff`` (Å), periodic images included, padded/truncated to ``sel``.

    With ``sel=None`` the width is the largest neighbor count. When an atom has more than ``sel``
    neighbors the farthest are dropped (as in DeePMD-kit) and a warning says how many.
    """
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    check_geometry(pos, cell)
    n = len(pos)
    pbc_arr = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy()
    box = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=np.float64).reshape(3, 3)
    if pbc_arr.any() and abs(np.linalg.det(box)) < 1e-9:
        raise ValueError("periodic neighbor list needs a non-degenerate cell")
    if not pbc_arr.any():
        box = np.zeros((3, 3))
    if n == 0:
        i = j = np.zeros(0, dtype=np.int64)
        S = np.zeros((0, 3), dtype=np.int64)
        d = np.zeros(0)
    else:
        calc = _VesinNeighborList(cutoff=float(cutoff), full_list=True)
        i, j, S, d = calc.compute(pos, box, pbc_arr.tolist() if pbc_arr.any() else False, quantities="ijSd")
    return pad_pairs(n, i, j, S, d, cutoff, sel, warn_dropped=warn_dropped)


def pad_pairs(n_atoms: int, i: np.ndarray, j: np.ndarray, S: np.ndarray, d: np.ndarray, cutoff: float,
              sel: int | None, warn_dropped: bool = True, sort: bool = True) -> NeighborList:
    """Padded :class:`NeighborList` from flat pairs (centre i, neighbor j, cell shift S, distance d Å).

    With ``sort`` each row lists its closest neighbors first (and truncation to ``sel`` drops the
    farthest); ``sort=False`` needs the pairs grouped by ascending centre and keeps their order within a
    row when no row overflows, which is all a model needs (it sums over neighbors) and saves the sort;
    it still sorts when some row does not fit.
    """
    n = n_atoms
    i = np.asarray(i).astype(np.int64, copy=False)
    counts = np.bincount(i, minlength=n)
    width = int(counts.max(initial=0)) if sel is None else int(sel)
    if sort or counts.max(initial=0) > width:
        # sort by (center, distance) so each row lists its closest neighbors first
        # one float key (center-major, then distance) sorts ~3x faster than np.lexsort
        order = np.argsort(i * (2.0 * cutoff + 1.0) + d, kind="stable")
        i, j, S, d = i[order], j[order], S[order], d[order]
    starts = np.cumsum(counts) - counts
    slot = np.arange(len(i)) - starts.take(i)
    keep = slot < width
    dropped = int((~keep).sum())
    if dropped and warn_dropped:
        warnings.warn(
            f"{dropped} neighbor(s) within {cutoff} Å did not fit in sel={width} "
            f"(max {int(counts.max())} neighbors): the farthest were dropped; raise sel",
            stacklevel=3,
        )
    if dropped:
        i, j, S, d, slot = i[keep], j[keep], S[keep], d[keep], slot[keep]
    flat = i * width + slot  # np.put / flat rows: much faster than index[i, slot] = ... on large lists
    index = np.full((n, width), -1, dtype=np.int64)
    dist = np.full((n, width), np.inf)
    np.put(index, flat, j)
    np.put(dist, flat, d)
    shift = np.zeros((n * width, 3), dtype=np.int64)
    shift[flat] = S
    return NeighborList(index, shift.reshape(n, width, 3), index >= 0, dist, float(cutoff), dropped)
