"""AtomFT correction (seed 002, Eq. 14): starts at the base, bounded by α·N, base frozen, one-file save/load."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import lam_lab as ll
from conftest import TINY_DPA2
from lam_lab.atomft import AtomFTFitting, atomft_spec, attach_correction
from lam_lab.finetune import finetune, refit_energy_bias
from lam_lab.md import LAMCalculator
from lam_lab.models import load, save
from lam_lab.nn.batch import collate

HIGH = "wb97x/6-31g*"
TINY = TINY_DPA2


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    ds = ll.datasets.load("rxn-dft")
    train = ds[[i for i, f in enumerate(ds) if f.info["split"] == "train"][:10]]
    base = ll.build_model("dpa2-small", ["H", "C", "N", "O"], heads=["xtb"], **TINY)
    base = ll.train(base, train, labels="gfn2-xtb", heads="xtb", steps=5, out_dir=None, progress=False).model
    return base, train


def energy(model, frame, head):
    return float(model(collate([model.prepare(frame, with_labels=False)]), head=head, forces=False).energy[0].detach())


def test_correction_starts_at_base_and_is_bounded(data):
    base, train = data
    m = attach_correction(copy.deepcopy(base), "xtb", alpha=0.05)
    frame = train[0]
    assert energy(m, frame, "xtb") == pytest.approx(energy(base, frame, "xtb"), abs=1e-9)
    fit = m.fittings[0]
    with torch.no_grad():  # saturate the readout: every atom at its bound
        fit.readout.out.weight.zero_()  # the same large output on every atom, whatever its features
        fit.readout.out.bias.fill_(50.0)
    diff = energy(m, frame, "xtb") - energy(base, frame, "xtb")
    assert abs(diff) <= 0.05 * len(frame) + 1e-9
    assert abs(diff) > 0.9 * 0.05 * len(frame)


def test_atomft_trains_only_the_correction(data, tmp_path):
    base, train = data
    expected = copy.deepcopy(base)
    refit_energy_bias(expected, "xtb", train, HIGH)  # the one change to the base: Eq. 6 shift to the new level
    res = finetune(train, pretrained=base, mode="atomft", branch="xtb", label=HIGH, alpha=0.1, steps=8,
                   out_dir=tmp_path, progress=False)
    m = res.model
    assert isinstance(m.fittings[0], AtomFTFitting) and m.heads == ["default"]
    after = m.state_dict()
    for key, value in expected.state_dict().items():
        new_key = key.replace("fittings.0.", "fittings.0.base.")
        assert torch.equal(after[new_key], value), key
    trained = [n for n, p in m.named_parameters() if p.requires_grad]
    assert trained and all(n.startswith("fittings.0.readout") for n in trained)
    assert float(m.fittings[0].readout.out.weight.detach().abs().sum()) > 0  # the correction did train
    assert res.train.steps == 8


def test_atomft_save_load_round_trip(data, tmp_path):
    base, train = data
    m = attach_correction(copy.deepcopy(base), "xtb", alpha=0.2, neuron=(8, 8))
    with torch.no_grad():
        m.fittings[0].readout.out.weight.normal_(0, 0.5)
    path = tmp_path / "atomft.pt"
    save(m, path)
    raw = torch.load(path, weights_only=True)
    assert raw["atomft"] == {"xtb": {"alpha": 0.2, "neuron": [8, 8]}}
    back = load(path)
    assert atomft_spec(back) == atomft_spec(m)
    for frame in train[:3]:
        assert energy(back, frame, "xtb") == pytest.approx(energy(m, frame, "xtb"), abs=1e-9)
    atoms = train[1].to_atoms()
    atoms.calc = LAMCalculator(str(path))
    assert atoms.get_potential_energy() == pytest.approx(energy(m, train[1], "xtb"), abs=1e-6)
    assert np.isfinite(atoms.get_forces()).all()
