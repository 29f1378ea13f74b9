"""Committee uncertainty: where several models (students, or heads of one model) disagree on the forces.

A committee is a list of members, each a Potential or a ``(Potential, head)`` pair (heads of one model
too), or a :class:`~lam_lab.committee.Committee`. On every frame each
member predicts forces; the per-atom disagreement is the spread of the members' force vectors,
``sqrt(mean_m |F_m,i − mean_m F_m,i|²)`` in eV/Å (0 when they agree). Frames where it is large are where
the models have not seen enough data: label those (:func:`label_for_delta`) and train again — the
active-learning loop, by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from ase import Atoms

from lam_lab.data.dataset import Dataset
from lam_lab.data.frame import Frame

if TYPE_CHECKING:
    from lam_lab.committee import Committee

Member = Any  # a Potential or (Potential, head)


def as_frames(frames: Sequence[Frame | Atoms] | Dataset) -> list[Frame]:
    """Frames from Frames or ASE Atoms (labels are not needed)."""
    return [f if isinstance(f, Frame) else Frame.from_atoms(f) for f in frames]


def _member(m: Member) -> tuple[Any, str | None]:
    return (m[0], m[1]) if isinstance(m, tuple) else (m, None)


def committee_forces(frames: Sequence[Frame | Atoms] | Dataset,
                     models: Sequence[Member] | Committee) -> list[np.ndarray]:
    """Forces (eV/Å) of every member on every frame: one ``[M, n_atoms, 3]`` array per frame.

    A Δ model's bare output is used (its baseline is the same for every member, so it cancels in the spread).
    """
    from lam_lab.committee import Committee
    from lam_lab.evaluation import predict

    if isinstance(models, Committee):
        models = list(models.members)
    if len(models) < 2:
        raise ValueError(f"a committee needs at least 2 members, got {len(models)}")
    frame_list = as_frames(frames)
    per_model = []
    for m in models:
        model, head = _member(m)
        per_model.append(predict(model, frame_list, head, baseline=None).forces)
    return [np.stack([np.asarray(p[t], dtype=float) for p in per_model]) for t in range(len(frame_list))]


def force_disagreement(frames: Sequence[Frame | Atoms] | Dataset,
                       models: Sequence[Member] | Committee) -> list[np.ndarray]:
    """Per-atom force disagreement (eV/Å) of the committee on each frame: one ``[n_atoms]`` array per frame."""
    from lam_lab.committee import force_deviation

    return [force_deviation(f) for f in committee_forces(frames, models)]


def frame_uncertainty(disagreement: Sequence[np.ndarray]) -> np.ndarray:
    """The largest per-atom disagreement of each frame (eV/Å), the number a frame is ranked by."""
    return np.array([float(np.max(d)) if len(d) else 0.0 for d in disagreement])


def most_uncertain(frames: Sequence[Frame | Atoms] | Dataset, models: Sequence[Member] | None = None, k: int = 5,
                   min_separation: int = 1, disagreement: Sequence[np.ndarray] | None = None) -> list[int]:
    """Indices of the ``k`` frames where the committee disagrees most, most uncertain first.

    ``min_separation``: chosen frames are at least this many frames apart (neighbouring MD snapshots
    are nearly the same structure; labelling both is a waste). ``disagreement`` (from
    :func:`force_disagreement`) skips the predictions when already computed.
    """
    if k < 1:
        return []
    d = disagreement if disagreement is not None else force_disagreement(frames, models or [])
    score = frame_uncertainty(d)
    chosen: list[int] = []
    for i in np.argsort(-score, kind="stable"):
        if all(abs(int(i) - j) >= max(1, min_separation) for j in chosen):
            chosen.append(int(i))
        if len(chosen) == k:
            break
    return chosen


def label_for_delta(frames: Sequence[Frame | Atoms] | Dataset, indices: Sequence[int] | None = None,
                    dft: str = "wb97x/6-31g*", baseline: str | None = "gfn2-xtb", name: str = "uncertain-frames",
                    dft_settings: dict[str, Any] | None = None, progress: bool = False) -> Dataset:
    """The chosen frames labelled by PySCF DFT (label ``dft``) and the ``baseline`` (GFN2-xTB), ready for Δ-learning.

    ``dft`` is "functional/basis"; frames whose SCF does not converge are dropped (the DFT labeler never
    returns an unconverged label). Energies eV, forces eV/Å.
    """
    from lam_lab.labelers import get_labeler

    chosen = as_frames(frames)
    if indices is not None:
        chosen = [chosen[int(i)] for i in indices]
    chosen = [Frame(f.numbers, f.positions, f.cell, f.pbc, info=dict(f.info)) for f in chosen]  # drop model labels
    labelled = get_labeler(dft, **(dft_settings or {})).label_dataset(chosen, name=name, progress=progress)
    if baseline is not None and len(labelled):
        base = get_labeler(baseline).label_dataset(list(labelled), name=name, progress=progress)
        keep = {tuple(np.round(f.positions, 6).ravel()): f for f in base}
        merged = []
        for f in labelled:
            other = keep.get(tuple(np.round(f.positions, 6).ravel()))
            if other is not None and baseline in other.labels:
                f.labels[baseline] = other.labels[baseline]
                merged.append(f)
        labelled = Dataset(merged, name=name, provenance=labelled.provenance)
    return labelled


def extend(dataset: Dataset | None, new: Dataset, name: str | None = None) -> Dataset:
    """``dataset`` with the frames of ``new`` appended (the Δ set growing round by round)."""
    if dataset is None:
        return Dataset(list(new), name=name or new.name, provenance=new.provenance)
    return Dataset(list(dataset) + list(new), name=name or dataset.name, provenance=dataset.provenance)


def can_join(new: Dataset, base: Dataset) -> bool:
    """True when ``new``'s frames can join ``base``: it carries ``base``'s default label, and each of its label sets
    is one of ``base``'s computed on the same SCF surface (both on the lowest solution, or both restricted)."""
    def lowest(ds: Dataset, label: str) -> bool:
        prov = ds.provenance.labels.get(label) if ds.provenance is not None else None
        return bool(prov is not None and (prov.settings or {}).get("lowest_solution", False))

    ours = set(new.label_sets)
    return (base.default_label() in ours and ours <= set(base.label_sets)
            and all(lowest(new, label) == lowest(base, label) for label in ours))
