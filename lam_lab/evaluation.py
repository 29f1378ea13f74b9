"""One way to run a model on frames and to score it: ``predict`` -> :class:`Prediction`, ``score`` -> :class:`Scores`.

    pred = predict(model, test)                     # eV, eV/Å per frame; a Δ model gets its baseline added back
    s = score(pred, test, label="wb97x/6-31g*")     # every field names its unit
    xtb = score(reference(test, "gfn2-xtb"), test, label="wb97x/6-31g*")   # the baseline alone, same frames

A Δ model (``extra["delta"]``, see :mod:`lam_lab.delta`) predicts ``label − baseline``; ``predict``
adds the frames' stored baseline labels back (what its calculator computes at run time), or refuses
with a message naming the missing labels. Energies eV, forces eV/Å, errors meV/atom, meV/Å, barriers eV.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from lam_lab.data.errors import DataError
from lam_lab.data.selection import barrier_frames, barrier_pairs  # re-exported (in __all__): roles, not scores

if TYPE_CHECKING:
    from lam_lab.data.frame import Frame
    from lam_lab.potential import Potential

AUTO = "auto"
COMPUTE = "compute"  # recompute a Δ model's baseline (tblite GFN2-xTB) where frames lack its stored labels
PARITY_FORCES = 1500  # force components kept in parity data (seeded subset)


@dataclass
class Prediction:
    """Energies (eV) per frame and forces (eV/Å, [n_i, 3]) per frame, plus virials (eV) where asked.

    ``source`` names what made it (a head, or a label set for :func:`reference`); ``baseline`` the label
    set added back to a Δ model's output (None: the model's bare output).
    """

    energy: np.ndarray
    forces: list[np.ndarray]
    virial: list[np.ndarray | None] = field(default_factory=list)
    source: str = ""
    baseline: str | None = None

    def __len__(self) -> int:
        return len(self.energy)


@dataclass
class Scores:
    """Errors of a prediction against one label set; the unit is in every field name (``_A``: Å).

    ``energy_rmse_offset_removed_mev_per_atom`` removes a per-element energy offset fitted on these
    frames (what a different zero of energy, e.g. GFN2-xTB vs DFT, contributes); the ``*_std_*`` fields
    are the labels' spread (energy per atom with per-element offsets removed, force components).
    Barriers are E_TS − E_reactant from ``info['role']`` (NaN when the frames hold no such pair).
    """

    label: str
    n_frames: int
    n_atoms: int
    energy_rmse_mev_per_atom: float
    energy_mae_mev_per_atom: float
    energy_rmse_offset_removed_mev_per_atom: float
    force_rmse_mev_per_A: float
    force_mae_mev_per_A: float
    energy_std_mev_per_atom: float
    force_std_mev_per_A: float
    virial_rmse_mev_per_atom: float = float("nan")
    # the barrier (E_TS − E_reactant) of each reaction with both frames; several reactions: means over them
    barrier_ref_ev: float = float("nan")
    barrier_pred_ev: float = float("nan")
    barrier_err_ev: float = float("nan")  # |predicted − reference| (mean over reactions)
    barrier_reactions: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field."""
        return asdict(self)


def _frames(frames: Any) -> list["Frame"]:
    return list(frames)


def _source(frames: Any) -> str:
    prov = getattr(frames, "provenance", None)
    return (prov.source if prov is not None else None) or getattr(frames, "name", None) or "frames"


