"""Neural-network parts of the models: neighbor lists, env matrix, DPA-2 blocks, student, fitting, batching.

Names load lazily so that ``lam_lab.nn.neighbor_list`` users do not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "NeighborList": "lam_lab.nn.neighbor_list",
    "Graph": "lam_lab.nn.batch", "Batch": "lam_lab.nn.batch", "NeighborBlock": "lam_lab.nn.batch",
    "collate": "lam_lab.nn.batch", "frame_types": "lam_lab.nn.batch",
    "switch": "lam_lab.nn.env_matrix", "environment": "lam_lab.nn.env_matrix",
    "TypeEmbedding": "lam_lab.nn.type_embedding", "symm": "lam_lab.nn.symmetrization",
    "Repinit": "lam_lab.nn.repinit", "RepformerLayer": "lam_lab.nn.repformer",
    "Descriptor": "lam_lab.nn.descriptor", "register_descriptor": "lam_lab.nn.descriptor",
    "DPA2Descriptor": "lam_lab.nn.dpa2", "StudentDescriptor": "lam_lab.nn.student",
    "FittingNet": "lam_lab.nn.fitting", "solve_energy_bias": "lam_lab.nn.energy_bias",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lam_lab.nn' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
