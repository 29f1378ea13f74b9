"""Test metrics: energy (meV/atom) and force (meV/Å) RMSE/MAE per data set, WARMSE, parity data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import torch

from lam_lab.data.dataset import Dataset
from lam_lab.data.errors import DataError

if TYPE_CHECKING:
    from lam_lab.potential import Potential

_MAX_PARITY_FORCES = 30000  # force components kept for parity plots (subsampled, seeded)
# frames needed beyond the fitted per-element offsets before the energy spread means anything: with 3
# validation frames of 3 compositions the offsets fit them exactly and the spread read "E std 0.0"
MIN_SPREAD_DOF = 3


@dataclass
class MetricsRow:
    """Errors of one model head on one data set; energies meV/atom, forces meV/Å, virial meV/atom.

    ``e_std``/``f_std`` are the standard deviations of the labels (energy per atom over frames with a
    least-squares per-element offset removed, force components over atoms), as in the paper's Table 2:
    an RMSE below them means the model explains the data better than per-element constants do.
    ``e_std`` is NaN (shown "n/a") when fewer than ``MIN_SPREAD_DOF`` frames remain beyond the offsets.
    """

    name: str
    head: str
    label: str
    n_frames: int
    n_atoms: int
    e_rmse: float
    e_mae: float
    f_rmse: float
    f_mae: float
    e_std: float
    f_std: float
    v_rmse: float = float("nan")
    weight: float = 1.0
    baseline: str | None = None  # label set added to a Δ model's output (None: the model alone)


@dataclass
class Parity:
    """Reference vs predicted values for parity plots: E/N in eV/atom per frame, force components eV/Å."""

    e_ref: np.ndarray
    e_pred: np.ndarray
    f_ref: np.ndarray
    f_pred: np.ndarray


@dataclass
class MetricsTable:
    """Rows per data set and the weighted averages WARMSE = Σ w_k RMSE_k / Σ w_k (paper Table 2)."""

    rows: list[MetricsRow]
    parity: dict[str, Parity] = field(default_factory=dict)

    @property
    def warmse_e(self) -> float:
        """Weighted average energy RMSE (meV/atom)."""
        return _wavg([(r.e_rmse, r.weight) for r in self.rows])

    @property
    def warmse_f(self) -> float:
        """Weighted average force RMSE (meV/Å)."""
        return _wavg([(r.f_rmse, r.weight) for r in self.rows])

    def __getitem__(self, name: str) -> MetricsRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict: rows, WARMSEs (parity arrays left out)."""
        return {"rows": [asdict(r) for r in self.rows], "warmse_e": self.warmse_e, "warmse_f": self.warmse_f}

    def __str__(self) -> str:
        hdr = (f"{'data set':<22}{'head':<14}{'frames':>7}{'E RMSE':>10}{'E MAE':>10}{'E std':>9}"
               f"{'F RMSE':>9}{'F MAE':>8}{'F std':>9}")
        lines = [hdr, "-" * len(hdr)]
        for r in self.rows:
            lines.append(f"{r.name[:21]:<22}{r.head[:13]:<14}{r.n_frames:>7}{_num(r.e_rmse, 10, 2)}"
                         f"{_num(r.e_mae, 10, 2)}{_num(r.e_std, 9, 1)}{_num(r.f_rmse, 9, 1)}{_num(r.f_mae, 8, 1)}"
                         f"{_num(r.f_std, 9, 1)}")
        if len(self.rows) > 1:
            lines.append(f"{'WARMSE':<22}{'':<14}{'':>7}{_num(self.warmse_e, 10, 2)}{'':>10}{'':>9}"
                         f"{_num(self.warmse_f, 9, 1)}")
        lines.append("(energy meV/atom, force meV/Å; E std: labels' spread per atom, per-element offsets removed; "
                     f"n/a with fewer than {MIN_SPREAD_DOF} frames beyond the offsets)")
        for r in self.rows:
            if r.baseline:
                lines.append(f"{r.name}: Δ model, the frames' {r.baseline!r} labels added back to its output")
        return "\n".join(lines)


