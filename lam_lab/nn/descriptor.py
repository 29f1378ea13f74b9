"""The descriptor protocol every model kind implements, and the registry ``ModelConfig.kind`` -> class.

A descriptor maps atom types and, per neighbor list, displacements r_ij [N, S, 3] with masks and
neighbor indices to D_i [N, out_dim]; :class:`lam_lab.potential.Potential` puts fitting heads on top.
Everything outside ``lam_lab.nn`` (fine-tuning, type extension, the trainer) talks to a descriptor
through this class only:

- cutoffs: ``ranges`` (r_smth, r_c) and ``sels`` per neighbor list, :meth:`Descriptor.cutoffs`;
- ``forward(types, rij, masks, indices, exact_hessian=...)``: options are arguments, never state set
  on a shared module per call (several threads may evaluate one model);
- input statistics fitted from data: :meth:`Descriptor.set_input_stats`, ``stats_fitted``;
- freeze levels: :meth:`Descriptor.freeze_levels`, :meth:`Descriptor.frozen_modules`;
- type extension: :meth:`Descriptor.type_weight`, :meth:`Descriptor.keep_input_stats`.

A new kind subclasses :class:`Descriptor`, decorates itself with ``@register_descriptor("name")`` and
is built by ``ModelConfig(kind="name")`` (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Callable, ClassVar, Sequence

import numpy as np
import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from lam_lab.nn.type_embedding import TypeEmbedding
    from lam_lab.potential import ModelConfig

_REGISTRY: dict[str, type["Descriptor"]] = {}
# modules whose import registers the built-in kinds
_BUILTIN = {"dpa2": "lam_lab.nn.dpa2", "student": "lam_lab.nn.student"}


class Descriptor(nn.Module, ABC):
    """Base of every descriptor kind: D_i [N, out_dim] from types and neighbor lists (see the module docstring).

    Subclasses set ``ranges``, ``sels``, ``out_dim`` and ``type_embedding`` (f⁰, Eq. 8) in ``__init__`` and
    call :meth:`init_input_stats`; they implement ``forward``, :meth:`neighbor_norm_blocks` and
    :meth:`frozen_modules`.
    """

    kind: ClassVar[str] = ""
    ranges: list[tuple[float, float]]  # (r_smth, r_c) of each neighbor list, Å
    sels: list[int]  # padded width of each neighbor list
    out_dim: int
    type_embedding: "TypeEmbedding"

    # -- cutoffs ------------------------------------------------------------------------------------------
    def cutoffs(self) -> list[tuple[float, int]]:
        """(r_c Å, sel) of every neighbor list the descriptor needs, in its order."""
        return [(rc, sel) for (_, rc), sel in zip(self.ranges, self.sels)]

    @abstractmethod
    def forward(self, types: Tensor, rij: Sequence[Tensor], masks: Sequence[Tensor], indices: Sequence[Tensor],
                exact_hessian: bool = True) -> Tensor:
        """D_i [N, out_dim]. ``exact_hessian=False``: a graph of the derivatives kept for training may be exact
        only with respect to the parameters (kinds without a hand-written derivative ignore it)."""

    # -- input statistics ---------------------------------------------------------------------------------
    def init_input_stats(self, n_types: int, dtype=None) -> None:
        """Buffers of the input statistics: RMS of s(r) per neighbor list and centre type, and whether fitted."""
        self.register_buffer("env_scale", torch.ones(len(self.sels), n_types, dtype=dtype))
        self.register_buffer("env_scale_fitted", torch.tensor(False))

    @property
    def stats_fitted(self) -> bool:
        """Whether :meth:`set_input_stats` ran (a fresh model's statistics are ones)."""
        return bool(self.env_scale_fitted)

    def inverse_scale(self, types: Tensor) -> Tensor:
        """1 / RMS of s(r) of each atom's centre type, [n_lists, N]."""
        return 1.0 / torch.index_select(self.env_scale, 1, types)

    @abstractmethod
    def neighbor_norm_blocks(self) -> list[list[nn.Module]]:
        """Per neighbor list, the blocks whose N^m (Eq. 19, 25: an ``n_norm`` buffer and ``sel``) data may set."""

    @torch.no_grad()
    def set_input_stats(self, scale: np.ndarray, mean_neighbors: np.ndarray | None = None, floor: float = 1.0) -> None:
        """Store the RMS of s(r) [n_lists, n_types] (1/Å) and, with ``mean_neighbors`` [n_lists], N^m of every
        block as that mean clipped to [floor, sel]."""
        self.env_scale.copy_(torch.as_tensor(scale, dtype=self.env_scale.dtype))
        self.env_scale_fitted.fill_(True)
        if mean_neighbors is None:
            return
        for k, blocks in enumerate(self.neighbor_norm_blocks()):
            for m in blocks:
                m.n_norm.fill_(float(min(max(mean_neighbors[k], floor), m.sel)))

    @torch.no_grad()
    def keep_input_stats(self, old: "Descriptor", n_types: int) -> None:
        """Take back the statistics of ``old`` for its ``n_types`` leading types and its N^m (type extension:
        the pre-trained descriptor's normalisation stays, only new types get statistics from new data)."""
        self.env_scale[:, :n_types] = old.env_scale[:, :n_types]
        for new_blocks, old_blocks in zip(self.neighbor_norm_blocks(), old.neighbor_norm_blocks()):
            for b_new, b_old in zip(new_blocks, old_blocks):
                b_new.n_norm.copy_(b_old.n_norm)

    # -- freezing and type extension ----------------------------------------------------------------------
    def freeze_levels(self) -> int:
        """Largest level :meth:`frozen_modules` accepts (0: a level freezes the whole descriptor)."""
        return 0

    def frozen_modules(self, level: int) -> list[nn.Module]:
        """The modules that stop training when fine-tuning freezes ``level`` stages (default: all of them)."""
        return [self]

    def type_weight(self) -> Tensor:
        """The weight [dim, n_types] whose column t embeds type t (f⁰, Eq. 8); masked to train new types only."""
        return self.type_embedding.weight


def register_descriptor(kind: str) -> Callable[[type[Descriptor]], type[Descriptor]]:
    """Class decorator: ``ModelConfig(kind=kind)`` builds this descriptor."""

    def add(cls: type[Descriptor]) -> type[Descriptor]:
        if not issubclass(cls, Descriptor):
            raise TypeError(f"{cls.__name__} must subclass lam_lab.nn.descriptor.Descriptor")
        cls.kind = kind
        _REGISTRY[kind] = cls
        return cls

    return add


def descriptor_kinds() -> list[str]:
    """Names of the registered descriptor kinds (built-ins first)."""
    for module in _BUILTIN.values():
        importlib.import_module(module)
    return list(_REGISTRY)


def descriptor_class(kind: str) -> type[Descriptor]:
    """The class registered for ``kind``; ValueError naming the known kinds otherwise."""
    if kind not in _REGISTRY and kind in _BUILTIN:
        importlib.import_module(_BUILTIN[kind])
    if kind not in _REGISTRY:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {descriptor_kinds()}")
    return _REGISTRY[kind]


def build_descriptor(config: "ModelConfig", n_types: int, dtype=None) -> Descriptor:
    """The descriptor named by ``config.kind``."""
    return descriptor_class(config.kind)(config, n_types, dtype=dtype)

