"""A committee of models reads as one model: the members' mean, their spread as uncertainty, one file, real Δ."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule

import lam_lab as ll
from conftest import TINY_DPA2
from lam_lab.committee import Committee
from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame
from lam_lab.distill.uncertainty import force_disagreement
from lam_lab.evaluation import predict


def member(seed: int, type_map=("H", "C", "O"), **overrides):
    """A tiny float64 DPA-2 with random weights everywhere (a fresh model's last layer is zero: no forces)."""
    torch.manual_seed(seed)
    model = ll.build_model("dpa2-small", list(type_map), **{**TINY_DPA2, "dtype": "float64", **overrides})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def trio():
    return [member(seed) for seed in (0, 1, 2)]


def ethanol(seed: int = 0) -> Frame:
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=seed)
    return Frame.from_atoms(atoms)


def test_a_committee_is_the_mean_of_its_members_and_their_spread_is_the_uncertainty(trio):
    frames = [ethanol(0), ethanol(1)]
    com = Committee(trio)
    mine = predict(com, frames, baseline=None)
    each = [predict(m, frames, baseline=None) for m in trio]
    assert np.allclose(mine.energy, np.mean([p.energy for p in each], axis=0), atol=1e-10)
    for k in range(len(frames)):
        assert np.allclose(mine.forces[k], np.mean([p.forces[k] for p in each], axis=0), atol=1e-10)
    calc = ll.LAMCalculator(com)
    atoms = frames[0].to_atoms()
    atoms.calc = calc
    atoms.get_forces()
    stack = np.stack([p.forces[0] for p in each])
    by_hand = np.sqrt(((stack - stack.mean(0)) ** 2).sum(-1).mean(0))
    assert np.allclose(calc.results["force_deviation"], by_hand, atol=1e-10) and by_hand.min() > 0
    assert calc.results["energy_std"] == pytest.approx(np.std([p.energy[0] for p in each]), abs=1e-10)
    assert np.allclose(force_disagreement(frames[:1], com)[0], by_hand, atol=1e-10)  # the same number everywhere


def test_committee_forces_are_the_gradient_of_its_energy_and_its_spread_is_rotation_invariant(trio):
    atoms = ethanol(3).to_atoms()
    atoms.calc = ll.LAMCalculator(Committee(trio))
    forces, h = atoms.get_forces(), 1e-5
    dev = atoms.calc.results["force_deviation"].copy()
    for i, axis in ((0, 0), (4, 2), (8, 1)):
        shifted = []
        for sign in (1, -1):
            a = atoms.copy()
            a.calc = atoms.calc
            a.positions[i, axis] += sign * h
            shifted.append(a.get_potential_energy())
        assert forces[i, axis] == pytest.approx(-(shifted[0] - shifted[1]) / (2 * h), abs=1e-6)
    turned = atoms.copy()
    turned.rotate(37, (1, 2, 3), center="COM")
    turned.calc = atoms.calc
    turned.get_forces()
    assert np.allclose(atoms.calc.results["force_deviation"], dev, atol=1e-9)


def test_a_committee_saves_to_one_file_and_loads_with_weights_only(trio, tmp_path):
    com = Committee(trio)
    path = tmp_path / "committee.pt"
    ll.save(com, path)
    back = ll.load(path)
    assert isinstance(back, Committee) and len(back.members) == 3
    frames = [ethanol(5)]
    assert np.allclose(predict(back, frames, baseline=None).forces[0], predict(com, frames, baseline=None).forces[0],
                       atol=1e-12)
    raw = torch.load(path, weights_only=True)  # plain tensors and types only
    raw["committee"][1]["state_dict"][next(iter(raw["committee"][1]["state_dict"]))] += 1.0
    torch.save(raw, tmp_path / "damaged.pt")
    with pytest.raises(DataError, match="checksum"):
        ll.load(tmp_path / "damaged.pt")


def test_members_that_do_not_fit_together_are_refused_by_name(trio):
    with pytest.raises(ValueError, match="member 1 has type map"):
        Committee([trio[0], member(5, type_map=("H", "O"))])
    with pytest.raises(ValueError, match="member 1 has cutoffs"):
        Committee([trio[0], member(5, repinit_rcut=5.0)])
    with pytest.raises(ValueError, match="two or more"):
        Committee([trio[0]])


def test_a_committee_is_not_fine_tuned_as_one(trio, tmp_path):
    from ase.calculators.emt import EMT

    from lam_lab.data import Dataset

    atoms = ethanol(0).to_atoms()
    atoms.calc = EMT()
    atoms.get_forces()
    labelled = Frame.from_atoms(atoms, label="emt")
    ll.save(Committee(trio), tmp_path / "committee.pt")
    with pytest.raises(DataError, match="fine-tune each member"):
        ll.finetune(Dataset([labelled]), pretrained=tmp_path / "committee.pt", steps=1)


def test_a_committee_of_shipped_delta_models_adds_gfn2_xtb_back_once():
    twin, full = ll.pretrained.load("lam-chon-delta-heldout"), ll.pretrained.load("lam-chon-delta")
    com = Committee([twin, full])
    assert com.metadata["extra"]["delta"] == twin.metadata["extra"]["delta"]
    atoms = molecule("H2CO")
    energies, forces = [], []
    for model in (twin, full, com):
        a = atoms.copy()
        a.calc = ll.LAMCalculator(model)  # each adds GFN2-xTB (tblite) back
        energies.append(a.get_potential_energy())
        forces.append(a.get_forces())
    assert energies[2] == pytest.approx((energies[0] + energies[1]) / 2, abs=1e-8)
    assert np.allclose(forces[2], (forces[0] + forces[1]) / 2, atol=1e-8)