def resolve_baseline(model: Any, frames: Sequence["Frame"], baseline: str | None = AUTO) -> str | None:
    """The label set to add to ``model``'s output: a Δ model's baseline under ``"auto"``; checked on every frame."""
    from lam_lab.delta import delta_spec

    spec = delta_spec(model)
    name = (spec or {}).get("baseline") if baseline in (AUTO, COMPUTE) else baseline
    if name is None:
        return None
    missing = [i for i, f in enumerate(frames) if name not in f.labels or f.labels[name].energy is None]
    if missing and baseline == COMPUTE and spec:
        return name
    if missing:
        what = "a Δ model (it predicts label − baseline)" if spec else "this prediction"
        raise DataError(f"{what} needs the baseline labels {name!r} on every frame to give full energies and forces; "
                        f"{len(missing)} of {len(frames)} frames lack them. Label them (lam_lab.labelers.get_labeler("
                        f"{name!r})), pass baseline='compute' to recompute it as LAMCalculator does, or "
                        "baseline=None for the bare Δ output", source=_source(frames), frame=missing[0],
                        field=f"labels[{name!r}]")
    return name


def predict(model: "Potential", frames: Any, head: str | None = None, baseline: str | None = AUTO,
            virial: bool = False, max_atoms: int = 4096) -> Prediction:
    """Energies (eV) and forces (eV/Å) of ``model`` per frame (batches of ≤ ``max_atoms``); Δ: baseline added.

    ``head`` defaults to the only head, else ``"default"``; ``baseline="auto"`` adds a Δ model's stored
    baseline labels, ``"compute"`` recomputes them where frames lack them (None: the bare output, a name:
    that label set); ``virial`` for periodic frames (eV).
    """
    frame_list = _frames(frames)
    base = resolve_baseline(model, frame_list, baseline)
    head = resolve_head(model, head)
    energy, forces, virials = _run(model, frame_list, head, virial, max_atoms)
    if base is not None:
        labs = _baseline_labels(model, frame_list, base)
        energy = energy + np.array([lab.energy for lab in labs])
        forces = [p + lab.forces for p, lab in zip(forces, labs)]
        virials = [v + lab.virial if v is not None and lab.virial is not None else v for v, lab in zip(virials, labs)]
    return Prediction(energy, forces, virials, head, base)


def _baseline_labels(model: Any, frames: Sequence["Frame"], name: str) -> list[Any]:
    """The stored ``name`` labels of each frame, recomputed (the Δ model's run-time baseline) where absent."""
    from lam_lab.data.frame import Labels

    runtime = None
    out = []
    for f in frames:
        lab = f.labels.get(name)
        if lab is None or lab.energy is None:
            if runtime is None:
                from lam_lab.delta import RuntimeBaseline, delta_spec

                runtime = RuntimeBaseline(delta_spec(model))
            atoms = f.to_atoms()
            res = runtime(atoms)
            virial = -_full3(res["stress"]) * atoms.get_volume() if "stress" in res else None
            lab = Labels(res["energy"], res["forces"], virial)
        out.append(lab)
    return out


def _full3(voigt: np.ndarray) -> np.ndarray:
    xx, yy, zz, yz, xz, xy = np.asarray(voigt, dtype=np.float64)
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def resolve_head(model: Any, head: str | None = None) -> str:
    """``head`` checked against the model, else its only head, else ``"default"``; KeyError/ValueError otherwise."""
    if head is None and len(model.heads) > 1 and "default" in model.heads:
        return "default"
    from lam_lab.potential import resolve_head as head_index

    return model.heads[head_index(model, head)]


