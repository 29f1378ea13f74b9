"""Scores the pipeline reports: errors against high-level labels through the calculator users run, barriers, MD speed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lam_lab.data.dataset import Dataset
from lam_lab.data.errors import DataError


def downstream_splits(ds: Dataset) -> tuple[Dataset, Dataset, Dataset]:
    """Train / validation / test frames of a set that carries ``info['split']`` (rxn-dft: test = held-out reaction)."""
    parts = [ds[[i for i, f in enumerate(ds) if f.info.get("split") == s]] for s in ("train", "val", "test")]
    if not len(parts[0]) or not len(parts[2]):
        raise DataError("needs frames with info['split'] = train and test", source=ds.name, field="info.split")
    return parts[0], parts[1], parts[2]


def score(model: Any, test: Dataset, label: str, baseline: str | None = None) -> dict[str, Any]:
    """E RMSE (meV/atom), F RMSE (meV/Å), barrier (eV) and parity data of ``model`` on ``test`` vs ``label``.

    A Δ model is scored with its baseline's stored labels added (the same numbers its calculator gives,
    without recomputing GFN2-xTB); ``baseline`` names that label set when the model does not.
    """
    from lam_lab.delta import delta_spec
    from lam_lab.experiments.learning_curve import _barrier_frames, predict

    spec = delta_spec(model)
    base = spec.get("baseline", baseline) if spec else None
    e_pred, f_pred = predict(model, list(test), model.heads[model._head_index(None)])
    if base is not None:
        e_pred = e_pred + np.array([f.labels[base].energy for f in test])
        f_pred = [p + f.labels[base].forces for p, f in zip(f_pred, test)]
    e_ref = np.array([f.labels[label].energy for f in test])
    f_ref = [f.labels[label].forces for f in test]
    n = np.array([len(f) for f in test])
    de = (e_pred - e_ref) / n
    df = np.concatenate([p - r for p, r in zip(f_pred, f_ref)])
    b_ref = b_pred = float("nan")
    roles = _barrier_frames(test)  # (reactant, ts) indices
    if roles is not None:
        r, t = roles
        b_ref, b_pred = float(e_ref[t] - e_ref[r]), float(e_pred[t] - e_pred[r])
    thin = np.random.default_rng(0).permutation(df.size)[:1500]
    return {"e_rmse": 1000 * float(np.sqrt(np.mean(de ** 2))), "f_rmse": 1000 * float(np.sqrt(np.mean(df ** 2))),
            "barrier_ref": b_ref, "barrier_pred": b_pred, "barrier_err": abs(b_pred - b_ref),
            "parity": {"e_ref": (e_ref / n).tolist(), "e_pred": (e_pred / n).tolist(),
                       "f_ref": np.concatenate(f_ref).ravel()[thin].tolist(),
                       "f_pred": np.concatenate(f_pred).ravel()[thin].tolist()}}


def zero_shot_rows(model: Any, ds: Dataset, label: str) -> list[dict[str, Any]]:
    """Each head of a pre-trained model on the held-out reaction vs ``label``, energy bias refit on the train split."""
    from lam_lab.pretrained.model_card import zero_shot
    from lam_lab.pretrained.recipe import TaskSplit

    train, val, test = downstream_splits(ds.with_label(label))
    other = next((s for s in test.label_sets if s != label), label)
    return [r for r in zero_shot(model, TaskSplit(train, val, test, other), ds.name) if r["label"] == label]


def md_speed(models: Mapping[str, str | Path], device: str | None = None, repeats: int = 5) -> dict[str, Any]:
    """µs/atom per energy+force call of each model (without a Δ model's baseline) on water and the Diels–Alder TS."""
    from lam_lab import datasets
    from lam_lab.md.calculator import LAMCalculator
    from lam_lab.md.reactive import builtin_ts

    water = datasets.load("water-ff")[0].to_atoms()
    systems = {"water (96 atoms, periodic)": water, "Diels–Alder TS (16 atoms)": builtin_ts("diels-alder").ts}
    out: dict[str, Any] = {"unit": "µs/atom/step", "rows": []}
    rng = np.random.default_rng(0)
    for sname, atoms in systems.items():
        row: dict[str, Any] = {"system": sname, "atoms": len(atoms)}
        for mname, path in models.items():
            a = atoms.copy()
            a.calc = LAMCalculator(str(path), device=device, baseline=False)
            best = float("inf")
            for _ in range(repeats + 1):  # the first call builds and warms up
                a.positions += rng.normal(0, 1e-3, a.positions.shape)
                t0 = time.perf_counter()
                a.get_forces()
                best = min(best, time.perf_counter() - t0)
            row[mname] = 1e6 * best / len(a)
        out["rows"].append(row)
    if {"teacher", "student"} <= set(models):
        out["speedup"] = float(np.mean([r["teacher"] / r["student"] for r in out["rows"]]))
    return out
