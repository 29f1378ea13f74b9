"""Distillation: trust-window bookkeeping, a tiny dpa2 teacher distilled into a tiny student, events, stop, files."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.calculators.emt import EMT

import lam_lab as ll
from conftest import TINY_DPA2
from lam_lab.config import ConfigError
from lam_lab.data import DataError, Dataset, Frame, Labels, read
from lam_lab.distill import LABEL, RoundEvent, distill, force_rmse, max_force_deviation, predict, trust_select
from lam_lab.train.events import Event

TINY_TEACHER = {k: v for k, v in TINY_DPA2.items() if not k.endswith("_sel")}  # the tiny preset, default sels
TINY_STUDENT = dict(repinit_neuron=(8,), repinit_axis=4, fitting_neuron=(16, 16), student_basis=8)
QUICK = dict(temperatures=(300.0, 600.0), md_steps=20, sample_every=5, train_steps=10, progress=False,
             student_options=TINY_STUDENT)


@pytest.fixture(scope="module")
def teacher():
    """A tiny dpa2 model fitted 20 steps to EMT labels of rattled ethylene (real, non-zero forces)."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(8):
        m = molecule("C2H4")
        m.positions += rng.normal(scale=0.08, size=m.positions.shape)
        m.calc = EMT()
        frames.append(Frame(m.numbers, m.positions, labels={"emt": Labels(m.get_potential_energy(), m.get_forces())}))
    model = ll.build_model("dpa2-small", ["H", "C", "O"], **TINY_TEACHER)
    return ll.train(model, Dataset(frames, name="ethylene-emt"), steps=20, out_dir=None, progress=False).model


# -- trust window --------------------------------------------------------------------------------------
def test_trust_select_sorts_frames_into_the_window():
    dev = np.array([0.01, 0.05, 0.2, 0.25, 0.3, np.nan, 0.049, 0.1, np.inf])
    sel = trust_select(dev, (0.05, 0.25))
    assert sel.accurate.tolist() == [0, 6]  # below lo
    assert sel.candidate.tolist() == [1, 2, 7]  # lo inclusive, hi exclusive
    assert sel.failed.tolist() == [3, 4, 5, 8]  # at/above hi, and non-finite
    assert sel.selected.tolist() == [1, 2, 7]
    fr = sel.fractions()
    assert fr["accurate"] + fr["candidates"] + fr["failed"] == pytest.approx(1.0)
    assert fr["selected"] == pytest.approx(3 / 9)


def test_trust_select_caps_new_frames_reproducibly():
    dev = np.linspace(0.0, 0.3, 61)
    a, b = trust_select(dev, (0.05, 0.25), max_new=5, seed=3), trust_select(dev, (0.05, 0.25), max_new=5, seed=3)
    assert len(a.selected) == 5 and set(a.selected) <= set(a.candidate)
    assert a.selected.tolist() == b.selected.tolist() == sorted(a.selected.tolist())
    assert len(trust_select(dev, (0.05, 0.25), max_new=0).selected) == 0
    empty = trust_select([], (0.05, 0.25))
    assert empty.n == 0 and np.isnan(empty.fractions()["accurate"])
    for bad in [(0.3, 0.1), (-0.1, 0.2), (0.1,)]:
        with pytest.raises(ValueError):
            trust_select(dev, bad)


def test_max_force_deviation_is_the_largest_atom_norm():
    a = [np.zeros((3, 3)), np.ones((2, 3))]
    b = [np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0], [0.1, 0.0, 0.0]]), np.ones((2, 3))]
    np.testing.assert_allclose(max_force_deviation(a, b), [5.0, 0.0])
    assert force_rmse(a, b) == pytest.approx(1000 * np.sqrt((9 + 16 + 0.01) / 15))
    with pytest.raises(ValueError):
        max_force_deviation([np.zeros((2, 3))], [np.zeros((3, 3))])


