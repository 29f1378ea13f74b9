"""Training checkpoints: atomic writes, keep-last-k, safe loading (``weights_only=True``), resume."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from lam_lab.atomic import atomic_save  # noqa: F401  (re-exported: checkpoint writers use it)
from lam_lab.data.errors import DataError
from lam_lab.integrity import describe_mismatch, seal, verify

_NAME = re.compile(r"^step_(\d+)\.pt$")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint dict, loaded with ``weights_only=True``; a clear error for bad files."""
    path = Path(path)
    if not path.exists():
        raise DataError("checkpoint not found", source=str(path))
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise DataError(f"not a readable lam_lab checkpoint ({exc.__class__.__name__}: {exc})",
                        source=str(path)) from exc
    if not isinstance(state, dict) or state.get("format") != "lam_lab.checkpoint":
        raise DataError("not a lam_lab training checkpoint (no 'format' marker)", source=str(path))
    problem = verify(state)
    if problem:
        raise DataError(problem, source=str(path))
    return state


def model_identity(model: Any) -> dict[str, Any]:
    """What a checkpoint records of its model so a resume can tell another model apart: type map, config, heads."""
    return {"type_map": list(model.type_map), "model_config": model.config.to_dict(), "heads": list(model.heads)}


def check_same_model(state: dict[str, Any], model: Any, path: str | Path) -> None:
    """Refuse to resume ``model`` from a checkpoint of another model, saying what differs (type map, size)."""
    saved = {"type_map": state.get("type_map"), "config": state.get("model_config")}
    diffs = describe_mismatch(saved, {"type_map": list(model.type_map), "config": model.config.to_dict()})
    if not diffs and "model" in state:  # checkpoints from before the identity keys: compare tensor shapes
        mine = model.state_dict()
        diffs = [f"{k}: shape {tuple(v.shape)} in the file vs {tuple(mine[k].shape)} here"
                 for k, v in state["model"].items() if k in mine and tuple(v.shape) != tuple(mine[k].shape)][:3]
    if diffs:
        raise DataError("cannot resume: the checkpoint belongs to another model: " + "; ".join(diffs)
                        + ". Resume with the same model settings or start a fresh run in a new folder",
                        source=str(path))


def load_resume_state(path: str | Path, model: Any, task_names: list[str],
                      map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint at ``path``, checked to belong to ``model`` and to a run with the same tasks."""
    state = load_checkpoint(path, map_location=map_location)
    check_same_model(state, model, path)
    names = [t["name"] for t in state["tasks"]]
    if names != list(task_names):
        raise DataError(f"checkpoint tasks {names} differ from this run's {list(task_names)}", source=str(path))
    return state


def rng_state() -> dict[str, Any]:
    """torch's random state (and CUDA's, where present), as a checkpoint stores it."""
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def set_rng_state(rng: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (CUDA's only on a machine with CUDA)."""
    torch.set_rng_state(rng["torch"].cpu())
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])


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
        path = atomic_save(seal({"format": "lam_lab.checkpoint", **state}), self.directory / f"step_{step:08d}.pt")
        for old in self.paths()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path