def _num(value: float, width: int, digits: int) -> str:
    """A right-aligned number, or "n/a" when it is not finite."""
    v = float(value)
    return f"{v:>{width}.{digits}f}" if np.isfinite(v) else f"{'n/a':>{width}}"


def spread_defined(n_frames: int, offsets: int) -> bool:
    """Whether an energy spread over ``n_frames`` with ``offsets`` fitted per-element constants is meaningful."""
    return n_frames - offsets >= MIN_SPREAD_DOF


def _wavg(pairs: Sequence[tuple[float, float]]) -> float:
    ok = [(v, w) for v, w in pairs if np.isfinite(v)]
    return float(sum(v * w for v, w in ok) / sum(w for _, w in ok)) if ok else float("nan")


class _Sums:
    """Running sums that make the metrics (and can be all-reduced across DDP ranks).

    ``xx``/``xy`` are the normal equations of the per-atom label energy on the composition fractions, so the
    energy spread is reported with per-element offsets removed (a mixed-composition or Δ set's raw spread is
    the offsets, hundreds of eV/atom, not the information a model has to learn).
    """

    KEYS = ("n_frames", "n_atoms", "n_e", "e_sq", "e_abs", "e_ref", "e_ref2", "n_f", "f_sq", "f_abs", "f_ref", "f_ref2",
            "n_v", "v_sq")

    def __init__(self, n_types: int = 0) -> None:
        self.v = dict.fromkeys(self.KEYS, 0.0)
        self.xx = np.zeros((n_types, n_types))
        self.xy = np.zeros(n_types)

    def reduce(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        k, t = len(self.KEYS), len(self.xy)
        flat = np.concatenate([[self.v[key] for key in self.KEYS], self.xx.ravel(), self.xy])
        out = fn(torch.tensor(flat, dtype=torch.float64)).numpy()
        self.v = dict(zip(self.KEYS, out[:k].tolist()))
        self.xx, self.xy = out[k:k + t * t].reshape(t, t), out[k + t * t:]

    def add_composition(self, x: np.ndarray, y: np.ndarray) -> None:
        """Composition fractions [B, T] and label energies per atom [B] (eV/atom) of frames with energies."""
        if len(self.xy):
            self.xx += x.T @ x
            self.xy += x.T @ y

    def e_std(self) -> float:
        """Label energy spread per atom with per-element offsets removed (meV/atom)."""
        n, s2 = self.v["n_e"], self.v["e_ref2"]
        if not n:
            return float("nan")
        if not len(self.xy) or not self.xx.any():
            if not spread_defined(int(n), 1):
                return float("nan")
            return float(np.sqrt(max(s2 / n - (self.v["e_ref"] / n) ** 2, 0.0))) * 1000
        if not spread_defined(int(n), int(np.linalg.matrix_rank(self.xx))):  # the offsets fit the few frames
            return float("nan")
        delta = np.linalg.lstsq(self.xx, self.xy, rcond=None)[0]
        return float(np.sqrt(max((s2 - delta @ self.xy) / n, 0.0))) * 1000

    def row(self, name: str, head: str, label: str, weight: float) -> MetricsRow:
        v = self.v
        rms = lambda sq, n: float(np.sqrt(sq / n)) * 1000 if n else float("nan")  # noqa: E731
        mean = lambda s, n: s / n * 1000 if n else float("nan")  # noqa: E731
        std = lambda s, s2, n: float(np.sqrt(max(s2 / n - (s / n) ** 2, 0.0))) * 1000 if n else float("nan")  # noqa: E731
        return MetricsRow(
            name, head, label, int(v["n_frames"]), int(v["n_atoms"]),
            rms(v["e_sq"], v["n_e"]), mean(v["e_abs"], v["n_e"]), rms(v["f_sq"], v["n_f"]), mean(v["f_abs"], v["n_f"]),
            self.e_std(), std(v["f_ref"], v["f_ref2"], v["n_f"]), rms(v["v_sq"], v["n_v"]), weight,
        )


def _default_head(model: "Potential", name: str | None) -> str:
    if name is not None and name in model.heads:
        return name
    if "default" in model.heads:
        return "default"
    if len(model.heads) == 1:
        return model.heads[0]
    raise DataError(f"model has heads {list(model.heads)}: name one with head=", field="head")


def evaluate(
    model: "Potential",
    dataset: Dataset | Mapping[str, Dataset],
    head: str | Mapping[str, str] | None = None,
    label: str | Mapping[str, str] | None = None,
    weights: Mapping[str, float] | None = None,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    parity: bool = True,
    baseline: str | None = "auto",
) -> MetricsTable:
    """Energy/force errors of ``model`` on one data set or a dict of them (name → Dataset).

    Each data set is evaluated through ``head`` (default: the head named like the data set, else
    ``"default"`` or the only head) against its ``label`` set (default: the data set's default
    label). A Δ model gets the frames' stored baseline labels added back (``baseline="auto"``; a
    DataError says what is missing when the frames lack them; None compares the bare Δ output).
    ``weights`` (name → weight) make the WARMSE; energies in meV/atom, forces in meV/Å.
    """
    from lam_lab.evaluation import predict, score

    sets = {dataset.name: dataset} if isinstance(dataset, Dataset) else dict(dataset)
    if device is not None and torch.device(device) != next(model.parameters()).device:
        import copy

        model = copy.deepcopy(model).to(device)
    rows, par = [], {}
    for name, ds in sets.items():
        h = head if isinstance(head, str) else _default_head(model, (head or {}).get(name, name) if head else name)
        if h not in model.heads:
            raise DataError(f"model has no head {h!r} (heads: {list(model.heads)})", field="head")
        lab = label if isinstance(label, str) else (label or {}).get(name) or ds.default_label()
        if lab not in ds.label_sets:
            raise DataError(f"label set {lab!r} not in {ds.label_sets}", source=ds.provenance.source or ds.name,
                            field="label")
        frames = ds.with_label(lab)
        virial = any(f.labels[lab].virial is not None and f.is_periodic for f in frames)
        pred = predict(model, frames, h, baseline=_baseline_for(model, lab, baseline), virial=virial,
                       max_atoms=max(512, 64 * batch_size))
        s = score(pred, frames, lab, barrier=None)
        e_std = s.energy_std_mev_per_atom if spread_defined(_n_energies(frames, lab), _n_offsets(frames, lab)) \
            else float("nan")
        rows.append(MetricsRow(name, h, lab, s.n_frames, s.n_atoms, s.energy_rmse_mev_per_atom,
                               s.energy_mae_mev_per_atom, s.force_rmse_mev_per_A, s.force_mae_mev_per_A,
                               e_std, s.force_std_mev_per_A, s.virial_rmse_mev_per_atom,
                               float((weights or {}).get(name, 1.0)), pred.baseline))
        if parity:
            par[name] = _parity(pred, frames, lab)
    return MetricsTable(rows, par)


def _n_energies(frames: Dataset, label: str) -> int:
    return sum(f.labels[label].energy is not None for f in frames)


def _n_offsets(frames: Dataset, label: str) -> int:
    """How many independent per-element offsets the compositions of the frames with energies determine."""
    comps = [np.bincount(f.numbers, minlength=119) / len(f) for f in frames if f.labels[label].energy is not None]
    return int(np.linalg.matrix_rank(np.array(comps))) if comps else 0


def _baseline_for(model: "Potential", label: str, baseline: str | None) -> str | None:
    """``baseline`` unless the labels are the Δ model's own Δ label set (then the bare output is what compares)."""
    from lam_lab.delta import delta_spec

    spec = delta_spec(model)
    if baseline == "auto" and spec and label.startswith("delta:"):
        return None
    return baseline


def _parity(pred: Any, frames: Dataset, label: str) -> Parity:
    from lam_lab.evaluation import parity

    p = parity(pred, frames, label, max_forces=_MAX_PARITY_FORCES)
    return Parity(p["e_ref"], p["e_pred"], p["f_ref"], p["f_pred"])


def evaluate_graphs(
    model: "Potential", graphs: Sequence[Any], head: str, batch_size: int, device: torch.device,
    keep_parity: bool = False, shard: tuple[int, int] = (0, 1),
) -> tuple[_Sums, Parity | None]:
    """Error sums of ``model`` over prepared graphs (this rank's ``shard`` = (rank, world) of them)."""
    from lam_lab.nn.batch import collate

    dtype = next(model.parameters()).dtype
    was_training = model.training
    model.eval()
    sums = _Sums(len(model.type_map))
    e_ref, e_pred, f_ref, f_pred = [], [], [], []
    rank, world = shard
    mine = [graphs[i] for i in range(rank, len(graphs), world)]
    try:
        for start in range(0, len(mine), batch_size):
            batch = collate(mine[start : start + batch_size]).to(device, dtype)
            want_v = batch.virial is not None and bool(batch.has_virial.any())
            out = model(batch, head=head, forces=True, virial=want_v, create_graph=False)
            _accumulate(sums, out, batch, keep_parity, (e_ref, e_pred, f_ref, f_pred))
    finally:
        model.train(was_training)
    if not keep_parity:
        return sums, None
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0)  # noqa: E731
    fr, fp = cat(f_ref), cat(f_pred)
    if len(fr) > _MAX_PARITY_FORCES:
        keep = np.sort(np.random.default_rng(0).choice(len(fr), _MAX_PARITY_FORCES, replace=False))
        fr, fp = fr[keep], fp[keep]
    return sums, Parity(cat(e_ref), cat(e_pred), fr, fp)


