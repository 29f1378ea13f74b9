"""Smooth switch (Eq. 13), switched inverse distance (Eq. 12), environment matrix (Eq. 11) and g⁰/h⁰ (Eq. 14–15).

All functions work on dense padded tensors ``[n_atoms, sel, ...]``; padded slots (``mask`` False)
get w = s = 0 and zero gradient, so they never contribute.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def switch(r: Tensor, rcut_smth: float, rcut: float) -> Tensor:
    """Eq. 13: C² switch w(r) = 1 below ``rcut_smth``, u³(−6u²+15u−10)+1 between, 0 beyond ``rcut`` (Å)."""
    if not rcut_smth < rcut:
        raise ValueError(f"rcut_smth ({rcut_smth}) must be smaller than rcut ({rcut})")
    u = ((r - rcut_smth) * (1.0 / (rcut - rcut_smth))).clamp(0.0, 1.0)
    return u * u * u * (u * (15.0 - 6.0 * u) - 10.0) + 1.0


def switched_inverse_distance(r: Tensor, w: Tensor) -> Tensor:
    """Eq. 12: s(r) = w(r)/r (1/Å)."""
    return w / r


@dataclass
class Environment:
    """One neighbor list's geometry: distance r [N,S] (Å; rcut+1 for padding), switch w, s (Eq. 12), r̃ [N,S,4]."""

    r: Tensor
    w: Tensor
    s: Tensor
    env: Tensor
    mask: Tensor

    @property
    def g0(self) -> Tensor:
        """Eq. 14: the invariant pair representation g⁰_ij = s(r_ij), [N, S]."""
        return self.env[..., 0]

    @property
    def h0(self) -> Tensor:
        """Eq. 15: the equivariant pair representation h⁰_ij = s(r_ij)·r_ij/|r_ij|, [N, S, 3]."""
        return self.env[..., 1:]


def displacements(positions: Tensor, cell_of_atom: Tensor, index: Tensor, shift: Tensor, mask: Tensor) -> Tensor:
    """r_ij = pos[j] − pos[i] + shift_ij · cell (Å), [N, S, 3]; inside the autograd graph.

    ``cell_of_atom`` is the cell of each centre atom's frame [N, 3, 3]. Padded slots point at atom 0;
    their (meaningless) vectors are replaced in :func:`environment` through ``mask``.
    """
    safe = index.clamp(min=0)
    rj = torch.index_select(positions, 0, safe.reshape(-1)).view(*index.shape, 3)
    return rj - positions[:, None, :] + shift @ cell_of_atom


def environment(rij: Tensor, mask: Tensor, rcut_smth: float, rcut: float,
                inv_scale: Tensor | None = None) -> Environment:
    """Eq. 11: r̃_ij = s(r_ij)·(1, x/r, y/r, z/r) from displacements [N,S,3]; zero rows for padding.

    The paper writes r_ij = r_i − r_j; we use r_j − r_i. The sign flips h but every use of h is a
    product of two h's (symmetrisation, gate), so the model is the same.
    ``inv_scale`` [N] divides r̃ by a per-centre-type data scale (DeePMD's ``dstd``; the paper leaves
    it out). It is a pure reparametrisation — every use of r̃ is linear in it up to the following
    learnable layers — that makes the features O(1) at initialisation; w is not scaled, so
    smoothness is untouched.
    """
    # padded slots get a dummy vector beyond the cutoff: w = 0 there and the gradient is exactly zero
    dummy = torch.tensor([rcut + 1.0, 0.0, 0.0], dtype=rij.dtype, device=rij.device)
    rij = torch.where(mask[..., None], rij, dummy)
    r = torch.linalg.vector_norm(rij, dim=-1)
    w = switch(r, rcut_smth, rcut)
    s = switched_inverse_distance(r, w)
    env = torch.cat([s[..., None], rij * (s / r)[..., None]], dim=-1)
    if inv_scale is not None:
        env = env * inv_scale[:, None, None]
    return Environment(r=r, w=w, s=s, env=env, mask=mask)
