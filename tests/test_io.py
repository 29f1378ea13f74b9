"""Readers/writers: round trips for every format on small files written here, detection, bad files."""

from __future__ import annotations

from pathlib import Path

import ase.io
import h5py
import numpy as np
import pytest
from ase.build import molecule
from ase.calculators.emt import EMT

import lam_lab as ll
from conftest import assert_frames_close, assert_no_temp_files
from lam_lab.data import DataError, Dataset, Frame, Labels, ValidationError
from lam_lab.data.io import FORMATS, detect_format

WATER = Path(__file__).resolve().parents[2] / "shared" / "data" / "water-deepmd"


def _by_composition(ds: Dataset) -> dict[bytes, list[Frame]]:
    out: dict[bytes, list[Frame]] = {}
    for f in ds:
        out.setdefault(f.numbers.tobytes() + bytes([f.is_periodic]), []).append(f)
    return out


# -- registry and detection -------------------------------------------------------------------------
def test_formats_registry_and_detection(tmp_path, mixed_ds):
    assert {"extxyz", "ase-db", "deepmd/npy", "transition1x", "ani1x", "lam-h5"} <= set(FORMATS)
    assert FORMATS["transition1x"].writer is None and FORMATS["lam-h5"].writer is not None
    assert detect_format(tmp_path / "a.xyz", for_write=True) == "extxyz"
    assert detect_format(tmp_path / "a.db", for_write=True) == "ase-db"
    assert detect_format(tmp_path / "a.lamh5", for_write=True) == "lam-h5"
    assert detect_format(tmp_path / "a.h5", for_write=True) == "lam-h5"
    ll.data.write(mixed_ds, tmp_path / "plain.h5")  # lam-h5 recognised inside a .h5 by its root attribute
    assert detect_format(tmp_path / "plain.h5") == "lam-h5"
    with pytest.raises(DataError, match="supported: extxyz, ase-db, deepmd/npy"):
        ll.data.read(tmp_path / "plain.h5", format="cif")
    with pytest.raises(DataError, match="cannot tell the format"):
        ll.data.write(mixed_ds, tmp_path / "a.weird")
    with pytest.raises(DataError, match="read-only"):
        ll.data.write(mixed_ds, tmp_path / "a.h5", format="ani1x")
    with pytest.raises(FileNotFoundError):
        ll.data.read(tmp_path / "missing.xyz")


# -- extended XYZ -------------------------------------------------------------------------------------
def test_extxyz_round_trip_keeps_all_label_sets_info_and_provenance(tmp_path, mixed_ds):
    path = tmp_path / "mixed.xyz"
    ll.data.write(mixed_ds, path)
    back = ll.data.read(path)
    assert len(back) == len(mixed_ds) and back.label_sets == ["emt", "lj"]
    for a, b in zip(mixed_ds, back):
        assert_frames_close(a, b, atol=1e-7)
    assert back.name == "mixed" and back.provenance.labels["emt"].method == "EMT"
    assert back.provenance.source == str(path)
    # other tools see the default label set as the standard energy/forces/stress
    atoms = ase.io.read(path, index=5)
    assert atoms.get_potential_energy() == pytest.approx(mixed_ds[5].labels["emt"].energy)
    assert atoms.get_stress().shape == (6,)
    # label= selects one of the named sets
    only = ll.data.read(path, label="lj")
    assert only.label_sets == ["lj"] and len(only) == len(mixed_ds)
    with pytest.raises(DataError, match="no label set 'dft'"):
        ll.data.read(path, label="dft")
    assert_no_temp_files(tmp_path)


def test_extxyz_label_names_with_odd_characters(tmp_path):
    f = Frame([8, 1, 1], molecule("H2O").positions, labels={
        "wb97x/6-31g*": Labels(-1.0, np.ones((3, 3))), "gfn2 xtb:v6": Labels(-2.0, np.zeros((3, 3))),
    })
    ll.data.write(Dataset([f]), tmp_path / "odd.xyz", label="gfn2 xtb:v6")
    back = ll.data.read(tmp_path / "odd.xyz")
    assert sorted(back.label_sets) == ["gfn2 xtb:v6", "wb97x/6-31g*"]
    assert_frames_close(f, back[0])


def test_extxyz_from_other_tools_gets_reference_or_given_label(tmp_path):
    atoms = [molecule("H2O"), molecule("NH3")]
    for a in atoms:
        a.calc = EMT()
        a.get_forces()
        a.info["source"] = "md"
    ase.io.write(tmp_path / "ase.xyz", atoms, format="extxyz")
    ds = ll.data.read(tmp_path / "ase.xyz")
    assert ds.label_sets == ["reference"] and ds[1].info["source"] == "md"
    assert ds[0].labels["reference"].forces.shape == (3, 3)
    assert ll.data.read(tmp_path / "ase.xyz", label="emt").label_sets == ["emt"]


