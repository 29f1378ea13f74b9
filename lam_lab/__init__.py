"""lam_lab: large atomic models (DPA-2) from datasets to reactive MD, in Python and in a notebook.

``ll.train``, ``ll.finetune`` and ``ll.distill`` are functions. Their code lives in the package
``lam_lab.train``, the module ``lam_lab.finetune`` and the package ``lam_lab.distill``: import from
those (``from lam_lab.train import TrainConfig``, ``from lam_lab.train.checkpoint import
load_checkpoint``); as attributes of ``lam_lab`` the three names are always the functions, also
after one of those modules was imported.
"""

from __future__ import annotations

import importlib
import sys
import types
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
    "Committee": "lam_lab.committee:Committee",
    "train": "lam_lab.train.trainer:train",
    "evaluate": "lam_lab.train.metrics:evaluate",
    "finetune": "lam_lab.finetune:finetune",
    "pretrained": "lam_lab.pretrained",
    "distill": "lam_lab.distill.loop:distill",
    # the typed configs the three verbs take (keywords stay accepted as overrides), and their one loader
    "TrainConfig": "lam_lab.train.config:TrainConfig",
    "FinetuneConfig": "lam_lab.finetune:FinetuneConfig",
    "DistillConfig": "lam_lab.distill.loop:DistillConfig",
    "load_config": "lam_lab.config:load_config",
}
# functions named like the module that holds them
_VERBS = ("train", "finetune", "distill")


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'lam_lab' has no attribute {name!r}")
    module, _, attr = _LAZY[name].partition(":")
    obj = importlib.import_module(module)
    value = getattr(obj, attr) if attr else obj
    if name in _VERBS:
        globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


class _Package(types.ModuleType):
    """``lam_lab`` itself. Importing ``lam_lab.train`` (or ``.finetune``, ``.distill``) makes Python set that
    module as an attribute of ``lam_lab``, where it would hide the function: such a set is skipped."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _VERBS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
