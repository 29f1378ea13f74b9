"""Bond graphs with hysteresis, bond events and distance series on synthetic trajectories with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.data import covalent_radii

from lam_lab.data import DataError, Dataset, Frame
from lam_lab.md.analysis import (
    BondCriteria,
    analyze_bonds,
    as_trajectory,
    close_pairs,
    distance_series,
)

R_H = float(covalent_radii[1])  # Å
R_C = float(covalent_radii[6])


def _two_atoms(distances: np.ndarray, numbers=(1, 1)) -> np.ndarray:
    """Positions [T, 2, 3] with the pair on the x axis at the given distances (Å)."""
    pos = np.zeros((len(distances), 2, 3))
    pos[:, 1, 0] = distances
    return pos


def test_bond_forms_at_the_first_frame_below_f_on():
    crit = BondCriteria()
    d = np.linspace(3.0, 0.74, 25)
    first = int(np.argmax(d < crit.f_on * 2 * R_H))
    res = analyze_bonds(_two_atoms(d), numbers=[1, 1], timestep=0.5)
    assert res.n_bonds.tolist() == [0] * first + [1] * (25 - first)
    assert len(res.events) == 1
    ev = res.events[0]
    assert (ev.frame, ev.kind, ev.i, ev.j, ev.pair) == (first, "formed", 0, 1, "H-H")
    assert ev.time == pytest.approx(0.5 * first)
    assert ev.distance == pytest.approx(d[first])
    assert ev.label == "H0–H1 formed"
    assert ev.to_dict()["label"] == ev.label
    assert res.time_unit == "fs"


def test_bond_breaks_only_above_f_off():
    crit = BondCriteria()
    rsum = R_C + R_H
    d = np.concatenate([np.full(5, 1.09), np.linspace(1.09, 2.5, 20)])
    res = analyze_bonds(_two_atoms(d, (6, 1)), numbers=[6, 1])
    expected = int(np.argmax(d > crit.f_off * rsum))
    assert [(e.kind, e.frame) for e in res.events] == [("broken", expected)]
    assert res.time_unit == "frame" and res.events[0].time == expected


def test_hysteresis_suppresses_flicker():
    rsum = 2 * R_H
    # formed once, then a bond that vibrates across f_on but never past f_off
    d = np.concatenate([np.full(3, 3.0), np.full(2, 1.0 * rsum), np.tile([1.2 * rsum, 1.4 * rsum], 10)])
    with_h = analyze_bonds(_two_atoms(d), BondCriteria(f_on=1.25, f_off=1.45), numbers=[1, 1])
    assert [(e.kind, e.frame) for e in with_h.events] == [("formed", 3)]
    assert with_h.n_bonds[3:].min() == 1
    without = analyze_bonds(_two_atoms(d), BondCriteria(f_on=1.3, f_off=1.3), numbers=[1, 1])
    assert len(without.events) == 1 + 20 - 1  # formed, then broken/formed on every vibration


def test_first_frame_splits_at_the_midpoint():
    rsum = 2 * R_H
    inside = analyze_bonds(_two_atoms(np.array([1.33 * rsum])), numbers=[1, 1])
    outside = analyze_bonds(_two_atoms(np.array([1.37 * rsum])), numbers=[1, 1])
    assert inside.bonds_at(0) == {(0, 1)} and outside.bonds_at(0) == set()


def test_periodic_minimum_image():
    a = Atoms("H2", positions=[(0.2, 5, 5), (9.6, 5, 5)], cell=[10, 10, 10], pbc=True)
    res = analyze_bonds([a])
    assert res.bonds_at(0) == {(0, 1)}
    a.pbc = False
    assert analyze_bonds([a]).bonds_at(0) == set()
    a.pbc = (True, False, False)  # mixed periodicity
    series = distance_series([a], [(0, 1)])
    assert series.values[0, 0] == pytest.approx(0.6)
    assert series.labels == ["H0–H1"]


def test_close_pairs_keeps_the_nearest_image_in_small_cells():
    cell = np.eye(3) * 2.5  # cutoff 3 Å sees several images of the same pair
    pairs, d = close_pairs(np.array([[0.0, 0, 0], [1.0, 0, 0]]), 3.0, cell, True)
    assert pairs.tolist() == [[0, 1]]
    assert d[0] == pytest.approx(1.0)


def test_fcc_copper_has_twelve_neighbours():
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.61) * (3, 3, 3)
    res = analyze_bonds([atoms])
    assert res.n_bonds[0] == len(atoms) * 12 // 2


def test_inputs_atoms_frames_dataset_and_array_agree():
    rng = np.random.default_rng(0)
    base = Atoms("CH4", positions=[(0, 0, 0), (0.63, 0.63, 0.63), (-0.63, -0.63, 0.63), (-0.63, 0.63, -0.63), (0.63, -0.63, -0.63)])
    atoms = []
    for _ in range(4):
        a = base.copy()
        a.positions += rng.normal(scale=0.05, size=(5, 3))
        atoms.append(a)
    frames = [Frame.from_atoms(a) for a in atoms]
    results = [
        analyze_bonds(atoms),
        analyze_bonds(frames),
        analyze_bonds(Dataset(frames)),
        analyze_bonds(np.stack([a.positions for a in atoms]), numbers=base.numbers),
    ]
    for res in results:
        assert [b.tolist() for b in res.bonds] == [[[0, 1], [0, 2], [0, 3], [0, 4]]] * 4
        assert res.events == []


def test_bad_inputs_name_the_problem():
    with pytest.raises(DataError, match="numbers"):
        as_trajectory(np.zeros((2, 3, 3)))
    with pytest.raises(DataError, match="frame 1"):
        as_trajectory([Atoms("H2", positions=[(0, 0, 0), (0.7, 0, 0)]), Atoms("H", positions=[(0, 0, 0)])])
    with pytest.raises(DataError, match="times"):
        as_trajectory(np.zeros((2, 1, 3)), numbers=[1], times=[0.0])
    with pytest.raises(DataError, match="pair indices"):
        distance_series(np.zeros((2, 2, 3)) + [[0, 0, 0], [1, 0, 0]], [(0, 5)], numbers=[1, 1])
    with pytest.raises(ValueError, match="f_on"):
        BondCriteria(f_on=1.5, f_off=1.2)
    with pytest.raises(ValueError, match="unknown elements"):
        BondCriteria(radii={"Xx": 1.0})


def test_radius_override_and_event_pairs():
    d = np.array([1.5, 1.5, 0.74, 0.74, 2.5])
    default = analyze_bonds(_two_atoms(d), numbers=[1, 1])
    bigger = analyze_bonds(_two_atoms(d), BondCriteria(radii={"H": 0.7}), numbers=[1, 1])
    assert default.bonds_at(0) == set() and bigger.bonds_at(0) == {(0, 1)}
    assert [(e.kind, e.frame) for e in default.events] == [("formed", 2), ("broken", 4)]
    assert default.event_pairs() == [(0, 1)]
    assert default.events_between(3, 5)[0].kind == "broken"


def test_coordinates_that_would_crash_the_neighbor_search_are_refused_first():
    with pytest.raises(DataError, match=r"atom 1 has non-finite coordinates"):
        close_pairs(np.array([[0.0, 0, 0], [np.nan, 0, 0]]), 2.0)
    far = _two_atoms(np.array([1.0, 1.0, 1.0]))
    far[2, 1, 0] = 1e6  # Å: SIGFPE inside vesin without the guard
    with pytest.raises(DataError, match=r"frame 2: atom 1 is at .* beyond"):
        analyze_bonds(far, numbers=[1, 1])
