"""Learning curves on rxn-dft: errors on the held-out reaction vs training frames N, per training method.

Methods: from scratch, fine-tuned from the multi-task model, Δ-ML (on GFN2-xTB) from scratch and
fine-tuned, and the AtomFT correction. Every method at a given N sees the same frames (one seeded
permutation, so smaller sets are nested in larger ones) and the same optimizer budget. Errors are
against the high-level labels (:mod:`lam_lab.evaluation`): energy RMSE meV/atom, force RMSE meV/Å,
barrier-height error eV (E_TS − E_reactant of the test reaction). Δ models are scored with the frames'
stored baseline labels added, which is what their calculator computes at run time; the baseline alone
(GFN2-xTB) is scored on the same frames as the reference row.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import torch

from lam_lab.data.dataset import Dataset
from lam_lab.evaluation import Scores, predict, reference, score
from lam_lab.train.config import TrainConfig

# method -> (finetune mode, starts from the pre-trained model)
METHODS: dict[str, tuple[str, bool]] = {
    "scratch": ("scratch", False),
    "finetune": ("finetune", True),
    "delta-scratch": ("delta", False),
    "delta-finetune": ("delta", True),
    "atomft": ("atomft", True),
}
SIZES: tuple[int | str, ...] = (25, 50, 100, 200, "all")


@dataclass
class CurveRow:
    """One method at one training-set size: errors on the test reaction (unit in each field name, ``_A``: Å)."""

    method: str
    size: str  # "25", ..., "all" ("0" for the baseline alone)
    n: int  # training frames used
    energy_rmse_mev_per_atom: float
    force_rmse_mev_per_A: float
    barrier_err_ev: float  # |predicted − reference| barrier
    barrier_pred_ev: float
    barrier_ref_ev: float
    train_s: float
    steps: int
    branch: str | None = None
    energy_rmse_offset_removed_mev_per_atom: float = float("nan")

    @classmethod
    def from_scores(cls, method: str, size: str, n: int, s: Scores, train_s: float = 0.0, steps: int = 0,
                    branch: str | None = None) -> "CurveRow":
        """A row from :class:`lam_lab.evaluation.Scores`."""
        return cls(method, size, n, s.energy_rmse_mev_per_atom, s.force_rmse_mev_per_A, s.barrier_err_ev,
                   s.barrier_pred_ev, s.barrier_ref_ev, train_s, steps, branch,
                   s.energy_rmse_offset_removed_mev_per_atom)

    @property
    def e_rmse(self) -> float:
        """Energy RMSE, meV/atom (short name)."""
        return self.energy_rmse_mev_per_atom

    @property
    def f_rmse(self) -> float:
        """Force RMSE, meV/Å (short name)."""
        return self.force_rmse_mev_per_A

    @property
    def barrier_err(self) -> float:
        """|barrier error| in meV: the old field, kept for callers that print meV; use ``barrier_err_ev``."""
        return 1000 * self.barrier_err_ev


_OLD_KEYS = {"e_rmse": "energy_rmse_mev_per_atom", "f_rmse": "force_rmse_mev_per_A", "barrier_pred": "barrier_pred_ev",
             "barrier_ref": "barrier_ref_ev"}


def _row_from_dict(d: dict[str, Any]) -> CurveRow:
    """A row from ``to_dict()`` output, also of files written before the unit-named fields (barrier_err in meV)."""
    d = {_OLD_KEYS.get(k, k): v for k, v in d.items()}
    if "barrier_err" in d:
        d["barrier_err_ev"] = d.pop("barrier_err") / 1000
    known = set(CurveRow.__dataclass_fields__)
    return CurveRow(**{k: (float("nan") if v is None and k.endswith(("_mev_per_atom", "_mev_per_A", "_ev")) else v)
                       for k, v in d.items() if k in known})


@dataclass
class LearningCurve:
    """Rows of every (method, N), the baseline alone on the same test frames, the settings; table/figure/JSON."""

    rows: list[CurveRow]
    settings: dict[str, Any] = field(default_factory=dict)
    baseline: CurveRow | None = None  # the baseline method (GFN2-xTB) alone on the test frames

    def get(self, method: str, size: int | str) -> CurveRow | None:
        """The row of ``method`` at ``size`` (an int or "all"), or None."""
        return next((r for r in self.rows if r.method == method and r.size == str(size)), None)

    @property
    def best_at_50_over_scratch_at_all(self) -> float | None:
        """Force RMSE of the best method at N=50 over from-scratch at all frames (None if either is missing)."""
        at50 = [r.f_rmse for r in self.rows if r.size == "50" and math.isfinite(r.f_rmse)]
        ref = self.get("scratch", "all")
        return float(min(at50) / ref.f_rmse) if at50 and ref is not None and ref.f_rmse > 0 else None

    def table(self) -> str:
        """The rows (and the baseline alone, first) as a fixed-width text table."""
        hdr = (f"{'method':<16}{'N':>6}{'E RMSE':>10}{'E RMSE*':>10}{'F RMSE':>10}{'barrier err':>13}"
               f"{'train s':>9}")
        lines = [hdr, "-" * len(hdr)]
        order = lambda r: (list(METHODS).index(r.method) if r.method in METHODS else 99, r.n)  # noqa: E731
        for r in ([self.baseline] if self.baseline else []) + sorted(self.rows, key=order):
            size = "-" if r is self.baseline else (f"{r.n}" if r.size != "all" else f"all {r.n}")
            e_raw = "-" if r is self.baseline else f"{r.e_rmse:.2f}"
            lines.append(f"{r.method:<16}{size:>6}{e_raw:>10}{r.energy_rmse_offset_removed_mev_per_atom:>10.2f}"
                         f"{r.f_rmse:>10.1f}{r.barrier_err_ev:>13.3f}{r.train_s:>9.1f}")
        lines.append("(test: held-out reactions; energy meV/atom, E RMSE*: per-element offsets fitted on the test "
                     "frames removed, force meV/Å, barrier eV, the mean over the test reactions with a TS)")
        ratio = self.best_at_50_over_scratch_at_all
        if ratio is not None:
            lines.append(f"best method at N=50 / scratch at all frames (force RMSE): {ratio:.3f}")
        return "\n".join(lines)

    def figure(self) -> Any:
        """A plotly figure: energy, force and barrier errors vs N (log axes) per method, the baseline dashed."""
        from lam_lab.plots import learning_curve_figure

        return learning_curve_figure(
            [asdict(r) for r in self.rows], asdict(self.baseline) if self.baseline else None,
            f"Learning curves on {self.settings.get('dataset', '')} (test: {self.settings.get('test', '')})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: rows, the baseline row, settings and the headline ratio."""
        return {"rows": [asdict(r) for r in self.rows], "baseline": asdict(self.baseline) if self.baseline else None,
                "settings": self.settings, "best_at_50_over_scratch_at_all": self.best_at_50_over_scratch_at_all}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LearningCurve":
        """Inverse of :meth:`to_dict` (also reads files written before the unit-named fields)."""
        base = d.get("baseline")
        return cls([_row_from_dict(r) for r in d.get("rows", [])], dict(d.get("settings") or {}),
                   _row_from_dict(base) if base else None)


