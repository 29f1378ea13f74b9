"""Exponential moving average of model weights (used for validation, checkpoints, the returned model)."""

from __future__ import annotations

import copy
from typing import Any

import torch


class EMA:
    """A frozen copy of the model whose weights follow ``w_ema ← d·w_ema + (1−d)·w``.

    The decay warms up as ``d_t = min(decay, (1 + t)/(10 + t))`` so that early in a short run the
    average is not dominated by the random initial weights.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = float(decay)
        self.updates = 0
        self.model = copy.deepcopy(model)
        self.model.requires_grad_(False)
        self.model.eval()

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Move the average one step towards ``model``'s current weights."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        src = model.state_dict()
        floats_dst, floats_src = [], []
        for name, dst in self.model.state_dict().items():
            s = src[name]
            if dst.is_floating_point():
                floats_dst.append(dst)
                floats_src.append(s.detach())
            else:
                dst.copy_(s)
        if floats_dst:
            torch._foreach_lerp_(floats_dst, floats_src, 1.0 - d)

    def state_dict(self) -> dict[str, Any]:
        """Weights and update count."""
        return {"weights": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore weights and update count."""
        self.model.load_state_dict(state["weights"])
        self.updates = int(state["updates"])
