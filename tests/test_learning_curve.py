"""Learning curves: every method at tiny settings, table/figure/JSON, the CLI verb, barrier frames of rxn-dft."""

from __future__ import annotations

import json
import math

import pytest
import torch

import lam_lab as ll
from conftest import TINY_DPA2
from lam_lab.experiments import METHODS, LearningCurve, learning_curve

TINY = TINY_DPA2


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny two-head model 'pre-trained' a few steps on GFN2-xTB labels, saved like the shipped one."""
    torch.set_num_threads(1)
    ds = ll.datasets.load("rxn-xtb")
    m = ll.build_model("dpa2-small", ["H", "C", "N", "O", "Cu"], heads=["rxn-xtb", "metals-emt"], **TINY)
    m = ll.train(m, {"rxn-xtb": ds[::200]}, steps=5, out_dir=None, progress=False).model
    path = tmp_path_factory.mktemp("pre") / "tiny.pt"
    ll.save(m, path)
    return path


def test_rxn_dft_has_a_held_out_barrier():
    ds = ll.datasets.load("rxn-dft")
    test = [f for f in ds if f.info.get("split") == "test"]
    from lam_lab.datasets.rxn_dft import TEST_REACTIONS

    assert {f.info.get("reaction") for f in test} <= set(TEST_REACTIONS)
    assert {"reactant", "ts"} <= {f.info.get("role") for f in test}


def test_learning_curve_all_methods_tiny(pretrained):
    curve = learning_curve("rxn-dft", pretrained=pretrained, sizes=(5, 10), steps=2, seed=0)
    assert [(r.method, r.n) for r in curve.rows] == [(m, n) for n in (5, 10) for m in METHODS]
    for r in curve.rows:
        assert math.isfinite(r.energy_rmse_mev_per_atom) and math.isfinite(r.force_rmse_mev_per_A)
        assert math.isfinite(r.barrier_err_ev) and r.barrier_err == pytest.approx(1000 * r.barrier_err_ev)
        assert r.steps == 2
    # the same reference barrier for every method (DFT labels of the Claisen TS and reactant), in eV
    assert len({round(r.barrier_ref_ev, 9) for r in curve.rows}) == 1 and 0.5 < curve.rows[0].barrier_ref_ev < 5.0
    # GFN2-xTB alone on the same test frames, from its stored labels
    base = curve.baseline
    assert base is not None and base.method == "gfn2-xtb alone" and base.barrier_ref_ev == curve.rows[0].barrier_ref_ev
    assert 100 < base.force_rmse_mev_per_A < 2000 and base.steps == 0
    text = curve.table()
    assert all(m in text for m in METHODS) and "gfn2-xtb alone" in text and "barrier eV" in text
    fig = curve.figure()
    assert len(fig.data) == 3 * len(METHODS) and len(fig.layout.shapes) == 3  # the xTB line in each panel
    d = json.loads(json.dumps(curve.to_dict()))
    assert d["best_at_50_over_scratch_at_all"] is None and len(d["rows"]) == 10 and d["baseline"]["n"] == 0
    again = LearningCurve.from_dict(d)
    assert again.rows == curve.rows and again.baseline == base


def test_stored_curves_read_with_the_old_field_names():
    old = {"rows": [{"method": "scratch", "size": "25", "n": 25, "e_rmse": 119.8, "f_rmse": 768.0, "barrier_err": 2323.0,
                     "barrier_pred": 0.73, "barrier_ref": 3.06, "train_s": 45.2, "steps": 1000, "branch": None}],
           "settings": {"dataset": "rxn-dft"}}
    row = LearningCurve.from_dict(old).rows[0]
    assert row.barrier_err_ev == pytest.approx(2.323) and row.force_rmse_mev_per_A == 768.0 and row.barrier_ref_ev == 3.06


def test_learning_curve_cli(pretrained, tmp_path, capsys):
    from lam_lab.cli import main

    out = tmp_path / "lc.json"
    rc = main(["learning-curve", "--pretrained", str(pretrained), "--sizes", "50,all", "--methods",
               "scratch,finetune", "--steps", "1", "--json", str(out)])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["best_at_50_over_scratch_at_all"] is not None and d["best_at_50_over_scratch_at_all"] > 0
    assert "scratch" in capsys.readouterr().out
