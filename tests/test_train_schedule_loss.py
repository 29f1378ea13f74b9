"""LR schedules, run budgets, the Eq. 41 prefactors and the Eq. 38 loss against a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lam_lab.nn.batch import collate
from lam_lab.train.config import LossConfig
from lam_lab.train.loss import compute_loss, prefactors
from lam_lab.train.schedule import Budget, LRSchedule
from test_train_fixtures import emt_frames, tiny_model


def test_cosine_warms_up_then_decays_to_final_ratio():
    s = LRSchedule("cosine", lr=1e-2, warmup=0.1, final_ratio=0.05)
    assert s(0.0) == pytest.approx(1e-4)  # warm-up starts at 1 % of lr
    assert s(0.05) == pytest.approx(5e-3)
    assert s(0.1) == pytest.approx(1e-2)
    assert s(1.0) == pytest.approx(5e-4)
    lrs = [s(p) for p in np.linspace(0.1, 1, 50)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_exponential_schedule_is_the_papers_and_drives_eq41():
    s = LRSchedule("exp", lr=1e-3, warmup=0.0, final_ratio=1e-4)
    assert s(0) == pytest.approx(1e-3) and s(1) == pytest.approx(1e-7) and s(0.5) == pytest.approx(1e-5)
    cfg = LossConfig(pf_e_start=0.02, pf_e_limit=1.0, pf_f_start=1000.0, pf_f_limit=1.0)
    for p in (0.0, 0.3, 1.0):
        ratio = s(p) / s(0)  # Eq. 41: p(t) = p_start γ/γ0 + p_limit (1 − γ/γ0)
        pf = prefactors(cfg, s.decay(p))
        assert pf.e == pytest.approx(0.02 * ratio + 1.0 * (1 - ratio))
        assert pf.f == pytest.approx(1000 * ratio + 1.0 * (1 - ratio))


def test_bad_schedule_values_are_rejected():
    with pytest.raises(ValueError, match="unknown schedule"):
        LRSchedule("cosin")
    with pytest.raises(ValueError):
        LRSchedule("cosine", lr=-1)


def test_budget_by_steps_time_or_both():
    b = Budget(steps=100)
    assert b.progress(50, 1e9) == 0.5 and not b.done(99, 1e9) and b.done(100, 0)
    t = Budget(seconds=60)
    assert t.progress(10**6, 30) == 0.5 and t.done(0, 60)
    both = Budget(steps=100, seconds=60)
    assert both.progress(10, 45) == 0.75 and both.eta(10, 45, 1.0) == 15
    with pytest.raises(ValueError):
        Budget()


def test_loss_matches_eq38_by_hand():
    torch.manual_seed(0)
    ds = emt_frames("Cu", 2, seed=3)
    model = tiny_model()
    batch = collate([model.prepare(f) for f in ds])  # a 8-atom and a 4-atom frame
    out = model(batch, forces=True, virial=True)
    cfg = LossConfig(pf_v_start=1.0, pf_v_limit=1.0)
    pf = prefactors(cfg, 1.0)
    terms = compute_loss(out, batch, pf, cfg)
    n = batch.n_atoms.double()
    e = ((out.energy.double() - batch.energy) / n) ** 2
    f = [((out.forces[batch.frame == k].double() - batch.forces[batch.frame == k]) ** 2).mean() for k in range(2)]
    v = (((out.virial.double() - batch.virial) / n[:, None, None]) ** 2).reshape(2, 9).mean(1)
    expect = pf.e * e.mean() + pf.f * torch.stack(f).mean() + pf.v * v.mean()
    assert float(terms.total.detach()) == pytest.approx(float(expect.detach()), rel=1e-5)
    assert terms.n_e == 2 and terms.n_f == 3 * 12 and terms.n_v == 18
    assert math.sqrt(terms.e_sq / terms.n_e) == pytest.approx(float(e.detach().mean().sqrt()), rel=1e-6)
    # the paper's literal normalisation |ΔE|²/N
    paper = compute_loss(out, batch, pf, LossConfig(energy_norm="paper"))
    assert paper.energy == pytest.approx(float(((out.energy.detach().double() - batch.energy) ** 2 / n).mean()), rel=1e-5)


def test_loss_skips_missing_labels():
    ds = emt_frames("Cu", 2, seed=4)
    ds[1].labels["emt"].forces = None
    ds[1].labels["emt"].energy = None
    model = tiny_model()
    batch = collate([model.prepare(f) for f in ds])
    out = model(batch, forces=True)
    terms = compute_loss(out, batch, prefactors(LossConfig(), 1.0), LossConfig())
    assert terms.n_e == 1 and terms.n_f == 3 * len(ds[0])
    assert torch.isfinite(terms.total)


def test_a_frames_loss_weight_weights_its_terms_and_a_bad_one_names_the_frame():
    from lam_lab.data.errors import DataError
    from lam_lab.train.data import GraphCache

    ds = emt_frames("Cu", 2, seed=5)
    ds[1].info["loss_weight"] = 3.0
    model = tiny_model()
    batch = collate(list(GraphCache(model, ds, "emt")))
    out = model(batch, forces=True)
    cfg = LossConfig()
    terms = compute_loss(out, batch, prefactors(cfg, 1.0), cfg)
    e = ((out.energy.double() - batch.energy) / batch.n_atoms.double()) ** 2
    assert terms.energy == pytest.approx(float((e[0] + 3 * e[1]).detach() / 4), rel=1e-5)
    assert math.sqrt(terms.e_sq / terms.n_e) == pytest.approx(float(e.detach().mean().sqrt()), rel=1e-6)  # RMSE unweighted
    ds[0].info["loss_weight"] = "heavy"
    with pytest.raises(DataError, match=r"frame 0.*loss_weight"):
        GraphCache(model, ds, "emt")[0]
