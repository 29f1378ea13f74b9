"""The student's MD path (lam_lab/nn/student_inference.py + csrc/student_md.cpp) gives Potential.forward's numbers."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from lam_lab.data.frame import Frame
from lam_lab.md.calculator import LAMCalculator
from lam_lab.models import build_model
from lam_lab.nn.batch import collate
from lam_lab.nn.student_inference import StudentMD
from lam_lab.nn.verlet import VerletCache

TYPE_MAP = ["H", "C", "N", "O"]
SMALL = dict(dtype="float64", tebd_dim=4, repinit_rcut=4.0, repinit_rcut_smth=1.0, repinit_sel=48,
             repinit_neuron=(8,), repinit_axis=4, student_basis=10, fitting_neuron=(16, 16), seed=3)

pytestmark = pytest.mark.skipif(not (shutil.which("c++") and shutil.which("ninja")),
                                reason="no C++ compiler: the student MD path falls back to Potential.forward")


def test_the_path_is_available_where_a_compiler_is():
    assert StudentMD.available(build_model("student", TYPE_MAP, **SMALL), torch.device("cpu")), \
        "a compiler is here: the kernels must build (see the warning for the build error)"


def student(**overrides):
    """A float64 student with fitted input statistics and non-trivial weights everywhere."""
    model = build_model("student", TYPE_MAP, **{**SMALL, **overrides})
    model.fit_input_stats([Frame.from_atoms(a) for a in (ethanol(), water_box())])
    with torch.no_grad():
        for f in model.fittings:
            f.mlp.out.bias.fill_(0.3)
            f.energy_bias.copy_(torch.tensor([-13.6, -1029.0, -1485.0, -2041.0]))
    return model


def ethanol(seed: int = 0) -> Atoms:
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=seed)
    return atoms


def water_box(seed: int = 0) -> Atoms:
    """Interleaved H/O/N/C (atoms not sorted by element) in a small triclinic periodic box."""
    rng = np.random.default_rng(seed)
    cell = np.array([[6.0, 0.0, 0.0], [0.5, 6.2, 0.0], [0.3, 0.4, 6.4]])
    base = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), -1).reshape(-1, 3) / 3.0
    frac = base + rng.normal(0, 0.02, base.shape)
    numbers = np.array([1, 8, 1, 7, 6, 1, 8, 1, 1] * 3)
    return Atoms(numbers=numbers, scaled_positions=frac, cell=cell, pbc=True)


def reference(model, atoms: Atoms):
    """(E, per-atom E, F, virial) from Potential.forward with autograd, float64 numpy."""
    periodic = bool(atoms.pbc.all())
    out = model(collate([model.prepare(Frame.from_atoms(atoms))]), forces=True, virial=periodic)
    virial = out.virial.detach()[0].numpy() if periodic else None
    return float(out.energy.detach()[0]), out.atomic_energy.detach().numpy(), out.forces.detach().numpy(), virial


def fast(model, atoms: Atoms, cache: VerletCache | None = None, md: StudentMD | None = None):
    md = md or StudentMD(model)
    cache = cache or VerletCache(model.cutoffs())
    types = np.array([model.type_map.index(s) for s in atoms.get_chemical_symbols()])
    pairs = cache.pairs(atoms.positions, np.asarray(atoms.cell), atoms.pbc)
    return md(pairs, atoms.positions, types, virial=bool(atoms.pbc.all()))


@pytest.mark.parametrize("system", ["molecule", "periodic"])
def test_energy_forces_virial_match_autograd(system):
    model = student()
    atoms = ethanol() if system == "molecule" else water_box()
    e, ea, f, v = reference(model, atoms)
    out = fast(model, atoms)
    assert out is not None
    assert out.energy == pytest.approx(e, abs=1e-9)
    np.testing.assert_allclose(out.atomic_energy, ea, atol=1e-9)
    np.testing.assert_allclose(out.forces, f, atol=1e-9)
    if system == "periodic":
        np.testing.assert_allclose(out.virial, v, atol=1e-9)


def test_multi_head_and_doubling_skip():
    """Each head's own fitting net; a fitting net whose width doubles (the "double" skip) is followed too."""
    model = student(fitting_neuron=(8, 16, 16))
    model.add_head("other", copy_from="default")
    with torch.no_grad():
        model.fittings[1].mlp.out.weight.mul_(-2.0)
    atoms = water_box(1)
    for head in model.heads:
        out = StudentMD(model, head)(VerletCache(model.cutoffs()).pairs(atoms.positions, atoms.cell[:], atoms.pbc),
                                     atoms.positions, np.array([model.type_map.index(s) for s in atoms.get_chemical_symbols()]))
        ref = model(collate([model.prepare(Frame.from_atoms(atoms))]), head=head)
        np.testing.assert_allclose(out.forces, ref.forces.detach().numpy(), atol=1e-9)


def test_follows_weight_updates_and_moving_atoms():
    """No stale state: in-place parameter updates (training between MD runs) and Verlet rebuilds are seen."""
    model = student()
    md, cache = StudentMD(model), VerletCache(model.cutoffs(), skin=0.5)
    atoms = water_box(2)
    fast(model, atoms, cache, md)
    with torch.no_grad():  # same geometry, new weights (the type embedding and env scale too): seen at once
        model.descriptor.two_body.coef.mul_(1.5)
        model.fittings[0].mlp.layers[0].weight.add_(0.01)
        model.descriptor.type_embedding.net.layers[0].bias.add_(0.2)
        model.descriptor.env_scale.mul_(1.1)
        model.fittings[0].energy_bias.add_(1.0)
    e, ea, f, _ = reference(model, atoms)
    out = fast(model, atoms, cache, md)
    assert out.energy == pytest.approx(e, abs=1e-9)
    np.testing.assert_allclose(out.forces, f, atol=1e-9)
    for step in range(4):
        atoms.positions += np.random.default_rng(step).normal(0, 0.2, atoms.positions.shape)  # past skin/2 at times
        out = fast(model, atoms, cache, md)
        np.testing.assert_allclose(out.forces, reference(model, atoms)[2], atol=1e-9)
    assert cache.builds >= 2


@pytest.mark.filterwarnings("ignore:.*did not fit in sel")
def test_more_neighbors_than_sel_falls_back():
    """An atom with more neighbors inside the cutoff than sel: None here, and the calculator uses Potential.forward
    (which drops the farthest, as in training), so the results are still the model's."""
    model = student(repinit_sel=6)
    atoms = water_box(3)
    assert fast(model, atoms) is None
    calc = LAMCalculator(model)
    atoms.calc = calc
    with pytest.warns(UserWarning, match="did not fit in sel"):
        forces = atoms.get_forces()
    np.testing.assert_allclose(forces, reference(model, atoms)[2], atol=1e-9)
    assert calc._student.fallbacks == 1


def test_calculator_uses_the_fast_path_in_float32():
    """The preset's float32 student: the calculator's MD path agrees with autograd to float32 precision."""
    model = student(dtype="float32")
    atoms = water_box(4)
    calc = LAMCalculator(model)
    atoms.calc = calc
    assert calc._student is not None
    e, _, f, v = reference(model, atoms)
    assert atoms.get_potential_energy() == pytest.approx(e, abs=1e-3)
    np.testing.assert_allclose(atoms.get_forces(), f, atol=1e-4)
    np.testing.assert_allclose(atoms.get_stress(voigt=False) * atoms.get_volume(), -v, atol=1e-4)
    assert calc._student.fallbacks == 0
