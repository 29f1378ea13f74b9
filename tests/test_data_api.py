"""Data helpers: Dataset.subset/where, one frame-picking rule, one source resolver, load(split=), read(labels=)."""

from __future__ import annotations

import warnings

import ase.io
import numpy as np
import pytest
from ase import Atoms

import lam_lab as ll
from lam_lab.data.errors import DataError
from lam_lab.data.io import load_source
from lam_lab.finetune import select_frames


@pytest.fixture(scope="module")
def rxn():
    return ll.datasets.load("rxn-dft")


def test_subset_is_seeded_nested_and_in_file_order(rxn):
    a, b = rxn.subset(10, seed=3), rxn.subset(25, seed=3)
    ids = lambda ds: [id(f) for f in ds]  # noqa: E731
    assert len(a) == 10 and set(ids(a)) <= set(ids(b))  # nested in N
    assert ids(a) == ids(rxn.subset(10, seed=3)) and ids(a) != ids(rxn.subset(10, seed=4))
    pos = [ids(rxn).index(i) for i in ids(b)]
    assert pos == sorted(pos)
    assert rxn.subset(None) is rxn
    with pytest.raises(ValueError):
        rxn.subset(len(rxn) + 1)


def test_one_picking_rule_for_finetune_and_subset(rxn):
    label = "wb97x/6-31g*"
    picked = select_frames(rxn, label, 50, seed=0)
    assert [id(f) for f in picked] == [id(f) for f in rxn.with_label(label).subset(50, 0)]


def test_train_finetune_and_pretrain_pick_the_same_frames(rxn):
    """`lam-lab train` (run file frames: 50), `lam-lab finetune --frames 50` and a recipe's frames: 50, seed 0."""
    from lam_lab.pretrained.recipe import TaskRecipe, split_task
    from lam_lab.train.config import RunConfig, from_dict
    from lam_lab.train.run import prepare_run

    label = "wb97x/6-31g*"
    key = lambda ds: sorted(f.positions.tobytes() for f in ds)  # noqa: E731
    cfg = from_dict(RunConfig, {"data": {"rxn": {"source": "rxn-dft", "label": label, "frames": 50}},
                                "train": {"seed": 0}}, "", None)
    trained = prepare_run(cfg).datasets["rxn"]
    finetuned = select_frames(rxn, label, 50, seed=0)
    parts = split_task("rxn", TaskRecipe(source="rxn-dft", label=label, frames=50), seed=0)
    recipe = [f for part in (parts.train, parts.val, parts.test) for f in part]
    assert len(trained) == 50 and key(trained) == key(finetuned) == key(recipe)


def test_where_filters_by_split_and_info(rxn):
    test = rxn.where(split="test")
    assert len(test) and all(f.info["split"] == "test" for f in test)
    both = rxn.where(split=("train", "val"))
    assert len(both) + len(test) == len(rxn)
    ts = rxn.where(split="test", role="ts")
    assert len(ts) >= 1 and all(f.info["role"] == "ts" for f in ts)
    assert len(rxn.where(split="nope")) == 0
    with pytest.raises(DataError, match="info\\['split'\\] == 'nope'"):
        rxn.where(split="nope", required=True)


def test_builtin_load_with_split(rxn):
    train = ll.datasets.load("rxn-dft", split="train")
    assert len(train) == len(rxn.where(split="train")) and train.name == "rxn-dft"
    with pytest.raises(DataError, match="its splits: test, train, val"):
        ll.datasets.load("rxn-dft", split="validation")


def test_one_source_resolver(tmp_path, rxn):
    assert len(load_source("rxn-dft")) == len(rxn)
    assert load_source(rxn) is rxn
    path = tmp_path / "few.extxyz"
    ll.data.write(rxn[:3], path)
    assert len(load_source(str(path))) == 3 and len(load_source("few.extxyz", base=tmp_path)) == 3
    assert len(load_source("rxn-dft", split="test")) == len(rxn.where(split="test"))
    with pytest.raises(DataError, match="did you mean 'rxn-dft'"):
        load_source("rxn_dft")


def _xyz(path):
    images = []
    for k in range(3):
        a = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
        a.info.update(dft_energy=-2070.0 - k, xtb_energy=-5.07 - k, charge=0)
        a.arrays["dft_forces"] = np.full((3, 3), 0.1 * k)
        a.arrays["xtb_forces"] = np.zeros((3, 3))
        a.arrays["hirshfeld"] = np.zeros(3)
        images.append(a)
    ase.io.write(str(path), images, format="extxyz")
    return path


def test_read_maps_keys_to_label_sets_and_says_what_it_ignored(tmp_path):
    path = _xyz(tmp_path / "two.extxyz")
    with pytest.warns(UserWarning, match="ignored keys dft_energy, dft_forces, hirshfeld, xtb_energy, xtb_forces"):
        plain = ll.data.read(path)
    assert plain.label_sets == []
    labels = {"wb97x/6-31g*": ("dft_energy", "dft_forces"), "gfn2-xtb": ("xtb_energy", "xtb_forces")}
    with pytest.warns(UserWarning, match="ignored keys hirshfeld \\(") as rec:
        ds = ll.data.read(path, labels=labels)
    assert len(rec) == 1
    assert ds.label_sets == ["wb97x/6-31g*", "gfn2-xtb"]
    assert ds[2].labels["wb97x/6-31g*"].energy == -2072.0 and ds[2].labels["gfn2-xtb"].energy == pytest.approx(-7.07)
    np.testing.assert_allclose(ds[2].labels["wb97x/6-31g*"].forces, 0.2)
    assert "dft_energy" not in ds[0].info and ds[0].info["charge"] == 0
    # Δ-ready: both label sets on every frame
    from lam_lab.delta import delta_dataset

    assert len(delta_dataset(ds, "wb97x/6-31g*", "gfn2-xtb")) == 3
    with pytest.raises(DataError, match="'dft_virial' of label set 'wb97x/6-31g\\*'"):
        ll.data.read(path, labels={"wb97x/6-31g*": ("dft_energy", "dft_forces", "dft_virial")})


def test_read_of_a_file_without_extra_keys_is_silent(tmp_path, rxn):
    path = tmp_path / "rt.extxyz"
    ll.data.write(rxn[:2], path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = ll.data.read(path)
    assert back.label_sets == rxn[:2].label_sets
