"""The labeler interface and its result records: labelled frames, failures with reasons, counts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Iterable

import numpy as np

from lam_lab.data.dataset import Dataset, LabelProvenance, Provenance
from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame, Labels


class LabelingFailed(RuntimeError):
    """The method ran but produced no trustworthy result (e.g. SCF did not converge)."""


@dataclass
class FailedFrame:
    """A frame the method could not label: its input index, the reason, and the frame itself."""

    index: int
    reason: str
    frame: Frame


@dataclass
class LabelingSummary:
    """Counts of one labelling run; ``str()`` gives a short report."""

    label: str
    n_total: int
    n_labelled: int
    n_failed: int
    n_cached: int
    n_computed: int
    wall_s: float
    compute_s: float
    failures: list[tuple[int, str]] = field(default_factory=list)

    def __str__(self) -> str:
        head = (
            f"label {self.label!r}: {self.n_labelled}/{self.n_total} frames labelled, {self.n_failed} failed "
            f"({self.n_cached} from cache, {self.n_computed} computed; wall {self.wall_s:.1f} s, "
            f"compute {self.compute_s:.1f} s)"
        )
        shown = [f"  frame {i}: {r}" for i, r in self.failures[:10]]
        if len(self.failures) > 10:
            shown.append(f"  ... and {len(self.failures) - 10} more")
        return "\n".join([head, *shown])


@dataclass
class LabelingResult:
    """Output of :meth:`Labeler.label`: labelled copies (input order), failures, counts.

    ``frames[k]`` is a copy of input frame ``indices[k]`` with ``labels[label]`` added.
    ``n_cached`` counts results read from the disk cache (failures included), ``n_computed``
    those run by the method in this call.
    """

    label: str
    provenance: LabelProvenance
    frames: list[Frame]
    indices: list[int]
    failed: list[FailedFrame]
    n_total: int
    n_cached: int
    n_computed: int
    wall_s: float = 0.0
    compute_s: float = 0.0
    source: Dataset | None = field(default=None, repr=False)

    @property
    def n_labelled(self) -> int:
        """Frames that carry the new label."""
        return len(self.frames)

    @property
    def n_failed(self) -> int:
        """Frames the method could not label."""
        return len(self.failed)

    def summary(self) -> LabelingSummary:
        """Counts and failure reasons."""
        return LabelingSummary(
            self.label, self.n_total, self.n_labelled, self.n_failed, self.n_cached, self.n_computed,
            self.wall_s, self.compute_s, [(f.index, f.reason) for f in self.failed],
        )

    def to_dataset(self, name: str | None = None) -> Dataset:
        """The labelled frames as a Dataset whose provenance records this label set (failures dropped)."""
        if self.source is not None:
            prov = Provenance.from_dict(self.source.provenance.to_dict())
            default_name = self.source.name
        else:
            prov, default_name = Provenance(), self.label
        prov.labels[self.label] = self.provenance
        if self.provenance.software and self.provenance.version:
            prov.versions[self.provenance.software] = self.provenance.version
        if self.failed:
            note = f"{self.label}: {self.n_failed} of {self.n_total} frames failed and were dropped"
            prov.notes = f"{prov.notes}\n{note}".strip()
        return Dataset(self.frames, name or default_name, prov)


class Labeler(ABC):
    """A reference method that adds a label set (energy eV, forces eV/Å, virial eV) to frames.

    Subclasses set ``software``, hold a typed ``settings`` dataclass, and implement
    :meth:`compute` for one frame. Labelers must pickle cheaply (settings only) because they
    travel to worker processes; calculators are built inside :meth:`compute`.
    """

    software: ClassVar[str] = ""
    # settings fields that do not change the numbers (thread counts, printing), left out of the cache key
    runtime_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: Any):
        self.settings = settings

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings!r})"

    # -- what each method defines ----------------------------------------------------------------
    @property
    @abstractmethod
    def name(self) -> str:
        """Label-set name written into frames, e.g. ``"emt"``, ``"gfn2-xtb"``, ``"wb97x/6-31g*"``."""

    @property
    def version(self) -> str | None:
        """Version of the software doing the work."""
        return None

    @abstractmethod
    def compute(self, frame: Frame) -> Labels:
        """Labels of one frame (eV, eV/Å, eV); raise :class:`LabelingFailed` or any error on failure."""

    def provenance(self) -> LabelProvenance:
        """Method, basis, software and version, and the settings, for the dataset's records."""
        return LabelProvenance(self.name, None, self.software, self.version, self.settings_dict())

    def check(self, frame: Frame, index: int | None = None, source: str | None = None) -> list[DataError]:
        """Problems that make ``frame`` unusable for this method (structure problems by default)."""
        return [p for p in frame.problems(index, source) if not (p.field or "").startswith("labels[")]

    def frame_params(self, frame: Frame) -> dict[str, Any]:
        """Per-frame inputs beyond the structure that change the result (e.g. charge, spin)."""
        return {}

    # -- shared machinery ----------------------------------------------------------------------------
    def settings_dict(self) -> dict[str, Any]:
        """Settings as a plain dict."""
        return asdict(self.settings) if self.settings is not None else {}

    def cache_identity(self) -> dict[str, Any]:
        """Everything about the method that changes the numbers (part of each cache key)."""
        skip = set(self.runtime_fields)
        settings = {k: v for k, v in self.settings_dict().items() if k not in skip}
        return {"labeler": type(self).__name__, "name": self.name, "software": self.software,
                "version": self.version, "settings": settings}

    def label(
        self,
        frames: Dataset | Frame | Iterable[Frame] | Any,
        *,
        cache_dir: str | None = None,
        executor: Any = None,
        progress: bool = True,
        retry_failed: bool = False,
    ) -> LabelingResult:
        """Label every frame; see :func:`lam_lab.labelers.runner.label_frames` for the arguments."""
        from lam_lab.labelers.runner import label_frames

        return label_frames(self, frames, cache_dir=cache_dir, executor=executor, progress=progress,
                            retry_failed=retry_failed)

    def label_dataset(self, frames: Dataset | Iterable[Frame], name: str | None = None, **kwargs: Any) -> Dataset:
        """:meth:`label` then :meth:`LabelingResult.to_dataset` (failed frames dropped)."""
        return self.label(frames, **kwargs).to_dataset(name)


def settings_from_kwargs(cls: type, kwargs: dict[str, Any], aliases: dict[str, str] | None = None) -> Any:
    """Build settings dataclass ``cls`` from keyword arguments; unknown keys raise a clear TypeError."""
    kwargs = dict(kwargs)
    for alias, real in (aliases or {}).items():
        if alias in kwargs:
            kwargs[real] = kwargs.pop(alias)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(f"{cls.__name__} has no setting(s) {unknown}; known: {sorted(known)}")
    return cls(**kwargs)


def charge_spin(frame: Frame, charge: int, spin: int) -> tuple[int, int]:
    """Total charge and unpaired electrons (2S) of ``frame``: ``info['charge'|'spin']`` win over defaults."""
    return int(frame.info.get("charge", charge)), int(frame.info.get("spin", spin))


def virial_from_stress(atoms: Any) -> np.ndarray | None:
    """Virial W = -σ·V (eV) from the calculator's stress, or None unless the cell is 3-D periodic."""
    if not all(atoms.pbc) or atoms.cell.rank < 3:
        return None
    return -np.asarray(atoms.get_stress(voigt=False)) * atoms.get_volume()
