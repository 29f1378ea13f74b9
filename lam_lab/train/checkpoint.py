"""Training checkpoints: atomic writes, keep-last-k, safe loading (``weights_only=True``), resume."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from lam_lab.atomic import atomic_save  # noqa: F401  (re-exported: checkpoint writers use it)
from lam_lab.data.errors import DataError

_NAME = re.compile(r"^step_(\d+)\.pt$")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint dict, loaded with ``weights_only=True``; a clear error for bad files."""
    path = Path(path)
    if not path.exists():
        raise DataError("checkpoint not found", source=str(path))
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise DataError(f"not a readable lam_lab checkpoint ({exc.__class__.__name__}: {exc})", source=str(path)) from exc
    if not isinstance(state, dict) or state.get("format") != "lam_lab.checkpoint":
        raise DataError("not a lam_lab training checkpoint (no 'format' marker)", source=str(path))
    return state


class CheckpointManager:
    """Numbered checkpoints ``step_00000100.pt`` in one folder; only the newest ``keep`` stay."""

    def __init__(self, directory: str | Path, keep: int = 3):
        self.directory = Path(directory)
        self.keep = max(int(keep), 1)

    def paths(self) -> list[Path]:
        """Existing checkpoints, oldest first."""
        if not self.directory.exists():
            return []
        found = [(int(m.group(1)), p) for p in self.directory.iterdir() if (m := _NAME.match(p.name))]
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        """The newest checkpoint, or None."""
        paths = self.paths()
        return paths[-1] if paths else None

    def save(self, state: dict[str, Any], step: int) -> Path:
        """Write ``state`` atomically as the checkpoint of ``step`` and prune the oldest."""
        path = atomic_save({"format": "lam_lab.checkpoint", **state}, self.directory / f"step_{step:08d}.pt")
        for old in self.paths()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path
