"""The DPA-2 descriptor D_i = concat(f⁰_i, f²_i) (Eq. 7–10)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch
from torch import Tensor, nn

from lam_lab.nn.descriptor import Descriptor, register_descriptor
from lam_lab.nn.env_matrix import Environment, environment
from lam_lab.nn.mlp import Dense
from lam_lab.nn.repformer import RepformerLayer
from lam_lab.nn.repinit import Repinit
from lam_lab.nn.type_embedding import TypeEmbedding

if TYPE_CHECKING:
    from lam_lab.potential import ModelConfig


@register_descriptor("dpa2")
class DPA2Descriptor(Descriptor):
    """Eq. 7–10: f⁰ (Eq. 8) → repinit over r_c⁰ (Eq. 9, 16–17) → L repformer layers over r_c¹ (Eq. 10, 21–32).

    Needs two neighbor lists, in this order: the repinit list (r_c⁰, e.g. 6 Å) and the repformer list
    (r_c¹, e.g. 4 Å). Output [N, tebd_dim + g1_dim].
    """

    def __init__(self, config: "ModelConfig", n_types: int, dtype=None):
        super().__init__()
        c = config
        self.ranges = [(c.repinit_rcut_smth, c.repinit_rcut), (c.repformer_rcut_smth, c.repformer_rcut)]
        self.sels = [c.repinit_sel, c.repformer_sel]
        self.type_embedding = TypeEmbedding(n_types, c.tebd_dim, act=c.activation, dtype=dtype)
        self.repinit = Repinit(c.tebd_dim, c.repinit_neuron, c.repinit_axis, c.repinit_sel, act=c.activation,
                               add_f0=True, dtype=dtype, n_basis=c.radial_basis)
        self.proj_f = Dense(self.repinit.out_dim, c.g1_dim, dtype=dtype)  # Eq. 21
        self.proj_g = Dense(1, c.g2_dim, dtype=dtype)  # Eq. 22 (g¹_ij is the scalar s(r) of r_c¹)
        self.layers = nn.ModuleList(
            RepformerLayer(
                c.g1_dim, c.g2_dim, c.repformer_axis, c.repformer_sel, act=c.activation,
                loc_attn=c.loc_attn, loc_attn_heads=c.loc_attn_heads, loc_attn_hidden=c.loc_attn_hidden,
                g1g1=c.g1g1, g2_attn=c.g2_attn, g2_attn_heads=c.g2_attn_heads, g2_attn_hidden=c.g2_attn_hidden,
                shift=c.attn_shift, update_g=k < c.repformer_layers - 1, dtype=dtype,
            )
            for k in range(c.repformer_layers)
        )
        self.out_dim = c.tebd_dim + c.g1_dim
        # RMS of s(r) per neighbor list and centre type (set from data by Potential.fit_input_stats)
        self.init_input_stats(n_types, dtype)

    def repformer_inputs(self, f1: Tensor, env1: Environment) -> tuple[Tensor, Tensor, Tensor]:
        """Eq. 21–23: f^{2,0} = linear(f¹), g^{2,0} = linear(g¹_ij), h^{2,0} = h¹_ij (g¹, h¹ from r_c¹, Eq. 14–15)."""
        return self.proj_f(f1), self.proj_g(env1.g0[..., None]), env1.h0

    def forward(self, types: Tensor, rij: Sequence[Tensor], masks: Sequence[Tensor], indices: Sequence[Tensor],
                exact_hessian: bool = True) -> Tensor:
        """D_i for every atom from types [N] and, per neighbor list, displacements [N,S,3], masks and indices
        (every derivative is plain autograd, so ``exact_hessian`` changes nothing here)."""
        f0 = self.type_embedding(types)  # Eq. 8
        inv = self.inverse_scale(types)  # [2, N]
        env0 = environment(rij[0], masks[0], *self.ranges[0], inv_scale=inv[0])
        f1 = self.repinit(f0, env0, indices[0])  # Eq. 9
        env1 = environment(rij[1], masks[1], *self.ranges[1], inv_scale=inv[1])
        f, g, h = self.repformer_inputs(f1, env1)
        wh = env1.w[..., None] * h
        for layer in self.layers:
            f, g = layer(f, g, h, env1.w, wh, indices[1])
        return torch.cat([f0, f], dim=-1)  # Eq. 7

    def neighbor_norm_blocks(self) -> list[list[nn.Module]]:
        """Repinit normalises over the first list, every repformer layer over the second."""
        return [[self.repinit], list(self.layers)]

    def freeze_levels(self) -> int:
        """One level per repformer layer."""
        return len(self.layers)

    def frozen_modules(self, level: int) -> list[nn.Module]:
        """Type embedding and repinit, and for ``level`` k ≥ 1 the projections of Eq. 21–22 and the first k layers."""
        if not 0 <= level <= len(self.layers):
            raise ValueError(f"freeze={level}: the descriptor has {len(self.layers)} repformer layers")
        proj = [self.proj_f, self.proj_g] if level else []
        return [self.type_embedding, self.repinit] + proj + list(self.layers[:level])
