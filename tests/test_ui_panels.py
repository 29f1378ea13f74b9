"""Train, Fine-tune·Δ, Distill and MD panels driven from Python (as a user's clicks would), on tiny models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule

import lam_lab as ll
from conftest import TINY_DPA2
from lam_lab.data import Dataset, Frame
from lam_lab.train.checkpoint import CheckpointManager, load_checkpoint
from lam_lab.ui._figures import shown_titles
from lam_lab.ui._sources import EMT
from lam_lab.ui.lab import Lab
from lam_lab.ui.md_panel import MDPanel, md_summary
from lam_lab.ui.train_panel import TrainPanel, validation_fraction

TINY = TINY_DPA2


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _train_panel(tmp_path, steps: int = 12) -> TrainPanel:
    panel = TrainPanel(model="dpa2-tiny", steps=steps, frames=8, out_root=tmp_path / "runs")
    panel.set_task("metals-emt", enabled=False)  # one small molecular task keeps it a few seconds
    return panel


def test_train_panel_runs_once_draws_curves_and_reports_metrics(tmp_path):
    panel = _train_panel(tmp_path)
    got = []
    panel.on_model.append(lambda model, label: got.append(label))
    assert panel.start() is True
    assert panel.start() is False  # Start clicked twice: still one job
    panel.job.start_button.click()
    res = panel.wait(120)
    assert panel.job.state == "done", panel.job.error
    assert [e.kind for e in panel.events].count("start") == 1
    assert res.steps == 12 and res.final.is_file()
    steps, loss = panel.curves.series("loss · train")
    assert len(steps) >= 3 and all(v > 0 for v in loss)
    assert len(panel.curves.series("rxn-xtb · F validation")[0]) >= 1
    fig = panel.curves.figure
    assert fig.layout.yaxis.type == "log" and fig.layout.xaxis3.type == "log"
    assert len(fig.data[0].x) == len(steps)  # flushed to the widget
    assert "WARMSE" not in panel.metrics.value and "rxn-xtb" in panel.metrics.value and "F RMSE" in panel.metrics.value
    assert "device: cpu" in panel.device.value and panel.job.progress.value == 1.0
    assert got and "12 steps" in got[0] and panel.model is res.model
    # 8 frames: 3 validate (not 1 at the default fraction), 5 train, and the panel says so
    assert len(panel.prepared.validation["rxn-xtb"]) == 3 and len(panel.prepared.datasets["rxn-xtb"]) == 5
    assert "validating on 3" in panel.message.value


def test_validation_keeps_at_least_three_frames_or_says_it_cannot():
    assert validation_fraction(8, 0.2) == pytest.approx(3.5 / 8) and validation_fraction(200, 0.2) == 0.2
    assert validation_fraction(5, 0.2) is None and validation_fraction(None, 0.2) == 0.2
    assert validation_fraction(100, 0.0) is None and validation_fraction(6, 0.2) == 0.5


def test_stop_during_a_checkpoint_write_loses_nothing_and_resume_continues(tmp_path, monkeypatch):
    panel = _train_panel(tmp_path, steps=30)
    real_save = CheckpointManager.save
    calls = []

    def save_while_stop_is_pressed(self, state, step):
        calls.append(step)
        if len(calls) == 1:
            panel.stop()  # the user presses Stop while the first checkpoint is being written
        return real_save(self, state, step)

    monkeypatch.setattr(CheckpointManager, "save", save_while_stop_is_pressed)
    assert panel.start()
    res = panel.wait(120)
    assert panel.job.state == "stopped" and res is not None and res.stopped and res.steps < 30
    state = load_checkpoint(res.checkpoint)  # the checkpoint written during the stop is whole
    assert int(state["step"]) == res.steps
    assert not panel.resume_button.disabled
    stopped_at, n_points = res.steps, panel.curves.points
    assert panel.resume() is True
    res2 = panel.wait(120)
    assert panel.job.state == "done" and res2.steps == 30 and not res2.stopped
    starts = [e for e in panel.events if e.kind == "start"]
    assert len(starts) == 2 and starts[1].step == stopped_at and f"resumed at step {stopped_at}" in starts[1].message
    assert panel.curves.points > n_points  # the same curves continue
    steps = [e.step for e in panel.events if e.kind == "step"]
    assert steps == sorted(steps) and steps[-1] == 30


def test_train_panel_bad_inputs_show_messages_not_tracebacks(tmp_path):
    panel = _train_panel(tmp_path)
    panel.set_task("rxn-xtb", enabled=False)
    assert panel.start() is False and "at least one task" in panel.error and "Problem" in panel.message.value
    bad = tmp_path / "bad.extxyz"
    bad.write_text("3\nProperties=species:S:1:pos:R:3\nH 0 0 0\nH 1 0 0\n")
    panel.set_task("mine", source=str(bad))
    assert panel.start() is True  # data load in the background
    assert panel.wait(60) is None and panel.job.state == "failed"
    assert str(bad) in panel.error and "frame 0" in panel.error and "Problem" in panel.message.value
    panel.set_task("mine", source=str(tmp_path / "missing.xyz"))
    panel.start()
    panel.wait(60)
    assert "neither a built-in data set nor an existing file" in panel.error and "data.mine.source" in panel.error


def test_md_panel_runs_emt_live_plot_player_stop_and_bad_system(tmp_path):
    panel = MDPanel(system="Cu13")
    panel.model.select(EMT)
    panel.ensemble.value, panel.steps.value, panel.interval.value = "nve", 80, 4
    assert panel.run() is True and panel.run() is False
    res = panel.wait(60)
    assert res.completed and panel.job.state == "done"
    assert "total-energy drift" in panel.message.value and "meV/atom/ps" in panel.message.value  # NVE: drift shown
    assert "drift" not in md_summary(_langevin(res)) and "mean temperature" in md_summary(_langevin(res))
    assert panel.player is not None and panel.player.n_frames == len(res.frames) == 21
    assert len(panel.live.data[2].x) == 21 and panel.series["temperature"][0] > 0
    panel.steps.value = 1_000_000
    assert panel.run()
    import time

    time.sleep(1.0)
    panel.stop()
    res = panel.wait(60)
    assert res.status == "stopped" and panel.job.state == "stopped" and panel.player.n_frames == len(res.frames) > 1
    panel.system.value = "definitely not a molecule (("
    assert panel.run() is False and "SMILES" in panel.error
    panel.system.value = str(tmp_path / "missing.xyz")
    assert panel.run() is False  # a missing file falls through to the SMILES check: still a message


@pytest.fixture(scope="module")
def tiny_pretrained():
    """A tiny H/C/N/O model with a rxn-xtb head, 10 steps on 10 rxn-xtb frames (wiring, not accuracy)."""
    torch.set_num_threads(1)
    ds = ll.datasets.load("rxn-xtb")[list(range(0, 400, 40))]
    model = ll.build_model("dpa2-small", ["H", "C", "N", "O"], heads=["rxn-xtb"], **TINY)
    return ll.train(model, {"rxn-xtb": ds}, steps=10, out_dir=None, progress=False).model


def test_finetune_panel_delta_run_parity_and_comparison(tiny_pretrained, tmp_path):
    from lam_lab.ui.finetune_panel import FinetunePanel

    panel = FinetunePanel(pretrained=tiny_pretrained, frames=8, steps=10, out_root=tmp_path)
    # axes with titles and units before Start (placeholders), real figures after
    assert shown_titles(panel.e_out) == ["energy per atom (test split)"] and len(shown_titles(panel.lc_out)) == 1
    assert panel.downstream.value == "rxn-dft" and "rxn-xtb" in panel.pretrained.head.options
    panel.mode.value = "Δ on GFN2-xTB"
    assert panel.start() is True and panel.start() is False
    res = panel.wait(180)
    assert panel.job.state == "done", panel.job.error
    assert res.mode == "delta" and res.model.metadata["extra"]["delta"]["baseline"] == "gfn2-xtb"
    assert len(panel.curves.series("loss · train")[0]) >= 1
    assert {"parity_e", "parity_f", "comparison"} <= set(panel.figures)
    assert "RMSE" in panel.figures["parity_f"].layout.title.text
    assert "RMSE" in shown_titles(panel.e_out)[0] and "RMSE" in shown_titles(panel.f_out)[0]
    assert shown_titles(panel.lc_out)[0].startswith("Learning curves")
    row = panel.rows[-1]
    assert row.method == "delta-finetune" and row.n == 8 and np.isfinite(row.f_rmse)
    assert "test split" in panel.metrics.value
    # GFN2-xTB alone on the same test frames: a table row, a second parity trace, a dashed learning-curve line
    assert "GFN2-xTB alone" in panel.metrics.value and "delta model" in panel.metrics.value
    base = panel.baseline
    assert base.scores.n_frames == panel.scores.n_frames == len(panel._settings()["validation"])
    assert f"{base.scores.force_rmse_mev_per_A:.1f}" in panel.metrics.value
    names = [tr.name for tr in panel.figures["parity_f"].data]
    assert "GFN2-xTB alone" in names and "model" in names
    xtb = next(tr for tr in panel.figures["parity_f"].data if tr.name == "GFN2-xTB alone")
    assert xtb.marker.color != panel.figures["parity_f"].data[0].marker.color and len(xtb.x) == len(xtb.y) > 0
    assert any("GFN2-xTB alone: RMSE" in a.text for a in panel.figures["parity_f"].layout.annotations)
    assert any(tr.get("name") == "GFN2-xTB alone" for tr in panel.f_out.outputs[0]["data"]["application/vnd.plotly.v1+json"]["data"])
    lines = [sh for sh in panel.figures["comparison"].layout.shapes if sh.line.dash == "dash"]
    assert len(lines) == 3 and lines[1].y0 == pytest.approx(base.scores.force_rmse_mev_per_A)
    # log y axes: plotly puts an annotation at log10(y); the label at y itself stretched the axis to ~1e45
    tags = [a for a in panel.figures["comparison"].layout.annotations if a.text.startswith("GFN2-xTB alone")]
    assert tags[1].y == pytest.approx(np.log10(base.scores.force_rmse_mev_per_A))
    panel.path.value = str(tmp_path / "nope.extxyz")
    assert panel.start() is False and "nope.extxyz" in panel.error


def test_distill_panel_rounds_chart_and_speedup(tmp_path):
    from lam_lab.ui.distill_panel import DistillPanel, round_status

    rng = np.random.default_rng(0)
    frames = []
    from ase.calculators.emt import EMT as AseEMT
    from ase.calculators.singlepoint import SinglePointCalculator

    for _ in range(6):
        m = molecule("C2H4")
        m.positions += rng.normal(scale=0.05, size=m.positions.shape)
        m.calc = AseEMT()
        m.calc = SinglePointCalculator(m, energy=m.get_potential_energy(), forces=m.get_forces())
        frames.append(Frame.from_atoms(m, label="emt"))
    teacher = ll.build_model("dpa2-small", ["H", "C"], **TINY)
    teacher = ll.train(teacher, Dataset(frames, name="ethylene"), steps=10, out_dir=None, progress=False).model
    panel = DistillPanel(teacher=teacher, systems="C=C", rounds=1, out_root=tmp_path)
    panel.student.value, panel.md_steps.value, panel.train_steps.value, panel.init_steps.value = "student-tiny", 20, 8, 8
    panel.trust_lo.value, panel.trust_hi.value = 0.3, 0.1
    assert panel.start() is False and "trust" in panel.error
    panel.trust_lo.value, panel.trust_hi.value = 1e-5, 50.0
    assert panel.start() is True and panel.start() is False
    res = panel.wait(180)
    assert panel.job.state == "done", panel.job.error
    assert [e.round for e in panel.rounds] == [0, 1] and res.student.config.kind == "student"
    assert list(panel.chart.data[0].x) == [0, 1] and len(panel.chart.data[4].y) == 2
    assert panel.summary["speedup"] > 0 and "faster" in panel.result_html.value
    assert panel.message.value.count("Done") == 1 and "force error vs the teacher" in panel.message.value
    words = round_status(panel.rounds[1], 1)
    assert words.startswith("round 1 of 1: checked") and "already good" in words and "too far off" in words
    assert panel.check is None  # a SMILES: no DFT frames to check against


def test_distill_panel_checks_student_teacher_and_xtb_against_dft_on_a_reaction(tmp_path):
    """For a built-in reaction the result names the student's force error vs ωB97X on the reaction's unseen frames,
    beside the teacher's and GFN2-xTB alone's on the same frames."""
    from lam_lab.ui.distill_panel import DistillPanel

    teacher = ll.build_model("dpa2-small", ["H", "C", "O"], **TINY)
    panel = DistillPanel(teacher=teacher, systems="diels-alder", rounds=1, out_root=tmp_path)
    panel.student.value, panel.md_steps.value, panel.train_steps.value, panel.init_steps.value = "student-tiny", 10, 5, 5
    assert panel.start() is True
    panel.wait(300)
    assert panel.job.state == "done", panel.job.error
    check = panel.check
    unseen = ll.datasets.load("rxn-dft").where(reaction="diels-alder")
    assert check.n_frames == sum(f.info["split"] != "train" for f in unseen)
    text = panel.result_html.value
    assert "student / teacher force RMSE" in text and "GFN2-xTB alone" in text and "wb97x/6-31g*" in text
    assert f"{check.student_over_teacher:.2f}×" in text
    assert ">E RMSE<" not in text and ">E RMSE*<" in text  # a teacher's head may have another energy zero


def test_lab_has_five_working_tabs_and_hands_models_between_them(mixed_ds, tiny_pretrained):
    lab = Lab(dataset=mixed_ds, builtins=[])
    assert lab.tabs.titles == ("Data", "Train", "Fine-tune · Δ", "Distill", "MD")
    assert lab.tabs.children[1] is lab.train and lab.tabs.children[4] is lab.md and lab.playback is lab.md.playback
    assert lab.data.dataset is mixed_ds
    before = {name: picker.choice.value for name, picker in _pickers(lab).items()}
    lab.offer_model(tiny_pretrained, "delta (1)", "Train")
    for name, picker in _pickers(lab).items():  # offered everywhere, selected nowhere
        assert "delta (1)" in picker.choice.options and picker.choice.value == before[name], name
        assert picker.notice.layout.display != "none"
        assert "New:" in picker.notice_text.value and "delta (1)" in picker.notice_text.value
        assert "from Train" in picker.notice_text.value and "uses <b>" in picker.origin.value
    md = lab.md.model
    md.dismiss_button.click()
    assert md.notice.layout.display == "none" and md.choice.value == before["md"]
    if hasattr(lab.distill, "teacher"):
        teacher = lab.distill.teacher
        teacher.use_button.click()  # "use it"
        assert teacher.choice.value == "delta (1)" and teacher.notice.layout.display == "none"
        assert "made in Train" in teacher.origin.value and teacher.head.value == "rxn-xtb"
        lab.offer_model(tiny_pretrained, "student (1 round)", "Distill")  # not offered back to the tab that made it
        assert "student (1 round)" not in teacher.choice.options and "student (1 round)" in md.choice.options
    lab.select("Train")
    assert lab.tabs.selected_index == 1


def _pickers(lab):
    """The model pickers of the Lab's tabs (those whose engine imports here)."""
    out = {"md": lab.md.model}
    if hasattr(lab.finetune, "pretrained"):
        out["finetune"] = lab.finetune.pretrained
    if hasattr(lab.distill, "teacher"):
        out["distill"] = lab.distill.teacher
    return out