def _run(model: Any, frames: list["Frame"], head: str, virial: bool,
         max_atoms: int) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray | None]]:
    """The model's own output on ``frames`` in chunks of ≤ ``max_atoms`` atoms (eV, eV/Å, eV)."""
    from lam_lab.nn.batch import collate

    was_training = model.training
    model.eval()
    energies: list[float] = []
    forces: list[np.ndarray] = []
    virials: list[np.ndarray | None] = []
    try:
        start = 0
        while start < len(frames):
            stop, atoms = start, 0
            while stop < len(frames) and (stop == start or atoms + len(frames[stop]) <= max_atoms):
                atoms += len(frames[stop])
                stop += 1
            chunk = frames[start:stop]
            graphs = [model.prepare(f, index=start + k, with_labels=False) for k, f in enumerate(chunk)]
            periodic = [bool(np.all(f.pbc)) for f in chunk]
            want_v = virial and any(periodic)
            out = model(collate(graphs).to(model.device, model.dtype), head=head, forces=True, virial=want_v)
            f_all = out.forces.detach().cpu().double().numpy()
            offsets = np.cumsum([0] + [len(f) for f in chunk])
            energies.extend(out.energy.detach().cpu().double().numpy().tolist())
            forces.extend(f_all[offsets[k]:offsets[k + 1]] for k in range(len(chunk)))
            v_all = out.virial.detach().cpu().double().numpy() if want_v else None
            virials.extend(v_all[k] if want_v and periodic[k] else None for k in range(len(chunk)))
            start = stop
    finally:
        model.train(was_training)
    return np.asarray(energies, dtype=np.float64), forces, virials


def reference(frames: Any, label: str) -> Prediction:
    """A label set of the frames as a :class:`Prediction` (e.g. GFN2-xTB alone next to the models)."""
    frame_list = _frames(frames)
    missing = [i for i, f in enumerate(frame_list) if label not in f.labels or f.labels[label].energy is None
               or f.labels[label].forces is None]
    if missing:
        raise DataError(f"{len(missing)} of {len(frame_list)} frames lack energy and forces of label set {label!r}",
                        source=_source(frames), frame=missing[0], field=f"labels[{label!r}]")
    labs = [f.labels[label] for f in frame_list]
    return Prediction(np.array([lab.energy for lab in labs], dtype=np.float64), [lab.forces.copy() for lab in labs],
                      [None if lab.virial is None else lab.virial.copy() for lab in labs], label, None)


def offset_removed(per_atom: np.ndarray, frames: Sequence["Frame"]) -> np.ndarray:
    """Per-atom energies (any unit) minus a least-squares per-element offset Σ_z x_mz δ_z (x: composition fractions)."""
    if len(per_atom) == 0:
        return np.asarray(per_atom, dtype=np.float64)
    zs = sorted({int(z) for f in frames for z in f.numbers})
    x = np.array([[np.count_nonzero(f.numbers == z) / len(f) for z in zs] for f in frames])
    delta, *_ = np.linalg.lstsq(x, per_atom, rcond=None)
    return per_atom - x @ delta


def label_spread(frames: Sequence["Frame"], label: str) -> tuple[float, float]:
    """The labels' spread: (energy per atom with per-element offsets removed meV/atom, force components meV/Å)."""
    with_e = [f for f in frames if label in f.labels and f.labels[label].energy is not None]
    e = np.array([f.labels[label].energy / len(f) for f in with_e])
    fs = [f.labels[label].forces.ravel() for f in frames if label in f.labels and f.labels[label].forces is not None]
    e_std = 1000 * float(np.std(offset_removed(e, with_e))) if len(e) else float("nan")
    f_std = 1000 * float(np.std(np.concatenate(fs))) if fs else float("nan")
    return e_std, f_std


def _rms(x: np.ndarray) -> float:
    return 1000 * float(np.sqrt(np.mean(x ** 2))) if x.size else float("nan")


def _mae(x: np.ndarray) -> float:
    return 1000 * float(np.mean(np.abs(x))) if x.size else float("nan")