# -- the loop ---------------------------------------------------------------------------------------------
def test_two_rounds_emit_events_and_write_a_loadable_student(teacher, tmp_path):
    events = []
    # a near-zero lower bound keeps every frame a candidate, so both rounds label and retrain
    res = distill(teacher, [molecule("C2H4")], rounds=2, trust=(1e-5, 50.0), max_new=3, out_dir=tmp_path,
                  callbacks=[events.append], **QUICK)
    rounds = [e for e in events if isinstance(e, RoundEvent)]
    assert [e.round for e in rounds] == [0, 1, 2] and [r.round for r in res.rounds] == [0, 1, 2]
    assert any(isinstance(e, Event) and e.kind == "step" for e in events)  # the trainer's events are forwarded
    for e in rounds[1:]:
        d = e.to_dict()
        assert d["kind"] == "round" and d["total_rounds"] == 2
        for key in ("candidates", "accurate", "selected", "failed", "max_dev_mean", "student_f_rmse", "n_train",
                    "elapsed_s", "message"):
            assert key in d
        assert e.candidates + e.accurate + e.failed == pytest.approx(1.0)
        assert e.n_frames == 2 * 4  # 2 temperatures × 20 steps / every 5 (step 0 left out)
        assert e.n_selected == 3 and e.selected == pytest.approx(3 / 8)
        assert e.max_dev_mean > 0 and np.isfinite(e.student_f_rmse)
    assert rounds[2].n_train == rounds[1].n_train + 3 == rounds[0].n_train + 6
    assert not res.converged and not res.stopped
    # files: student, round log, training set with teacher labels
    student = ll.load(tmp_path / "student.pt")
    assert student.config.kind == "student" and student.type_map == ["H", "C"]
    assert student.metadata["extra"]["distill"]["round"] == 2
    lines = [json.loads(x) for x in (tmp_path / "rounds.jsonl").read_text().splitlines()]
    assert [x["round"] for x in lines] == [0, 1, 2]
    train = read(tmp_path / "train.lamh5")
    assert len(train) == rounds[2].n_train and train.label_sets == [LABEL]
    # teacher labels are the teacher's own predictions
    pred = predict(teacher, list(train)[:4])
    for f, e, F in zip(list(train)[:4], pred.energy, pred.forces):
        assert f.labels[LABEL].energy == pytest.approx(e, abs=1e-4)
        np.testing.assert_allclose(f.labels[LABEL].forces, F, atol=1e-4)


def test_converges_when_the_student_agrees(teacher):
    res = distill(teacher, [molecule("C2H4")], rounds=3, trust=(50.0, 100.0), out_dir=None, **QUICK)
    assert res.converged and len(res.rounds) == 2 and res.rounds[-1].n_accurate == res.rounds[-1].n_frames
    assert res.path is None


def test_stop_event_ends_cleanly_with_the_student_saved(teacher, tmp_path):
    stop = threading.Event()
    seen = []

    def stop_in_round_one(ev):
        seen.append(ev)
        if isinstance(ev, RoundEvent) and ev.round == 0:
            stop.set()

    res = distill(teacher, [molecule("C2H4")], rounds=4, trust=(1e-5, 50.0), out_dir=tmp_path, stop_event=stop,
                  callbacks=[stop_in_round_one], **QUICK)
    assert res.stopped and not res.converged
    assert [r.round for r in res.rounds] == [0]
    assert ll.load(res.path).config.kind == "student"


def test_stop_during_training(teacher, tmp_path):
    stop = threading.Event()

    def stop_at_first_step(ev):
        if isinstance(ev, Event) and ev.kind == "step":
            stop.set()

    res = distill(teacher, [molecule("C2H4")], rounds=2, trust=(1e-5, 50.0), out_dir=tmp_path, stop_event=stop,
                  callbacks=[stop_at_first_step], **{**QUICK, "train_steps": 200})
    assert res.stopped and res.rounds[-1].stopped and res.rounds[-1].round == 0
    assert (tmp_path / "student.pt").is_file()


def test_bad_inputs_name_what_is_wrong(teacher, tmp_path):
    with pytest.raises(DataError, match="neither a model file"):
        distill(tmp_path / "missing.pt", [molecule("C2H4")], out_dir=None, **QUICK)
    with pytest.raises(DataError, match=r"elements \['N'\]") as err:
        distill(teacher, [molecule("C2H4"), molecule("NH3")], out_dir=None, **QUICK)
    assert err.value.frame == 1
    two = ll.build_model("dpa2-small", ["H", "C"], heads=("a", "b"), **TINY_TEACHER)
    with pytest.raises(DataError, match="several heads"):
        distill(two, [molecule("C2H4")], out_dir=None, **QUICK)
    with pytest.raises(ValueError, match="lo < hi"):
        distill(teacher, [molecule("C2H4")], trust=(0.3, 0.1), out_dir=None, **QUICK)


