"""Type embedding f⁰_i = MLP(one_hot(Z_i)) (Eq. 8)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lam_lab.nn.mlp import MLP


class TypeEmbedding(nn.Module):
    """Eq. 8: f⁰_i = MLP(one_hot(Z_i)), one tanh layer of width ``dim`` over the model's type map.

    Only ``n_types`` distinct vectors exist, so the MLP runs on the identity matrix (one row per type)
    and atoms gather their row: the same result as embedding each atom's one-hot vector.
    """

    def __init__(self, n_types: int, dim: int, act: str = "tanh", dtype=None):
        super().__init__()
        self.n_types = n_types
        self.dim = dim
        self.net = MLP(n_types, [dim], act=act, resnet=False, dtype=dtype)

    @property
    def weight(self) -> Tensor:
        """The one layer's weight [dim, n_types]: column t acts on type t alone."""
        return self.net.layers[0].weight

    def table(self) -> Tensor:
        """Embedding of every type, [n_types, dim]."""
        w = self.weight
        return self.net(torch.eye(self.n_types, dtype=w.dtype, device=w.device))

    def forward(self, types: Tensor) -> Tensor:
        """f⁰ for each atom, [N, dim]."""
        return torch.index_select(self.table(), 0, types)
