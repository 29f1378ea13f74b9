"""Prepared frames (Graph, numpy, neighbor lists cached) and collated batches (Batch, torch, atoms concatenated)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from lam_lab.data.errors import DataError
from lam_lab.nn.neighbor_list import NeighborList


@dataclass
class Graph:
    """One frame prepared for a model: types (index into its type map), geometry (Å), neighbor lists, labels.

    ``neighbors`` holds one list per model cutoff, in the model's order. Labels come from one label
    set chosen at prepare time: energy eV, forces eV/Å [n, 3], virial eV [3, 3]; None when absent.
    """

    types: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    neighbors: list[NeighborList]
    energy: float | None = None
    forces: np.ndarray | None = None
    virial: np.ndarray | None = None
    weight: float = 1.0

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.types)


@dataclass
class NeighborBlock:
    """One neighbor list of a batch: global atom indices [N, sel] (-1 = padding), cell shifts [N, sel, 3], mask."""

    index: Tensor
    shift: Tensor
    mask: Tensor

    def to(self, device=None, dtype=None) -> "NeighborBlock":
        """Moved to ``device``; ``dtype`` applies to the (float) shifts."""
        return NeighborBlock(self.index.to(device), self.shift.to(device, dtype), self.mask.to(device))

    def trimmed(self) -> "NeighborBlock":
        """The same block without the trailing slots that are padding for every atom (saves work, same result)."""
        used = torch.nonzero(self.mask.any(dim=0))
        width = int(used.max()) + 1 if used.numel() else 0
        if width == self.index.shape[1]:
            return self
        return NeighborBlock(self.index[:, :width], self.shift[:, :width], self.mask[:, :width])


@dataclass
class Batch:
    """Frames of any sizes, their atoms concatenated: positions [N,3] Å, types [N], frame of each atom [N],
    n_atoms [B], cell [B,3,3] Å, pbc [B,3], one :class:`NeighborBlock` per model cutoff, and labels
    (energy [B] eV, forces [N,3] eV/Å, virial [B,3,3] eV; None when no frame has them) with per-frame
    ``has_*`` flags and loss weights [B]. Missing labels are stored as zeros (never NaN)."""

    positions: Tensor
    types: Tensor
    frame: Tensor
    n_atoms: Tensor
    cell: Tensor
    pbc: Tensor
    neighbors: list[NeighborBlock]
    energy: Tensor | None
    forces: Tensor | None
    virial: Tensor | None
    has_energy: Tensor
    has_forces: Tensor
    has_virial: Tensor
    weight: Tensor

    @property
    def n_frames(self) -> int:
        """Number of frames B."""
        return int(self.n_atoms.shape[0])

    @property
    def device(self) -> torch.device:
        """Where the tensors live."""
        return self.positions.device

    def to(self, device=None, dtype: torch.dtype | None = None) -> "Batch":
        """Moved to ``device`` with float tensors cast to ``dtype``.

        Energies stay float64: totals of 10⁴–10⁵ eV would lose meV in float32.
        """
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "neighbors":
                out[f.name] = [b.to(device, dtype) for b in v]
            elif v is None:
                out[f.name] = None
            elif f.name == "energy":
                out[f.name] = v.to(device)
            elif v.is_floating_point():
                out[f.name] = v.to(device, dtype)
            else:
                out[f.name] = v.to(device)
        return replace(self, **out)


def frame_types(numbers: np.ndarray, type_map: Sequence[str], source: str | None = None,
                frame: int | None = None) -> np.ndarray:
    """Index of each atom's element in ``type_map`` (int64); DataError (field "numbers") for elements not in it."""
    from ase.data import chemical_symbols

    lookup = {sym: k for k, sym in enumerate(type_map)}
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size == 0:
        return numbers.copy()
    uniq = np.unique(numbers)
    bad = [int(z) for z in uniq if not (0 < z < len(chemical_symbols)) or chemical_symbols[z] not in lookup]
    if bad:
        names = [chemical_symbols[z] if 0 < z < len(chemical_symbols) else f"Z={z}" for z in bad]
        raise DataError(
            f"element(s) {names} not in the model's type map {list(type_map)}; "
            "build the model with a type map that covers the data",
            source=source, frame=frame, field="numbers",
        )
    table = np.full(int(uniq.max()) + 1, -1, dtype=np.int64)
    for z in uniq:
        table[z] = lookup[chemical_symbols[z]]
    return table[numbers]


def collate(graphs: Sequence[Graph]) -> Batch:
    """Concatenate prepared frames into one :class:`Batch` (neighbor indices shifted to global atom indices)."""
    if not graphs:
        raise ValueError("cannot collate an empty list of graphs")
    n_lists = len(graphs[0].neighbors)
    for g in graphs:
        if len(g.neighbors) != n_lists or any(a.sel != b.sel for a, b in zip(g.neighbors, graphs[0].neighbors)):
            raise ValueError("graphs were prepared for different models (neighbor lists differ in number or sel)")
    counts = np.array([g.n_atoms for g in graphs], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    blocks = []
    for k in range(n_lists):
        idx = np.concatenate([np.where(g.neighbors[k].index >= 0, g.neighbors[k].index + o, -1)
                              for g, o in zip(graphs, offsets)])
        shift = np.concatenate([g.neighbors[k].shift for g in graphs]).astype(np.float64)
        blocks.append(NeighborBlock(torch.from_numpy(idx), torch.from_numpy(shift), torch.from_numpy(idx >= 0)))
    has_e = np.array([g.energy is not None for g in graphs])
    has_f = np.array([g.forces is not None for g in graphs])
    has_v = np.array([g.virial is not None for g in graphs])
    energy = torch.tensor([g.energy if g.energy is not None else 0.0 for g in graphs],
                          dtype=torch.float64) if has_e.any() else None
    forces = (torch.from_numpy(np.concatenate([g.forces if g.forces is not None else np.zeros((g.n_atoms, 3))
                                               for g in graphs]))
              if has_f.any() else None)
    virial = (torch.from_numpy(np.stack([g.virial if g.virial is not None else np.zeros((3, 3)) for g in graphs]))
              if has_v.any() else None)
    return Batch(
        positions=torch.from_numpy(np.concatenate([g.positions for g in graphs]).astype(np.float64)),
        types=torch.from_numpy(np.concatenate([g.types for g in graphs]).astype(np.int64)),
        frame=torch.from_numpy(np.repeat(np.arange(len(graphs)), counts)),
        n_atoms=torch.from_numpy(counts),
        cell=torch.from_numpy(np.stack([g.cell for g in graphs]).astype(np.float64)),
        pbc=torch.from_numpy(np.stack([g.pbc for g in graphs]).astype(bool)),
        neighbors=blocks,
        energy=energy,
        forces=forces,
        virial=virial,
        has_energy=torch.from_numpy(has_e),
        has_forces=torch.from_numpy(has_f),
        has_virial=torch.from_numpy(has_v),
        weight=torch.tensor([g.weight for g in graphs], dtype=torch.float64),
    )
