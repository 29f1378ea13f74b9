"""Δ-learning on a cheap baseline (seeds 000/004): targets = label_high − label_baseline (eV, eV/Å, eV).

Training data: :func:`delta_dataset` turns frames that carry both label sets into frames with one Δ
label set. Run time: a Δ model carries ``extra["delta"]`` (:func:`baseline_spec`: baseline name,
method and settings) and :class:`RuntimeBaseline` recomputes that baseline (tblite GFN2-xTB by default)
for any structure, so :class:`~lam_lab.md.calculator.LAMCalculator` returns E_baseline + E_model.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from lam_lab.data.dataset import Dataset, LabelProvenance, Provenance
from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame, Labels

XTB_METHODS = {"gfn2-xtb": "GFN2-xTB", "gfn1-xtb": "GFN1-xTB", "xtb": "GFN2-xTB", "gfn2": "GFN2-xTB",
               "gfn1": "GFN1-xTB"}


def delta_label(label: str, baseline: str) -> str:
    """Name of the Δ label set, e.g. ``"delta:wb97x/6-31g*-gfn2-xtb"``."""
    return f"delta:{label}-{baseline}"


def delta_dataset(dataset: Dataset, label: str, baseline: str = "gfn2-xtb") -> Dataset:
    """Frames with ``label`` become frames whose only label set is ``label − baseline`` (energy, forces, virial).

    Every frame that carries ``label`` must carry ``baseline`` with the same quantities; otherwise a
    DataError names the file, the frame and the missing field. Frames without ``label`` are left out.
    """
    if label == baseline:
        raise DataError(f"Δ-learning needs two different label sets, got {label!r} twice", field="baseline")
    src = dataset.provenance.source or dataset.name
    name = delta_label(label, baseline)
    frames = []
    for i, frame in enumerate(dataset):
        high = frame.labels.get(label)
        if high is None:
            continue
        base = frame.labels.get(baseline)
        if base is None:
            raise DataError(f"frame has label {label!r} but no baseline label {baseline!r} (Δ-learning needs both on "
                            f"the same frame; label it with lam_lab.labelers.get_labeler({baseline!r}))",
                            source=src, frame=i, field=f"labels[{baseline!r}]")
        frames.append(Frame(frame.numbers, frame.positions, frame.cell, frame.pbc,
                            {name: _difference(high, base, baseline, src, i)}, dict(frame.info)))
    if not frames:
        raise DataError(f"no frame carries label {label!r} (label sets: {dataset.label_sets})", source=src,
                        field="label")
    prov = Provenance.from_dict(dataset.provenance.to_dict())
    hi, lo = prov.labels.get(label), prov.labels.get(baseline)
    prov.labels = {name: LabelProvenance(method=f"{hi.method if hi else label} - {lo.method if lo else baseline}",
                                         settings={"label": label, "baseline": baseline})}
    return Dataset(frames, f"{dataset.name}-delta", prov)


def _difference(high: Labels, base: Labels, baseline: str, src: str | None, i: int) -> Labels:
    """high − base per quantity; a quantity present in ``high`` but missing in ``base`` is an error."""
    out: dict[str, Any] = {}
    for key in ("energy", "forces", "virial"):
        h, b = getattr(high, key), getattr(base, key)
        if h is None:
            continue
        if b is None:
            raise DataError(f"baseline label {baseline!r} has no {key} but the target label has",
                            source=src, frame=i, field=f"labels[{baseline!r}].{key}")
        if np.shape(h) != np.shape(b):
            raise DataError(f"baseline {key} shape {np.shape(b)} differs from the target's {np.shape(h)}",
                            source=src, frame=i, field=f"labels[{baseline!r}].{key}")
        out[key] = np.asarray(h) - np.asarray(b) if key != "energy" else float(h) - float(b)
    return Labels(**out)


def baseline_spec(dataset: Dataset, label: str, baseline: str = "gfn2-xtb") -> dict[str, Any]:
    """What a Δ model stores as ``extra["delta"]``: the baseline's name, method and settings (from provenance).

    Only baselines lam_lab can recompute at run time are accepted (a registered labeler name).
    """
    from lam_lab.labelers import available

    if baseline.lower() not in available() and "/" not in baseline:
        raise DataError(f"baseline {baseline!r} cannot be recomputed at run time; use one of "
                        f"{', '.join(available())}", field="baseline")
    prov = dataset.provenance.labels.get(baseline)
    settings = dict(prov.settings) if prov is not None else {}
    if baseline.lower() in XTB_METHODS:
        settings.setdefault("method", XTB_METHODS[baseline.lower()])
    spec = {"baseline": baseline, "label": label, "settings": settings,
            "software": prov.software if prov else None, "version": prov.version if prov else None}
    spec.update({k: settings[k] for k in ("method", "accuracy") if k in settings})  # readable at a glance
    return spec


class RuntimeBaseline:
    """The baseline of a Δ model recomputed for a structure: energy eV, forces eV/Å, stress eV/Å³ (periodic).

    GFN2-/GFN1-xTB run through one tblite ASE calculator kept across calls (its SCF restarts from
    the last step, which matters in MD); other baselines go through their lam_lab labeler.
    """

    def __init__(self, spec: dict[str, Any]):
        from lam_lab.labelers import get_labeler

        self.spec = dict(spec)
        self.name = str(spec["baseline"])
        settings = dict(spec.get("settings") or {})
        try:
            self.labeler = get_labeler(self.name, **settings)
        except TypeError:  # provenance notes that are not labeler settings (e.g. a description of the aux basis)
            import dataclasses

            known = {f.name for f in dataclasses.fields(type(get_labeler(self.name).settings))}
            self.labeler = get_labeler(self.name, **{k: v for k, v in settings.items() if k in known})
        saved, now = spec.get("version"), self.labeler.version
        if saved and now and saved != now:
            warnings.warn(f"Δ model was trained on {self.name} from {spec.get('software')} {saved}; "
                          f"this run uses {now}", stacklevel=3)
        self._calc: Any = None
        self._key: tuple | None = None

    def __call__(self, atoms: Any) -> dict[str, Any]:
        """ASE-style results of the baseline for ``atoms``: energy, forces, (energies), (stress)."""
        frame = Frame(atoms.numbers, atoms.positions, np.asarray(atoms.cell), atoms.pbc, info=dict(atoms.info))
        if self.name.lower() in XTB_METHODS:
            return self._xtb(atoms, frame)
        lab = self.labeler.compute(frame)
        out: dict[str, Any] = {"energy": float(lab.energy), "forces": np.asarray(lab.forces)}
        if lab.virial is not None and atoms.pbc.all():
            out["stress"] = _voigt(-np.asarray(lab.virial) / atoms.get_volume())
        return out

    def _xtb(self, atoms: Any, frame: Frame) -> dict[str, Any]:
        from tblite.ase import TBLite

        s = self.labeler.settings
        p = self.labeler.frame_params(frame)
        key = (atoms.numbers.tobytes(), atoms.pbc.tobytes(), p["charge"], p["spin"])
        if self._calc is None or key != self._key:
            self._calc = TBLite(method=s.method, charge=p["charge"], multiplicity=p["spin"] + 1, accuracy=s.accuracy,
                                electronic_temperature=s.electronic_temperature, max_iterations=s.max_iterations,
                                verbosity=0)
            self._key = key
        work = atoms.copy()
        work.calc = self._calc
        out = {"energy": float(work.get_potential_energy()), "forces": work.get_forces(),
               "energies": np.asarray(self._calc.results["energies"], dtype=np.float64)}
        if atoms.pbc.all() and atoms.cell.rank == 3:
            out["stress"] = work.get_stress()
        return out


def _voigt(stress: np.ndarray) -> np.ndarray:
    return stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]


def delta_spec(model: Any) -> dict[str, Any] | None:
    """The ``extra["delta"]`` of a model (None for an ordinary model)."""
    return ((getattr(model, "metadata", None) or {}).get("extra") or {}).get("delta")
