"""Neighbor list against a brute-force O(N²·images) reference."""

import numpy as np
import pytest
from ase.build import bulk, molecule

from lam_lab.nn.neighbor_list import neighbor_list


def brute_force_pairs(positions, cutoff, cell=None, pbc=False) -> set:
    """Every (i, j, Sa, Sb, Sc) with |r_j + S·cell - r_i| < cutoff, by looping over enough images."""
    pos = np.asarray(positions, dtype=np.float64)
    pbc_arr = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    box = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=np.float64)
    reps = []
    for k in range(3):
        if pbc_arr[k]:
            other = np.cross(box[(k + 1) % 3], box[(k + 2) % 3])
            plane_spacing = abs(np.dot(box[k], other)) / np.linalg.norm(other)
            reps.append(int(np.ceil(cutoff / plane_spacing)) + 1)
        else:
            reps.append(0)
    out = set()
    for a in range(-reps[0], reps[0] + 1):
        for b in range(-reps[1], reps[1] + 1):
            for c in range(-reps[2], reps[2] + 1):
                off = np.array([a, b, c]) @ box
                d = np.linalg.norm(pos[None, :, :] + off - pos[:, None, :], axis=-1)
                for x, y in zip(*np.nonzero(d < cutoff)):
                    if not (x == y and a == b == c == 0):
                        out.add((int(x), int(y), a, b, c))
    return out


def pairs_of(nl) -> set:
    i, k = np.nonzero(nl.mask)
    return {(int(a), int(nl.index[a, b]), *map(int, nl.shift[a, b])) for a, b in zip(i, k)}


def check_distances(nl, pos, cell):
    i, k = np.nonzero(nl.mask)
    j = nl.index[i, k]
    vec = pos[j] - pos[i] + nl.shift[i, k] @ (cell if cell is not None else np.zeros((3, 3)))
    np.testing.assert_allclose(np.linalg.norm(vec, axis=1), nl.distance[i, k], atol=1e-10)
    # rows sorted by distance
    d = np.where(nl.mask, nl.distance, 1e9)
    assert np.all(np.diff(d, axis=1) >= -1e-12)


def test_molecule_matches_brute_force():
    atoms = molecule("CH3CH2OH")
    nl = neighbor_list(atoms.positions, 2.5)
    assert pairs_of(nl) == brute_force_pairs(atoms.positions, 2.5)
    check_distances(nl, atoms.positions, None)
    assert nl.n_dropped == 0


@pytest.mark.parametrize("cutoff", [3.0, 6.0])
def test_small_periodic_cell_cutoff_beyond_half_box(cutoff):
    atoms = bulk("Cu", "fcc", a=3.6)  # 1 atom, box ~2.5 Å: many images of itself
    atoms.rattle(0.0)
    nl = neighbor_list(atoms.positions, cutoff, cell=atoms.cell.array, pbc=True)
    ref = brute_force_pairs(atoms.positions, cutoff, atoms.cell.array, True)
    assert pairs_of(nl) == ref
    check_distances(nl, atoms.positions, atoms.cell.array)


def test_triclinic_cell():
    rng = np.random.default_rng(0)
    cell = np.array([[4.0, 0.0, 0.0], [1.3, 3.7, 0.0], [0.8, -0.9, 4.4]])
    pos = rng.random((7, 3)) @ cell
    nl = neighbor_list(pos, 4.5, cell=cell, pbc=True)
    assert pairs_of(nl) == brute_force_pairs(pos, 4.5, cell, True)
    check_distances(nl, pos, cell)


def test_mixed_pbc_slab():
    rng = np.random.default_rng(1)
    cell = np.diag([5.0, 5.0, 20.0])
    pos = rng.random((6, 3)) * [5, 5, 6]
    nl = neighbor_list(pos, 4.0, cell=cell, pbc=[True, True, False])
    assert pairs_of(nl) == brute_force_pairs(pos, 4.0, cell, [True, True, False])


def test_truncation_keeps_closest_and_warns():
    atoms = molecule("C6H6")
    with pytest.warns(UserWarning, match="sel"):
        nl = neighbor_list(atoms.positions, 5.0, sel=4)
    full = neighbor_list(atoms.positions, 5.0)
    np.testing.assert_allclose(nl.distance, full.distance[:, :4])
    assert nl.n_dropped == int(full.mask.sum() - nl.mask.sum())


def test_restrict_equals_direct_build():
    atoms = bulk("Cu", "fcc", a=3.6).repeat(2)
    atoms.rattle(0.05, seed=3)
    big = neighbor_list(atoms.positions, 6.0, sel=200, cell=atoms.cell.array, pbc=True)
    small = big.restrict(4.0, 60)
    direct = neighbor_list(atoms.positions, 4.0, sel=60, cell=atoms.cell.array, pbc=True)
    assert pairs_of(small) == pairs_of(direct)