def test_extxyz_gap_style_virial_key(tmp_path):
    text = (
        "2\nLattice=\"4 0 0 0 4 0 0 0 4\" Properties=species:S:1:pos:R:3 energy=-3.5 "
        "virial=\"1 0 0 0 2 0 0 0 3\" pbc=\"T T T\"\nCu 0 0 0\nCu 2 2 0\n"
    )
    (tmp_path / "gap.xyz").write_text(text)
    ds = ll.data.read(tmp_path / "gap.xyz", label="dft")
    np.testing.assert_allclose(ds[0].labels["dft"].virial, np.diag([1.0, 2.0, 3.0]))
    assert "virial" not in ds[0].info


def test_extxyz_missing_line_names_file_and_frame(tmp_path, mixed_ds):
    path = tmp_path / "cut.xyz"
    ll.data.write(mixed_ds[:3], path)
    lines = path.read_text().splitlines(keepends=True)
    del lines[11]  # an atom line of the third frame (5 lines per H2O frame)
    path.write_text("".join(lines))
    with pytest.raises(DataError) as err:
        ll.data.read(path)
    assert err.value.source == str(path) and err.value.frame == 2
    assert "cut.xyz" in str(err.value) and "frame 2" in str(err.value)


# -- ASE database -------------------------------------------------------------------------------------
def test_asedb_round_trip(tmp_path, mixed_ds):
    mixed_ds[0].info["C2H6"] = "formula-like key"  # not a valid ASE key: must go to row.data
    mixed_ds[1].info["tags"] = [1, 2, 3]
    path = tmp_path / "mixed.db"
    ll.data.write(mixed_ds, path)
    back = ll.data.read(path)
    assert back.name == "mixed" and back.label_sets == ["emt", "lj"]
    assert back.provenance.labels["lj"].settings == {"sigma": 1.0}
    for a, b in zip(mixed_ds, back):
        assert_frames_close(a, b, atol=1e-10)
    import ase.db

    row = ase.db.connect(str(path)).get(id=1)
    assert row.group == "g0" and row.energy == pytest.approx(mixed_ds[0].labels["emt"].energy)
    assert_no_temp_files(tmp_path)


# -- DeePMD npy ---------------------------------------------------------------------------------------
def test_deepmd_single_system_round_trip(tmp_path, mixed_ds):
    water = mixed_ds[:3]
    ll.data.write(water, tmp_path / "w", format="deepmd/npy", label="emt")
    sysdir = tmp_path / "w"
    assert (sysdir / "type.raw").is_file() and (sysdir / "nopbc").is_file()
    assert np.load(sysdir / "set.000" / "coord.npy").shape == (3, 9)
    assert not (sysdir / "set.000" / "box.npy").exists()
    back = ll.data.read(sysdir)
    assert back.label_sets == ["emt"] and back.name == "mixed"
    for a, b in zip(water, back):
        assert_frames_close(a, b, labels=["emt"], info=False)
    assert back[0].info["system"] == "w"


def test_deepmd_multi_system_round_trip_and_sets(tmp_path, mixed_ds):
    root = tmp_path / "root"
    ll.data.write(mixed_ds, root, format="deepmd", label="emt", set_size=2)
    systems = sorted(p.parent.name for p in root.rglob("type.raw"))
    assert len(systems) == 4  # H2O, CH4, cubic Cu4, primitive Cu
    assert (root / "H2O-nopbc" / "set.001" / "coord.npy").is_file()  # 3 frames, 2 per set
    cu = root / "Cu4"
    assert np.load(cu / "set.000" / "virial.npy").shape == (2, 9) and np.load(cu / "set.000" / "box.npy").shape == (2, 9)
    back = ll.data.read(root)
    assert len(back) == len(mixed_ds)
    orig, new = _by_composition(mixed_ds), _by_composition(back)
    assert orig.keys() == new.keys()
    for key in orig:
        for a, b in zip(orig[key], new[key]):
            assert_frames_close(a, b, labels=["emt"], info=False)
    # re-writing replaces the old tree; a non-deepmd directory is never overwritten
    ll.data.write(mixed_ds[:3], root, format="deepmd", label="emt")
    assert len(ll.data.read(root)) == 3
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_text("meow")
    with pytest.raises(DataError, match="refusing to overwrite"):
        ll.data.write(mixed_ds, other, format="deepmd", label="emt")
    assert (other / "cat.jpg").read_text() == "meow"
    assert_no_temp_files(tmp_path)


def test_deepmd_write_needs_a_field_on_all_frames_or_none(tmp_path, mixed_ds):
    mixed_ds[1].labels["emt"].forces = None
    with pytest.raises(DataError) as err:
        ll.data.write(mixed_ds, tmp_path / "x", format="deepmd", label="emt")
    assert err.value.frame == 1 and "forces" in err.value.field
    assert not (tmp_path / "x").exists()
    assert_no_temp_files(tmp_path)


