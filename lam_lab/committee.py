"""A committee of models read as one: energies and forces are the members' mean, their spread is the uncertainty.

Members trained alike from different seeds disagree most where none of them has data, so the spread
flags frames to distrust (DP-GEN's model deviation) and the mean is more accurate than any one member.
A committee evaluates like a :class:`~lam_lab.potential.Potential` (``ll.predict``, ``ll.LAMCalculator``,
``ll.evaluate``) and saves to one file; it is not trained as one: train or fine-tune its members.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from lam_lab.nn.batch import Batch
from lam_lab.potential import Potential, PotentialOutput


@dataclass
class CommitteeOutput(PotentialOutput):
    """The members' mean (eV, eV/Å, eV) plus their spread: energy std per frame [B] (eV) and per-atom force
    deviation [N] (eV/Å), sqrt of the members' mean squared distance from the mean force (DP-GEN's ε_F,i)."""

    energy_std: Tensor | None = None
    force_deviation: Tensor | None = None


class Committee(nn.Module):
    """Two or more :class:`Potential` members with one type map, heads, cutoffs and Δ baseline."""

    def __init__(self, members: Sequence[Potential]):
        super().__init__()
        members = list(members)
        if len(members) < 2 or not all(isinstance(m, Potential) for m in members):
            kinds = [type(m).__name__ for m in members]
            raise ValueError(f"a committee needs two or more Potential members, got {kinds}")
        first = members[0]
        for i, m in enumerate(members[1:], 1):
            for what, mine, theirs in (("type map", m.type_map, first.type_map), ("heads", m.heads, first.heads),
                                       ("cutoffs (Å, sel)", m.cutoffs(), first.cutoffs()),
                                       ("Δ baseline", _delta(m), _delta(first))):
                if mine != theirs:
                    raise ValueError(f"committee member {i} has {what} {mine}, member 0 has {theirs}")
        self.members = nn.ModuleList(members)
        extra = (first.metadata or {}).get("extra") or {}
        self.metadata: dict[str, Any] = {"extra": {k: extra[k] for k in ("delta",) if k in extra}}

    @property
    def type_map(self) -> list[str]:
        return self.members[0].type_map

    @property
    def heads(self) -> list[str]:
        return self.members[0].heads

    @property
    def config(self):
        """Member 0's config (a committee's members share type map and cutoffs, not necessarily every option)."""
        return self.members[0].config

    @property
    def dtype(self) -> torch.dtype:
        return self.members[0].dtype

    @property
    def device(self) -> torch.device:
        return self.members[0].device

    def cutoffs(self) -> list[tuple[float, int]]:
        """(rcut Å, sel) of the neighbor lists every member reads."""
        return self.members[0].cutoffs()

    def prepare(self, frame, label: str | None = None, **kwargs: Any):
        """A graph of ``frame`` every member can read (see :meth:`Potential.prepare`)."""
        return self.members[0].prepare(frame, label, **kwargs)

    def forward(self, batch: Batch, head: str | None = None, forces: bool = True, virial: bool = False,
                create_graph: bool = False, exact_hessian: bool = True) -> CommitteeOutput:
        """The members' mean energy [B], atomic energies [N], forces [N,3] and virial, and their spread."""
        outs = [m(batch, head=head, forces=forces, virial=virial, create_graph=create_graph,
                  exact_hessian=exact_hessian) for m in self.members]
        energies = torch.stack([o.energy for o in outs])
        atomic = torch.stack([o.atomic_energy for o in outs]).mean(0)
        out = CommitteeOutput(energy=energies.mean(0), atomic_energy=atomic, energy_std=energies.std(0, unbiased=False))
        if forces:
            f = torch.stack([o.forces for o in outs])
            out.forces = f.mean(0)
            out.force_deviation = force_deviation(f)
        if virial:
            out.virial = torch.stack([o.virial for o in outs]).mean(0)
        return out

    def extra_repr(self) -> str:
        return f"members={len(self.members)}, type_map={self.type_map}, heads={self.heads}"


def force_deviation(forces: Any) -> Any:
    """Per-atom spread [N] (eV/Å) of M members' forces [M, N, 3] (torch or numpy): sqrt(mean_m |F_m,i − F̄_i|²)."""
    return (((forces - forces.mean(0)) ** 2).sum(-1).mean(0)) ** 0.5


def _delta(model: Potential) -> Any:
    return ((model.metadata or {}).get("extra") or {}).get("delta")