def score(prediction: Prediction, frames: Any, label: str | None = None,
          barrier: tuple[int, int] | None | str = AUTO) -> Scores:
    """Errors of ``prediction`` against label set ``label`` of the same ``frames`` (default: their only label set).

    Frames whose label lacks energies (forces) are left out of the energy (force) errors. ``barrier``:
    (reactant, ts) indices, ``"auto"`` (every reaction's pair from ``info['role']``; the barrier fields are then
    means over those reactions, counted in ``barrier_reactions``), or None.
    """
    frame_list = _frames(frames)
    if len(frame_list) != len(prediction):
        raise ValueError(f"prediction has {len(prediction)} frames, the reference {len(frame_list)}")
    label = label or _default_label(frames)
    refs = [f.labels.get(label) for f in frame_list]
    if all(r is None for r in refs):
        raise DataError(f"no frame carries label set {label!r}", source=_source(frames), field="label")
    n = np.array([len(f) for f in frame_list], dtype=np.float64)
    has_e = np.array([r is not None and r.energy is not None for r in refs], dtype=bool)
    e_ref = np.array([r.energy if ok else np.nan for r, ok in zip(refs, has_e)], dtype=np.float64)
    de = ((prediction.energy - e_ref) / n)[has_e]
    df = [(p - r.forces).ravel() for p, r in zip(prediction.forces, refs) if r is not None and r.forces is not None]
    df_all = np.concatenate(df) if df else np.zeros(0)
    dv = [((v - r.virial) / k).ravel() for v, r, k in zip(prediction.virial, refs, n)
          if v is not None and r is not None and r.virial is not None]
    e_std, f_std = label_spread(frame_list, label)
    out = Scores(label, len(frame_list), int(n.sum()), _rms(de), _mae(de),
                 _rms(offset_removed(de, [f for f, ok in zip(frame_list, has_e) if ok])), _rms(df_all), _mae(df_all),
                 e_std, f_std, _rms(np.concatenate(dv)) if dv else float("nan"))
    pairs = barrier_pairs(frame_list) if barrier == AUTO else [barrier] if barrier is not None else []
    pairs = [(r, ts) for r, ts in pairs if has_e[r] and has_e[ts]]
    if pairs:  # one reaction: its barrier; several: each reaction's, averaged (not the first one's)
        ref = np.array([e_ref[ts] - e_ref[r] for r, ts in pairs])
        pred = np.array([prediction.energy[ts] - prediction.energy[r] for r, ts in pairs])
        out.barrier_ref_ev, out.barrier_pred_ev = float(ref.mean()), float(pred.mean())
        out.barrier_err_ev, out.barrier_reactions = float(np.mean(np.abs(pred - ref))), len(pairs)
    return out


def _default_label(frames: Any) -> str:
    if hasattr(frames, "default_label"):
        return frames.default_label()
    sets = {k for f in frames for k in f.labels}
    if len(sets) != 1:
        raise DataError(f"frames carry label sets {sorted(sets)}: name one with label=", field="label")
    return sets.pop()


def parity(prediction: Prediction, frames: Any, label: str, max_forces: int | None = PARITY_FORCES,
           seed: int = 0) -> dict[str, np.ndarray]:
    """Reference vs predicted E/N (eV/atom) per frame and force components (eV/Å, seeded subset ≤ ``max_forces``)."""
    frame_list = _frames(frames)
    keep = [k for k, f in enumerate(frame_list) if label in f.labels and f.labels[label].energy is not None]
    n = np.array([len(frame_list[k]) for k in keep], dtype=np.float64)
    f_ref = np.concatenate([f.labels[label].forces.ravel() for f in frame_list
                            if label in f.labels and f.labels[label].forces is not None] or [np.zeros(0)])
    f_pred = np.concatenate([p.ravel() for p, f in zip(prediction.forces, frame_list)
                             if label in f.labels and f.labels[label].forces is not None] or [np.zeros(0)])
    if max_forces is not None and f_ref.size > max_forces:
        pick = np.sort(np.random.default_rng(seed).permutation(f_ref.size)[:max_forces])
        f_ref, f_pred = f_ref[pick], f_pred[pick]
    return {"e_ref": np.array([frame_list[k].labels[label].energy for k in keep]) / n,
            "e_pred": prediction.energy[keep] / n, "f_ref": f_ref, "f_pred": f_pred}


__all__ = ["Prediction", "Scores", "predict", "reference", "score", "parity", "barrier_frames", "barrier_pairs",
           "label_spread", "offset_removed", "resolve_baseline", "resolve_head"]
