"""Jupyter front end: the Lab dashboard, the data panel and the reactive trajectory player (imports ipywidgets)."""

from __future__ import annotations

import importlib
from typing import Any

# Panels load on first use: the player pulls in trajectory analysis, the Lab everything.
_LAZY = {
    "Lab": "lam_lab.ui.lab",
    "PlaybackPanel": "lam_lab.ui.lab",
    "DataPanel": "lam_lab.ui.data_panel",
    "ReactionPlayer": "lam_lab.ui.player",
    "BackgroundJob": "lam_lab.ui._jobs",
}

__all__ = ["Lab", "DataPanel", "ReactionPlayer", "PlaybackPanel", "BackgroundJob"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'lam_lab.ui' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