def _langevin(res):
    """The same MD result, read as a Langevin run (drift means nothing under a thermostat)."""
    import dataclasses

    fake = dataclasses.replace(res.config, ensemble="langevin")
    return type("R", (), {**{k: getattr(res, k) for k in ("steps_done", "steps", "temperature", "wall_time", "completed",
                                                          "status", "reason")}, "config": fake, "drift": res.drift})()


def test_baseline_alone_only_against_a_dft_label_with_xtb_labels_on_every_frame():
    from lam_lab.ui._baseline import baseline_alone, is_dft_label

    dft = ll.datasets.load("rxn-dft")[:6]
    base = baseline_alone(dft, "wb97x/6-31g*")
    assert base is not None and base.scores.n_frames == 6 and base.curve_row().method == "GFN2-xTB alone"
    assert np.isfinite(base.scores.force_rmse_mev_per_A) and len(base.parity["f_ref"]) == len(base.parity["f_pred"])
    # offsets removed: xTB energies per atom sit next to DFT's (their raw values differ by ~ 100 eV/atom)
    assert np.abs(base.parity["e_pred"] - base.parity["e_ref"]).max() < 1.0
    assert baseline_alone(dft, "gfn2-xtb") is None and not is_dft_label("gfn2-xtb") and is_dft_label("wb97x/6-31g*")
    assert baseline_alone(ll.datasets.load("rxn-xtb")[:4], "wb97x/6-31g*") is None  # no xTB+DFT pair on those frames


