"""Student energy, forces and virial for MD on CPU without autograd, in one compiled call per step
(csrc/student_md.cpp): the pair kernel reads the positions and a Verlet list directly, and the backward
pass through C·q, the symmetrisation (Eq. 18–20) and the fitting net is written out by hand.

A student model is small enough that, through :meth:`Potential.forward`, building padded neighbor
tensors every step, the autograd engine and Python's dispatch of ~100 small operations cost more than
its arithmetic (192 water atoms, 1 thread: 15 ms per MD step that way,
                ~6 ms this way). The numbers are the same as ``Potential.forward`` (same pairs, same
sums; tests/test_student_inference.py); :class:`lam_lab.md.calculator.LAMCalculator` uses this path
whenever :meth:`StudentMD.available` says so and falls back to the general one otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lam_lab.nn import kernels
from lam_lab.nn.verlet import VerletPairs


@dataclass
class StudentOutput:
    """Energy (eV), per-atom energies [N] (eV), forces [N, 3] (eV/Å), virial [3, 3] (eV) or None."""

    energy: float
    atomic_energy: np.ndarray
    forces: np.ndarray
    virial: np.ndarray | None


@dataclass
class _VerletTensors:
    """A Verlet list as the kernel reads it, atoms renumbered so that each type is one contiguous block:
    ``order`` [N] (sorted position → original atom) and its inverse ``back``, index [N, W] (-1 = padding), shift vectors
    [N, W, 3] (Å, float64), the q row of each neighbor's type [N, W] among the ``present`` types only
    (q has no columns for elements absent from the structure), and (type, first, end) blocks."""

    order: np.ndarray
    back: np.ndarray
    index: Tensor
    shift: Tensor
    rows: Tensor
    types: Tensor
    present: Tensor
    blocks: list[tuple[int, int, int]]
    key: tuple


_SKIPS = {"none": 0, "same": 1, "double": 2}  # MLP skip kinds as student_md.cpp numbers them


class StudentMD:
    """Energy and forces of one head of a basis-embedding student for a moving structure (CPU)."""

    def __init__(self, model, head: str | None = None):
        from lam_lab.potential import resolve_head

        if not self.available(model, torch.device("cpu")):
            raise ValueError("StudentMD needs a CPU student model with the basis embedding, tanh nets and the "
                             "compiled kernel (see StudentMD.available)")
        self.model = model
        self.fitting = model.fittings[resolve_head(model, head)]
        self.kernel = kernels.pair_moments()
        self._lists: _VerletTensors | None = None
        self._work = [torch.empty(0, dtype=model.dtype) for _ in range(6)]  # student_md's reused buffers
        self._args: tuple | None = None  # (key, student_md's model arguments)
        self._bias: Tensor | None = None  # float64 energy bias of each (sorted) atom, eV
        self.fallbacks = 0  # calls answered None (an atom had more than sel neighbors inside the cutoff)

    @staticmethod
    def available(model, device: torch.device) -> bool:
        """Whether this path can evaluate ``model`` on ``device`` (otherwise use ``Potential.forward``)."""
        c = model.config
        if not (c.kind == "student" and c.student_embedding == "basis" and c.activation == "tanh"
                and torch.device(device).type == "cpu"):
            return False
        # student_md.cpp feeds the type embedding and D to the first layer separately: it must change the width
        if any(f.mlp.skip[0] != "none" or f.mlp.out is None for f in model.fittings):
            return False
        return kernels.pair_moments() is not None

    def _tensors(self, pairs: VerletPairs, types: np.ndarray) -> _VerletTensors:
        """Padded Verlet arrays in type-sorted numbering, rebuilt when the pairs or the types change."""
        key = (pairs.build, types.tobytes())
        if self._lists is not None and self._lists.key == key:
            return self._lists
        n = len(types)
        order = np.argsort(types, kind="stable")
        new = np.empty(n, dtype=np.int64)
        new[order] = np.arange(n)
        i, j = new.take(pairs.i), new.take(pairs.j)
        by_centre = np.argsort(i, kind="stable")
        i, j, vec = i.take(by_centre), j.take(by_centre), pairs.shift_vec.take(by_centre, axis=1)
        counts = np.bincount(i, minlength=n)
        width = max(int(counts.max(initial=0)), 1)
        flat = i * width + np.arange(len(i)) - (np.cumsum(counts) - counts).take(i)
        index = np.full(n * width, -1, dtype=np.int64)
        index[flat] = j
        shift = np.zeros((n * width, 3))
        shift[flat] = vec.T
        sorted_types = types.take(order)
        present, first = np.unique(sorted_types, return_index=True)
        slot = np.zeros(self.model.descriptor.two_body.n_types, dtype=np.int64)
        slot[present] = np.arange(len(present))
        rows = np.zeros(n * width, dtype=np.int64)
        rows[flat] = slot.take(sorted_types.take(j)) * self.model.descriptor.two_body.n_basis
        ends = list(first[1:]) + [n]
        self._lists = _VerletTensors(
            order=order, back=new, index=torch.from_numpy(index).view(n, width),
            shift=torch.from_numpy(shift).view(n, width, 3),
            rows=torch.from_numpy(rows).view(n, width), types=torch.from_numpy(sorted_types),
            present=torch.from_numpy(present),
            blocks=[(int(t), int(lo), int(hi)) for t, lo, hi in zip(present, first, ends)], key=key)
        return self._lists

    def _inputs(self) -> list[Tensor]:
        """Every parameter and buffer this path reads (fetched directly: model.parameters() walks the
        whole module tree, which costs as much as a tenth of a step)."""
        desc, mlp = self.model.descriptor, self.fitting.mlp
        layers = [*desc.type_embedding.net.layers, *mlp.layers, mlp.out]
        return [desc.two_body.coef, desc.two_body.n_norm, desc.env_scale, self.fitting.energy_bias, *mlp.dts,
                *[t for layer in layers for t in (layer.weight, layer.bias) if t is not None]]

    def _arguments(self, lists: _VerletTensors) -> tuple:
        """student_md's model arguments for these atoms, recomputed only when a parameter or buffer changed
        (in place, as an optimizer or load_state_dict does) or the atoms did."""
        key = (lists.key, tuple((id(t), t._version) for t in self._inputs()))
        if self._args is not None and self._args[0] == key:
            return self._args[1]
        desc = self.model.descriptor
        two_body, mlp = desc.two_body, self.fitting.mlp
        scale = (1.0 / torch.index_select(desc.env_scale[0], 0, lists.types)) / two_body.n_norm
        # C[Z_i] restricted to the rows of the neighbor types present, [n_rows, width] per type block
        width = two_body.coef.shape[2]
        coef = [two_body.coef[t].view(two_body.n_types, -1, width).index_select(0, lists.present).view(-1, width)
                for t, _, _ in lists.blocks]
        none = torch.empty(0, dtype=scale.dtype)
        w0, lead = mlp.layers[0].weight, desc.type_embedding.dim
        # student_md.cpp forms Dᵀ [axis, width] per atom: the D columns of the first layer, permuted to match
        w_d = w0[:, lead:].reshape(len(w0), width, two_body.axis).transpose(1, 2).reshape(len(w0), -1).contiguous()
        args = (scale, two_body.rcut_smth, two_body.rcut, two_body.n_basis, two_body.sel,
                [hi for _, _, hi in lists.blocks], coef, two_body.axis, desc.type_embedding(lists.types),
                # the first layer's weight as its type-embedding and D column blocks, each contiguous
                [w0[:, :lead].contiguous(), w_d, *[layer.weight for layer in mlp.layers[1:]]],
                [layer.bias for layer in mlp.layers],
                [none if dt is None else dt for dt in mlp.steps()], [_SKIPS[k] for k in mlp.skip],
                mlp.out.weight, mlp.out.bias)
        self._bias = self.fitting.energy_bias.to(torch.float64)[lists.types]
        self._args = (key, args)
        return args

    @torch.no_grad()
    def __call__(self, pairs: VerletPairs, positions: np.ndarray, types: np.ndarray,
                 virial: bool = False) -> StudentOutput | None:
        """E, F (and the virial) at ``positions`` (Å) with candidate ``pairs`` from a Verlet cache; ``types``
        index the model's type map. None when an atom has more neighbors inside the cutoff than ``sel``
        (the model would drop the farthest: the caller must use ``Potential.forward``) or there are no atoms."""
        if len(types) == 0:
            return None
        lists = self._tensors(pairs, np.asarray(types, dtype=np.int64))
        pos = torch.from_numpy(np.asarray(positions, dtype=np.float64).take(lists.order, axis=0))
        args = self._arguments(lists)
        out = self.kernel.student_md(pos, lists.index, lists.shift, lists.rows, *args, self._work, virial)
        if not out:
            self.fallbacks += 1
            return None
        atomic_t, forces, vir = out
        atomic = atomic_t.to(torch.float64) + self._bias
        return StudentOutput(energy=float(atomic.sum()), atomic_energy=atomic.numpy().take(lists.back),
                             forces=forces.numpy().take(lists.back, axis=0),
                             virial=(0.5 * (vir + vir.T)).numpy() if virial else None)
