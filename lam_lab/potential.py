"""Potential = descriptor + one fitting head per task → energy (eV), forces (eV/Å), virial (eV) by autograd."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, fields
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from lam_lab.nn.batch import Batch, Graph, collate, frame_types
from lam_lab.nn.descriptor import build_descriptor, descriptor_kinds
from lam_lab.nn.energy_bias import fit_energy_bias_from, pick_label
from lam_lab.nn.env_matrix import displacements, environment
from lam_lab.nn.fitting import FittingNet
from lam_lab.nn.neighbor_list import neighbor_list

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class ModelConfig:
    """Hyper-parameters of a model (saved with its weights). Lengths in Å.

    ``kind`` names a registered descriptor (:mod:`lam_lab.nn.descriptor`): "dpa2" uses every field but
    ``student_*``; "student" uses the type embedding, the ``repinit_*`` fields (its two-body embedding),
    ``student_*`` and the fitting net.
    """

    kind: str = "dpa2"
    dtype: str = "float32"
    activation: str = "tanh"
    tebd_dim: int = 8
    repinit_rcut: float = 6.0
    repinit_rcut_smth: float = 0.5
    repinit_sel: int = 120
    repinit_neuron: tuple[int, ...] = (25, 50, 100)
    repinit_axis: int = 12
    repformer_rcut: float = 4.0
    repformer_rcut_smth: float = 3.5
    repformer_sel: int = 48
    repformer_layers: int = 3
    g1_dim: int = 128
    g2_dim: int = 32
    repformer_axis: int = 4
    loc_attn: bool = False
    loc_attn_heads: int = 4
    loc_attn_hidden: int = 128
    g1g1: bool = False
    g2_attn: bool = False
    g2_attn_heads: int = 4
    g2_attn_hidden: int = 32
    attn_shift: float = 20.0
    student_embedding: str = "basis"
    student_basis: int = 24
    fitting_neuron: tuple[int, ...] = (240, 240, 240)
    fitting_resnet_dt: bool = True
    seed: int = 0
    # N^m in the symmetrisations and the convolution (Eq. 19, 25): "sel" is the paper's padded count;
    # "data" (default) the mean number of real neighbours in the training data, set by fit_input_stats.
    # Molecules fill ~15 of repinit's 120 slots, so 1/sel shrinks the geometric part of the quadratic
    # symm term ~60× below the type part and DPA-2 barely learned forces on rxn-dft in 1000 steps
    # (force RMSE stayed at the labels' spread); like MACE's avg_num_neighbors, a constant from data
    # keeps the model smooth and size-extensive.
    neighbor_norm: str = "data"
    # floor of that data value (Å-free count). Small molecules alone give N^m ≈ 6, and the three stacked
    # repformer updates then grow until training diverges: single-task dpa2-small on rxn-xtb (batches of
    # 32 atoms, lr 2e-3) had its gradient norm climb to 2·10⁴ and its force RMSE rise from 733 to 1186
    # meV/Å between steps 1600 and 3200, and a 30-minute run ended with zero forces; with N^m ≥ 16 the
    # same run kept learning (528 meV/Å at step 2000). The one-layer student needs no floor (preset: 1).
    neighbor_norm_min: float = 16.0
    # Gaussians of s(r) added to the pair embedding's input (lam_lab extension; 0 = the paper's bare s), see
    # lam_lab.nn.repinit.PairEmbedding for why
    radial_basis: int = 16

    def __post_init__(self) -> None:
        self.repinit_neuron = tuple(int(n) for n in self.repinit_neuron)
        self.fitting_neuron = tuple(int(n) for n in self.fitting_neuron)
        if self.neighbor_norm not in ("data", "sel"):
            raise ValueError(f"ModelConfig.neighbor_norm must be 'data' or 'sel', got {self.neighbor_norm!r}")
        if self.neighbor_norm_min < 1:
            raise ValueError(f"ModelConfig.neighbor_norm_min must be >= 1, got {self.neighbor_norm_min}")
        if self.kind not in descriptor_kinds():
            raise ValueError(f"ModelConfig.kind must be one of {descriptor_kinds()}, got {self.kind!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"ModelConfig.dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if not 0 <= self.repinit_rcut_smth < self.repinit_rcut:
            raise ValueError(f"need 0 <= repinit_rcut_smth < repinit_rcut, got {self.repinit_rcut_smth}, "
                             f"{self.repinit_rcut}")
        if self.kind == "dpa2":
            if not 0 <= self.repformer_rcut_smth < self.repformer_rcut <= self.repinit_rcut:
                raise ValueError("need 0 <= repformer_rcut_smth < repformer_rcut <= repinit_rcut, got "
                                 f"{self.repformer_rcut_smth}, {self.repformer_rcut}, {self.repinit_rcut}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples as lists), safe for ``torch.load(weights_only=True)``."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        d = dict(d)
        # files written before these options existed were trained as the paper: keep them that way
        d.setdefault("neighbor_norm", "sel")
        d.setdefault("radial_basis", 0)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config field(s) {unknown}; known: {sorted(known)}")
        return cls(**d)


@dataclass
class PotentialOutput:
    """Energies [B] and atomic energies [N] (eV, float64), forces [N,3] (eV/Å), virial [B,3,3] (eV)."""

    energy: Tensor
    atomic_energy: Tensor
    forces: Tensor | None = None
    virial: Tensor | None = None


class Potential(nn.Module):
    """A descriptor shared by all heads and one fitting net per head (multi-task, Eq. 43)."""

    def __init__(self, config: ModelConfig, type_map: Sequence[str], heads: Sequence[str] = ("default",)):
        super().__init__()
        if not heads:
            raise ValueError("a model needs at least one head")
        if len(set(heads)) != len(heads):
            raise ValueError(f"duplicate head names in {list(heads)}")
        if len(set(type_map)) != len(type_map) or not type_map:
            raise ValueError(f"type_map must be non-empty and unique, got {list(type_map)}")
        self.config = config
        self.type_map = list(type_map)
        self.heads: list[str] = []
        self.metadata: dict[str, Any] = {}  # provenance/extra of a loaded file
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.descriptor = build_descriptor(config, len(self.type_map), dtype=DTYPES[config.dtype])
            self.fittings = nn.ModuleList()
            for h in heads:
                self.add_head(h)

    # -- structure ---------------------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the weights."""
        return next(self.descriptor.parameters()).dtype

    @property
    def device(self) -> torch.device:
        """Device of the weights."""
        return next(self.descriptor.parameters()).device

    @property
    def energy_bias(self) -> dict[str, Tensor]:
        """Per-head e_bias buffers [n_types] (eV), live (part of the state dict)."""
        return {h: f.energy_bias for h, f in zip(self.heads, self.fittings)}

    def cutoffs(self) -> list[tuple[float, int]]:
        """(rcut Å, sel) of every neighbor list the model needs, in its order."""
        return self.descriptor.cutoffs()

    def add_head(self, name: str, copy_from: str | None = None) -> None:
        """A new fitting head: fresh weights, or a copy (weights and bias) of head ``copy_from``."""
        if name in self.heads:
            raise ValueError(f"head {name!r} exists already (heads: {self.heads})")
        if copy_from is not None:
            net = copy.deepcopy(self.fittings[resolve_head(self, copy_from)])
        else:
            c = self.config
            net = FittingNet(self.descriptor.out_dim, c.fitting_neuron, len(self.type_map), act=c.activation,
                             resnet_dt=c.fitting_resnet_dt, dtype=DTYPES[c.dtype])
            if len(self.fittings):
                net.to(self.device)
        self.fittings.append(net)
        self.heads.append(name)

    # -- data ----------------------------------------------------------------------------------------
    def prepare(self, frame, label: str | None = None, *, index: int | None = None, source: str | None = None,
                weight: float = 1.0, with_labels: bool = True) -> Graph:
        """A :class:`Graph` of ``frame`` for this model: types, neighbor lists, and the labels of ``label``.

        ``index``/``source`` only locate errors (DataError field "numbers" for elements not in the type map).
        With ``label=None`` a frame with one label set uses it; a frame with several needs a name.
        """
        types = frame_types(frame.numbers, self.type_map, source=source, frame=index)
        pbc = np.asarray(frame.pbc, dtype=bool)
        cell = np.asarray(frame.cell, dtype=np.float64) if pbc.any() else np.zeros((3, 3))
        (rc0, sel0), *rest = self.cutoffs()
        first = neighbor_list(frame.positions, rc0, sel0, cell=cell, pbc=pbc)
        lists = [first] + [first.restrict(rc, sel) for rc, sel in rest]
        lab = pick_label(frame, label, index, source) if with_labels else None
        return Graph(
            types=types, positions=np.asarray(frame.positions, dtype=np.float64), cell=cell, pbc=pbc,
            neighbors=lists,
            energy=None if lab is None else lab.energy,
            forces=None if lab is None else lab.forces,
            virial=None if lab is None else lab.virial,
            weight=float(weight),
        )

    def fit_energy_bias(self, graphs_or_frames: Iterable, head: str, label: str | None = None,
                        input_stats: bool = True) -> np.ndarray:
        """Eq. 6 least squares on the frames' energies; sets and returns head ``head``'s bias [n_types] (eV).

        Types absent from the data keep their current bias. On a fresh model whose input statistics
        were never fitted, this also fits them (:meth:`fit_input_stats`) from up to 1000 of the frames,
        as DeePMD-kit does at the start of training — unless ``input_stats=False`` (the trainer fits
        them from the graphs it trains on, so frames are not prepared twice).
        """
        items = list(graphs_or_frames)
        buf = self.fittings[resolve_head(self, head)].energy_bias
        bias = fit_energy_bias_from(items, self.type_map, label, previous=buf.cpu().numpy())
        if input_stats and not self.descriptor.stats_fitted:
            self.fit_input_stats(items[:: max(1, len(items) // 1000)])
        with torch.no_grad():
            buf.copy_(torch.from_numpy(bias))
        return bias

    @torch.no_grad()
    def fit_input_stats(self, graphs_or_frames: Iterable, chunk: int = 64) -> np.ndarray:
        """Set the environment-matrix scale (RMS of s(r) over real neighbors, per list and centre type, 1/Å).

        DeePMD-kit's input statistics (scale only): call once before training from scratch — not when
        fine-tuning, where it would change the pretrained descriptor. Returns [n_lists, n_types].
        """
        items = [g if isinstance(g, Graph) else self.prepare(g, index=k, with_labels=False)
                 for k, g in enumerate(graphs_or_frames)]
        n_lists, n_types = len(self.cutoffs()), len(self.type_map)
        sums, counts = np.zeros((n_lists, n_types)), np.zeros((n_lists, n_types))
        per_frame = np.zeros(n_lists)  # Σ over frames of each frame's mean real-neighbour count
        for start in range(0, len(items), chunk):
            batch = collate(items[start:start + chunk]).to(self.device, torch.float64)
            cell_of_atom = batch.cell[batch.frame]
            types = batch.types.cpu().numpy()
            for k, (blk, (rs, rc)) in enumerate(zip(batch.neighbors, self.descriptor.ranges)):
                env = environment(displacements(batch.positions, cell_of_atom, blk.index, blk.shift, blk.mask),
                                  blk.mask, rs, rc)
                s2 = (env.s ** 2 * blk.mask).sum(1).cpu().numpy()
                sums[k] += np.bincount(types, weights=s2, minlength=n_types)
                n_nb = blk.mask.sum(1).to(torch.float64)
                counts[k] += np.bincount(types, weights=n_nb.cpu().numpy(), minlength=n_types)
                frame_sum = torch.zeros(batch.n_frames, dtype=torch.float64,
                                        device=n_nb.device).index_add(0, batch.frame, n_nb)
                per_frame[k] += float((frame_sum / batch.n_atoms.to(torch.float64)).sum())
        scale = np.where(counts > 0, np.sqrt(sums / np.maximum(counts, 1)), 1.0)
        scale = np.where(scale > 0, scale, 1.0)
        mean_nb = None
        if self.config.neighbor_norm == "data" and items:
            # each frame counts once, so small molecules are not outvoted by a few large boxes
            mean_nb = np.maximum(per_frame / len(items), 1.0)
        self.descriptor.set_input_stats(scale, mean_nb, floor=self.config.neighbor_norm_min)
        return scale

    # -- evaluation ----------------------------------------------------------------------------------
    def forward(self, batch: Batch, head: str | None = None, forces: bool = True, virial: bool = False,
                create_graph: bool = False, exact_hessian: bool = True) -> PotentialOutput:
        """Energies (Eq. 1), forces −∂E/∂r (Eq. 2) and virial −∂E/∂ε under a symmetric strain ε (Eq. 3).

        ``create_graph=True`` keeps the graph of the derivatives (training on forces); with
        ``exact_hessian=False`` that graph is exact only for gradients with respect to the parameters
        (what a force loss needs; the student's fused kernel then skips second derivatives in positions).
        """
        fitting = self.fittings[resolve_head(self, head)]
        dtype, device = self.dtype, self.device
        batch = batch.to(device, dtype)
        sels = [sel for _, sel in self.cutoffs()]
        if [b.index.shape[1] for b in batch.neighbors] != sels:
            raise ValueError(f"batch neighbor lists have widths {[b.index.shape[1] for b in batch.neighbors]}, "
                             f"the model needs sel {sels}: prepare the frames with this model")
        # slots that are padding for every atom carry nothing (N^m stays sel in every normalisation)
        blocks = [b.trimmed() for b in batch.neighbors]
        pos = batch.positions
        need_grad = forces or virial
        if forces:
            pos = pos.detach().requires_grad_(True)
        strain = None
        with torch.set_grad_enabled(need_grad or torch.is_grad_enabled()):
            pos_used, cell = pos, batch.cell
            if virial:
                # positions and cells deformed by (I + ε), ε symmetric: virial = −∂E/∂ε at ε = 0
                strain = torch.zeros(batch.n_frames, 3, 3, dtype=dtype, device=device, requires_grad=True)
                eps = 0.5 * (strain + strain.transpose(1, 2))
                pos_used = pos + torch.einsum("ni,nij->nj", pos, torch.index_select(eps, 0, batch.frame))
                cell = cell + cell @ eps
            cell_of_atom = torch.index_select(cell, 0, batch.frame)
            rij = [displacements(pos_used, cell_of_atom, b.index, b.shift, b.mask) for b in blocks]
            desc = self.descriptor(batch.types, rij, [b.mask for b in blocks], [b.index for b in blocks],
                                   exact_hessian=exact_hessian or not create_graph)
            atomic = fitting(desc, batch.types)
            energy = torch.zeros(batch.n_frames, dtype=atomic.dtype, device=device).index_add(0, batch.frame, atomic)
        out = PotentialOutput(energy=energy, atomic_energy=atomic)
        if need_grad:
            inputs = ([pos] if forces else []) + ([strain] if virial else [])
            grads = torch.autograd.grad(energy.sum(), inputs, create_graph=create_graph)
            if forces:
                out.forces = -grads[0]
            if virial:
                periodic = batch.pbc.any(dim=1).to(dtype)[:, None, None]
                out.virial = -grads[-1] * periodic
        return out

    def extra_repr(self) -> str:
        return f"kind={self.config.kind}, type_map={self.type_map}, heads={self.heads}"


def resolve_head(model: Potential, head: str | None) -> int:
    """Index of head ``head`` in ``model.heads``; ``None`` names the only head.

    ValueError when ``head`` is None and the model has several heads, KeyError naming the heads when
    ``head`` is not one of them.
    """
    if head is None:
        if len(model.heads) == 1:
            return 0
        raise ValueError(f"the model has several heads {model.heads}: name one with head=...")
    try:
        return model.heads.index(head)
    except ValueError:
        raise KeyError(f"unknown head {head!r}; the model's heads are {model.heads}") from None