# -- MD: the default run starts at a verified TS and reacts -----------------------------------------------------
def test_md_panel_defaults_to_diels_alder_from_its_xtb_ts_and_the_run_reacts():
    from lam_lab.md.reactive import verified_reactions
    from lam_lab.ui._sources import XTB

    if "diels-alder" not in verified_reactions("xtb"):
        pytest.skip("no verified GFN2-xTB saddle for diels-alder in this install")
    panel = MDPanel()
    assert panel.model.choice.value == XTB and panel.system.value == "diels-alder"
    assert panel.start_at.value == "transition state" and not panel.start_at.disabled
    assert panel.ensemble.value == "langevin" and panel.temperature.value == 500.0
    panel.steps.value = 150  # the default 300 steps end on the product too; it is there after ~45 fs
    panel.job.start_button.click()
    res = panel.wait(240)
    assert panel.job.state == "done", panel.job.error
    assert res.completed and panel.ts is not None and panel.ts.method == "verified saddle, gfn2-xtb"
    assert panel.outcome.side == "product" and 0 < panel.outcome.time_fs < 75
    assert panel.job.status.value.startswith("done: reached the product after")
    assert "it reacted" in panel.message.value and "C0–C5 and C3–C4 formed" in panel.message.value  # as the player names them
    assert "started from the transition state of diels-alder" in panel.message.value
    assert panel.player is not None and len(panel.player.events) >= 2