def test_deepmd_frame_count_mismatch_and_missing_type_map(tmp_path, mixed_ds):
    sysdir = tmp_path / "w"
    ll.data.write(mixed_ds[:3], sysdir, format="deepmd", label="emt")
    np.save(sysdir / "set.000" / "force.npy", np.load(sysdir / "set.000" / "force.npy")[:2])
    with pytest.raises(DataError) as err:
        ll.data.read(sysdir)
    assert "force.npy" in err.value.source and err.value.field == "force" and err.value.frame == 2
    assert "2 frames but coord.npy has 3" in str(err.value)
    (sysdir / "type_map.raw").unlink()
    with pytest.raises(DataError, match="type_map.raw is missing"):
        ll.data.read(sysdir)


def test_deepmd_truncated_npy(tmp_path, mixed_ds):
    sysdir = tmp_path / "w"
    ll.data.write(mixed_ds[:3], sysdir, format="deepmd", label="emt")
    coord = sysdir / "set.000" / "coord.npy"
    coord.write_bytes(coord.read_bytes()[:100])
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        ll.data.read(sysdir)
    assert err.value.source == str(coord)


def test_deepmd_reads_real_water_data():
    if not (WATER / "data_0").is_dir():
        pytest.skip("shared water-deepmd data not present")
    ds = ll.data.read(WATER / "data_0")
    assert len(ds) == 80 and ds.elements == ["H", "O"] and ds.label_sets == ["reference"]
    f = ds[0]
    assert f.n_atoms == 192 and f.is_periodic and f.cell[0, 0] == pytest.approx(12.444661, abs=1e-5)
    assert f.labels["reference"].forces.shape == (192, 3) and f.labels["reference"].energy < -29000
    everything = ll.data.read(WATER, label="dft")
    assert len(everything) == 400 and set(everything.groups("system")) == {"data_0", "data_1", "data_2", "data_3"}
    rms = np.sqrt(np.mean(np.concatenate([f.labels["dft"].forces for f in everything[320:]]) ** 2))
    assert rms == pytest.approx(0.817, abs=0.01)  # data_3, as its README says


def test_failed_write_keeps_the_existing_file(tmp_path, mixed_ds):
    path = tmp_path / "keep.lamh5"
    ll.data.write(mixed_ds, path)
    before = path.read_bytes()
    mixed_ds[4].info["bad"] = object()  # cannot be stored
    with pytest.raises(DataError) as err:
        ll.data.write(mixed_ds, path)
    assert err.value.frame == 4 and err.value.field == "info['bad']"
    assert path.read_bytes() == before
    assert_no_temp_files(tmp_path)


def test_empty_file_is_reported(tmp_path):
    (tmp_path / "empty.xyz").write_text("")
    with pytest.raises(ValidationError, match="dataset is empty"):
        ll.data.read(tmp_path / "empty.xyz")


def test_deepmd_molecules_with_zero_box_or_no_box(tmp_path):
    m = molecule("H2O")
    sysdir = tmp_path / "mol"
    (sysdir / "set.000").mkdir(parents=True)
    (sysdir / "type_map.raw").write_text("O\nH\n")
    (sysdir / "type.raw").write_text("0\n1\n1\n")
    np.save(sysdir / "set.000" / "coord.npy", np.stack([m.positions.ravel()] * 2))
    np.save(sysdir / "set.000" / "energy.npy", np.array([-1.0, -2.0]))
    np.save(sysdir / "set.000" / "box.npy", np.zeros((2, 9)))
    ds = ll.data.read(sysdir)
    assert not ds[0].is_periodic and ds[1].labels["reference"].energy == -2.0
    (sysdir / "set.000" / "box.npy").unlink()
    assert not ll.data.read(sysdir)[0].is_periodic


def test_corrupt_database_and_unknown_hdf5_layout(tmp_path):
    (tmp_path / "bad.db").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(DataError, match="bad.db"):
        ll.data.read(tmp_path / "bad.db")
    with h5py.File(tmp_path / "other.h5", "w") as h:
        h["x"] = np.zeros(3)
    with pytest.raises(DataError, match="HDF5 layout not recognised"):
        ll.data.read(tmp_path / "other.h5")


def test_deepmd_label_names_from_metadata_or_argument(tmp_path, mixed_ds):
    ll.data.write(mixed_ds[:3], tmp_path / "w", format="deepmd", label="lj")
    assert ll.data.read(tmp_path / "w").label_sets == ["lj"]  # the name written in lam_lab.json
    with pytest.raises(DataError, match="no label set 'dft'"):
        ll.data.read(tmp_path / "w", label="dft")
    (tmp_path / "w" / "lam_lab.json").unlink()  # as DeePMD-kit's own files: the caller names the set
    assert ll.data.read(tmp_path / "w").label_sets == ["reference"]
    assert ll.data.read(tmp_path / "w", label="dft").label_sets == ["dft"]
