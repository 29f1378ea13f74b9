"""LAMCalculator inside ASE: energy/forces/stress, graph caching, BFGS and velocity-Verlet MD."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk, molecule
from ase.calculators.calculator import PropertyNotImplementedError
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS

from lam_lab.data.frame import Frame
from lam_lab.md import LAMCalculator
from lam_lab.models import build_model, save
from lam_lab.nn.batch import collate

TINY = dict(dtype="float64", tebd_dim=4, repinit_rcut=4.0, repinit_rcut_smth=1.0, repinit_sel=40, repinit_neuron=(4, 8),
            repinit_axis=3, repformer_rcut=3.0, repformer_rcut_smth=2.0, repformer_sel=20, repformer_layers=1,
            g1_dim=8, g2_dim=6, repformer_axis=2, g2_attn=True, g2_attn_heads=2, g2_attn_hidden=4, fitting_neuron=(8,))


@pytest.fixture(scope="module")
def model():
    m = build_model("dpa2-small", ["H", "C", "O", "Cu"], **TINY)
    m.fit_input_stats([Frame.from_atoms(molecule("CH3CH2OH")), Frame.from_atoms(bulk("Cu", cubic=True))])
    return m


def test_results_match_the_model(model):
    atoms = molecule("CH3CH2OH")
    atoms.calc = LAMCalculator(model)
    e = atoms.get_potential_energy()
    f = atoms.get_forces()
    out = model(collate([model.prepare(Frame.from_atoms(atoms))]))
    assert e == pytest.approx(float(out.energy.detach()[0]), abs=1e-12)
    np.testing.assert_allclose(f, out.forces.detach().numpy(), atol=1e-12)
    assert atoms.get_potential_energies().sum() == pytest.approx(e, abs=1e-9)
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()  # a molecule has no stress


def test_graph_cached_only_for_identical_geometry(model, monkeypatch):
    atoms = molecule("H2O")
    calc = LAMCalculator(model)
    calls = []
    original = calc._verlet.graph
    monkeypatch.setattr(calc._verlet, "graph", lambda *a, **k: calls.append(1) or original(*a, **k))
    atoms.calc = calc
    atoms.get_potential_energy()
    atoms.get_forces()
    calc.calculate(atoms, ["energy", "forces"], [])  # same geometry, forced recomputation
    assert len(calls) == 1
    atoms.positions[0, 0] += 1e-3
    moved = atoms.get_forces()
    assert len(calls) == 2
    fresh = atoms.copy()
    fresh.calc = LAMCalculator(model)  # a new calculator searches pairs from scratch: same numbers
    np.testing.assert_allclose(fresh.get_forces(), moved, atol=1e-10)


def test_change_check_agrees_with_ase(model):
    from ase.calculators.calculator import compare_atoms

    atoms = molecule("CH3OH")
    calc = LAMCalculator(model)
    atoms.calc = calc
    atoms.get_forces()
    edits = [lambda a: None, lambda a: a.positions.__setitem__((0, 0), a.positions[0, 0] + 1e-9),
             lambda a: a.set_cell([5, 5, 5]), lambda a: a.set_pbc(True), lambda a: a.set_initial_charges([0.1] * 6),
             lambda a: a.numbers.__setitem__(0, 8), lambda a: a.set_momenta(np.ones((6, 3)))]
    for edit in edits:
        other = atoms.copy()
        edit(other)
        assert sorted(calc.check_state(other)) == sorted(compare_atoms(calc.atoms, other))


def test_stress_of_a_periodic_cell_matches_finite_strain(model):
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True)
    atoms.rattle(0.05, seed=2)
    atoms.calc = LAMCalculator(model)
    stress = atoms.get_stress(voigt=False)
    h = 1e-5
    fd = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            e = []
            for sign in (1, -1):
                eps = np.zeros((3, 3))
                eps[a, b] += sign * h / 2
                eps[b, a] += sign * h / 2
                strained = atoms.copy()
                strained.set_cell(atoms.cell @ (np.eye(3) + eps), scale_atoms=True)
                strained.calc = LAMCalculator(model)
                e.append(strained.get_potential_energy())
            fd[a, b] = (e[0] - e[1]) / (2 * h) / atoms.get_volume()
    np.testing.assert_allclose(stress, fd, atol=1e-9)
    assert np.abs(stress).max() > 1e-6


def test_bfgs_lowers_the_energy(model):
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.1, seed=3)
    atoms.calc = LAMCalculator(model)
    e0 = atoms.get_potential_energy()
    BFGS(atoms, logfile=None).run(fmax=1e-4, steps=5)
    assert atoms.get_potential_energy() < e0


def test_velocity_verlet_conserves_energy(model, tmp_path):
    path = tmp_path / "m.pt"
    save(model, path)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    atoms.calc = LAMCalculator(str(path), device="cpu")
    rng = np.random.default_rng(0)  # ~300 K random velocities
    atoms.set_momenta(rng.normal(size=(len(atoms), 3)) * np.sqrt(atoms.get_masses()[:, None] * units.kB * 300))
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs, logfile=None)
    totals = []
    dyn.attach(lambda: totals.append(atoms.get_total_energy()), interval=1)
    dyn.run(10)
    assert np.ptp(totals) < 1e-4 * max(1.0, abs(totals[0])) + 1e-5
    assert atoms.get_stress().shape == (6,)


def test_bad_inputs():
    m = build_model("student", ["H"], heads=("a", "b"), repinit_neuron=(8,), repinit_axis=4, fitting_neuron=(8,))
    with pytest.raises(ValueError, match="several heads"):
        LAMCalculator(m)
    with pytest.raises(KeyError, match="c"):
        LAMCalculator(m, head="c")
    with pytest.raises(TypeError):
        LAMCalculator(42)
    atoms = Atoms("HHe", positions=[[0, 0, 0], [1.0, 0, 0]])
    atoms.calc = LAMCalculator(m, head="a")
    with pytest.raises(Exception, match="He"):
        atoms.get_potential_energy()
