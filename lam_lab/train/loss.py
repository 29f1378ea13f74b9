"""Loss of Eq. 38/44 (energy per atom, forces, virial) with the prefactor schedule of Eq. 41."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from lam_lab.train.config import LossConfig

if TYPE_CHECKING:
    from lam_lab.nn.batch import Batch
    from lam_lab.potential import PotentialOutput


@dataclass(frozen=True)
class Prefactors:
    """Energy, force and virial prefactors at one step (dimensionless)."""

    e: float
    f: float
    v: float


def prefactors(cfg: LossConfig, decay: float) -> Prefactors:
    """Eq. 41: ``p(t) = p_start·γ(t)/γ0 + p_limit·(1 − γ(t)/γ0)``, with ``decay`` = γ(t)/γ0."""
    mix = lambda start, limit: start * decay + limit * (1.0 - decay)  # noqa: E731
    return Prefactors(
        mix(cfg.pf_e_start, cfg.pf_e_limit), mix(cfg.pf_f_start, cfg.pf_f_limit), mix(cfg.pf_v_start, cfg.pf_v_limit)
    )


@dataclass
class LossTerms:
    """The total loss (a tensor to backpropagate) and its parts as plain numbers.

    ``e_sq`` is Σ over frames of (ΔE/N)² (eV²/atom²), ``f_sq`` Σ over force components of ΔF²
    ((eV/Å)²), ``v_sq`` Σ of (ΔΞ/N)² (eV²); ``n_e``/``n_f``/``n_v`` count the terms, so running
    RMSEs are ``sqrt(Σ e_sq / Σ n_e)`` across batches.
    """

    total: torch.Tensor
    energy: float  # weighted energy term of the loss (without prefactor)
    force: float
    virial: float
    e_sq: float
    n_e: int
    f_sq: float
    n_f: int
    v_sq: float
    n_v: int


def _frame_mean(values: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean over the frames where ``mask`` holds (0 when none does)."""
    w = weight * mask.to(weight.dtype)
    return (values * w).sum() / w.sum().clamp_min(1e-12)


def compute_loss(out: "PotentialOutput", batch: "Batch", pf: Prefactors, cfg: LossConfig) -> LossTerms:
    """Eq. 38 for one batch: frame-averaged energy-per-atom, force and (if labelled) virial terms."""
    n = batch.n_atoms.to(out.energy.dtype)
    n_frames = len(n)
    weight = getattr(batch, "weight", None)
    weight = torch.ones_like(n) if weight is None else weight.to(n.dtype)
    zero = out.energy.sum() * 0.0
    total = zero
    e_term = f_term = v_term = zero.detach()
    e_sq = f_sq = v_sq = 0.0
    n_e = n_f = n_v = 0

    if batch.energy is not None and pf.e != 0 and bool(batch.has_energy.any()):
        de = out.energy - batch.energy.to(out.energy.dtype)
        per_atom_sq = (de / n) ** 2
        # Eq. 38 writes |ΔE|²/N; the per-atom form (ΔE/N)² keeps big and small frames on one scale
        per_frame = per_atom_sq if cfg.energy_norm == "per_atom" else de**2 / n
        e_term = _frame_mean(per_frame, batch.has_energy, weight)
        total = total + pf.e * e_term
        sel = batch.has_energy
        e_sq, n_e = float(per_atom_sq.detach()[sel].sum()), int(sel.sum())

    if batch.forces is not None and out.forces is not None and bool(batch.has_forces.any()):
        df2 = ((out.forces - batch.forces.to(out.forces.dtype)) ** 2).sum(1)  # [N]
        per_frame = torch.zeros(n_frames, dtype=df2.dtype, device=df2.device).index_add_(0, batch.frame, df2) / (3 * n)
        f_term = _frame_mean(per_frame, batch.has_forces, weight)
        if pf.f != 0:
            total = total + pf.f * f_term
        atom_ok = batch.has_forces[batch.frame]
        f_sq, n_f = float(df2.detach()[atom_ok].sum()), 3 * int(atom_ok.sum())

    if batch.virial is not None and out.virial is not None and bool(batch.has_virial.any()):
        dv = ((out.virial - batch.virial.to(out.virial.dtype)) / n[:, None, None]) ** 2
        per_frame = dv.reshape(n_frames, 9).mean(1)
        v_term = _frame_mean(per_frame, batch.has_virial, weight)
        if pf.v != 0:
            total = total + pf.v * v_term
        sel = batch.has_virial
        v_sq, n_v = float(dv.detach()[sel].sum()), 9 * int(sel.sum())

    return LossTerms(total, float(e_term.detach()), float(f_term.detach()), float(v_term.detach()), e_sq, n_e, f_sq,
                     n_f, v_sq, n_v)
