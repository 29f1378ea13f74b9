"""Frame/Dataset containers, validation (each problem located), summary, splits and FPS selection."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

import lam_lab as ll
from lam_lab.data import DataError, Dataset, Frame, Labels, Provenance, ValidationError


def water(shift: float = 0.0, **labels: Labels) -> Frame:
    m = molecule("H2O")
    return Frame(m.numbers, m.positions + shift, labels=dict(labels))


# -- Frame and Dataset basics -------------------------------------------------------------------------
def test_frame_ase_round_trip_with_stress_as_virial():
    atoms = bulk("Cu", cubic=True)
    atoms.rattle(0.05, seed=1)
    atoms.calc = EMT()
    stress = atoms.get_stress()
    f = Frame.from_atoms(atoms, label="emt")
    lab = f.labels["emt"]
    np.testing.assert_allclose(lab.virial, lab.virial.T, atol=1e-12)
    assert lab.virial[0, 0] == pytest.approx(-stress[0] * atoms.get_volume())
    back = f.to_atoms("emt")
    np.testing.assert_allclose(back.get_stress(), stress, atol=1e-12)
    assert back.get_potential_energy() == pytest.approx(atoms.get_potential_energy())
    assert f.formula == "Cu4" and f.is_periodic and f.symbols == ["Cu"] * 4


def test_frame_copy_is_deep_and_dataset_indexing():
    f = water(e=Labels(-1.0, np.zeros((3, 3))))
    g = f.copy()
    g.positions[0, 0] += 1
    g.labels["e"].forces[0, 0] = 5
    assert f.positions[0, 0] != g.positions[0, 0] and f.labels["e"].forces[0, 0] == 0
    ds = Dataset([f, water(0.1), water(0.2, x=Labels(1.0))], name="w", provenance=Provenance(builder="t"))
    assert isinstance(ds[0], Frame) and len(ds[1:]) == 2 and len(ds[[0, 2]]) == 2
    assert ds[1:].provenance is ds.provenance and ds.label_sets == ["e", "x"]
    assert len(ds.with_label("x")) == 1 and ds.elements == ["H", "O"]
    with pytest.raises(DataError, match="several label sets"):
        ds.default_label()
    assert ds.with_label("e").default_label() == "e"
    assert len(ds + ds) == 6


# -- validation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "frame, field, text",
    [
        (water(e=Labels(np.nan)), "labels['e'].energy", "energy is nan"),
        (water(e=Labels(np.inf)), "labels['e'].energy", "energy is inf"),
        (water(e=Labels(-1.0, np.full((3, 3), np.inf))), "labels['e'].forces", "NaN or inf"),
        (water(e=Labels(-1.0, None, np.full((3, 3), np.nan))), "labels['e'].virial", "NaN or inf"),
        (water(e=Labels(-1.0, np.zeros((2, 3)))), "labels['e'].forces", "does not match 3 atoms"),
        (Frame([8, 1, 200], molecule("H2O").positions), "numbers", "unknown atomic numbers [200]"),
        (Frame([0, 1, 1], molecule("H2O").positions), "numbers", "unknown atomic numbers [0]"),
        (Frame([8, 1], molecule("H2O").positions), "positions", "does not match 2 atoms"),
        (Frame([1, 1], [[0, 0, 0], [0, 0, 0.3]]), "positions", "overlap"),
        (Frame([1, 1], [[0, 0, 0], [0, 0, 0.3]], cell=np.eye(3) * 5, pbc=True), "positions", "overlap"),
        (Frame([1, 1], [[0.1, 0, 0], [4.8, 0, 0]], cell=np.eye(3) * 5, pbc=True), "positions", "overlap"),  # via the image
        (Frame([1, 1], [[0, 0, 0], [0, 0, 1.0]], pbc=True), "cell", "no (or a degenerate) cell"),
        (Frame([1, 1], [[0, 0, 0], [0, 0, np.nan]]), "positions", "non-finite"),
        (Frame([], np.zeros((0, 3))), "numbers", "no atoms"),
    ],
)
def test_each_problem_is_found_and_located(frame, field, text):
    ds = Dataset([water(), frame], provenance=Provenance(source="some/file.xyz"))
    problems = ds.validate(raise_on_error=False)
    assert len(problems) == 1, problems
    (p,) = problems
    assert (p.source, p.frame, p.field) == ("some/file.xyz", 1, field)
    assert text in str(p) and "some/file.xyz" in str(p) and "frame 1" in str(p)


def test_sound_frames_pass_including_triclinic_cells():
    tri = bulk("Cu", "fcc", a=3.6)  # primitive, triclinic cell, one atom: images at 2.55 Å
    tri = tri.repeat((2, 1, 1))
    ds = Dataset([water(), Frame.from_atoms(tri), Frame.from_atoms(bulk("Cu", cubic=True).repeat(2))])
    assert ds.validate() == []


def test_validate_reports_all_problems_at_once():
    frames = [water(), water(e=Labels(np.nan)), Frame([1, 1], [[0, 0, 0], [0, 0, 0.1]]), water(e=Labels(1.0, np.zeros((1, 3))))]
    ds = Dataset(frames, provenance=Provenance(source="f.db"))
    with pytest.raises(ValidationError) as err:
        ds.validate()
    assert [p.frame for p in err.value.problems] == [1, 2, 3]
    msg = str(err.value)
    assert msg.startswith("3 problem(s) in f.db") and "frame 2, field positions" in msg
    assert isinstance(err.value, DataError)  # one except clause catches both


def test_empty_dataset_is_a_problem():
    with pytest.raises(ValidationError, match="dataset is empty"):
        Dataset([]).validate()


def test_read_validates_and_skip_invalid_drops_bad_frames(tmp_path):
    frames = [water(0.1 * k, ref=Labels(-10.0 - k, np.zeros((3, 3)))) for k in range(5)]
    frames[1].labels["ref"].energy = float("nan")
    frames[3].positions[2] = frames[3].positions[0] + 0.1
    path = tmp_path / "bad.lamh5"
    ll.data.write(Dataset(frames), path)
    with pytest.raises(ValidationError) as err:
        ll.data.read(path)
    assert [(p.frame, p.field) for p in err.value.problems] == [(1, "labels['ref'].energy"), (3, "positions")]
    assert all(p.source == str(path) for p in err.value.problems)
    with pytest.warns(UserWarning, match="skipped 2 of 5 frames"):
        ds = ll.data.read(path, skip_invalid=True)
    assert [f.labels["ref"].energy for f in ds] == [-10.0, -12.0, -14.0]
    assert len(ll.data.read(path, validate=False)) == 5


def test_unknown_element_in_files(tmp_path):
    (tmp_path / "x.xyz").write_text("2\nProperties=species:S:1:pos:R:3\nXx 0 0 0\nH 0 0 1\n")
    with pytest.raises(DataError) as err:
        ll.data.read(tmp_path / "x.xyz")
    assert err.value.source == str(tmp_path / "x.xyz") and err.value.frame == 0 and "Xx" in str(err.value)
    sysdir = tmp_path / "sys"
    ll.data.write(Dataset([water(ref=Labels(-1.0))]), sysdir, format="deepmd")
    (sysdir / "type_map.raw").write_text("Qq\nO\n")
    with pytest.raises(DataError) as err:
        ll.data.read(sysdir)
    assert err.value.field == "type_map" and "Qq" in str(err.value)


# -- summary ------------------------------------------------------------------------------------------
def test_summary_figures_and_table(mixed_ds):
    s = mixed_ds.summary()
    assert (s.n_frames, s.atoms_min, s.atoms_max) == (8, 1, 5)
    assert s.atoms_mean == pytest.approx((3 * 3 + 2 * 5 + 2 * 4 + 1) / 8)
    assert s.elements == {"H": 3 * 2 + 2 * 4, "C": 2, "O": 3, "Cu": 9}
    assert s.periodic_frames == 3 and list(s.label_sets) == ["emt", "lj"]
    emt = s.label_sets["emt"]
    e = np.array([f.labels["emt"].energy / len(f) for f in mixed_ds])
    fn = np.linalg.norm(np.concatenate([f.labels["emt"].forces for f in mixed_ds]), axis=1)
    assert emt["frames"] == 8 and s.label_sets["lj"]["frames"] == 5
    assert emt["e_per_atom_mean"] == pytest.approx(e.mean()) and emt["e_per_atom_std"] == pytest.approx(e.std())
    assert emt["f_norm_mean"] == pytest.approx(fn.mean()) and emt["f_norm_max"] == pytest.approx(fn.max())
    text = str(s)
    assert "Dataset 'mixed': 8 frames, 1-5 atoms/frame" in text and "Cu 9" in text
    assert "E/atom mean" in text and "|F| max" in text and "label emt: EMT (ase" in text
    assert text.count("\n") >= 6


def test_summary_of_a_set_without_forces_shows_nan():
    s = Dataset([water(e=Labels(-3.0))]).summary()
    assert np.isnan(s.label_sets["e"]["f_norm_mean"]) and s.label_sets["e"]["e_per_atom_mean"] == pytest.approx(-1.0)
    assert "nan" in str(s)


# -- splits -------------------------------------------------------------------------------------------
def _numbered(n: int) -> Dataset:
    return Dataset([water(0.01 * k) for k in range(n)])


def test_random_split_is_disjoint_complete_reproducible():
    ds = _numbered(23)
    for k, f in enumerate(ds):
        f.info["k"] = k
    parts = ds.split((0.8, 0.1, 0.1), seed=3)
    ids = [[f.info["k"] for f in p] for p in parts]
    assert [len(p) for p in ids] == [19, 2, 2]  # 18.4, 2.3, 2.3 rounded by largest remainder
    flat = sorted(i for p in ids for i in p)
    assert flat == list(range(23))
    again = [[f.info["k"] for f in p] for p in ds.split((0.8, 0.1, 0.1), seed=3)]
    assert again == ids
    other = [[f.info["k"] for f in p] for p in ds.split((0.8, 0.1, 0.1), seed=4)]
    assert other != ids
    assert parts[0].name.endswith("[0]")


def test_holdout_split_uses_marked_test_frames_else_a_seeded_fifth():
    from lam_lab.data.selection import holdout_split

    ds = _numbered(20)
    for k, f in enumerate(ds):
        f.info["k"] = k
        f.info["split"] = "test" if k % 4 == 0 else "train"
    pool, test = holdout_split(ds)
    assert [f.info["k"] for f in test] == [0, 4, 8, 12, 16] and len(pool) == 15
    _, capped = holdout_split(ds, max_test=3, seed=1)
    assert len(capped) == 3 and {f.info["k"] for f in capped} <= {0, 4, 8, 12, 16}
    for f in ds:
        del f.info["split"]
    pool, test = holdout_split(ds, seed=2)
    assert (len(pool), len(test)) == (16, 4) and [f.info["k"] for f in holdout_split(ds, seed=2)[1]] == [f.info["k"] for f in test]


def test_group_split_keeps_groups_whole():
    ds = _numbered(30)
    for k, f in enumerate(ds):
        f.info["reaction"] = f"rxn{k // 3}"  # 10 reactions of 3 frames
    parts = ds.split((0.6, 0.2, 0.2), seed=0, by="reaction")
    seen = [{f.info["reaction"] for f in p} for p in parts]
    assert [len(s) for s in seen] == [6, 2, 2]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert sum(len(p) for p in parts) == 30
    assert [[f.info["reaction"] for f in p] for p in ds.split((0.6, 0.2, 0.2), seed=0, by="reaction")] == [
        [f.info["reaction"] for f in p] for p in parts
    ]
    # "formula" groups by composition when no info key is set
    mixed = Dataset([water(), water(0.1), Frame.from_atoms(molecule("CH4"))])
    a, b = mixed.split((0.5, 0.5), by="formula", seed=1)
    assert {len(a), len(b)} == {1, 2}


# -- farthest-point selection -------------------------------------------------------------------------
def test_fps_distinct_deterministic_and_picks_outliers():
    from lam_lab.data.selection import farthest_point_indices

    rng = np.random.default_rng(0)
    frames = []
    for _ in range(20):
        m = molecule("H2O")
        m.positions += rng.normal(scale=0.01, size=m.positions.shape)
        frames.append(Frame.from_atoms(m))
    stretched = molecule("H2O")
    stretched.positions[1] *= 1.8
    frames.insert(7, Frame.from_atoms(stretched))
    frames.insert(15, Frame.from_atoms(molecule("CH4")))
    ds = Dataset(frames)
    for seed in range(4):
        idx = farthest_point_indices(ds, 5, seed=seed)
        assert len(idx) == len(set(idx)) == 5 and all(0 <= i < len(ds) for i in idx)
        assert {7, 15} <= set(idx), idx
        assert idx == farthest_point_indices(ds, 5, seed=seed)
    assert len(ds.select_fps(4)) == 4
    assert farthest_point_indices(ds, 100) == list(range(len(ds)))
