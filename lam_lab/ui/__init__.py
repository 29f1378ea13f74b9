"""Jupyter front end: the Lab dashboard, its panels (data, train, fine-tune/Δ, distill, MD) and the reactive player."""

from __future__ import annotations

import importlib
from typing import Any

# Panels load on first use: the player pulls in trajectory analysis, the Lab everything.
_LAZY = {
    "Lab": "lam_lab.ui.lab",
    "DataPanel": "lam_lab.ui.data_panel",
    "TrainPanel": "lam_lab.ui.train_panel",
    "FinetunePanel": "lam_lab.ui.finetune_panel",
    "DistillPanel": "lam_lab.ui.distill_panel",
    "MDPanel": "lam_lab.ui.md_panel",
    "PlaybackPanel": "lam_lab.ui.md_panel",
    "ReactionPlayer": "lam_lab.ui.player",
    "LiveCurves": "lam_lab.ui._live",
    "BackgroundJob": "lam_lab.ui._jobs",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'lam_lab.ui' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