def test_reaction_outcome_in_words_for_each_end():
    from lam_lab.md.reactive import builtin_ts
    from lam_lab.ui.md_panel import reaction_outcome

    ts = builtin_ts("diels-alder")
    times = [0.0, 10.0, 20.0]
    to_p = reaction_outcome([ts.ts, ts.product, ts.product], times, ts)
    assert to_p.side == "product" and to_p.time_fs == 10.0 and "C0–C5 and C3–C4 formed — it reacted" in to_p.sentence
    back = reaction_outcome([ts.ts, ts.reactant, ts.reactant], times, ts)
    assert back.side == "reactant" and "rolled back to the reactant after 10 fs: C0–C5 and C3–C4 came apart" in back.sentence
    stuck = reaction_outcome([ts.ts, ts.ts], times[:2], ts)
    assert stuck.side is None and "between reactant and product" in stuck.sentence
    stayed = reaction_outcome([ts.reactant, ts.reactant], times[:2], ts, start="reactant")
    assert stayed.side == "reactant" and stayed.sentence.startswith("No reaction")


def test_status_lines_are_plain_words():
    from types import SimpleNamespace

    from lam_lab.ui._live import step_words

    event = SimpleNamespace(kind="step", step=40, total_steps=300, steps_per_s=3.14, eta_s=84.0)
    assert step_words(event) == "training: step 40 of 300, 3.1 steps a second, about 1 min 24 s left"
    assert step_words(SimpleNamespace(kind="step", step=1, total_steps=None, steps_per_s=None, eta_s=None)) == \
        "training: step 1"


def test_distill_check_words_say_when_the_student_gives_up_accuracy():
    """Within 1.3× the check only states the ratio; above it, how much accuracy the student lost and what it still
    gains over GFN2-xTB alone; a model no better than xTB alone is named."""
    from lam_lab.ui.distill_panel import check_words

    kept = check_words(66.0, 55.0, 257.0)
    assert len(kept) == 1 and "1.20×" in kept[0]
    lost = check_words(97.0, 55.0, 257.0)
    assert "1.76×" in lost[0] and "42 meV/Å less accurate than its teacher" in lost[1] and "2.6×" in lost[1]
    poor = check_words(190.0, 182.0, 180.0)
    assert "the teacher (182 meV/Å) and the student (190 meV/Å) are no better than" in poor[-1]
