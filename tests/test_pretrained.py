"""The shipped pre-trained model: loads offline, its card matches a fresh evaluation, fine-tuning starts from it;
the recipe machinery runs, writes a card and resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest

import lam_lab as ll
from lam_lab.data.errors import DataError
from lam_lab.pretrained.recipe import load_recipe, pretrain, recipe_names, split_task

SHIPPED = "lam-chon-small" in ll.pretrained.available()
needs_shipped = pytest.mark.skipif(not SHIPPED, reason="lam-chon-small not built into this checkout yet")


def test_recipe_is_shipped_and_typed():
    assert "lam-chon-small" in recipe_names()
    r = load_recipe("lam-chon-small")
    assert set(r.tasks) == {"rxn-xtb", "rxn-dft", "metals-emt", "water-ff"}
    assert r.tasks["rxn-dft"].label == "gfn2-xtb" and r.model.preset == "dpa2-small"
    bigger = r.replace(preset="dpa2-medium", steps=10)
    assert bigger.model.preset == "dpa2-medium" and bigger.train.steps == 10 and r.train.steps != 10


def test_held_out_reactions_stay_out_of_pretraining():
    from lam_lab.datasets.rxn_dft import TEST_REACTIONS

    r = load_recipe("lam-chon-small")
    xtb = split_task("rxn-xtb", r.tasks["rxn-xtb"], seed=0)
    assert all(f.info.get("reaction") not in TEST_REACTIONS for part in (xtb.train, xtb.val, xtb.test) for f in part)
    dft = split_task("rxn-dft", r.tasks["rxn-dft"], seed=0)
    assert {f.info["reaction"] for f in dft.test} <= set(TEST_REACTIONS)
    assert not any(f.info.get("reaction") in TEST_REACTIONS for part in (dft.train, dft.val) for f in part)


def test_unknown_name_errors():
    with pytest.raises(DataError, match="no pre-trained model 'nope'"):
        ll.pretrained.load("nope")
    with pytest.raises(DataError, match="unknown recipe"):
        load_recipe("nope")


def test_recipe_runs_writes_card_and_resumes(tmp_path):
    recipe = load_recipe("lam-chon-small").replace(  # 24 frames: rxn-dft's seeded subset holds 2 test frames
        steps=4, frames=24, eval_every=2, threads=1, log_every=1)
    recipe.model.overrides = {"repformer_layers": 1, "g1_dim": 16, "g2_dim": 8, "repinit_neuron": (4, 8), "repinit_axis": 4,
                              "fitting_neuron": (16, 16)}
    first = pretrain(recipe, tmp_path, progress=False)
    assert first.card["training"]["steps"] == 4
    card = json.loads(first.card_path.read_text())
    assert {r["set"] for r in card["test"]} <= set(recipe.tasks) and card["zero_shot"]
    assert first.card_path.with_suffix(".md").read_text().startswith("# Model card: lam-chon-small")
    # a longer budget on the same folder continues from the checkpoint instead of starting again
    longer = pretrain(recipe.replace(steps=6), tmp_path, progress=False)
    assert longer.card["training"]["steps"] == 6
    model = ll.load(longer.model_path)
    assert model.heads == list(recipe.tasks)


@needs_shipped
def test_shipped_model_loads_with_card_and_size_limit():
    path = ll.pretrained.path()
    assert path.stat().st_size < 15e6
    model = ll.pretrained.load()
    card = ll.pretrained.card(as_dict=True)
    assert model.heads == card["heads"] == ["rxn-xtb", "rxn-dft", "metals-emt", "water-ff"]
    assert "Known limits" in ll.pretrained.card()


@needs_shipped
def test_card_metrics_match_a_fresh_evaluation():
    model = ll.pretrained.load()
    card = ll.pretrained.card(as_dict=True)
    recipe = load_recipe("lam-chon-small")
    row = next(r for r in card["test"] if r["set"] == "rxn-dft")
    test = split_task("rxn-dft", recipe.tasks["rxn-dft"], recipe.train.seed).test
    table = ll.evaluate(model, {"rxn-dft": test}, head="rxn-dft", label="gfn2-xtb", parity=False)
    if table["rxn-dft"].n_frames != row["frames"]:  # measured on an earlier build of the set: the card must say so
        assert "rebuilt" in card.get("data_note", "") and "lam-lab pretrain" in card["data_note"]
        return
    assert table["rxn-dft"].f_rmse == pytest.approx(row["f_rmse"], rel=0.02)
    assert table["rxn-dft"].e_rmse == pytest.approx(row["e_rmse"], rel=0.05, abs=0.5)


@needs_shipped
def test_five_step_finetune_from_shipped_model(tmp_path):
    ds = ll.datasets.load("rxn-dft")
    train = ds[[i for i, f in enumerate(ds) if f.info["split"] == "train"][:16]]
    before = ll.pretrained.load().state_dict()
    res = ll.finetune(train, label="wb97x/6-31g*", steps=5, out_dir=tmp_path, progress=False)
    assert res.train.steps == 5 and res.path.exists()
    after = res.model.state_dict()
    assert any(k in before and before[k].shape == v.shape and not np.allclose(v.numpy(), before[k].numpy())
               for k, v in after.items() if k.startswith("descriptor."))
