"""lam_lab: large atomic models (DPA-2) from datasets to reactive MD, in Python and in a notebook."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Heavy parts (torch models, trainers) load on first use so `import lam_lab` stays fast.
_LAZY = {
    "data": "lam_lab.data",
    "datasets": "lam_lab.datasets",
    "labelers": "lam_lab.labelers",
    "sampling": "lam_lab.sampling",
    "nn": "lam_lab.nn",
    "ui": "lam_lab.ui",
    "build_model": "lam_lab.models:build_model",
    "save": "lam_lab.models:save",
    "load": "lam_lab.models:load",
    "LAMCalculator": "lam_lab.md.calculator:LAMCalculator",
    "train": "lam_lab.train:train",
    "evaluate": "lam_lab.train.metrics:evaluate",
    "finetune": "lam_lab.finetune:finetune",
    "pretrained": "lam_lab.pretrained",
    "distill": "lam_lab.distill:distill",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'lam_lab' has no attribute {name!r}")
    module, _, attr = _LAZY[name].partition(":")
    obj = importlib.import_module(module)
    return getattr(obj, attr) if attr else obj


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
