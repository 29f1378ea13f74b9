"""The trainer on the real (tiny) DPA-2: learning, multi-task heads and bias, resume, stop, budgets, batching."""

from __future__ import annotations

import threading
import time
from collections import Counter

import numpy as np
import pytest
import torch

from lam_lab.data.errors import DataError
from lam_lab.train import TrainConfig, evaluate, read_jsonl, train
from lam_lab.train.checkpoint import load_checkpoint
from lam_lab.train.data import FrameSampler, TaskSampler
from test_train_fixtures import emt_frames, tiny_model

FAST = TrainConfig(lr=1e-2, batch_size=2, log_every=5)


@pytest.fixture(scope="module")
def cu():
    return emt_frames("Cu", 8, seed=0)


@pytest.fixture(scope="module")
def ag():
    return emt_frames("Ag", 6, seed=1)


def test_single_task_learns_and_reports(cu, tmp_path):
    torch.set_num_threads(1)
    model = tiny_model(["Cu"])
    before = evaluate(model, cu, parity=False).rows[0]
    events = []
    # validation every 6 steps, not at each automatic tenth (which skips one when validating is slow: under load)
    res = train(model, cu, steps=60, config=FAST.replace(eval_every=6), out_dir=tmp_path, validation=cu[:4],
                callbacks=[events.append], progress=False)
    after = evaluate(res.model, cu, parity=False).rows[0]
    assert res.model is model and res.steps == 60 and not res.stopped
    assert after.f_rmse < 0.7 * before.f_rmse and after.e_rmse < before.e_rmse
    kinds = Counter(e.kind for e in events)
    assert kinds["start"] == 1 and kinds["end"] == 1 and kinds["validation"] == 10 and kinds["step"] >= 12
    step = next(e for e in events if e.kind == "step")
    assert {"default"} == set(step.train_rmse) and step.lr > 0 and step.steps_per_s > 0 and step.eta_s is not None
    assert 0 <= step.timing["data_fraction"] < 1 and step.device == "cpu"
    # files: JSONL log, checkpoints, best and final model; the returned model holds the EMA weights
    assert len(read_jsonl(tmp_path / "events.jsonl")) == len(events)
    assert res.final.exists() and res.best.exists() and res.checkpoint.exists()
    assert res.metrics.rows[0].name == "default" and np.isfinite(res.metrics.warmse_f)
    state = load_checkpoint(res.checkpoint)
    for k, v in state["ema"]["weights"].items():
        torch.testing.assert_close(v, model.state_dict()[k])


def test_multitask_adds_heads_fits_bias_per_task_and_samples_by_weight(cu, ag):
    model = tiny_model(["Cu", "Ag"], heads=["cu"])
    desc0 = {k: v.clone() for k, v in model.descriptor.state_dict().items()}
    events = []
    cfg = FAST.replace(log_every=1, batch_size=1)
    res = train(model, {"cu": cu, "ag": ag}, weights={"cu": 3, "ag": 1}, steps=24, config=cfg, out_dir=None,
                callbacks=[events.append], progress=False)
    assert model.heads == ["cu", "ag"]
    # Eq. 6 per task: pure-element data → bias = mean energy per atom of that task's frames (lstsq)
    from lam_lab.nn.energy_bias import fit_energy_bias_from

    expect_ag = fit_energy_bias_from(list(ag), ["Cu", "Ag"], "emt")
    assert model.energy_bias["ag"][1].item() == pytest.approx(expect_ag[1], rel=1e-5)
    assert model.energy_bias["cu"][1].item() == 0.0  # no Ag in the cu task: untouched
    changed = [not torch.equal(v, desc0[k]) for k, v in model.descriptor.state_dict().items() if v.is_floating_point()]
    assert any(changed)
    tasks = Counter(e.task for e in events if e.kind == "step")
    assert sum(tasks.values()) == 24 and tasks["cu"] > tasks["ag"] > 0
    draws = Counter(TaskSampler([3, 1], seed=0).task_at(s) for s in range(4000))
    assert draws[0] / 4000 == pytest.approx(0.75, abs=0.03)
    assert res.history[-1]["epoch"]["cu"] >= 1


def test_resume_continues_the_same_curve(cu, ag, tmp_path):
    """2N steps in one go == N steps, stop, resume, N more (CPU, fixed seed): identical weights and losses."""
    cfg = FAST.replace(log_every=1, batch_size=1)
    data = {"cu": cu, "ag": ag}
    straight = train(tiny_model(["Cu", "Ag"]), data, steps=12, config=cfg, out_dir=tmp_path / "a", progress=False)

    stop = threading.Event()
    first = train(tiny_model(["Cu", "Ag"]), data, steps=12, config=cfg, out_dir=tmp_path / "b", progress=False,
                  stop_event=stop, callbacks=[lambda e: e.kind == "step" and e.step == 6 and stop.set()])
    assert first.stopped and first.steps == 6 and first.checkpoint.name == "step_00000006.pt"
    second = train(tiny_model(["Cu", "Ag"]), data, steps=12, config=cfg, out_dir=tmp_path / "b", progress=False,
                   resume=True)
    assert second.steps == 12
    a, b = straight.model.state_dict(), second.model.state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    curve = lambda r: [(h["step"], h["loss"]) for h in r.history if h["kind"] == "step"]  # noqa: E731
    assert curve(straight) == curve(second)
    raw_a = torch.load(straight.checkpoint, weights_only=True)["optimizer"]
    raw_b = torch.load(second.checkpoint, weights_only=True)["optimizer"]
    torch.testing.assert_close(raw_a["state"], raw_b["state"], rtol=0, atol=0)


