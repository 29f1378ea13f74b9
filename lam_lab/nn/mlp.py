"""Dense layers and the tanh MLPs used by the type embedding, the embedding nets and the fitting nets."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

ACTIVATIONS = {"tanh": torch.tanh, "silu": nn.functional.silu, "gelu": nn.functional.gelu}


def activation(name: str):
    """The activation function called ``name`` (tanh, silu, gelu)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


class Dense(nn.Linear):
    """``y = x Wᵀ + b`` with Xavier-normal weights (std √(2/(in+out))) and small normal biases.

    A plain linear map (the paper's ``linear``); biases start non-zero so that tanh units begin at
    different working points, as in DeePMD-kit's nets.
    """

    def __init__(self, n_in: int, n_out: int, bias: bool = True, bias_std: float = 0.1, dtype=None):
        super().__init__(n_in, n_out, bias=bias, dtype=dtype)
        with torch.no_grad():
            self.weight.normal_(0.0, math.sqrt(2.0 / (n_in + n_out)))
            if self.bias is not None:
                self.bias.normal_(0.0, bias_std) if bias_std > 0 else self.bias.zero_()


class MLP(nn.Module):
    """``act(Dense)`` stacked over ``neurons``; identity skips where a layer keeps or doubles its width.

    The paper only says "MLP"; the skips follow DeePMD-kit's embedding/fitting nets
    (``y = x + act(Wx+b)`` when widths match, ``y = [x, x] + act(Wx+b)`` when the width doubles),
    which makes deep tanh stacks train well. With ``resnet_dt`` the skipped branch is scaled by a
    learnable per-unit step (DeePMD's "timestep", initialised at 0.1). ``last_linear`` appends a
    bias-free-activation output layer (used by the fitting net to produce one number per atom).
    """

    def __init__(
        self,
        n_in: int,
        neurons: Sequence[int],
        act: str = "tanh",
        resnet: bool = True,
        resnet_dt: bool = False,
        n_out: int | None = None,
        dtype=None,
    ):
        super().__init__()
        self.act_name = act
        self._act = activation(act)
        self.layers = nn.ModuleList()
        self.skip: list[str] = []
        dts = []
        width = n_in
        for n in neurons:
            self.layers.append(Dense(width, n, dtype=dtype))
            kind = "none"
            if resnet and n == width:
                kind = "same"
            elif resnet and n == 2 * width:
                kind = "double"
            self.skip.append(kind)
            init = torch.full((n,), 0.1, dtype=dtype) + 0.001 * torch.randn(n, dtype=dtype) if resnet_dt else None
            dts.append(nn.Parameter(init) if resnet_dt else None)
            width = n
        self.dts = nn.ParameterList([d for d in dts if d is not None])
        self._dt_index = []
        k = 0
        for d in dts:
            self._dt_index.append(k if d is not None else -1)
            k += d is not None
        self.out = Dense(width, n_out, bias_std=0.0, dtype=dtype) if n_out is not None else None
        self.n_out = n_out if n_out is not None else width

    def forward(self, x: Tensor) -> Tensor:
        """Apply the stack to the last axis of ``x``."""
        for layer, kind, di in zip(self.layers, self.skip, self._dt_index):
            y = self._act(layer(x))
            if di >= 0:
                y = y * self.dts[di]
            if kind == "same":
                x = x + y
            elif kind == "double":
                x = torch.cat([x, x], dim=-1) + y
            else:
                x = y
        return self.out(x) if self.out is not None else x

    def steps(self) -> list[Tensor | None]:
        """The per-unit step ("timestep") of each layer's skipped branch, None where the layer has none."""
        return [self.dts[di] if di >= 0 else None for di in self._dt_index]
