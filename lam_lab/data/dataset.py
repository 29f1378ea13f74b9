"""Dataset: a named, indexable collection of frames with provenance and several label sets."""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from lam_lab.data.errors import DataError, ValidationError
from lam_lab.data.frame import Frame


@dataclass
class LabelProvenance:
    """How one label set was made: method, basis, software and its version, free settings."""

    method: str
    basis: str | None = None
    software: str | None = None
    version: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class Provenance:
    """Where a dataset comes from: label methods, builder, seed, date, source files, notes."""

    labels: dict[str, LabelProvenance] = field(default_factory=dict)
    builder: str | None = None
    seed: int | None = None
    date: str = field(default_factory=lambda: _dt.date.today().isoformat())
    source: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Provenance":
        """Inverse of :meth:`to_dict` (unknown keys are kept in ``notes``-free form, ignored)."""
        d = dict(d or {})
        labels = {k: LabelProvenance(**v) for k, v in (d.pop("labels", None) or {}).items()}
        known = {f for f in cls.__dataclass_fields__ if f != "labels"}
        return cls(labels=labels, **{k: v for k, v in d.items() if k in known})


@dataclass
class Summary:
    """What :meth:`Dataset.summary` reports; ``str(summary)`` is a printable table."""

    name: str
    n_frames: int
    atoms_min: int
    atoms_max: int
    atoms_mean: float
    elements: dict[str, int]
    periodic_frames: int
    label_sets: dict[str, dict[str, float]]
    provenance: Provenance

    def __str__(self) -> str:
        lines = [
            f"Dataset {self.name!r}: {self.n_frames} frames, {self.atoms_min}-{self.atoms_max} atoms/frame "
            f"(mean {self.atoms_mean:.1f}), {self.periodic_frames} periodic",
            "elements: " + ", ".join(f"{el} {n}" for el, n in self.elements.items()),
        ]
        if self.label_sets:
            hdr = (f"{'label set':<22}{'frames':>8}{'E/atom mean':>13}{'E/atom std':>12}{'|F| mean':>10}{'|F| max':>10}"
                   f"{'F rms':>9}")
            lines += ["", hdr, "-" * len(hdr)]
            for name, s in self.label_sets.items():
                lines.append(
                    f"{name:<22}{int(s['frames']):>8}{s['e_per_atom_mean']:>13.4f}{s['e_per_atom_std']:>12.4f}"
                    f"{s['f_norm_mean']:>10.3f}{s['f_norm_max']:>10.3f}{s['f_rms']:>9.3f}"
                )
            lines.append("(energies eV/atom, forces eV/Å)")
        p = self.provenance
        if p.labels:
            lines.append("")
            for name, lp in p.labels.items():
                extra = "/".join(x for x in (lp.basis,) if x)
                sw = f"{lp.software or ''} {lp.version or ''}".strip()
                lines.append(f"label {name}: {lp.method}{'/' + extra if extra else ''} ({sw})")
        meta = [f"{k} {v}" for k, v in (("builder", p.builder), ("seed", p.seed), ("date", p.date)) if v is not None]
        if meta:
            lines.append("; ".join(meta))
        return "\n".join(lines)