def test_stop_request_from_another_thread_and_time_budget(cu, tmp_path):
    stop = threading.Event()
    out = {}
    runner = threading.Thread(target=lambda: out.setdefault("res", train(
        tiny_model(["Cu"]), cu, minutes=5, config=FAST.replace(log_every=1), out_dir=tmp_path, progress=False,
        stop_event=stop)))
    runner.start()
    time.sleep(1.0)
    stop.set()
    runner.join(timeout=60)
    res = out["res"]
    assert res.stopped and res.wall_time_s < 60 and res.checkpoint.exists()
    assert any(h["kind"] == "step" for h in res.history)
    # a short time budget: the schedule follows the elapsed fraction and anneals by the end
    events = []
    res = train(tiny_model(["Cu"]), cu, minutes=0.04, config=FAST.replace(log_every=1), out_dir=None, progress=False,
                callbacks=[events.append])
    steps = [e for e in events if e.kind == "step"]
    assert 2.0 <= res.wall_time_s < 6 and not res.stopped
    assert steps[-1].progress > 0.9 and steps[-1].lr < 0.2 * FAST.lr and steps[-1].total_steps is None


def test_frame_sampler_batches_mixed_sizes_and_shards():
    sizes = np.array([4, 8, 4, 8, 4, 8, 4, 8, 4])
    s = FrameSampler(sizes, seed=0, task_index=0, batch_atoms=12)
    seen = []
    for _ in range(30):
        idx = s.next()
        assert sizes[idx].sum() >= 12 and sizes[idx[:-1]].sum() < 12
        seen += idx
    first_epoch = seen[: len(sizes)]
    assert sorted(first_epoch) == list(range(len(sizes)))
    ranks = [FrameSampler(sizes, seed=0, task_index=0, batch_size=2, rank=r, world=2) for r in (0, 1)]
    single = FrameSampler(sizes, seed=0, task_index=0, batch_size=4)
    for _ in range(5):
        a, b, both = ranks[0].next(), ranks[1].next(), single.next()
        assert sorted(a + b) == sorted(both) and not set(a) & set(b)
    state = single.state_dict()
    nxt = single.next()
    again = FrameSampler(sizes, seed=0, task_index=0, batch_size=4)
    again.load_state_dict(state)
    assert again.next() == nxt


def test_batch_of_different_sizes_trains(cu):
    res = train(tiny_model(["Cu"]), cu, steps=4, config=FAST.replace(batch_size=1, batch_atoms=20), out_dir=None,
                progress=False)
    assert res.steps == 4


def test_config_fields_as_keywords(cu):
    res = train(tiny_model(["Cu"]), cu, steps=3, config=FAST, batch_atoms=20, lr=1e-3, out_dir=None, progress=False)
    assert res.steps == 3
    with pytest.raises(TypeError, match="'lrr'"):
        train(tiny_model(["Cu"]), cu, steps=3, lrr=1e-3, out_dir=None, progress=False)


def test_evaluate_matches_a_hand_computation(cu, ag):
    from lam_lab.nn.batch import collate

    model = tiny_model(["Cu", "Ag"], heads=["cu", "ag"])
    table = evaluate(model, {"cu": cu, "ag": ag}, weights={"cu": 2, "ag": 1})
    out = model(collate([model.prepare(f) for f in cu]), head="cu")
    n = np.array([len(f) for f in cu])
    e_ref = np.array([f.labels["emt"].energy for f in cu]) / n
    e_pred = out.energy.detach().double().numpy() / n
    f_ref = np.concatenate([f.labels["emt"].forces for f in cu]).ravel()
    f_pred = out.forces.detach().double().numpy().ravel()
    row = table["cu"]
    assert row.head == "cu" and row.n_frames == 8 and row.n_atoms == n.sum()
    assert row.e_rmse == pytest.approx(1000 * np.sqrt(np.mean((e_pred - e_ref) ** 2)), rel=1e-4)
    assert row.f_mae == pytest.approx(1000 * np.mean(np.abs(f_pred - f_ref)), rel=1e-4)
    assert row.e_std == pytest.approx(1000 * e_ref.std(), rel=1e-6)
    assert row.f_std == pytest.approx(1000 * f_ref.std(), rel=1e-6)
    assert table.warmse_f == pytest.approx((2 * row.f_rmse + table["ag"].f_rmse) / 3)
    assert table.parity["cu"].f_ref.shape == f_pred.shape
    assert "WARMSE" in str(table) and table.to_dict()["rows"][0]["name"] == "cu"


def test_bad_inputs_fail_before_training(cu, ag):
    with pytest.raises(DataError, match="not in the model's type map") as err:
        train(tiny_model(["Cu"]), {"cu": cu, "ag": ag}, steps=2, out_dir=None, progress=False)
    assert err.value.field == "numbers" and err.value.frame == 0
    with pytest.raises(DataError, match="did you mean 'ag'"):
        train(tiny_model(["Cu", "Ag"]), {"cu": cu, "ag": ag}, weights={"agg": 2}, steps=2, out_dir=None, progress=False)
    with pytest.raises(DataError, match="label set 'dft'"):
        train(tiny_model(["Cu"]), cu, labels="dft", steps=2, out_dir=None, progress=False)
