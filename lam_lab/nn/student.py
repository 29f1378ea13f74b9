"""The distillation student: DPA-1 without attention (DeepPot-SE with a type embedding), one neighbor list.

D_i = concat(f⁰_i, symm(g_ij, r̃_ij)) with a two-body embedding g_ij = g(r_ij; Z_i, Z_j) and the
symmetrisation of Eq. 18–20. Two embeddings:

- ``"basis"`` (default): g_ij = Σ_k φ_k(r_ij) C[Z_i, Z_j, k, :] with K fixed cubic B-splines φ_k. This
  is the form a *compressed* DeePMD model evaluates (its tabulated embedding is piecewise polynomial
  too), but trained directly: because g is linear in C, the moment of Eq. 19 becomes
  p_i = C[Z_i]ᵀ · Σ_j w_ij φ(r_ij) ⊗ onehot(Z_j) ⊗ r̃_ij, so no per-neighbor network runs at all.
- ``"mlp"``: g^rt of Eq. 16 (an MLP of concat(f⁰_i, f⁰_j, s_ij)), i.e. the repinit block alone — the
  uncompressed DPA-1-without-attention; the same per-neighbor network cost as dpa2's repinit, so
  only ~2× cheaper than dpa2-small instead of ~6×.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch
from torch import Tensor, nn

from lam_lab.nn.env_matrix import Environment, environment
from lam_lab.nn.repinit import Repinit
from lam_lab.nn.symmetrization import symm_contract, symm_split
from lam_lab.nn.type_embedding import TypeEmbedding

if TYPE_CHECKING:
    from lam_lab.potential import ModelConfig


def bspline_weights(r: Tensor, rcut: float, n_basis: int) -> tuple[Tensor, Tensor]:
    """Uniform cubic B-splines on [0, rcut] (Å): the 4 non-zero φ_k(r) and their k, each [N, S, 4].

    φ_k are C² and sum to 1, so g is C² in r (the switch is C² too); only 4 are non-zero at any r,
    which is what makes the student cheap.
    """
    n_int = n_basis - 3
    h = rcut / n_int
    x = (r / h).clamp(0.0, n_int - 1e-6)  # r ≥ rcut only happens where w = 0
    k = x.detach().floor()
    u = x - k
    u2 = u * u
    u3 = u2 * u
    v = 1.0 - u
    b0, b1, b3 = v * v * v * (1.0 / 6.0), 0.5 * u3 - u2 + 2.0 / 3.0, u3 * (1.0 / 6.0)
    b = torch.stack([b0, b1, 1.0 - b0 - b1 - b3, b3], dim=-1)  # the four sum to 1
    idx = k.long()[..., None] + torch.arange(4, device=r.device)
    return b, idx


class BasisTwoBody(nn.Module):
    """symm(g_ij, r̃_ij) (Eq. 18–20) for g_ij = Σ_k φ_k(r_ij) C[Z_i, Z_j, k, :], [N, width·axis]."""

    def __init__(self, n_types: int, n_basis: int, width: int, axis: int, sel: int, rcut: float, dtype=None):
        super().__init__()
        if axis > width:
            raise ValueError(f"student axis_neuron {axis} exceeds the embedding width {width}")
        if n_basis < 4:
            raise ValueError(f"student_basis must be at least 4 (cubic B-splines), got {n_basis}")
        self.n_types, self.n_basis, self.width, self.axis, self.sel, self.rcut = n_types, n_basis, width, axis, sel, rcut
        # C[Z_i] as a [n_types·K, width] block per centre type; O(1) embeddings at init
        self.coef = nn.Parameter(torch.randn(n_types, n_types * n_basis, width, dtype=dtype))
        self.out_dim = width * axis

    def moments(self, types: Tensor, env: Environment, index: Tensor) -> Tensor:
        """Eq. 19 for this g: p_i = (1/N^m) Σ_j w_ij g_ij ⊗ r̃_ij = C[Z_i]ᵀ q_i, [N, width, 4].

        q_i[(Z_j, k), β] = (1/N^m) Σ_j w_ij φ_k(r_ij) r̃_ij,β is scattered straight from the 4 non-zero φ_k.
        """
        n, s = index.shape
        b, k = bspline_weights(env.r, self.rcut, self.n_basis)  # [N, S, 4]
        t_j = torch.index_select(types, 0, index.clamp(min=0).reshape(-1)).view(n, s)
        row = t_j[..., None] * self.n_basis + k  # basis row (Z_j, k) of each non-zero φ, [N, S, 4]
        # a[i, (Z_j,k), j] = w_ij φ_k(r_ij): 4 non-zeros per column, then one batched GEMM with r̃
        a = torch.zeros(n, self.n_types * self.n_basis, s, dtype=b.dtype, device=b.device)
        a = a.scatter_add(1, row.transpose(1, 2), (b * env.w[..., None]).transpose(1, 2))
        q_t = (env.env.transpose(1, 2) @ a.transpose(1, 2)) * (1.0 / self.sel)  # qᵀ [N, 4, T·K] (faster GEMM shape)
        # C[Z_i]ᵀ q_i for all centre types in one GEMM, then each atom keeps its own type's block
        t, c, m = self.coef.shape
        all_types = (q_t.reshape(n * 4, c) @ self.coef.permute(1, 0, 2).reshape(c, t * m)).view(n, 4, t, m)
        mine = torch.gather(all_types, 2, types.view(n, 1, 1, 1).expand(n, 4, 1, m)).squeeze(2)  # [N, 4, width]
        return mine.transpose(1, 2)

    def forward(self, types: Tensor, env: Environment, index: Tensor) -> Tensor:
        """Eq. 18–20 on the basis moments."""
        p = self.moments(types, env, index)
        return symm_contract(p, symm_split(p, self.axis))


class StudentDescriptor(nn.Module):
    """D_i = concat(f⁰_i, symm(g_ij, r̃_ij)) over one cutoff; the ``repinit_*`` config fields set cutoff,
    sel, embedding width (last of ``repinit_neuron``) and axis; ``student_embedding`` picks the embedding."""

    def __init__(self, config: "ModelConfig", n_types: int, dtype=None):
        super().__init__()
        c = config
        self.ranges = [(c.repinit_rcut_smth, c.repinit_rcut)]
        self.sels = [c.repinit_sel]
        self.type_embedding = TypeEmbedding(n_types, c.tebd_dim, act=c.activation, dtype=dtype)
        if c.student_embedding == "basis":
            self.two_body = BasisTwoBody(n_types, c.student_basis, c.repinit_neuron[-1], c.repinit_axis,
                                         c.repinit_sel, c.repinit_rcut, dtype=dtype)
        elif c.student_embedding == "mlp":
            self.two_body = Repinit(c.tebd_dim, c.repinit_neuron, c.repinit_axis, c.repinit_sel,
                                    act=c.activation, add_f0=False, dtype=dtype)
        else:
            raise ValueError(f"student_embedding must be 'basis' or 'mlp', got {c.student_embedding!r}")
        self.kind = c.student_embedding
        self.out_dim = c.tebd_dim + self.two_body.out_dim
        # RMS of s(r) per centre type (set from data by Potential.fit_input_stats)
        self.register_buffer("env_scale", torch.ones(1, n_types, dtype=dtype))
        self.register_buffer("env_scale_fitted", torch.tensor(False))

    def cutoffs(self) -> list[tuple[float, int]]:
        """(rcut Å, sel) of its single neighbor list."""
        return [(self.ranges[0][1], self.sels[0])]

    def forward(self, types: Tensor, rij: Sequence[Tensor], masks: Sequence[Tensor], indices: Sequence[Tensor]) -> Tensor:
        """D_i for every atom, [N, tebd_dim + width·axis]."""
        f0 = self.type_embedding(types)
        inv = 1.0 / torch.index_select(self.env_scale, 1, types)
        env = environment(rij[0], masks[0], *self.ranges[0], inv_scale=inv[0])
        if self.kind == "basis":
            d = self.two_body(types, env, indices[0])
        else:
            d = self.two_body(f0, env, indices[0])
        return torch.cat([f0, d], dim=-1)
