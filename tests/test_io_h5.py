"""HDF5 readers and writer: Transition1x- and ANI-1x-style files, lam-h5 round trips, bad files."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from ase.build import molecule
from ase.units import Hartree

import lam_lab as ll
from conftest import assert_frames_close, assert_no_temp_files
from lam_lab.data import DataError, Dataset, Frame, Labels, ValidationError
from lam_lab.data.io import detect_format


# -- Transition1x-style HDF5 --------------------------------------------------------------------------
def _write_t1x(path: Path) -> None:
    level = "wB97x_6-31G(d)"
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as h:
        for split, formula, rxn, mol in (("train", "H2O", "rxn0001", "H2O"), ("test", "CH4", "rxn0002", "CH4")):
            g = h.create_group(f"{split}/{formula}/{rxn}")
            base = molecule(mol)
            pos = base.positions[None] + rng.normal(scale=0.05, size=(4, len(base), 3))
            g["atomic_numbers"] = base.numbers
            g["positions"] = pos
            g[f"{level}.energy"] = rng.normal(size=4) - 100
            g[f"{level}.forces"] = rng.normal(size=(4, len(base), 3))
            g[f"{level}.atomization_energy"] = rng.normal(size=4)
            for role in ("reactant", "transition_state", "product"):
                s = g.create_group(role)
                s["atomic_numbers"] = base.numbers
                s["positions"] = pos[:1]
                s[f"{level}.energy"] = np.array([-100.0])
                s[f"{level}.forces"] = np.zeros((1, len(base), 3))


def test_transition1x_reader(tmp_path):
    path = tmp_path / "t1x.h5"
    _write_t1x(path)
    assert detect_format(path) == "transition1x"
    ds = ll.data.read(path)
    assert len(ds) == 2 * (4 + 3) and ds.label_sets == ["wB97x_6-31G(d)"]
    lp = ds.provenance.labels["wB97x_6-31G(d)"]
    assert (lp.method, lp.basis) == ("wB97x", "6-31G(d)")
    roles = [f.info["role"] for f in ds if f.info["reaction"] == "rxn0001"]
    assert roles == ["path"] * 4 + ["reactant", "transition_state", "product"]
    assert ds[0].info == {"split": "train", "formula": "H2O", "reaction": "rxn0001", "role": "path"}
    assert {f.info["split"] for f in ds} == {"train", "test"}
    with h5py.File(path) as h:
        np.testing.assert_allclose(ds[1].labels["wB97x_6-31G(d)"].forces, h["train/H2O/rxn0001/wB97x_6-31G(d).forces"][1])
    parts = ds.split((0.5, 0.5), by="reaction", seed=0)
    assert sorted(len(p) for p in parts) == [7, 7]


# -- ANI-1x-style HDF5 --------------------------------------------------------------------------------
def _write_ani(path: Path, bad_force: bool = False) -> None:
    rng = np.random.default_rng(2)
    with h5py.File(path, "w") as h:
        for mol in ("H2O", "NH3"):
            base = molecule(mol)
            g = h.create_group(base.get_chemical_formula())
            n = len(base)
            g["atomic_numbers"] = base.numbers
            g["coordinates"] = base.positions[None] + rng.normal(scale=0.05, size=(3, n, 3))
            g["wb97x_dz.energy"] = np.array([-76.4, -76.3, np.nan])  # Hartree; third not computed
            forces = rng.normal(scale=0.01, size=(3, n, 3))
            forces[2] = np.nan  # not computed
            if bad_force and mol == "NH3":
                forces[0, 1, 2] = np.nan  # a hole inside computed forces
            g["wb97x_dz.forces"] = forces
            g["ccsd(t)_cbs.energy"] = np.array([-76.5, np.nan, np.nan])
            g["wb97x_dz.dipole"] = np.zeros((3, 3))


def test_ani1x_reader_units_and_not_computed(tmp_path):
    path = tmp_path / "ani.h5"
    _write_ani(path)
    assert detect_format(path) == "ani1x"
    ds = ll.data.read(path)
    assert len(ds) == 6 and set(ds.label_sets) == {"wb97x_dz", "ccsd(t)_cbs"}
    assert ds.provenance.labels["wb97x_dz"].basis == "6-31G(d)"
    f0, f2 = ds[0], ds[2]
    assert f0.labels["wb97x_dz"].energy == pytest.approx(-76.4 * Hartree)
    with h5py.File(path) as h:
        np.testing.assert_allclose(f0.labels["wb97x_dz"].forces, h["H2O/wb97x_dz.forces"][0] * Hartree)
    assert f0.labels["ccsd(t)_cbs"].energy == pytest.approx(-76.5 * Hartree)
    assert "ccsd(t)_cbs" not in ds[1].labels and f2.labels == {}
    assert f0.info["formula"] == "H2O"
    assert ll.data.read(path, label="ccsd(t)_cbs").label_sets == ["ccsd(t)_cbs"]


def test_ani1x_nan_inside_forces_is_an_error(tmp_path):
    path = tmp_path / "ani.h5"
    _write_ani(path, bad_force=True)
    with pytest.raises(ValidationError) as err:
        ll.data.read(path)
    (problem,) = err.value.problems
    assert problem.frame == 3 and problem.field == "labels['wb97x_dz'].forces" and problem.source == str(path)
    with pytest.warns(UserWarning, match="skipped 1 of 6 frames"):
        ds = ll.data.read(path, skip_invalid=True)
    assert len(ds) == 5


# -- lam-h5 -------------------------------------------------------------------------------------------
def test_lamh5_round_trip_keeps_everything(tmp_path, mixed_ds):
    mixed_ds[2].labels["emt"].forces = None  # a field missing on one frame
    mixed_ds[3].info["nested"] = {"a": [1, 2], "b": "x"}
    path = tmp_path / "mixed.lamh5"
    ll.data.write(mixed_ds, path)
    back = ll.data.read(path)
    assert back.name == "mixed" and back.label_sets == ["emt", "lj"]
    assert back.provenance.to_dict() | {"source": None} == mixed_ds.provenance.to_dict()
    assert back.provenance.source == str(path)
    for a, b in zip(mixed_ds, back):
        assert_frames_close(a, b, atol=2e-5)  # float32 positions/forces
        assert type(b.labels[next(iter(b.labels))].energy) is float
    assert back[0].labels["emt"].energy == mixed_ds[0].labels["emt"].energy  # energies stay float64
    exact = tmp_path / "exact.lamh5"
    ll.data.write(mixed_ds, exact, precision="float64")
    for a, b in zip(mixed_ds, ll.data.read(exact)):
        assert_frames_close(a, b, atol=0)
    assert_no_temp_files(tmp_path)


def test_lamh5_is_compact(tmp_path):
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(200):
        m = molecule("C6H6")
        m.positions += rng.normal(scale=0.05, size=m.positions.shape)
        frames.append(Frame(m.numbers, m.positions, labels={"x": Labels(rng.normal(), rng.normal(size=(12, 3)))},
                            info={"formula": "C6H6"}))
    path = tmp_path / "b.lamh5"
    ll.data.write(Dataset(frames), path)
    per_atom = path.stat().st_size / (200 * 12)
    # raw float32 positions + forces are 24 bytes/atom; the budget (25 MB for ~6000 frames of up to
    # 200 atoms) needs well under ~40 bytes/atom including energies, info and HDF5 overhead
    assert per_atom < 40, per_atom


def test_lamh5_stores_labels_two_sets_share_once(tmp_path):
    rng = np.random.default_rng(1)
    frames = []
    for k in range(60):
        m = molecule("C6H6")
        lab = Labels(rng.normal(), rng.normal(size=(12, 3)))
        # the second set repeats the first except on every fifth frame (and lacks forces on frame 7)
        other = Labels(rng.normal(), rng.normal(size=(12, 3))) if k % 5 == 0 else lab.copy()
        if k == 7:
            other.forces = None
        frames.append(Frame(m.numbers, m.positions, labels={"lowest": lab, "closed": other}))
    ds = Dataset(frames, name="twin")
    path, alone = tmp_path / "twin.lamh5", tmp_path / "alone.lamh5"
    ll.data.write(ds, path)
    ll.data.write(ds, alone, label="lowest")
    with h5py.File(path) as h:
        g = next(g for g in h["labels"].values() if g.attrs["name"] == "closed")
        assert g.attrs["shared_with"] == "lowest" and len(g["shared_frames"]) == 60 - 12 - 1
    assert path.stat().st_size < 1.4 * alone.stat().st_size  # the repeated labels are not stored again
    back = ll.data.read(path)
    for a, b in zip(ds, back):
        assert_frames_close(a, b, atol=2e-5)
    back[1].labels["closed"].forces[0, 0] = 99.0  # read back as its own copy, not a view of the other set
    assert back[1].labels["lowest"].forces[0, 0] != 99.0
    assert ll.data.read(path, label="closed")[3].labels["closed"].energy == frames[3].labels["lowest"].energy
    with h5py.File(path, "a") as h:
        h.move("labels/1", "labels/closed")
    with pytest.raises(DataError, match="not numbered") as err:
        ll.data.read(path)
    assert err.value.source == str(path)


def test_lamh5_truncated_file_is_a_data_error(tmp_path, mixed_ds):
    path = tmp_path / "cut.lamh5"
    ll.data.write(mixed_ds, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        ll.data.read(path)
    assert err.value.source == str(path)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an hdf5 file at all" * 10)
    with pytest.raises(DataError, match="garbage.h5"):
        ll.data.read(garbage)
