"""Learning curves: every method at tiny settings, table/figure/JSON, the CLI verb, barrier frames of rxn-dft."""

from __future__ import annotations

import json
import math

import pytest
import torch

import lam_lab as ll
from lam_lab.experiments import METHODS, learning_curve

TINY = dict(repformer_layers=1, g1_dim=16, g2_dim=8, repinit_neuron=(8, 16), fitting_neuron=(16, 16),
            repinit_sel=30, repformer_sel=20)


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
    assert {f.info.get("reaction") for f in test} == {"claisen"}
    assert {"reactant", "ts"} <= {f.info.get("role") for f in test}


def test_learning_curve_all_methods_tiny(pretrained):
    curve = learning_curve("rxn-dft", pretrained=pretrained, sizes=(5, 10), steps=2, seed=0)
    assert [(r.method, r.n) for r in curve.rows] == [(m, n) for n in (5, 10) for m in METHODS]
    for r in curve.rows:
        assert math.isfinite(r.e_rmse) and math.isfinite(r.f_rmse) and math.isfinite(r.barrier_err)
        assert r.steps == 2
    # the same reference barrier for every method (DFT labels of the Claisen TS and reactant)
    assert len({round(r.barrier_ref, 9) for r in curve.rows}) == 1 and 0.5 < curve.rows[0].barrier_ref < 5.0
    text = curve.table()
    assert all(m in text for m in METHODS)
    fig = curve.figure()
    assert len(fig.data) == 3 * len(METHODS)
    d = json.loads(json.dumps(curve.to_dict()))
    assert d["best_at_50_over_scratch_at_all"] is None and len(d["rows"]) == 10


def test_learning_curve_cli(pretrained, tmp_path, capsys):
    from lam_lab.cli import main

    out = tmp_path / "lc.json"
    rc = main(["learning-curve", "--pretrained", str(pretrained), "--sizes", "50,all", "--methods",
               "scratch,finetune", "--steps", "1", "--json", str(out)])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["best_at_50_over_scratch_at_all"] is not None and d["best_at_50_over_scratch_at_all"] > 0
    assert "scratch" in capsys.readouterr().out
