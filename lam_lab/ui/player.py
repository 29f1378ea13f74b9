"""ReactionPlayer: a trajectory in 3D with bonds recomputed per frame, an energy/distance trace and bond events."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import anywidget
import numpy as np
import traitlets as t
from ase import Atoms
from ase.data import covalent_radii
from ase.data.colors import jmol_colors

from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame
from lam_lab.md.analysis import (
    BondAnalysis,
    BondCriteria,
    DistanceSeries,
    TrajectoryData,
    analyze_bonds,
    as_trajectory,
    distance_series,
)

_HERE = Path(__file__).resolve().parent


def widget_asset(name: str) -> Path:
    """Path of a front-end file: ``lam_lab/ui/static`` in a wheel, the repository's ``widgets/`` in a checkout."""
    candidates = [_HERE / "static" / name, _HERE.parents[1] / "widgets" / name]
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(p.parent) for p in candidates)
    raise FileNotFoundError(f"widget asset {name!r} not found; looked in {looked}")


def _energies_of(items: Sequence[Any]) -> np.ndarray | None:
    """Energies (eV) stored with the frames (Atoms' calculator results or a Frame's only label set)."""
    out = []
    for item in items:
        e = None
        if isinstance(item, Atoms) and item.calc is not None:
            e = getattr(item.calc, "results", {}).get("energy")
        elif isinstance(item, Frame) and len(item.labels) == 1:
            e = next(iter(item.labels.values())).energy
        if e is None:
            return None
        out.append(float(e))
    return np.asarray(out) if out else None


def _hex(rgb: np.ndarray) -> str:
    return "#" + "".join(f"{int(round(255 * c)):02x}" for c in rgb)


