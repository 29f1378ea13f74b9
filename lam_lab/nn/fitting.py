"""Per-task fitting net: E_i = MLP(D_i) + e_bias(Z_i) (Eq. 4–5), one per head."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from lam_lab.nn.mlp import MLP


class FittingNet(nn.Module):
    """Eq. 4–5: atomic energy (eV) = MLP(D_i) + e_bias(Z_i); ``energy_bias`` [n_types] is a float64 buffer.

    The MLP runs in the model's dtype; the bias and the sum are float64 because total energies of
    large systems (10⁴–10⁵ eV) would lose meV in float32.
    """

    def __init__(self, n_in: int, neuron: Sequence[int], n_types: int, act: str = "tanh",
                 resnet_dt: bool = True, dtype=None):
        super().__init__()
        self.mlp = MLP(n_in, neuron, act=act, resnet=True, resnet_dt=resnet_dt, n_out=1, dtype=dtype)
        self.register_buffer("energy_bias", torch.zeros(n_types, dtype=torch.float64))

    def forward(self, descriptor: Tensor, types: Tensor) -> Tensor:
        """E_i for every atom, [N] float64 eV."""
        return self.mlp(descriptor).squeeze(-1).to(torch.float64) + self.energy_bias.to(torch.float64)[types]
