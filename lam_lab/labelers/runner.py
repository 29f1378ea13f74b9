"""The labelling loop: validate, look up the cache, run the rest on an executor, collect results."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lam_lab.data.dataset import Dataset
from lam_lab.data.errors import DataError, ValidationError
from lam_lab.data.frame import Frame, Labels
from lam_lab.labelers.cache import CacheEntry, LabelCache, frame_key
from lam_lab.labelers.executor import make_executor

if TYPE_CHECKING:
    from lam_lab.labelers.base import Labeler, LabelingResult


@dataclass
class Computed:
    """What a worker sends back for one frame: labels or the failure reason, and the time spent (s)."""

    labels: Labels | None
    failure: str | None
    seconds: float


def compute_one(labeler: "Labeler", frame: Frame) -> Computed:
    """Run ``labeler.compute`` on one frame in a worker; errors become a failure reason."""
    t0 = time.perf_counter()
    try:
        labels = labeler.compute(frame)
        bad = _non_finite(labels, len(frame))
        if bad:
            return Computed(None, bad, time.perf_counter() - t0)
        return Computed(labels, None, time.perf_counter() - t0)
    except Exception as exc:  # any error of the method is a per-frame failure; the batch goes on
        reason = f"{type(exc).__name__}: {exc}".strip()
        return Computed(None, " ".join(reason.split())[:1000], time.perf_counter() - t0)


def _non_finite(labels: Labels, n_atoms: int) -> str | None:
    """A reason when the method returned NaN/inf or misshaped forces, else None."""
    if labels.energy is not None and not np.isfinite(labels.energy):
        return f"method returned energy {labels.energy}"
    if labels.forces is not None:
        if labels.forces.shape != (n_atoms, 3):
            return f"method returned forces of shape {labels.forces.shape} for {n_atoms} atoms"
        if not np.all(np.isfinite(labels.forces)):
            return "method returned non-finite forces"
    if labels.virial is not None and not np.all(np.isfinite(labels.virial)):
        return "method returned a non-finite virial"
    return None


def as_frames(data: Any) -> tuple[list[Frame], Dataset | None]:
    """Frames from a Dataset, a Frame, ASE Atoms, or an iterable of either."""
    from ase import Atoms

    if isinstance(data, Dataset):
        return list(data.frames), data
    if isinstance(data, (Frame, Atoms)):
        data = [data]
    out: list[Frame] = []
    for i, item in enumerate(data):
        if isinstance(item, Frame):
            out.append(item)
        elif isinstance(item, Atoms):
            out.append(Frame.from_atoms(item))
        else:
            raise DataError(f"expected a Frame or ase.Atoms, got {type(item).__name__}", frame=i)
    return out, None


def _bare(frame: Frame) -> Frame:
    """The structure and per-frame parameters only: what a worker needs (less to pickle)."""
    info = {k: frame.info[k] for k in ("charge", "spin") if k in frame.info}
    return Frame(frame.numbers, frame.positions, frame.cell, frame.pbc, {}, info)


def label_frames(
    labeler: "Labeler",
    data: Any,
    *,
    cache_dir: str | None = None,
    executor: Any = None,
    progress: bool = True,
    retry_failed: bool = False,
) -> "LabelingResult":
    """Label frames with ``labeler``; every frame is checked first (bad input raises ValidationError).

    cache_dir: directory of the content-hash cache (results are written as they arrive, so a
      killed run resumes); None disables caching.
    executor: None (local process pool over all cores), an int (workers; 1 = in-process), a dask
      scheduler address or ``distributed.Client``, or an :class:`~lam_lab.labelers.executor.Executor`.
    retry_failed: recompute frames whose cached result is a failure.
    """
    from lam_lab.labelers.base import FailedFrame, LabelingResult

    t_start = time.perf_counter()
    frames, source = as_frames(data)
    src_name = source.provenance.source if source is not None else None
    problems = [p for i, f in enumerate(frames) for p in labeler.check(f, i, src_name)]
    if problems:
        raise ValidationError(problems, source=src_name or f"input to labeler {labeler.name!r}")

    cache = LabelCache(cache_dir) if cache_dir is not None else None
    identity = labeler.cache_identity()
    keys = [frame_key(f, {**identity, "frame": labeler.frame_params(f)}) for f in frames]
    results = _cached(cache, keys, frames, retry_failed)
    n_cached = len(results)
    todo = [i for i in range(len(frames)) if i not in results]

    bar = _progress_bar(len(frames), labeler.name, progress)
    bar.update(n_cached)
    try:
        compute_s = _compute(labeler, frames, todo, executor, results, cache, keys, bar) if todo else 0.0
    finally:
        bar.close()

    labelled, indices, failed = [], [], []
    for i, frame in enumerate(frames):
        entry = results.get(i) or CacheEntry(None, "not run")
        if entry.labels is not None:
            new = frame.copy()
            new.labels[labeler.name] = entry.labels
            labelled.append(new)
            indices.append(i)
        else:
            failed.append(FailedFrame(i, entry.failure or "unknown failure", frame))
    return LabelingResult(
        label=labeler.name,
        provenance=labeler.provenance(),
        frames=labelled,
        indices=indices,
        failed=failed,
        n_total=len(frames),
        n_cached=n_cached,
        n_computed=len(todo),
        wall_s=time.perf_counter() - t_start,
        compute_s=compute_s,
        source=source,
    )


def _cached(cache: LabelCache | None, keys: list[str], frames: list[Frame],
            retry_failed: bool) -> dict[int, CacheEntry]:
    """The cached results by frame index (failures left out when ``retry_failed``)."""
    results: dict[int, CacheEntry] = {}
    if cache is None:
        return results
    for i, key in enumerate(keys):
        entry = cache.get(key, len(frames[i]))
        if entry is None or (entry.failure is not None and retry_failed):
            continue
        results[i] = entry
    return results


def _compute(labeler: "Labeler", frames: list[Frame], todo: list[int], executor: Any, results: dict[int, CacheEntry],
             cache: LabelCache | None, keys: list[str], bar: Any) -> float:
    """Label frames ``todo`` on ``executor`` into ``results`` (and the cache) as they arrive; compute seconds."""
    compute_s = 0.0
    ex, owned = make_executor(executor)
    try:
        tasks = [(labeler, _bare(frames[i])) for i in todo]
        for out in ex.run(compute_one, tasks):
            i = todo[out.index]
            if out.error is not None:  # the executor lost the task: not the method's fault, not cached
                results[i] = CacheEntry(None, f"executor error: {out.error}")
            else:
                comp: Computed = out.value
                compute_s += comp.seconds
                results[i] = CacheEntry(comp.labels, comp.failure, comp.seconds)
                if cache is not None:
                    cache.put(keys[i], results[i])
            bar.update(1)
            bar.set_postfix(failed=sum(e.failure is not None for e in results.values()), refresh=False)
    finally:
        if owned:
            ex.close()
    return compute_s


def _progress_bar(total: int, name: str, enabled: bool) -> Any:
    """A tqdm.auto bar (terminal or notebook), silent when disabled."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"label {name}", unit="frame", disable=not enabled, leave=False)

