"""lam_lab.evaluation: one predict/score for every caller; Δ models with the baseline added back; units in names."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import lam_lab as ll
from conftest import tiny_config
from lam_lab.data.errors import DataError
from lam_lab.evaluation import Scores, barrier_frames, barrier_pairs, label_spread, parity, predict, reference, score
from lam_lab.finetune import finetune

HIGH, BASE = "wb97x/6-31g*", "gfn2-xtb"
TINY = tiny_config()


@pytest.fixture(scope="module")
def rxn():
    torch.set_num_threads(1)
    return ll.datasets.load("rxn-dft")


@pytest.fixture(scope="module")
def delta_model(rxn):
    res = finetune(rxn.where(split="train").subset(10, 0), pretrained=None, mode="delta", label=HIGH, baseline=BASE,
                   preset=TINY, steps=2, out_dir=None, progress=False)
    return res.model


def test_every_score_field_names_its_unit():
    for f in dataclasses.fields(Scores):
        if f.type in ("float", float):
            assert f.name.endswith(("_mev_per_atom", "_mev_per_A", "_ev")), f.name


def test_score_matches_a_hand_computation(rxn):
    test = rxn.where(split="test", reaction="claisen")  # one held-out reaction
    pred = reference(test, BASE)  # GFN2-xTB alone, scored against DFT
    s = score(pred, test, HIGH)
    n = np.array([len(f) for f in test])
    de = (np.array([f.labels[BASE].energy - f.labels[HIGH].energy for f in test])) / n
    df = np.concatenate([(f.labels[BASE].forces - f.labels[HIGH].forces).ravel() for f in test])
    assert s.n_frames == len(test) and s.n_atoms == n.sum()
    assert s.energy_rmse_mev_per_atom == pytest.approx(1000 * np.sqrt(np.mean(de ** 2)))
    assert s.force_rmse_mev_per_A == pytest.approx(1000 * np.sqrt(np.mean(df ** 2)))
    assert s.force_mae_mev_per_A == pytest.approx(1000 * np.mean(np.abs(df)))
    # one reaction, one composition: offsets removed = the mean error removed
    assert s.energy_rmse_offset_removed_mev_per_atom == pytest.approx(1000 * np.std(de), rel=1e-6)
    r, ts = barrier_frames(list(test))
    e = lambda k, lab: test[k].labels[lab].energy  # noqa: E731
    assert s.barrier_ref_ev == pytest.approx(e(ts, HIGH) - e(r, HIGH))
    assert s.barrier_err_ev == pytest.approx(abs((e(ts, BASE) - e(r, BASE)) - (e(ts, HIGH) - e(r, HIGH))))
    assert 0.5 < s.barrier_ref_ev < 5  # eV, not meV
    assert set(s.to_dict()) == {f.name for f in dataclasses.fields(Scores)}


def test_barrier_of_several_reactions_is_the_mean_of_each_reactions(rxn):
    test = rxn.where(split="test")  # five held-out reactions, each with its DFT saddle and minimum
    s = score(reference(test, BASE), test, HIGH)
    names = sorted({f.info["reaction"] for f in test})
    assert s.barrier_reactions == len(barrier_pairs(list(test))) == len(names) > 1
    each = [score(reference(test.where(reaction=n), BASE), test.where(reaction=n), HIGH) for n in names]
    assert all(e.barrier_reactions == 1 for e in each)
    assert s.barrier_err_ev == pytest.approx(np.mean([e.barrier_err_ev for e in each]))
    assert s.barrier_ref_ev == pytest.approx(np.mean([e.barrier_ref_ev for e in each]))


def test_label_spread_removes_per_element_offsets(rxn):
    e_std, f_std = label_spread(list(rxn), HIGH)
    raw = 1000 * np.std([f.labels[HIGH].energy / len(f) for f in rxn])
    assert raw > 1e4 and 1 < e_std < 2000  # raw spread of mixed compositions is the offsets (tens of eV/atom)
    assert 100 < f_std < 5000


def test_delta_model_gets_its_baseline_back_or_refuses(rxn, delta_model):
    test = rxn.where(split="test")[:6]
    full, bare = predict(delta_model, test), predict(delta_model, test, baseline=None)
    assert full.baseline == BASE and bare.baseline is None
    base_e = np.array([f.labels[BASE].energy for f in test])
    np.testing.assert_allclose(full.energy, bare.energy + base_e)
    np.testing.assert_allclose(full.forces[2], bare.forces[2] + test[2].labels[BASE].forces)
    s = score(full, test, HIGH)
    assert s.energy_rmse_mev_per_atom < 3000  # not the bare Δ against full DFT (tens of thousands)
    plain = rxn.where(split="test")[:3]
    plain.frames = [f.copy() for f in plain]
    del plain.frames[1].labels[BASE]
    with pytest.raises(DataError, match="baseline labels 'gfn2-xtb'") as err:
        predict(delta_model, plain)
    assert err.value.frame == 1 and "baseline='compute'" in err.value.message
    # recomputed as LAMCalculator does (tblite GFN2-xTB): the same numbers as the stored labels
    again = predict(delta_model, plain, baseline="compute")
    stored = predict(delta_model, rxn.where(split="test")[:3])
    np.testing.assert_allclose(again.energy, stored.energy, atol=1e-5)
    np.testing.assert_allclose(again.forces[1], stored.forces[1], atol=1e-4)


def test_ll_evaluate_on_a_delta_model_adds_the_baseline(rxn, delta_model):
    test = rxn.where(split="test")
    table = ll.evaluate(delta_model, test, label=HIGH)
    row = table.rows[0]
    s = score(predict(delta_model, test), test, HIGH)
    assert row.baseline == BASE and row.e_rmse == pytest.approx(s.energy_rmse_mev_per_atom)
    assert row.e_rmse < 3000 and row.e_std < 2000  # no "E std 210101.9"
    assert "gfn2-xtb' labels added back" in str(table)
    with pytest.raises(DataError, match="baseline"):
        ll.evaluate(delta_model, _without_baseline(test), label=HIGH)


def _without_baseline(ds):
    out = ds[:2]
    out.frames = [f.copy() for f in out]
    for f in out.frames:
        f.labels.pop(BASE)
    return out


def test_parity_is_per_atom_and_thinned(rxn):
    test = rxn.where(split="test")
    p = parity(reference(test, BASE), test, HIGH, max_forces=100)
    assert p["e_ref"].shape == (len(test),) and p["f_ref"].shape == (100,) == p["f_pred"].shape
    assert np.all(np.abs(p["e_ref"]) < 2000)  # eV/atom


def test_distill_and_panel_use_the_same_predict(rxn, delta_model):
    from lam_lab.distill import predict as distill_predict

    test = list(rxn.where(split="test")[:4])
    a, b = distill_predict(delta_model, test), predict(delta_model, test, baseline=None)
    np.testing.assert_array_equal(a.energy, b.energy)


def test_delta_validation_table_has_a_sensible_spread(rxn):
    """The trainer's streaming metrics: a Δ set's E std is its spread with per-element offsets removed."""
    train, val = rxn.where(split="train").subset(8, 0), rxn.where(split="val").subset(8, 0)
    res = finetune(train, pretrained=None, mode="delta", label=HIGH, baseline=BASE, preset=TINY, steps=1,
                   validation=val, out_dir=None, progress=False)
    row = res.metrics.rows[0]
    delta = [(f.labels[HIGH].energy - f.labels[BASE].energy) / len(f) for f in val]
    assert 1000 * np.std(delta) > 1e4  # raw: the offsets between compositions (the old "E std 210101.9")
    e_std, _ = label_spread([_delta_frame(f) for f in val], "d")
    assert row.e_std == pytest.approx(e_std, rel=1e-6) and row.e_std < 2000


def _delta_frame(f):
    from lam_lab.data.frame import Labels

    g = f.copy()
    g.labels = {"d": Labels(f.labels[HIGH].energy - f.labels[BASE].energy)}
    return g


def test_parity_plot_draws_the_baseline_alone_on_the_same_points(rxn):
    from lam_lab import plots

    test = rxn.where(split="test")
    p = parity(reference(test, BASE), test, HIGH, max_forces=100)
    fig = plots.parity(p["f_ref"], p["f_ref"] * 0.9, "forces", "eV/Å", baseline=("GFN2-xTB alone", p["f_ref"], p["f_pred"]))
    names = [t.name for t in fig.data]
    assert names[0].startswith("GFN2-xTB alone (RMSE") and names[1].startswith("model (RMSE")
    assert fig.layout.showlegend
