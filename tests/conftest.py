"""Shared fixtures: a small mixed dataset labelled by real ASE calculators (EMT, Lennard-Jones)."""

from __future__ import annotations

import os

# OpenMP threads of tblite/PySCF fighting each other on a 2-core box turn 1 s tests into minutes;
# this must be set before the first import of those codes.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import ase
import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones

from lam_lab.data import Dataset, Frame, LabelProvenance, Labels, Provenance

# The one tiny DPA-2 of the tests that train on molecules (one repformer layer, narrow nets, small sels), as keyword
# overrides of the "dpa2-small" preset (what build_model takes); tiny_config() is the same as a ModelConfig.
# Tests of particular physics keep their own (float64, attention on: test_model_physics, test_calculator, ...).
TINY_DPA2 = dict(repformer_layers=1, g1_dim=16, g2_dim=8, repinit_neuron=(8, 16), fitting_neuron=(16, 16),
                 repinit_sel=30, repformer_sel=20)


def tiny_config(**overrides):
    """The "dpa2-small" ModelConfig with :data:`TINY_DPA2` and ``overrides`` (imports torch, so only when called)."""
    import dataclasses

    from lam_lab.models import PRESETS

    return dataclasses.replace(PRESETS["dpa2-small"], **{**TINY_DPA2, **overrides})

def _labels(atoms, calc) -> Labels:
    """Energy (eV), forces (eV/Å) and, for periodic cells, virial (eV) from a real calculator."""
    atoms = atoms.copy()
    atoms.calc = calc
    virial = -atoms.get_stress(voigt=False) * atoms.get_volume() if atoms.pbc.all() else None
    return Labels(atoms.get_potential_energy(), atoms.get_forces(), virial)


def build_mixed_dataset(seed: int = 0) -> Dataset:
    """8 frames: rattled H2O, CH4 (molecules) and Cu (cubic and triclinic cells), two label sets.

    "emt" labels every frame (virial on periodic ones); "lj" only the molecules, so a label set
    can be missing on some frames. Info carries a string, an int and a float.
    """
    rng = np.random.default_rng(seed)
    structures = [molecule("H2O"), molecule("H2O"), molecule("H2O"), molecule("CH4"), molecule("CH4"),
                  bulk("Cu", cubic=True), bulk("Cu", cubic=True), bulk("Cu", "fcc", a=3.6)]
    frames = []
    for k, atoms in enumerate(structures):
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        labels = {"emt": _labels(atoms, EMT())}
        if not atoms.pbc.any():
            labels["lj"] = _labels(atoms, LennardJones(sigma=1.0, epsilon=0.01, rc=4.0))
        info = {"group": f"g{k % 3}", "index": k, "temperature": 300.0 + k}
        frames.append(Frame(atoms.numbers, atoms.positions, np.array(atoms.cell), atoms.pbc, labels, info))
    prov = Provenance(
        labels={"emt": LabelProvenance(method="EMT", software="ase", version=ase.__version__),
                "lj": LabelProvenance(method="LJ", settings={"sigma": 1.0})},
        builder="tests.conftest", seed=seed,
    )
    return Dataset(frames, name="mixed", provenance=prov)


@pytest.fixture
def mixed_ds() -> Dataset:
    """A fresh copy of the mixed dataset (tests may modify it)."""
    return build_mixed_dataset()


def assert_frames_close(a: Frame, b: Frame, atol: float = 1e-7, labels: list[str] | None = None, info: bool = True) -> None:
    """Same atoms, geometry, cell, pbc, the given (or all) label sets and, optionally, info."""
    np.testing.assert_array_equal(a.numbers, b.numbers)
    np.testing.assert_allclose(a.positions, b.positions, atol=atol)
    np.testing.assert_allclose(a.cell, b.cell, atol=atol)
    np.testing.assert_array_equal(a.pbc, b.pbc)
    names = sorted(a.labels) if labels is None else labels
    assert sorted(b.labels) == sorted(names), (sorted(b.labels), names)
    for name in names:
        la, lb = a.labels[name], b.labels[name]
        for fld in ("energy", "forces", "virial"):
            va, vb = getattr(la, fld), getattr(lb, fld)
            assert (va is None) == (vb is None), (name, fld, va, vb)
            if va is not None:
                np.testing.assert_allclose(va, vb, atol=atol, rtol=1e-7 if fld == "energy" else 1e-6, err_msg=f"{name}.{fld}")
    if info:
        for k, v in a.info.items():
            assert b.info.get(k) == pytest.approx(v) if isinstance(v, float) else b.info.get(k) == v, (k, v, b.info.get(k))


def assert_no_temp_files(directory) -> None:
    """No hidden (temporary) files left in ``directory`` by an atomic write."""
    assert not [p for p in os.listdir(directory) if p.startswith(".")], os.listdir(directory)
