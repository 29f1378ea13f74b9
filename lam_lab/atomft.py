"""AtomFT-style correction (seed 002, Eq. 14): E = E_base + α Σ_i tanh(O_i), base frozen, energies in eV.

The base is a trained head of a :class:`~lam_lab.potential.Potential` (its descriptor and fitting net).
A small readout net reads the base's own atomic features D_i (AtomFT's "atomic features" from the
global model) and gives O_i; the bounded term α·tanh(O_i) (α in eV per atom) patches the base where
the downstream labels differ from it, so |E − E_base| ≤ α·N by construction. Only the readout trains.

An AtomFT head is an ordinary head whose fitting module is an :class:`AtomFTFitting`, so training,
evaluation, :class:`~lam_lab.md.calculator.LAMCalculator` and ``models.save``/``load`` (which store
:func:`atomft_spec` beside the weights) work unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import Tensor, nn

from lam_lab.nn.fitting import FittingNet
from lam_lab.nn.mlp import MLP

if TYPE_CHECKING:
    from lam_lab.potential import Potential

DEFAULT_NEURON = (64, 64)


class AtomFTFitting(nn.Module):
    """E_i = base(D_i, Z_i) + α·tanh(O_i) with O_i = readout(D_i); eV. The base is frozen.

    The readout's output layer starts at zero, so a new correction starts as the base model exactly.
    """

    def __init__(self, base: FittingNet, n_in: int, alpha: float = 0.1, neuron: Sequence[int] = DEFAULT_NEURON,
                 act: str = "tanh", dtype: torch.dtype | None = None):
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"AtomFT alpha (eV per atom) must be > 0, got {alpha}")
        self.base = base
        self.base.requires_grad_(False)
        self.alpha = float(alpha)
        self.neuron = tuple(int(n) for n in neuron)
        self.readout = MLP(n_in, self.neuron, act=act, resnet=True, n_out=1, dtype=dtype)
        with torch.no_grad():
            self.readout.out.weight.zero_()

    @property
    def energy_bias(self) -> Tensor:
        """The base head's per-element bias [n_types] (eV); Eq. 6 refits act on it."""
        return self.base.energy_bias

    def correction(self, descriptor: Tensor) -> Tensor:
        """α·tanh(O_i) per atom, [N] float64 eV, each bounded by α."""
        return self.alpha * torch.tanh(self.readout(descriptor).squeeze(-1).to(torch.float64))

    def forward(self, descriptor: Tensor, types: Tensor) -> Tensor:
        """Atomic energies of base + correction, [N] float64 eV."""
        return self.base(descriptor, types) + self.correction(descriptor)


def attach_correction(model: "Potential", head: str, alpha: float = 0.1,
                      neuron: Sequence[int] = DEFAULT_NEURON) -> "Potential":
    """Turn ``head`` of ``model`` (in place) into base + α·Σ tanh(O_i); freeze everything but the readout.

    The descriptor and every other head are frozen too: the base is the whole model as it stands.
    """
    from lam_lab.potential import resolve_head

    k = resolve_head(model, head)
    fit = model.fittings[k]
    if isinstance(fit, AtomFTFitting):
        raise ValueError(f"head {head!r} already carries an AtomFT correction")
    model.requires_grad_(False)
    model.fittings[k] = AtomFTFitting(fit, model.descriptor.out_dim, alpha, neuron, act=model.config.activation,
                                      dtype=model.dtype).to(model.device)
    return model


def atomft_spec(model: nn.Module) -> dict[str, dict[str, Any]]:
    """{head: {"alpha": eV, "neuron": [...]}} of the AtomFT heads of ``model`` (empty if none)."""
    heads = getattr(model, "heads", [])
    fittings = getattr(model, "fittings", [])
    return {h: {"alpha": f.alpha, "neuron": list(f.neuron)}
            for h, f in zip(heads, fittings) if isinstance(f, AtomFTFitting)}


def apply_atomft_spec(model: "Potential", spec: dict[str, dict[str, Any]]) -> "Potential":
    """Give a freshly built model the AtomFT heads of a saved one (before its weights are loaded)."""
    for head, s in spec.items():
        attach_correction(model, head, float(s["alpha"]), tuple(s.get("neuron", DEFAULT_NEURON)))
    return model


def is_atomft(model: nn.Module, head: str | None = None) -> bool:
    """True if ``head`` (or any head) of ``model`` carries an AtomFT correction."""
    spec = atomft_spec(model)
    return bool(spec) if head is None else head in spec