def baseline_row(test: Dataset, label: str, baseline: str) -> CurveRow | None:
    """The baseline's stored labels scored against ``label`` on the test frames (None when it is not on them)."""
    if not all(baseline in f.labels for f in test):
        return None
    s = score(reference(test, baseline), test, label)
    return CurveRow.from_scores(f"{baseline} alone", "0", 0, s)


def learning_curve(
    dataset: Dataset | str = "rxn-dft",
    pretrained: Any = "lam-chon-small",
    sizes: Sequence[int | str | None] = SIZES,
    methods: Sequence[str] = tuple(METHODS),
    label: str = "wb97x/6-31g*",
    baseline: str = "gfn2-xtb",
    steps: int | None = 2000,
    minutes: float | None = None,
    config: TrainConfig | None = None,
    preset: Any = None,
    alpha: float = 0.1,
    seed: int = 0,
    progress: bool = False,
    on_row: Callable[[CurveRow], None] | None = None,
    device: str | torch.device | None = None,
) -> LearningCurve:
    """Train every method at every size on the frames with info['split']=="train" and score on "test".

    ``sizes`` holds ints and "all" (or None); ``preset`` for the from-scratch models defaults to the
    pre-trained model's architecture (same capacity), else "dpa2-small". ``on_row`` sees each row as it is done.
    """
    from lam_lab.data.io import load_source
    from lam_lab.finetune import finetune, resolve_pretrained

    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    ds = load_source(dataset) if isinstance(dataset, str) else dataset
    pool, test = ds.where(split="train", required=True), ds.where(split="test", required=True)
    pre, source = None, None
    if any(METHODS[m][1] for m in methods):
        pre, source = resolve_pretrained(pretrained)
    preset = preset if preset is not None else (pre.config if pre is not None else "dpa2-small")
    rows = []
    for size in sizes:
        size = "all" if size in (None, "all") else int(size)
        n = len(pool) if size == "all" else size
        for method in methods:
            mode, uses_pre = METHODS[method]
            t0 = time.perf_counter()
            res = finetune(pool, pretrained=pre if uses_pre else None, mode=mode, label=label, baseline=baseline,
                           frames=None if size == "all" else n, alpha=alpha, preset=preset, steps=steps,
                           minutes=minutes,
                           config=config, out_dir=None, progress=progress, device=device, seed=seed)
            s = score(predict(res.model, test, res.head, baseline=baseline if mode == "delta" else None), test, label)
            row = CurveRow.from_scores(method, str(size), n, s, time.perf_counter() - t0, res.train.steps, res.branch)
            rows.append(row)
            if on_row is not None:
                on_row(row)
    settings = {"dataset": ds.name, "test": ",".join(sorted({str(f.info.get("reaction")) for f in test})),
                "n_pool": len(pool), "n_test": len(test), "label": label, "baseline": baseline, "steps": steps,
                "minutes": minutes, "seed": seed, "alpha": alpha, "pretrained": source,
                "sizes": [str(s) for s in sizes], "methods": list(methods),
                "config": asdict(config) if config is not None else None}
    return LearningCurve(rows, settings, baseline_row(test, label, baseline))
