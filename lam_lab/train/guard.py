"""Training guards: a non-finite loss or gradient stops the run before the optimizer touches the weights."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from lam_lab.data.errors import DataError, ValidationError


class NonFiniteError(DataError):
    """Training diverged: the loss or a gradient became NaN/inf (weights and checkpoints left as they were)."""


def check_step(task: str, step: int, frames: Sequence[int], loss: float, terms: Mapping[str, float],
               grad_norm: float, per_frame_energy: Any = None) -> None:
    """Raise :class:`NonFiniteError` naming the task, step and frames when the loss or gradient norm is not finite."""
    if math.isfinite(loss) and math.isfinite(grad_norm):
        return
    what = f"loss is {loss}" if not math.isfinite(loss) else f"gradient norm is {grad_norm}"
    bad_terms = [f"{k} term {v}" for k, v in terms.items() if not math.isfinite(v)]
    culprits = list(frames)
    if per_frame_energy is not None:
        values = per_frame_energy.detach().cpu().tolist() if hasattr(per_frame_energy, "detach") else per_frame_energy
        bad = [frames[i] for i, e in enumerate(values) if not math.isfinite(float(e))]
        culprits = bad or culprits
    frame = culprits[0] if len(culprits) == 1 else None  # one frame: named in the error's location
    where = "" if frame is not None else f" on frames {culprits[:10]}"
    raise NonFiniteError(
        f"training diverged at step {step} of task {task!r}: {what}"
        + (f" ({', '.join(bad_terms)})" if bad_terms else "") + where
        + "; the weights were not updated and the last checkpoint is kept. "
        "Lower the learning rate (train.lr) or set train.grad_clip, and check these frames", frame=frame)


def validate_task_data(task: str, ds: Any, label: str, role: str = "training") -> None:
    """Every problem of the frames ``task`` trains on (geometry and its label set) at once, as ``ll.data.read`` does."""
    from lam_lab.data.dataset import Dataset

    if not isinstance(ds, Dataset):
        return
    problems = [p for p in ds.validate(raise_on_error=False) if _concerns(p.field, label)]
    if problems:
        raise ValidationError(problems, source=f"{role} data of task {task!r} ({ds.name})")


def _concerns(field: str | None, label: str) -> bool:
    """True when a problem's field is the geometry or the label set the task trains on."""
    return field is None or not field.startswith("labels[") or field.startswith(f"labels[{label!r}]")