def rattled_ethylene(n: int, seed: int, labels: dict | None = None) -> list[Frame]:
    """``n`` ethylene geometries rattled by 0.05 Å (seeded), with the given labels or none."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        m = molecule("C2H4")
        m.positions += rng.normal(scale=0.05, size=m.positions.shape)
        frames.append(Frame(m.numbers, m.positions, labels=dict(labels or {})))
    return frames


def test_init_frames_are_relabelled_by_the_teacher(teacher):
    seeds = rattled_ethylene(3, 1, {"dft": Labels(1.0, np.zeros((6, 3)))})
    res = distill(teacher, [molecule("C2H4")], rounds=0, init_frames=Dataset(seeds), out_dir=None, **QUICK)
    assert [r.round for r in res.rounds] == [0] and len(res.train_set) == 3
    assert res.train_set.label_sets == [LABEL]
    assert res.train_set[0].labels[LABEL].energy == pytest.approx(float(predict(teacher, [seeds[0]]).energy[0]), abs=1e-4)


def test_cli_distill(teacher, tmp_path):
    from ase.io import write

    from lam_lab.cli import main

    ll.save(teacher, tmp_path / "teacher.pt")
    write(tmp_path / "start.xyz", molecule("C2H4"))
    cfg = tmp_path / "d.yaml"
    cfg.write_text("rounds: 1\nmd_steps: 10\nsample_every: 5\ntrain_steps: 5\ntemperatures: [300]\n"
                   f"student_options: {json.dumps(TINY_STUDENT)}\n")
    rc = main(["distill", str(tmp_path / "teacher.pt"), str(tmp_path / "start.xyz"), "--config", str(cfg),
               "--out", str(tmp_path / "run"), "--quiet"])
    assert rc == 0
    assert ll.load(tmp_path / "run" / "student.pt").config.kind == "student"
    assert len((tmp_path / "run" / "rounds.jsonl").read_text().splitlines()) == 2


def test_shipped_distill_configs_parse():
    from pathlib import Path

    from lam_lab.cli.distill import load_spec

    files = sorted((Path(__file__).resolve().parents[1] / "configs").glob("distill-*.yaml"))
    assert files
    for path in files:
        spec = load_spec(path)
        assert spec.md.ensemble == "langevin" and len(spec.trust) == 2 and spec.rounds >= 1
    with pytest.raises(ll.data.DataError, match="unknown key"):
        load_spec(files[0], ["roundz=3"])


# -- the Train metrics table's energy spread (lam_lab/train/metrics.py) ---------------------------------
def test_energy_spread_is_na_when_offsets_fit_the_few_frames():
    from lam_lab.train.metrics import MetricsRow, MetricsTable, _Sums

    sums = _Sums(3)  # 3 frames of 3 compositions: the per-element offsets fit them exactly ("E std 0.0" before)
    x, y = np.eye(3), np.array([-1.0, -2.0, -3.5])
    sums.v.update(n_e=3.0, e_ref=float(y.sum()), e_ref2=float((y**2).sum()))
    sums.add_composition(x, y)
    assert np.isnan(sums.e_std())
    rng = np.random.default_rng(0)  # 12 frames of one composition: a real spread
    y = rng.normal(size=12)
    sums = _Sums(2)
    sums.v.update(n_e=12.0, e_ref=float(y.sum()), e_ref2=float((y**2).sum()))
    sums.add_composition(np.tile([[0.5, 0.5]], (12, 1)), y)
    assert sums.e_std() == pytest.approx(1000 * y.std(), rel=1e-6)
    row = MetricsRow("val", "default", "dft", 3, 30, 1.0, 1.0, float("inf"), 2.0, float("nan"), 3.0)
    text = str(MetricsTable([row]))
    assert "n/a" in text and "nan" not in text and "inf" not in text


# -- seed frames: the teacher's own training geometries of a reaction -----------------------------------
def test_reaction_seed_frames_are_train_geometries_without_labels():
    from lam_lab.distill.seeds import reaction_frames, reaction_names

    assert reaction_names("diels-alder, C=C, nope") == ["diels-alder"]
    frames = reaction_frames(["diels-alder"])
    assert frames and all(f.info["split"] == "train" and f.info["reaction"] == "diels-alder" for f in frames)
    assert all(not f.labels for f in frames)  # geometries only: the teacher labels them
    held_out = ll.datasets.load("rxn-dft").where(reaction="diels-alder", split="val")
    assert not reaction_frames(["diels-alder"], splits=("val",), exclude=list(held_out))


def test_reference_check_scores_student_and_teacher_on_the_frames_no_seed_came_from(teacher):
    from lam_lab.distill import reference_check
    from lam_lab.distill.seeds import heldout_frames, reaction_frames

    held = heldout_frames(["diels-alder"])
    assert held and all(f.info["split"] != "train" and "wb97x/6-31g*" in f.labels for f in held)
    seeds = reaction_frames(["diels-alder"], xtb_frames=20)
    assert not any(np.allclose(s.positions, h.positions) for s in seeds for h in held if len(s) == len(h))
    student = ll.build_model("student", ["H", "C", "O"], **TINY_STUDENT)
    check = reference_check(student, teacher, held, "wb97x/6-31g*")
    assert check.n_frames == len(held) and check.label == "wb97x/6-31g*"
    f_student, f_teacher = check.student.force_rmse_mev_per_A, check.teacher.force_rmse_mev_per_A
    assert np.isfinite(f_student) and np.isfinite(f_teacher)
    assert check.student_over_teacher == pytest.approx(f_student / f_teacher)
    # the first selection and the extra rounds' hotter frames apart, as the pipeline's report and the cards do
    assert set(check.by_part) == {"first_selection", "extra_rounds"}
    assert sum(n for n, _ in check.by_part.values()) == check.n_frames
    assert all(np.isfinite(ratio) and ratio > 0 for _, ratio in check.by_part.values())
    assert reference_check(student, teacher, held, "no-such-label") is None


def test_pipeline_distills_where_the_student_is_scored_and_run():
    from lam_lab.pipeline.config import quick
    from lam_lab.pipeline.stages import distill_inputs

    cfg = quick()
    starts, seeds = distill_inputs(cfg)
    formulas = {a.get_chemical_formula() for a in starts}
    assert "C6H10" in formulas  # the Diels–Alder TS the MD stage starts from
    test = ll.datasets.load("rxn-dft").where(split="test")
    assert test[0].to_atoms().get_chemical_formula() in formulas  # the held-out reaction's xTB geometries
    # of the teacher's training frames only the MD reaction's: the student is for where it runs and is scored
    own = ll.datasets.load("rxn-dft").where(split="train", reaction=[cfg.md.reaction])
    held = cfg.distill.heldout_frames * len({f.info["reaction"] for f in test})  # that many of each held-out reaction
    assert len(own) + held - 25 <= len(seeds) <= len(own) + held + cfg.distill.md_frames + 1
    assert {f.info.get("reaction") for f in seeds if isinstance(f, Frame)} <= {cfg.md.reaction} | {
        f.info["reaction"] for f in test}
    for f in seeds:  # no seed sits at a test frame's geometry, and none carries a label
        pos = f.positions if isinstance(f, Frame) else f.get_positions()
        assert not any(len(t) == len(pos) and np.allclose(t.positions, pos, atol=1e-3) for t in test)
    cfg.distill.seed_frames = False
    assert distill_inputs(cfg)[1] is None


def test_monitor_frames_are_set_aside_and_scored_every_round(teacher):
    seeds = rattled_ethylene(20, 2)
    res = distill(teacher, [molecule("C2H4")], rounds=1, init_frames=Dataset(seeds), out_dir=None, monitor=4,
                  **QUICK)
    # 4 of the 20 seeds never train the student; its error on them is reported after every round
    assert res.rounds[0].n_train == 16
    assert all(np.isfinite(r.monitor_f_rmse) and r.monitor_f_rmse > 0 for r in res.rounds)
    trained = {tuple(np.round(f.positions.ravel(), 6)) for f in res.train_set}
    assert sum(tuple(np.round(f.positions.ravel(), 6)) in trained for f in seeds) == 16
    assert "fixed" in res.summary()
    # too few seeds for a check that leaves enough to train on: none is set aside
    few = distill(teacher, [molecule("C2H4")], rounds=0, init_frames=Dataset(seeds[:6]), out_dir=None, monitor=4,
                  **QUICK)
    assert few.rounds[0].n_train == 6 and not np.isfinite(few.rounds[0].monitor_f_rmse)


def test_rattled_copies_of_the_trained_seeds_join_the_first_fit(teacher):
    seeds = rattled_ethylene(20, 2)
    res = distill(teacher, [molecule("C2H4")], rounds=0, init_frames=Dataset(seeds), out_dir=None, monitor=4,
                  rattle_copies=2, rattle_sigma=0.03, **QUICK)
    trained = [f for f in res.train_set if "rattled" not in f.info]
    copies = [f for f in res.train_set if "rattled" in f.info]
    assert len(trained) == 16 and len(copies) == 32 and res.rounds[0].n_train == 48
    assert "32 of them rattled copies" in res.rounds[0].message
    # each copy sits 0.03 Å (rms) from a trained seed, never near a monitor frame, and carries the teacher's label
    shift = [min(np.sqrt(np.mean((c.positions - f.positions) ** 2)) for f in trained) for c in copies]
    assert 0.01 < float(np.mean(shift)) < 0.05
    monitor = [f for f in seeds if not any(np.allclose(f.positions, t.positions) for t in trained)]
    assert len(monitor) == 4
    assert all(min(np.abs(c.positions - m.positions).max() for c in copies) > 1e-3 for m in monitor)
    e = predict(teacher, copies[:1]).energy[0]
    assert copies[0].labels[LABEL].energy == pytest.approx(float(e), abs=1e-4)
    with pytest.raises(ConfigError, match="rattle_copies"):
        distill(teacher, [molecule("C2H4")], rounds=0, out_dir=None, rattle_copies=-1, **QUICK)
