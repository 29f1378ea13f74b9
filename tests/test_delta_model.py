"""The shipped-Δ-model path: train on a split set, card with the baseline row, install, load, calculator adds xTB back."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import lam_lab as ll
from conftest import tiny_config
from lam_lab.pretrained import delta_model as dm
from lam_lab.pretrained.delta_card import delta_card_markdown

TINY = tiny_config()


@pytest.fixture(scope="module")
def small_rxn(tmp_path_factory):
    torch.set_num_threads(1)
    ds = ll.datasets.load("rxn-dft")
    keep = ds.where(split="train").subset(12, 0).frames + ds.where(split="val").subset(4, 0).frames + list(
        ds.where(split="test"))[:6]
    path = tmp_path_factory.mktemp("d") / "small.lamh5"
    ll.data.write(ll.data.Dataset(keep, "small-rxn"), path)
    return path


def test_delta_model_card_install_load_and_calculator(small_rxn, tmp_path, monkeypatch):
    from lam_lab.delta import delta_spec
    from lam_lab.md.calculator import LAMCalculator

    recipe = dm.DeltaRecipe(name="tiny-delta", data=str(small_rxn), pretrained=None, preset=TINY, minutes=None,
                            steps=2, train={"batch_atoms": 32})
    monkeypatch.setattr(ll.pretrained, "FILES", tmp_path)
    res = dm.train_delta_model(recipe, out_dir=None, install=True, progress=False)
    card = res.card
    # every held-out reaction stands next to GFN2-xTB alone on the same frames
    assert card["held_out"] and all(h["baseline_force_rmse_mev_per_A"] > 0 for h in card["held_out"])
    assert card["in_distribution"]["frames"] == 4 and card["data"]["train"] == 12
    md = ll.pretrained.card("tiny-delta")
    assert "next to gfn2-xtb alone" in md and "F RMSE xTB" in md and "Known limits" in md
    assert "tiny-delta" in ll.pretrained.available()
    model = ll.pretrained.load("tiny-delta")
    assert delta_spec(model)["baseline"] == "gfn2-xtb"
    frame = ll.data.read(small_rxn)[0]
    atoms = frame.to_ase() if hasattr(frame, "to_ase") else None
    if atoms is None:
        from ase import Atoms

        atoms = Atoms(frame.numbers, frame.positions)
    atoms.info["charge"] = 0
    atoms.calc = LAMCalculator(model)
    from lam_lab.sampling.neb import xtb_calculator

    ref = atoms.copy()
    ref.calc = xtb_calculator(ref)
    # the calculator's energy is the Δ model's plus GFN2-xTB's
    bare = ll.evaluation.predict(model, [frame], baseline=None).energy[0]
    assert atoms.get_potential_energy() == pytest.approx(bare + ref.get_potential_energy(), abs=1e-3)
    assert np.isfinite(atoms.get_forces()).all()


def test_a_delta_committee_is_scored_like_one_model_shipped_and_loaded(small_rxn, tmp_path, monkeypatch):
    from lam_lab.committee import Committee
    from lam_lab.delta import delta_spec
    from lam_lab.pretrained.delta_committee import make_committee

    runs = []
    for seed in (0, 1):
        recipe = dm.DeltaRecipe(name="tiny-delta", data=str(small_rxn), pretrained=None, preset=TINY, minutes=None,
                                steps=2, seed=seed, train={"batch_atoms": 32})
        runs.append(dm.train_delta_model(recipe, out_dir=tmp_path / f"s{seed}", progress=False))
    monkeypatch.setattr(ll.pretrained, "FILES", tmp_path / "files")
    members = [str(tmp_path / f"s{seed}" / "finetuned.pt") for seed in (0, 1)]
    com, card = make_committee("tiny-committee", members, install=True)
    # the committee's rows stand next to GFN2-xTB alone on the same frames, like a single model's
    assert [h["reaction"] for h in card["held_out"]] == [h["reaction"] for h in runs[0].card["held_out"]]
    assert all(h["baseline_force_rmse_mev_per_A"] > 0 for h in card["held_out"])
    assert card["in_distribution"]["frames"] == 4 and [m["seed"] for m in card["members"]] == [0, 1]
    shipped = ll.pretrained.load("tiny-committee")
    assert isinstance(shipped, Committee) and delta_spec(shipped)["baseline"] == "gfn2-xtb"
    assert "committee member 1" in ll.pretrained.card("tiny-committee")
    ll.save(runs[1].model, tmp_path / "bare.pt")  # no run card beside it: where did it come from?
    with pytest.raises(ValueError, match="no Δ card"):
        make_committee("x", [members[0], str(tmp_path / "bare.pt")])


@pytest.mark.skipif(dm.NAME not in ll.pretrained.available(), reason="shipped Δ model not built")
def test_shipped_delta_models_are_listed_described_and_beat_nothing_silently():
    from lam_lab.datasets.rxn_dft import TEST_REACTIONS
    from lam_lab.delta import delta_spec

    for name in (dm.NAME, dm.HELDOUT):
        model = ll.pretrained.load(name)
        spec = delta_spec(model)
        assert spec["baseline"] == "gfn2-xtb" and spec["label"] == dm.HIGH
        assert set(model.type_map) >= {"H", "C", "N", "O"}
    twin, used = (ll.pretrained.card(n, as_dict=True) for n in (dm.HELDOUT, dm.NAME))
    # the twin names the reactions it never saw and shows GFN2-xTB alone beside every one of them
    assert set(twin["data"]["held_out_reactions"]) == set(TEST_REACTIONS)
    assert {h["reaction"] for h in twin["held_out"]} == set(TEST_REACTIONS)
    assert all(h["baseline_force_rmse_mev_per_A"] > 0 for h in twin["held_out"])
    # each card says what the build of its data made (counts, splits, rounds), from the reaction list on
    assert all(c["data"]["provenance_notes"].startswith("Reactions:") for c in (twin, used))
    # a set with extra rounds: the val frames of its first selection are scored apart, comparable with older models
    first = twin["in_distribution_first_selection"]
    assert 0 < first["frames"] < twin["in_distribution"]["frames"] and first["baseline_force_rmse_mev_per_A"] > 0
    assert "first selection" in ll.pretrained.card(dm.HELDOUT)
    # a shipped committee's limits name its own held-out twin, not its members'
    for committee in (f"{dm.HELDOUT}-x3", f"{dm.NAME}-x3"):
        if committee in ll.pretrained.available():
            assert f"{dm.HELDOUT}-x3 never saw" in " ".join(ll.pretrained.card(committee, as_dict=True)["limits"])
    # the model to use trained on every reaction: it claims no held-out reaction of its own, shows its twin's rows
    # (named) and its in-sample rows apart
    assert used["data"]["held_out_reactions"] == [] and used["held_out_model"] == dm.HELDOUT
    assert used["held_out"] == twin["held_out"]
    assert {h["reaction"] for h in used["test_reactions_trained"]} == set(TEST_REACTIONS)
    assert f"its twin {dm.HELDOUT}" in ll.pretrained.card(dm.NAME)


def test_a_second_stage_card_carries_the_first_stage_and_both_commands(small_rxn, tmp_path):
    def stage(out: str, pretrained: str | None, command: str) -> dict:
        recipe = dm.DeltaRecipe(data=str(small_rxn), pretrained=pretrained, preset=TINY, minutes=None, steps=2,
                                train={"batch_atoms": 32, "lr": 1e-3 if pretrained else 2e-3}, command=command)
        return dm.train_delta_model(recipe, out_dir=tmp_path / out, progress=False).card

    first = stage("one", None, "first command")
    assert (tmp_path / "one" / dm.RUN_CARD).is_file()
    card = stage("two", str(tmp_path / "one" / "finetuned.pt"), "second command")
    stages = card["training"]["stages"]
    assert [s["start"] for s in stages] == ["scratch", f"{tmp_path / 'one' / 'finetuned.pt'} (after stage 1)"]
    assert [s["lr"] for s in stages] == [2e-3, 1e-3] and card["training"]["steps"] == 4
    assert first["training"]["stages"] == stages[:1]
    assert card["reproduce"] == "first command; second command"
    assert "stage 2: from" in delta_card_markdown(card)


def test_any_finished_run_ships_under_a_name_with_its_twins_held_out_rows(small_rxn, tmp_path, monkeypatch):
    monkeypatch.setattr(ll.pretrained, "FILES", tmp_path / "files")
    (tmp_path / "files").mkdir()

    def stage(out: str, **kw) -> None:
        recipe = dm.DeltaRecipe(data=str(small_rxn), preset=TINY, minutes=None, steps=2, train={"batch_atoms": 32}, **kw)
        dm.train_delta_model(recipe, out_dir=tmp_path / out, progress=False)

    stage("s1", pretrained=None, seed=1)
    dm.main(["--install-run", str(tmp_path / "s1"), "--name", "tiny-heldout"])  # seed 1, trained without --install
    card = ll.pretrained.card("tiny-heldout", as_dict=True)
    assert card["name"] == card["held_out_model"] == "tiny-heldout" and card["training"]["seed"] == 1
    shipped, run = ll.pretrained.load("tiny-heldout"), ll.load(tmp_path / "s1" / "finetuned.pt")
    frames = ll.data.read(small_rxn)[:2]
    assert np.allclose(ll.evaluation.predict(shipped, frames, baseline=None).energy,
                       ll.evaluation.predict(run, frames, baseline=None).energy)
    stage("s1-all", pretrained=str(tmp_path / "s1" / "finetuned.pt"), splits=("train", "test"), seed=2,
          heldout_from="tiny-heldout")
    dm.install_run(tmp_path / "s1-all", "tiny-all", heldout_from="tiny-heldout")
    every = ll.pretrained.card("tiny-all", as_dict=True)
    assert every["held_out"] == card["held_out"] and every["held_out_model"] == "tiny-heldout"
    assert every["force_rmse_over_baseline"] == pytest.approx(card["force_rmse_over_baseline"])
    assert every["test_reactions_trained"] and "tiny-heldout" in ll.pretrained.card("tiny-all")
    assert card["reproduce"].endswith(f"--install-run {tmp_path / 's1'} --name tiny-heldout")


def test_a_shipped_cards_reproduce_chain_trains_again_without_installing_on_the_way():
    chain = ("python -m lam_lab.pretrained.delta_model --steps 5 --seed 0 --install --name lam-chon-delta-heldout "
             "--out a; python -m lam_lab.pretrained.delta_model --pretrained a/finetuned.pt --install --out b")
    assert dm.training_commands(chain) == ("python -m lam_lab.pretrained.delta_model --steps 5 --seed 0 --out a; "
                                           "python -m lam_lab.pretrained.delta_model --pretrained a/finetuned.pt "
                                           "--out b")
    assert dm.training_commands(None) == ""


def test_the_recipe_can_replay_xtb_data_on_a_pretrained_head_and_says_so(small_rxn, tmp_path):
    from lam_lab.config import ConfigError

    pre = ll.build_model(TINY, ["H", "C", "N", "O"], heads=["xtb"])
    ll.save(pre, tmp_path / "pre.pt")
    xtb = ll.data.Dataset([f.copy() for f in ll.data.read(small_rxn)], "xtb")
    for f in xtb:
        f.labels = {"gfn2-xtb": f.labels["gfn2-xtb"]}
    ll.data.write(xtb, tmp_path / "xtb.lamh5")  # its stem names the pre-trained head that replays it
    recipe = dm.DeltaRecipe(data=str(small_rxn), pretrained=str(tmp_path / "pre.pt"), minutes=None, steps=2,
                            train={"batch_atoms": 32}, replay=0.5, replay_data=str(tmp_path / "xtb.lamh5"),
                            replay_frames=5)
    card = dm.train_delta_model(recipe, out_dir=None, progress=False).card
    assert card["training"]["heads"]["xtb"].startswith("kept") and "replayed" in card["training"]["heads"]["xtb"]
    assert "train split replayed on its head (weight 0.5, 5 frames)" in card["training"]["stages"][-1]["data"]
    with pytest.raises(ConfigError, match="scratch"):  # from scratch nothing could replay: an error, not a no-op
        ll.finetune(xtb, pretrained=None, mode="delta", label=dm.HIGH, replay=0.5, steps=1, out_dir=None)


def test_the_recipe_trains_on_a_seeded_subset_for_data_learning_curves(small_rxn):
    recipe = dm.DeltaRecipe(data=str(small_rxn), pretrained=None, preset=TINY, minutes=None, steps=1,
                            train={"batch_atoms": 32}, train_frames=5)
    card = dm.train_delta_model(recipe, out_dir=None, progress=False).card
    assert card["data"]["train"] == 5 and card["recipe"]["train_frames"] == 5


def test_the_recipe_can_leave_whole_reactions_out_and_a_typo_is_an_error(small_rxn):
    data = ll.data.read(small_rxn)
    gone = data.where(split="train")[0].info["reaction"]
    recipe = dm.DeltaRecipe(data=str(small_rxn), pretrained=None, preset=TINY, minutes=None, steps=1,
                            train={"batch_atoms": 32}, exclude=(gone,))
    card = dm.train_delta_model(recipe, out_dir=None, progress=False).card
    kept = dm.without_reactions(data, (gone,))
    assert gone not in card["data"]["reactions"] and list(card["recipe"]["exclude"]) == [gone]
    assert card["data"]["train"] == len(kept.where(split="train")) < len(data.where(split="train"))
    assert all(f.info["reaction"] != gone for f in kept)
    with pytest.raises(ll.data.DataError, match="no reaction not-a-reaction to leave out"):
        dm.without_reactions(data, ("not-a-reaction",))


def test_the_cli_resumes_a_run_and_keeps_resume_out_of_the_reproduce_line(small_rxn, tmp_path, capsys):
    args = ["--data", str(small_rxn), "--pretrained", "none", "--steps", "2", "--batch-atoms", "32",
            "--out", str(tmp_path / "run")]
    assert dm.main(args) == 0
    assert dm.main([*args, "--resume"]) == 0  # its last checkpoint is at the budget: nothing left but the card
    card = json.loads((tmp_path / "run" / dm.RUN_CARD).read_text())
    assert card["training"]["steps"] == 2 and "--resume" not in card["reproduce"]
    assert card["reproduce"].startswith("python -m lam_lab.pretrained.delta_model --data")


def test_the_remake_script_chains_the_stages_resumes_and_ships_one_seed_then_the_committees(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "remake_delta.sh"
    env = {**os.environ, "DRY_RUN": "1", "RUN": str(tmp_path), "PYTHON": sys.executable}

    def plan(*args: str, **more: str) -> list[str]:
        out = subprocess.run(["bash", str(script), *args], env={**env, **more}, capture_output=True, text=True,
                             check=True)
        return [x for x in out.stdout.splitlines() if not x.startswith("[remake]")]

    first, second, third = plan("seed", "0")
    assert "--steps 7826 --seed 0" in first and f"--pretrained {tmp_path}/stage1-s0/finetuned.pt" in second
    assert f"--pretrained {tmp_path}/stage2-s0/finetuned.pt --splits train,test" in third
    assert "--install" not in first + second + third  # a seed trains; only ship installs
    (tmp_path / "stage1-s1").mkdir()
    (tmp_path / "stage1-s1" / "finetuned.pt").touch()  # done: skipped
    (tmp_path / "stage2-s1" / "checkpoints").mkdir(parents=True)  # stopped half-way: resumed
    resumed, last = plan("seed", "1")
    assert resumed.endswith("--resume") and "--seed 2" in last
    single_heldout, single, heldout, used, *scores = plan("ship")
    assert f"--install-run {tmp_path}/stage2-s2 --name lam-chon-delta-heldout" in single_heldout  # the shipped seed
    assert f"--install-run {tmp_path}/stage3-s2 --name lam-chon-delta" in single
    assert f"--install-run {tmp_path}/stage3-s1 " in plan("ship", SINGLE="1")[1]
    assert "--name lam-chon-delta-heldout-x3" in heldout and "--heldout-from lam-chon-delta-heldout-x3" in used
    assert all(f"{tmp_path}/stage3-s{k}/finetuned.pt" in used for k in range(3))


def test_frames_near_the_ts_and_energies_can_weigh_more_in_the_loss_and_the_card_says_so(small_rxn):
    train = ll.data.read(small_rxn).where(split="train")
    near = [abs(f.info.get("xtb_rel_ts", np.inf)) <= dm.NEAR_TS_EV for f in train]
    weighted = dm.weight_near_ts(train, 3.0)
    assert [f.info.get("loss_weight", 1.0) for f in weighted] == [3.0 if k else 1.0 for k in near]
    assert "loss_weight" not in train[0].info and dm.weight_near_ts(train, 1.0) is train  # the input is untouched
    recipe = dm.DeltaRecipe(data=str(small_rxn), pretrained=None, preset=TINY, minutes=None, steps=1,
                            train={"batch_atoms": 32}, near_ts_weight=3.0, energy_weight=0.1)
    res = dm.train_delta_model(recipe, out_dir=None, progress=False)
    assert "weighted ×3" in res.card["training"]["stages"][-1]["data"]
    assert "energy prefactors ×0.1" in res.card["training"]["stages"][-1]["data"]
    loss, default = recipe.train_config().loss, dm.DeltaRecipe().train_config().loss
    assert (loss.pf_e_start, loss.pf_e_limit) == pytest.approx((0.1 * default.pf_e_start, 0.1 * default.pf_e_limit))
    assert loss.pf_f_limit == default.pf_f_limit and recipe.train_config().batch_atoms == 32