class ReactionPlayer(anywidget.AnyWidget):
    """Plays a trajectory (Å) with per-frame bonds, bond events and an energy (eV) / distance (Å) trace.

    ``frame`` is synced both ways: set it from Python to move the view; play, scrub or click an event
    in the browser and it changes here. Bonds come from :func:`lam_lab.md.analysis.analyze_bonds`.
    """

    _esm = widget_asset("reaction_player.js").read_text(encoding="utf-8")
    _css = widget_asset("reaction_player.css").read_text(encoding="utf-8")

    frame = t.Int(0).tag(sync=True)
    n_frames = t.Int(0).tag(sync=True)
    n_atoms = t.Int(0).tag(sync=True)
    positions = t.Bytes(b"").tag(sync=True)  # float32 [T, n, 3], Å
    cells = t.Bytes(b"").tag(sync=True)  # float32 [T, 3, 3], Å
    pbc = t.List(t.Bool(), default_value=[False, False, False]).tag(sync=True)
    bonds = t.List().tag(sync=True)  # per frame: flat [i0, j0, i1, j1, ...]
    events = t.List().tag(sync=True)  # BondEvent.to_dict() of every event
    atom_colors = t.List(t.Unicode()).tag(sync=True)
    atom_radii = t.List(t.Float()).tag(sync=True)  # drawn sphere radii, Å
    times = t.List(t.Float()).tag(sync=True)
    time_unit = t.Unicode("frame").tag(sync=True)
    energies = t.List(t.Float()).tag(sync=True)  # eV, relative to frame 0 unless relative=False
    energy_label = t.Unicode("E (eV)").tag(sync=True)
    distances = t.Dict().tag(sync=True)  # {label: [Å per frame]}
    playing = t.Bool(False).tag(sync=True)
    fps = t.Float(10.0).tag(sync=True)
    loop = t.Bool(False).tag(sync=True)
    highlight_frames = t.Int(5).tag(sync=True)  # an event stays highlighted this many frames
    title = t.Unicode("").tag(sync=True)
    height = t.Int(380).tag(sync=True)  # px
    # float32 [T, n]: per-atom values, e.g. committee force disagreement (eV/Å)
    atom_values = t.Bytes(b"").tag(sync=True)
    atom_value_label = t.Unicode("force disagreement (eV/Å)").tag(sync=True)
    color_by = t.Unicode("element").tag(sync=True)  # "element" or "values" (atoms coloured by atom_values)

    def __init__(
        self,
        trajectory: Iterable[Atoms | Frame] | np.ndarray | TrajectoryData,
        energies: Sequence[float] | None = None,
        times: Sequence[float] | None = None,
        distances: Sequence[tuple[int, int]] | Mapping[str, Sequence[float]] | DistanceSeries | None = None,
        *,
        numbers: Sequence[int] | None = None,
        timestep: float | None = None,
        criteria: BondCriteria | None = None,
        relative: bool = True,
        title: str = "",
        atom_values: Sequence[Sequence[float]] | np.ndarray | None = None,
        **kwargs: Any,
    ):
        items = list(trajectory) if not isinstance(trajectory, (np.ndarray, TrajectoryData)) else trajectory
        traj = as_trajectory(items, numbers=numbers, times=times, timestep=timestep)
        self.trajectory: TrajectoryData = traj
        self.analysis: BondAnalysis = analyze_bonds(traj, criteria)
        n_frames, n = traj.n_frames, len(traj.numbers)
        if energies is not None:
            e = np.asarray(energies, dtype=float)
        else:
            e = _energies_of(items) if isinstance(items, list) else None
        if e is not None and len(e) != n_frames:
            raise DataError(f"{len(e)} energies for {n_frames} frames", field="energies")
        if e is not None and relative:
            e = e - e[0]
        super().__init__(title=title, **kwargs)
        with self.hold_sync():
            self.n_frames, self.n_atoms = n_frames, n
            self.positions = traj.positions.astype(np.float32).tobytes()
            self.cells = traj.cells.astype(np.float32).tobytes()
            self.pbc = [bool(p) for p in traj.pbc]
            self.bonds = [b.reshape(-1).tolist() for b in self.analysis.bonds]
            self.events = [ev.to_dict() for ev in self.analysis.events]
            self.atom_colors = [_hex(jmol_colors[z]) for z in traj.numbers]
            self.atom_radii = [0.22 + 0.3 * float(covalent_radii[z]) for z in traj.numbers]
            self.times = traj.times.tolist()
            self.time_unit = traj.time_unit
            self.energies = [] if e is None else e.tolist()
            self.energy_label = "E − E₀ (eV)" if relative else "E (eV)"
            self.distances = self._distances(distances)
            self.highlight_frames = max(3, n_frames // 25)
        if atom_values is not None:
            self.set_atom_values(atom_values)

    def _distances(self, spec: Any) -> dict[str, list[float]]:
        if spec is None:
            pairs = self.analysis.event_pairs(limit=3)
            series = distance_series(self.trajectory, pairs).as_dict() if pairs else {}
        elif isinstance(spec, DistanceSeries):
            series = spec.as_dict()
        elif isinstance(spec, Mapping):
            series = {str(k): np.asarray(v, dtype=float) for k, v in spec.items()}
        else:
            series = distance_series(self.trajectory, list(spec)).as_dict()
        for label, values in series.items():
            if len(values) != self.trajectory.n_frames:
                raise DataError(f"distance {label!r} has {len(values)} values for {self.trajectory.n_frames} frames",
                                field="distances")
        return {k: [float(x) for x in v] for k, v in series.items()}

    def set_atom_values(self, values: Sequence[Sequence[float]] | np.ndarray | None,
                        label: str = "force disagreement (eV/Å)", color: bool = True) -> None:
        """Per-atom values of every frame (``[T, n_atoms]``, e.g. committee force disagreement in eV/Å): atoms are
        coloured by them (``color``) and their per-frame maximum is plotted under the energy trace. None clears."""
        if values is None:
            self.atom_values, self.color_by = b"", "element"
            return
        arr = np.asarray([np.asarray(v, dtype=float) for v in values], dtype=float)
        if arr.shape != (self.n_frames, self.n_atoms):
            raise DataError(f"atom values have shape {arr.shape}, expected ({self.n_frames}, {self.n_atoms})",
                            field="atom_values")
        arr = np.where(np.isfinite(arr), arr, 0.0)
        with self.hold_sync():
            self.atom_values = arr.astype(np.float32).tobytes()
            self.atom_value_label = label
            self.color_by = "values" if color else "element"

    def frame_values(self) -> np.ndarray:
        """The per-frame maximum of the atom values (what the trace under the energy shows); empty without values."""
        if not self.atom_values:
            return np.zeros(0)
        return np.frombuffer(self.atom_values, dtype=np.float32).reshape(self.n_frames, self.n_atoms).max(axis=1)

    @t.validate("frame")
    def _clamp_frame(self, proposal: Any) -> int:
        return int(min(max(0, proposal["value"]), max(0, self.n_frames - 1)))

    # -- Python controls (what the buttons do) -------------------------------------------------
    def seek(self, frame: int) -> None:
        """Show ``frame`` (clamped to the trajectory)."""
        self.frame = int(frame)

    def play(self, fps: float | None = None) -> None:
        """Start playback in the browser (at ``fps`` frames per second if given)."""
        if fps is not None:
            self.fps = float(fps)
        self.playing = True

    def pause(self) -> None:
        """Stop playback."""
        self.playing = False

    def bonds_at(self, frame: int | None = None) -> set[tuple[int, int]]:
        """Bonded pairs (i < j) at ``frame`` (default: the frame shown)."""
        return self.analysis.bonds_at(self.frame if frame is None else frame)

    def events_near(self, frame: int | None = None) -> list[dict[str, Any]]:
        """Events highlighted at ``frame`` (default: the frame shown)."""
        k = self.frame if frame is None else frame
        return [ev for ev in self.events if ev["frame"] <= k < ev["frame"] + self.highlight_frames]
