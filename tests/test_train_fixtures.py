"""Shared helpers of the trainer tests: tiny EMT-labelled Cu/Ag data sets and a tiny DPA-2 model."""

from __future__ import annotations

import numpy as np
import torch
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.stress import voigt_6_to_full_3x3_stress

from lam_lab.data import Dataset, Frame, Labels

# a DPA-2 small enough that a training step on an 8-atom cell takes milliseconds
TINY = dict(
    repinit_rcut=4.0, repinit_rcut_smth=0.5, repinit_sel=40, repinit_neuron=(4, 8, 16), repinit_axis=4,
    repformer_rcut=3.0, repformer_rcut_smth=2.5, repformer_sel=20, repformer_layers=1, g1_dim=16, g2_dim=8,
    fitting_neuron=(16, 16), tebd_dim=4,
)
LATTICE = {"Cu": 3.61, "Ag": 4.09}


def emt_frames(symbol: str, n: int, seed: int = 0, label: str = "emt", alloy: str | None = None) -> Dataset:
    """``n`` rattled fcc cells (4 and 8 atoms alternating) of ``symbol`` labelled with ASE's EMT (eV, eV/Å)."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        atoms = bulk(symbol, "fcc", a=LATTICE[symbol], cubic=True)
        if k % 2 == 0:
            atoms = atoms.repeat((2, 1, 1))
        if alloy is not None:
            atoms.symbols[0] = alloy
        atoms.positions += rng.normal(0, 0.1, atoms.positions.shape)
        atoms.calc = EMT()
        virial = -voigt_6_to_full_3x3_stress(atoms.get_stress()) * atoms.get_volume()
        labels = {label: Labels(atoms.get_potential_energy(), atoms.get_forces(), virial)}
        frames.append(Frame(atoms.numbers, atoms.positions, np.array(atoms.cell), atoms.pbc, labels))
    return Dataset(frames, name=f"{symbol.lower()}-emt")


def tiny_model(type_map=("Cu", "Ag"), heads=("default",), **overrides):
    """The tiny DPA-2 (float32 unless overridden)."""
    from lam_lab.models import build_model

    return build_model("dpa2-small", list(type_map), heads=list(heads), **{**TINY, **overrides})


def test_fixtures_are_sound():
    ds = emt_frames("Cu", 3)
    assert len(ds) == 3 and ds.default_label() == "emt"
    assert ds.validate(raise_on_error=False) == []
    model = tiny_model()
    assert sum(p.numel() for p in model.parameters()) < 20000
    assert torch.isfinite(model(__import__("lam_lab.nn.batch", fromlist=["collate"]).collate([model.prepare(ds[0])])).energy).all()
