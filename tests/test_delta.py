"""Δ-learning: Δ targets, missing-baseline errors, LAMCalculator = tblite GFN2-xTB + Δ model, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lam_lab as ll
from conftest import tiny_config
from lam_lab.data.errors import DataError
from lam_lab.delta import delta_dataset, delta_label
from lam_lab.finetune import finetune, replay_sets
from lam_lab.md import LAMCalculator
from lam_lab.models import load

HIGH, BASE = "wb97x/6-31g*", "gfn2-xtb"
TINY = tiny_config()


@pytest.fixture(scope="module")
def frames():
    torch.set_num_threads(1)
    ds = ll.datasets.load("rxn-dft")
    return ds[[i for i, f in enumerate(ds) if f.info["split"] == "train"][:12]]


def test_delta_targets_are_high_minus_baseline(frames):
    d = delta_dataset(frames, HIGH, BASE)
    name = delta_label(HIGH, BASE)
    assert len(d) == len(frames) and d.label_sets == [name]
    for f, g in zip(frames, d):
        assert g.labels[name].energy == pytest.approx(f.labels[HIGH].energy - f.labels[BASE].energy, abs=1e-9)
        np.testing.assert_allclose(g.labels[name].forces, f.labels[HIGH].forces - f.labels[BASE].forces, atol=1e-12)
    assert HIGH in d.provenance.labels[name].settings["label"]


def test_missing_baseline_label_names_file_frame_field(frames):
    broken = frames[:]
    broken.frames = [f.copy() for f in frames]
    del broken.frames[3].labels[BASE]
    with pytest.raises(DataError) as err:
        delta_dataset(broken, HIGH, BASE)
    assert err.value.frame == 3 and err.value.field == f"labels[{BASE!r}]" and err.value.source
    with pytest.raises(DataError, match="baseline"):  # the same error through finetune(mode="delta")
        finetune(broken, pretrained=None, mode="delta", label=HIGH, preset=TINY, steps=1, out_dir=None, progress=False)
    broken.frames[3] = frames[3].copy()
    broken.frames[5].labels[BASE].forces = None
    with pytest.raises(DataError) as err:
        delta_dataset(broken, HIGH, BASE)
    assert err.value.frame == 5 and err.value.field == f"labels[{BASE!r}].forces"


def test_delta_calculator_is_baseline_plus_model_and_round_trips(frames, tmp_path):
    from tblite.ase import TBLite

    res = finetune(frames, pretrained=None, mode="delta", label=HIGH, baseline=BASE, preset=TINY, steps=3,
                   out_dir=tmp_path, progress=False)
    spec = res.model.metadata["extra"]["delta"]
    assert spec["baseline"] == BASE and spec["method"] == "GFN2-xTB" and spec["accuracy"] == 1.0
    frame = frames[0]
    atoms = frame.to_atoms()
    atoms.calc = LAMCalculator(res.model)
    e, f = atoms.get_potential_energy(), atoms.get_forces()
    bare = frame.to_atoms()
    bare.calc = LAMCalculator(res.model, baseline=False)
    xtb = frame.to_atoms()
    xtb.calc = TBLite(method="GFN2-xTB", accuracy=1.0, electronic_temperature=300.0, verbosity=0)
    assert e == pytest.approx(bare.get_potential_energy() + xtb.get_potential_energy(), abs=1e-8)
    np.testing.assert_allclose(f, bare.get_forces() + xtb.get_forces(), atol=1e-8)
    # the run-time baseline is the one the labels were made with
    assert xtb.get_potential_energy() == pytest.approx(frame.labels[BASE].energy, abs=1e-5)
    assert atoms.get_potential_energies().sum() == pytest.approx(e, abs=1e-6)
    # one file: the trainer's model.pt and finetuned.pt both carry the baseline
    for path in (res.path, res.train.final):
        loaded = load(path)
        assert loaded.metadata["extra"]["delta"] == spec
        again = frame.to_atoms()
        again.calc = LAMCalculator(str(path))
        assert again.get_potential_energy() == pytest.approx(e, abs=1e-6)


def test_keep_training_a_delta_model(frames):
    first = finetune(frames, pretrained=None, mode="delta", label=HIGH, baseline=BASE, preset=TINY, steps=3,
                     out_dir=None, progress=False)
    more = finetune(frames, pretrained=first.model, mode="delta", label=HIGH, baseline=BASE, branch="default", steps=2,
                    out_dir=None, progress=False)
    assert more.branch == "default" and more.heads["default"].startswith("kept")
    assert more.model.metadata["extra"]["delta"]["baseline"] == BASE
    assert more.model.metadata["extra"]["finetune"]["heads"] == more.heads
    with pytest.raises(DataError, match="mode='delta'"):
        finetune(frames, pretrained=first.model, mode="finetune", label=HIGH, steps=1, out_dir=None, progress=False)
    with pytest.raises(DataError, match="baseline='gfn2-xtb'"):
        finetune(frames, pretrained=first.model, mode="delta", label=HIGH, baseline="gfn1-xtb", steps=1, out_dir=None,
                 progress=False)


def test_keep_training_a_delta_model_with_its_data_replayed(frames):
    first = finetune(frames[:8], pretrained=None, mode="delta", label=HIGH, baseline=BASE, preset=TINY, steps=3,
                     out_dir=None, progress=False)
    # few-shot on new frames while the model's own (full-label) data is replayed as DFT − xTB on the same head
    more = finetune(frames[8:], pretrained=first.model, mode="delta", label=HIGH, baseline=BASE, branch="default",
                    replay=0.5, replay_data={"default": frames[:8]}, steps=4, out_dir=None, progress=False)
    assert more.model.heads == ["default"] and "replayed" in more.heads["default"]
    assert any("replay-default" in (h.get("train_rmse") or {}) for h in more.train.history)
    delta = delta_label(HIGH, BASE)
    replayed = replay_sets(first.model, {"default": frames[:8]})["default"]
    assert replayed[1] == delta and replayed[0].label_sets == [delta]


def test_a_delta_model_kept_training_keeps_its_head_even_where_it_is_worse_than_zero(frames):
    first = finetune(frames, pretrained=None, mode="delta", label=HIGH, baseline=BASE, preset=TINY, steps=1,
                     out_dir=None, progress=False)
    with torch.no_grad():  # a head far off on these frames: a fresh one would start closer, and forget everything
        for p in first.model.fittings.parameters():
            p.mul_(30.0)
    more = finetune(frames, pretrained=first.model, mode="delta", label=HIGH, baseline=BASE, steps=1, out_dir=None,
                    progress=False)
    assert more.branch == "default" and more.heads["default"].startswith("kept")
    assert "zero-shot F RMSE" in more.heads["default"]


def test_delta_from_a_multi_head_model_says_what_became_of_the_heads(frames):
    pre = ll.build_model(TINY, ["H", "C", "N", "O"], heads=["rxn-xtb", "water-ff"])
    with torch.no_grad():  # heads far from the Δ labels, as total-energy heads are
        for p in pre.fittings.parameters():
            p.mul_(30.0)
    with pytest.warns(UserWarning, match="were dropped and the downstream head 'default' starts fresh"):
        res = finetune(frames, pretrained=pre, mode="delta", label=HIGH, baseline=BASE, steps=1, out_dir=None,
                       progress=False)
    assert set(res.heads) == {"rxn-xtb", "water-ff"} and all(v.startswith("dropped") for v in res.heads.values())
    assert "zero-shot F RMSE" in res.heads["rxn-xtb"]
    kept = finetune(frames, pretrained=pre, mode="delta", label=HIGH, baseline=BASE, branch="water-ff", steps=1,
                    out_dir=None, progress=False)
    assert kept.heads["water-ff"].startswith("kept") and kept.heads["rxn-xtb"] == "dropped"
    # a head kept for its replayed data is not called dropped (Δ on a descriptor that keeps learning xTB)
    with pytest.warns(UserWarning, match=r"\['water-ff'\] were dropped \(\['rxn-xtb'\] kept for their replayed data\)"):
        replayed = finetune(frames, pretrained=pre, mode="delta", label=HIGH, baseline=BASE, steps=1, out_dir=None,
                            progress=False, replay=0.5, replay_data={"rxn-xtb": frames})
    assert replayed.heads["rxn-xtb"] == "kept: replayed against forgetting"


def test_continuation_defaults_fill_only_what_the_caller_left_unset():
    from lam_lab.continuation import continuation_defaults, own_data, shipped_name

    full = continuation_defaults({}, replay_known=True)
    assert full == {"train.lr": 1e-3, "train.steps": 200, "train.batch_size": 4, "replay.weight": 2.0,
                    "replay.frames": 1000, "train.loss.pf_e_start": 10.0, "train.loss.pf_e_limit": 1000.0}
    assert continuation_defaults({}, replay_known=False)["replay.weight"] == 0.0  # nothing known to replay
    assert "replay.frames" not in continuation_defaults({}, replay_known=False)
    assert set(continuation_defaults({"steps": 50, "replay": 0}, True)) == set(full) - {"train.steps", "replay.weight",
                                                                                      "replay.frames"}
    assert set(continuation_defaults({"minutes": 1.0}, True)) == set(full) - {"train.steps"}
    taken_whole = continuation_defaults({"config": object()}, True)  # a TrainConfig is taken whole
    assert taken_whole == {"replay.weight": 2.0, "replay.frames": 1000}
    twin = ll.pretrained.load("lam-chon-delta-heldout")
    assert shipped_name(twin, "model object") == "lam-chon-delta-heldout"
    assert shipped_name(twin, "lam-chon-delta-heldout") == "lam-chon-delta-heldout"
    assert own_data("lam-chon-small") is None and own_data(None) is None  # not a Δ model: no Δ data to replay
    assert {f.info["split"] for f in own_data("lam-chon-delta-heldout")["default"]} == {"train"}
    assert {f.info["split"] for f in own_data("lam-chon-delta")["default"]} == {"train", "test"}


def test_few_shot_on_a_shipped_delta_model_takes_the_measured_recipe(frames):
    """``ll.finetune(frames, pretrained=<shipped Δ model>, mode="delta")``: lr 1e-3, energies ×10 and the model's own
    data replayed with weight 2 unless the caller says otherwise; the model records what it used."""
    res = finetune(frames[:4], pretrained="lam-chon-delta-heldout", mode="delta", label=HIGH, baseline=BASE, steps=2,
                   out_dir=None, progress=False)
    info = res.model.metadata["extra"]["finetune"]
    assert info["replay"] == 2.0 and "replayed" in res.heads["default"]
    assert "lr=0.001" in info["defaults"] and "pf_e_limit=1000" in info["defaults"]
    assert "steps" not in info["defaults"] and "lam-chon-delta-heldout's own training data" in info["defaults"]
    assert res.train.steps == 2
    own = finetune(frames[:4], ll.TrainConfig(lr=3e-4, steps=1), pretrained="lam-chon-delta-heldout", mode="delta",
                   label=HIGH, baseline=BASE, out_dir=None, progress=False)
    info = own.model.metadata["extra"]["finetune"]
    assert info["replay"] == 2.0 and info["defaults"].startswith("Δ continuation defaults: weight=2, frames=1000")
    assert "lr=" not in info["defaults"]  # a TrainConfig is taken whole: only the replay default is added
    mine = finetune(frames[:4], ll.TrainConfig(steps=1), pretrained="lam-chon-delta-heldout", mode="delta",
                    label=HIGH, baseline=BASE, replay=0, out_dir=None, progress=False)
    assert mine.model.metadata["extra"]["finetune"]["replay"] == 0.0 and "defaults" not in \
        mine.model.metadata["extra"]["finetune"]


def test_cli_continues_a_shipped_delta_model_with_the_same_recipe(tmp_path, capsys):
    from lam_lab.cli import main

    rc = main(["finetune", "rxn-dft", "--pretrained", "lam-chon-delta-heldout", "--mode", "delta", "--label", HIGH,
               "--info-split", "--frames", "4", "--steps", "2", "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "Δ continuation defaults: lr=0.001" in out and "steps=" not in out.split("\n")[0]
    info = ll.load(tmp_path / "finetuned.pt").metadata["extra"]["finetune"]
    assert info["replay"] == 2.0 and "delta: 2 steps" in out