class Dataset(Sequence[Frame]):
    """A named collection of :class:`Frame` of any sizes, with provenance.

    Index with an int (a frame), a slice or a sequence of ints (a new Dataset sharing provenance).
    """

    def __init__(self, frames: Iterable[Frame] = (), name: str = "dataset", provenance: Provenance | None = None):
        self.frames: list[Frame] = list(frames)
        self.name = name
        self.provenance = provenance or Provenance()

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.frames)

    def __getitem__(self, idx):  # type: ignore[override]
        if isinstance(idx, (int, np.integer)):
            return self.frames[int(idx)]
        if isinstance(idx, slice):
            return self._with(self.frames[idx])
        return self._with([self.frames[int(i)] for i in idx])

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, {len(self)} frames, labels={self.label_sets})"

    def _with(self, frames: list[Frame], name: str | None = None) -> "Dataset":
        return Dataset(frames, name or self.name, self.provenance)

    def __add__(self, other: "Dataset") -> "Dataset":
        prov = Provenance.from_dict(self.provenance.to_dict())
        prov.labels.update(other.provenance.labels)
        return Dataset(self.frames + other.frames, self.name, prov)

    # -- content ---------------------------------------------------------------------------------
    @property
    def label_sets(self) -> list[str]:
        """Names of the label sets present on any frame, in first-seen order."""
        seen: dict[str, None] = {}
        for f in self.frames:
            for k in f.labels:
                seen.setdefault(k, None)
        return list(seen)

    @property
    def elements(self) -> list[str]:
        """Sorted chemical symbols present (by atomic number)."""
        from ase.data import chemical_symbols

        zs = sorted({int(z) for f in self.frames for z in f.numbers})
        return [chemical_symbols[z] for z in zs]

    def with_label(self, label: str) -> "Dataset":
        """Frames that carry ``label`` (a new Dataset)."""
        return self._with([f for f in self.frames if label in f.labels])

    def default_label(self) -> str:
        """The only label set, or the provenance's first; error when ambiguous or empty."""
        sets = self.label_sets
        if len(sets) == 1:
            return sets[0]
        if not sets:
            raise DataError(f"dataset {self.name!r} has no labels")
        for name in self.provenance.labels:
            if name in sets:
                return name
        raise DataError(f"dataset {self.name!r} has several label sets {sets}: name one")

    # -- checks ----------------------------------------------------------------------------------
    def validate(self, raise_on_error: bool = True) -> list[DataError]:
        """All problems of all frames at once; raises :class:`ValidationError` unless told not to."""
        problems: list[DataError] = []
        if not self.frames:
            problems.append(DataError("dataset is empty", source=self.provenance.source))
        for i, f in enumerate(self.frames):
            problems.extend(f.problems(i, self.provenance.source))
        from lam_lab.data.units import warn_units

        warn_units(self)  # eV expected: Hartree or kcal/mol energies get a warning naming the likely unit
        if problems and raise_on_error:
            raise ValidationError(problems, source=self.provenance.source or self.name)
        return problems

    def drop_invalid(self) -> tuple["Dataset", list[DataError]]:
        """The sound frames and the problems of the dropped ones."""
        keep, dropped = [], []
        for i, f in enumerate(self.frames):
            p = f.problems(i, self.provenance.source)
            (dropped.extend(p) if p else keep.append(f))
        return self._with(keep), dropped

    # -- inspection ------------------------------------------------------------------------------
    def summary(self) -> Summary:
        """Frames, atoms per frame, element counts, per-label energy and force statistics."""
        from ase.data import chemical_symbols

        sizes = np.array([len(f) for f in self.frames]) if self.frames else np.zeros(1, int)
        counts: Counter[int] = Counter()
        for f in self.frames:
            counts.update(int(z) for z in f.numbers)
        stats: dict[str, dict[str, float]] = {}
        for name in self.label_sets:
            e = [f.labels[name].energy / len(f) for f in self.frames
                 if name in f.labels and f.labels[name].energy is not None]
            fs = [f.labels[name].forces for f in self.frames if name in f.labels and f.labels[name].forces is not None]
            # NaN (shown as "nan") rather than a misleading 0 when a set has no energies or no forces
            fn = np.linalg.norm(np.concatenate(fs), axis=1) if fs else np.full(1, np.nan)
            e = np.asarray(e) if e else np.full(1, np.nan)
            stats[name] = {
                "frames": float(sum(name in f.labels for f in self.frames)),
                "e_per_atom_mean": float(e.mean()),
                "e_per_atom_std": float(e.std()),
                "f_norm_mean": float(fn.mean()),
                "f_norm_max": float(fn.max()),
                "f_rms": float(np.sqrt(np.mean(np.concatenate(fs) ** 2))) if fs else float("nan"),
            }
        return Summary(
            name=self.name,
            n_frames=len(self.frames),
            atoms_min=int(sizes.min()),
            atoms_max=int(sizes.max()),
            atoms_mean=float(sizes.mean()),
            elements={chemical_symbols[z]: n for z, n in sorted(counts.items())},
            periodic_frames=sum(f.is_periodic for f in self.frames),
            label_sets=stats,
            provenance=self.provenance,
        )

    def groups(self, key: str = "formula") -> dict[str, list[int]]:
        """Frame indices grouped by ``info[key]`` (``"formula"`` falls back to the chemical formula)."""
        out: dict[str, list[int]] = {}
        for i, f in enumerate(self.frames):
            g = f.info.get(key) if key != "formula" else f.info.get("formula", f.formula)
            out.setdefault(str(g), []).append(i)
        return out

    # -- splits and selection ----------------------------------------------------------------------
    def split(self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
              by: str | None = None) -> list["Dataset"]:
        """Random split into parts of the given fractions; with ``by`` whole groups stay together."""
        from lam_lab.data.selection import split_indices

        parts = split_indices(self, fractions, seed=seed, by=by)
        return [self._with([self.frames[i] for i in idx], f"{self.name}[{k}]") for k, idx in enumerate(parts)]

    def subset(self, n: int | None, seed: int = 0) -> "Dataset":
        """``n`` seeded random frames in file order (the first ``n`` of one permutation: nested in N); None: all."""
        from lam_lab.data.selection import subset_indices

        return self if n is None else self._with([self.frames[i] for i in subset_indices(len(self), n, seed)])

    def where(self, split: str | Sequence[str] | None = None, *, required: bool = False, **info: Any) -> "Dataset":
        """Frames whose ``info['split']`` (and every other ``info`` key given) equals the value or is among the values.

        ``required=True`` raises a DataError naming the filter when no frame matches.
        """
        from lam_lab.data.selection import where_indices

        if split is not None:
            info = {"split": split, **info}
        keep = where_indices(self, info)
        if required and not keep:
            wanted = ", ".join(f"info[{k!r}] == {v!r}" for k, v in info.items())
            raise DataError(f"no frame has {wanted}", source=self.provenance.source or self.name,
                            field=f"info.{next(iter(info), '')}")
        return self._with([self.frames[i] for i in keep])

    def select_fps(self, n: int, seed: int = 0) -> "Dataset":
        """``n`` frames chosen by farthest-point sampling on a structural fingerprint."""
        from lam_lab.data.selection import farthest_point_indices

        return self._with([self.frames[i] for i in farthest_point_indices(self, n, seed=seed)])
