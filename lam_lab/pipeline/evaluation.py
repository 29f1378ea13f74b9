"""Scores the pipeline reports: errors against high-level labels as users' calculators give them, barriers, speed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lam_lab.data.dataset import Dataset
from lam_lab.evaluation import Prediction, Scores, offset_removed, parity, predict, reference
from lam_lab.evaluation import score as score_prediction


def downstream_splits(ds: Dataset) -> tuple[Dataset, Dataset, Dataset]:
    """Train / validation / test frames of a set that carries ``info['split']`` (rxn-dft: test = held-out reaction)."""
    return ds.where(split="train", required=True), ds.where(split="val"), ds.where(split="test", required=True)


def _with_parity(s: Scores, pred: Prediction, test: Dataset, label: str) -> dict[str, Any]:
    p = parity(pred, test, label)
    return {**s.to_dict(), "parity": {k: np.asarray(v).tolist() for k, v in p.items()}}


def score(model: Any, test: Dataset, label: str, baseline: str | None = None) -> dict[str, Any]:
    """:class:`lam_lab.evaluation.Scores` of ``model`` on ``test`` vs ``label`` as a dict, with parity data.

    A Δ model is scored with its baseline's stored labels added (the same numbers its calculator gives,
    without recomputing GFN2-xTB); ``baseline`` names that label set when the model does not.
    """
    from lam_lab.delta import delta_spec

    base = (delta_spec(model) or {}).get("baseline", baseline) if delta_spec(model) else None
    pred = predict(model, test, baseline=base)
    return _with_parity(score_prediction(pred, test, label), pred, test, label)


def baseline_score(test: Dataset, label: str, baseline: str) -> dict[str, Any] | None:
    """The baseline method alone (its stored labels, e.g. GFN2-xTB) scored like a model; None when absent."""
    if not all(baseline in f.labels for f in test):
        return None
    pred = reference(test, baseline)
    out = _with_parity(score_prediction(pred, test, label), pred, test, label)
    par = out["parity"]  # the baseline's energies have another zero: compare them with per-element offsets removed
    keep = [f for f in test if label in f.labels and f.labels[label].energy is not None]
    e_ref, e_pred = np.asarray(par["e_ref"]), np.asarray(par["e_pred"])
    par["e_pred"] = (e_ref + offset_removed(e_pred - e_ref, keep)).tolist() if keep else par["e_pred"]
    return out


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