def _add(v: dict[str, float], key: str, ref: torch.Tensor, pred: torch.Tensor) -> None:
    """Add counts, squared/absolute errors and label moments of one quantity ("e", "f" or "v")."""
    d = pred - ref
    v[f"n_{key}"] += d.numel()
    v[f"{key}_sq"] += float((d**2).sum())
    if key != "v":
        v[f"{key}_abs"] += float(d.abs().sum())
        v[f"{key}_ref"] += float(ref.sum())
        v[f"{key}_ref2"] += float((ref**2).sum())


def _accumulate(sums: _Sums, out: Any, batch: Any, keep: bool, lists: tuple[list, ...]) -> None:
    """Fold one batch's errors into ``sums`` (and its parity points into ``lists``)."""
    n = batch.n_atoms.double()
    sums.v["n_frames"] += len(n)
    sums.v["n_atoms"] += float(n.sum())
    if batch.energy is not None and bool(batch.has_energy.any()):
        m = batch.has_energy
        ref, pred = (batch.energy.double() / n)[m], (out.energy.detach().double() / n)[m]
        _add(sums.v, "e", ref, pred)
        counts = torch.zeros(len(n), len(sums.xy), dtype=torch.float64, device=n.device)
        ones = torch.ones_like(batch.frame, dtype=torch.float64)
        counts.index_put_((batch.frame, batch.types), ones, accumulate=True)
        sums.add_composition((counts / n[:, None])[m].cpu().numpy(), ref.cpu().numpy())
        if keep:
            lists[0].append(ref.cpu().numpy())
            lists[1].append(pred.cpu().numpy())
    if batch.forces is not None and out.forces is not None and bool(batch.has_forces.any()):
        m = batch.has_forces[batch.frame]
        ref, pred = batch.forces.double()[m].reshape(-1), out.forces.detach().double()[m].reshape(-1)
        _add(sums.v, "f", ref, pred)
        if keep:
            lists[2].append(ref.cpu().numpy())
            lists[3].append(pred.cpu().numpy())
    if batch.virial is not None and out.virial is not None and bool(batch.has_virial.any()):
        m = batch.has_virial
        scale = n[:, None, None]
        _add(sums.v, "v", (batch.virial.double() / scale)[m], (out.virial.detach().double() / scale)[m])
