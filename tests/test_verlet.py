"""VerletCache: the same neighbors, energies and forces as fresh lists, with searches only when needed."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule

from lam_lab.data.frame import Frame
from lam_lab.models import build_model
from lam_lab.nn.batch import collate, frame_types
from lam_lab.nn.verlet import VerletCache

TYPE_MAP = ["H", "C", "O"]
TINY = {
    "student": dict(dtype="float64", tebd_dim=4, repinit_rcut=4.0, repinit_rcut_smth=1.0, repinit_sel=48,
                    repinit_neuron=(8,), repinit_axis=3, student_basis=10, fitting_neuron=(8, 8), seed=1),
    "dpa2-small": dict(dtype="float64", tebd_dim=4, repinit_rcut=4.0, repinit_rcut_smth=1.0, repinit_sel=48,
                       repinit_neuron=(4, 8), repinit_axis=3, repformer_rcut=3.0, repformer_rcut_smth=2.0,
                       repformer_sel=24, repformer_layers=1, g1_dim=8, g2_dim=6, repformer_axis=2,
                       fitting_neuron=(8, 8), seed=1),
}


def periodic_box(seed: int = 0, n: int = 12) -> Frame:
    """Random H/C/O atoms (≥ 0.9 Å apart) in a small triclinic box: periodic images inside the cutoff."""
    rng = np.random.default_rng(seed)
    cell = np.array([[5.2, 0.0, 0.0], [0.6, 5.0, 0.0], [0.3, 0.4, 5.4]])
    frac = []
    while len(frac) < n:
        cand = rng.random(3)
        if all(np.linalg.norm(((cand - f + 0.5) % 1.0 - 0.5) @ cell) > 0.9 for f in frac):
            frac.append(cand)
    return Frame(rng.choice([1, 6, 8], size=n), np.array(frac) @ cell, cell, [True, True, True])


def ethanol() -> Frame:
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=2)
    return Frame.from_atoms(atoms)


def pairs(nl) -> set:
    rows, slots = np.nonzero(nl.mask)
    return {(int(i), int(nl.index[i, s]), *map(int, nl.shift[i, s])) for i, s in zip(rows, slots)}


def energy_forces(model, graph):
    out = model(collate([graph]))
    return float(out.energy.detach()[0]), out.forces.detach().numpy()


@pytest.mark.parametrize("preset", list(TINY))
@pytest.mark.parametrize("make", [periodic_box, ethanol], ids=["periodic", "molecule"])
def test_same_as_fresh_lists_below_and_above_half_skin(preset, make):
    model = build_model(preset, TYPE_MAP, **TINY[preset])
    frame = make()
    types = frame_types(frame.numbers, TYPE_MAP)
    cache = VerletCache(model.cutoffs(), skin=0.8)
    rng = np.random.default_rng(1)
    pos = frame.positions.copy()
    # moves of at most 0.3 Å per atom since the search (< skin/2 = 0.4): no new search
    for step, (size, searches) in enumerate([(0.0, 1), (0.12, 1), (0.12, 1), (0.6, 2), (0.05, 2)]):
        if size:
            d = rng.normal(size=pos.shape)
            pos = pos + size * d / np.linalg.norm(d, axis=1, keepdims=True)
        moved = Frame(frame.numbers, pos, frame.cell, frame.pbc)
        g = cache.graph(moved.positions, moved.cell, moved.pbc, types)
        fresh = model.prepare(moved, with_labels=False)
        assert cache.builds == searches, f"step {step}"
        for a, b in zip(g.neighbors, fresh.neighbors):
            assert a.sel == b.sel and a.n_dropped == b.n_dropped == 0
            assert pairs(a) == pairs(b)
            np.testing.assert_allclose(np.sort(a.distance, axis=1), b.distance, atol=1e-12)
        e0, f0 = energy_forces(model, fresh)
        e1, f1 = energy_forces(model, g)
        assert abs(e0 - e1) < 1e-10 * max(1.0, abs(e0))
        np.testing.assert_allclose(f1, f0, atol=1e-10)
    assert cache.calls == 5


def test_new_search_when_cell_or_size_changes():
    frame = periodic_box(3)
    types = frame_types(frame.numbers, TYPE_MAP)
    cache = VerletCache([(4.0, 64)], skin=1.0)
    cache.graph(frame.positions, frame.cell, frame.pbc, types)
    cache.graph(frame.positions, frame.cell, frame.pbc, types)
    assert cache.builds == 1
    strained = frame.cell * 1.01
    g = cache.graph(frame.positions * 1.01, strained, frame.pbc, types)
    assert cache.builds == 2
    fresh = build_model("student", TYPE_MAP, **TINY["student"]).prepare(
        Frame(frame.numbers, frame.positions * 1.01, strained, frame.pbc), with_labels=False)
    assert pairs(g.neighbors[0]) == pairs(fresh.neighbors[0])
    cache.graph(frame.positions[:5], frame.cell, frame.pbc, types[:5])
    assert cache.builds == 3


def test_overflowing_row_keeps_the_closest_and_warns():
    frame = periodic_box(4)
    types = frame_types(frame.numbers, TYPE_MAP)
    cache = VerletCache([(4.0, 6)], skin=0.5)
    with pytest.warns(UserWarning, match="did not fit in sel=6"):
        g = cache.graph(frame.positions, frame.cell, frame.pbc, types)
    nl = g.neighbors[0]
    assert nl.n_dropped > 0 and np.all(np.diff(nl.distance, axis=1) >= 0)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="skin"):
        VerletCache([(4.0, 10)], skin=-1.0)
    cache = VerletCache([(4.0, 10)])
    with pytest.raises(ValueError, match="types"):
        cache.graph(np.zeros((3, 3)), None, False, np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match="non-degenerate cell"):
        cache.graph(np.zeros((3, 3)), np.zeros((3, 3)), True, np.zeros(3, dtype=int))
