"""Fine-tuning: freezing, Eq. 6 bias refit, loss goes down, new elements, heads/replay, FF pre-training → fine-tune."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from ase.build import molecule

import lam_lab as ll
from conftest import TINY_DPA2
from lam_lab.config import ConfigError
from lam_lab.data import Dataset, Frame
from lam_lab.data.errors import DataError
from lam_lab.finetune import extend_type_map, ff_pretrain_finetune, finetune, refit_energy_bias
from lam_lab.nn.batch import collate
from lam_lab.nn.energy_bias import type_counts
from lam_lab.train import TrainConfig

HIGH = "wb97x/6-31g*"
TINY = dict(TINY_DPA2, repformer_layers=2)  # two layers: freezing levels need more than one


@pytest.fixture(scope="module")
def rxn():
    torch.set_num_threads(1)
    ds = ll.datasets.load("rxn-dft")
    return ds[[i for i, f in enumerate(ds) if f.info["split"] == "train"]]


@pytest.fixture(scope="module")
def pre(rxn):
    """A tiny two-head 'pre-trained' model (a few steps on GFN2-xTB labels)."""
    m = ll.build_model("dpa2-small", ["H", "C", "N", "O"], heads=["a", "b"], **TINY)
    return ll.train(m, {"a": rxn[:20]}, labels={"a": "gfn2-xtb"}, steps=5, out_dir=None, progress=False).model


def run(ds, pre, **kw):
    kw = {"label": HIGH, "steps": 6, "out_dir": None, "progress": False, **kw}
    return finetune(ds, pretrained=pre, **kw)


def test_freeze_descriptor_keeps_its_weights(rxn, pre):
    res = run(rxn[:8], pre, branch="a", freeze="descriptor")
    before, after = pre.state_dict(), res.model.state_dict()
    for k, v in before.items():
        if k.startswith("descriptor."):
            assert torch.equal(after[k], v), k
    assert not torch.equal(after["fittings.0.mlp.layers.0.weight"], before["fittings.0.mlp.layers.0.weight"])


def test_freeze_first_layers(rxn, pre):
    res = run(rxn[:8], pre, branch="a", freeze=1)
    before, after = pre.state_dict(), res.model.state_dict()
    same = lambda prefix: all(torch.equal(after[k], v) for k, v in before.items() if k.startswith(prefix))  # noqa: E731
    assert same("descriptor.type_embedding") and same("descriptor.repinit") and same("descriptor.layers.0.")
    assert not same("descriptor.layers.1.")
    with pytest.raises(ValueError, match="repformer layers"):
        run(rxn[:8], pre, branch="a", freeze=5)


def test_bias_refit_solves_eq6(rxn, pre):
    firsts = [idx[0] for idx in rxn.groups("formula").values()]  # one frame per composition
    frames = [rxn[i].copy() for i in firsts] + [rxn[i].copy() for i in range(5)]
    m = copy.deepcopy(pre)
    types = [m.prepare(f, with_labels=False).types for f in frames]
    counts = type_counts(types, 4)
    assert np.linalg.matrix_rank(counts) == 4  # the synthetic system determines every element
    with torch.no_grad():
        pred = np.array([float(m(collate([m.prepare(f, with_labels=False)]), head="a", forces=False).energy[0])
                         for f in frames])
    shift = np.array([-13.6, -1029.0, -1485.0, -2041.0])  # eV per H, C, N, O
    for f, e in zip(frames, pred + counts @ shift):
        f.labels[HIGH].energy = e
    old = m.energy_bias["a"].numpy().copy()
    new = refit_energy_bias(m, "a", frames, HIGH)
    np.testing.assert_allclose(new - old, shift, atol=1e-6)
    # plain Eq. 6 on a fresh head: energies that are exactly Σ_z c_mz b_z give b back
    for f, e in zip(frames, counts @ shift):
        f.labels[HIGH].energy = e
    np.testing.assert_allclose(m.fit_energy_bias(frames, head="b", label=HIGH), shift, atol=1e-6)


def test_short_finetune_lowers_the_error(rxn, pre):
    frames = rxn[:6]
    before = ll.evaluate(pre, frames, head="a", label=HIGH).rows[0].f_rmse
    cfg = TrainConfig(lr=1e-2, ema_decay=None, batch_size=6)  # full batch: a steady descent in few steps
    res = run(frames, pre, branch="a", steps=40, config=cfg)
    after = ll.evaluate(res.model, frames, head="default", label=HIGH).rows[0].f_rmse
    assert after < 0.97 * before
    assert res.branch == "a" and res.model.heads == ["default"]
    assert res.model.metadata["extra"]["finetune"]["mode"] == "finetune"


def test_new_element_error_or_fresh_embedding(rxn):
    hco = ll.build_model("dpa2-small", ["H", "C", "O"], **TINY)
    plain = [i for i, f in enumerate(rxn) if 7 not in f.numbers]
    hco.fit_energy_bias(rxn[plain[:10]], head="default", label=HIGH)
    first_n = next(i for i, f in enumerate(rxn) if 7 in f.numbers)
    with pytest.raises(DataError) as err:
        run(rxn, hco, branch="default")
    assert err.value.frame == first_n and err.value.field == "numbers" and "new_elements" in err.value.message
    grown = extend_type_map(hco, ["N"], rxn[:20])
    f = rxn[plain[0]]
    e = lambda m: float(m(collate([m.prepare(f, with_labels=False)]), forces=False).energy[0].detach())  # noqa: E731
    assert grown.type_map == ["H", "C", "O", "N"] and e(grown) == pytest.approx(e(hco), abs=1e-9)
    ds = rxn[[first_n] + plain[:5]]
    res = run(ds, hco, branch="default", new_elements="init", freeze="descriptor")
    w0 = hco.descriptor.type_embedding.net.layers[0].weight
    w1 = res.model.descriptor.type_embedding.net.layers[0].weight
    assert torch.equal(w1[:, :3], w0) and not torch.equal(w1[:, 3], grown.descriptor.type_embedding.net.layers[0].weight[:, 3])


def test_zero_shot_choice_and_replay(rxn, pre):
    res = run(rxn[:6], pre, replay=0.5, replay_data={"b": rxn[20:30]}, steps=12)
    assert res.model.heads == ["default", "b"] and set(res.zero_shot) == {"a", "b", "fresh"}
    assert any("replay-b" in (h.get("train_rmse") or {}) for h in res.train.history)
    with pytest.raises(DataError, match="recipe"):
        run(rxn[:6], pre, replay=0.5)


def test_head_choice_bias_refit_and_training_share_one_graph_per_frame(rxn, pre, monkeypatch):
    from lam_lab.potential import Potential

    built = []
    prepare = Potential.prepare
    monkeypatch.setattr(Potential, "prepare", lambda self, frame, *a, **k: built.append(frame) or prepare(
        self, frame, *a, **k))
    res = run(rxn[:8], pre, steps=3)
    assert res.zero_shot and len(built) == 8 and len({id(f) for f in built}) == 8


def test_auto_run_folders_are_unique(rxn, pre, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # two runs in the same second: two folders (they shared one)
    a, b = (run(rxn[:4], pre, steps=1, out_dir="auto").path.parent for _ in range(2))
    assert a != b and a.parent == b.parent and a.name.startswith("finetune-finetune-")
    assert (tmp_path / a / "finetuned.pt").exists() and (tmp_path / b / "finetuned.pt").exists()


def test_a_stopped_delta_finetune_resumes_to_the_same_model(rxn, pre, tmp_path):
    """Δ fine-tune of 8 steps in one go == stopped at 4, then ``resume=True`` (what a long remake relies on)."""
    import threading

    kw = dict(mode="delta", baseline="gfn2-xtb", steps=8, config=TrainConfig(log_every=1, batch_size=2), branch="a")
    straight = run(rxn[:8], pre, out_dir=tmp_path / "a", **kw)
    stop = threading.Event()
    first = run(rxn[:8], pre, out_dir=tmp_path / "b", stop_event=stop,
                callbacks=[lambda e: e.kind == "step" and e.step == 4 and stop.set()], **kw)
    assert first.train.stopped and first.train.steps == 4
    second = run(rxn[:8], pre, out_dir=tmp_path / "b", resume=True, **kw)
    assert second.train.steps == 8 and second.path == tmp_path / "b" / "finetuned.pt"
    a, b = straight.model.state_dict(), second.model.state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert second.model.metadata["extra"]["delta"] == straight.model.metadata["extra"]["delta"]
    with pytest.raises(ConfigError, match="pass that out_dir"):
        run(rxn[:8], pre, resume=True, **kw)  # out_dir None: no run to continue


def test_default_pretrained_gives_a_clear_error(rxn):
    if "lam-chon-small" in ll.pretrained.available():
        pytest.skip("the shipped model is installed")
    with pytest.raises(DataError, match="lam-chon-small"):
        finetune(rxn[:4], label=HIGH, steps=1, out_dir=None, progress=False)


def test_ff_pretrain_then_finetune_on_xtb(tmp_path):
    from lam_lab.labelers import WaterFFLabeler, XTBLabeler

    rng = np.random.default_rng(0)
    frames = []
    for k in range(6):  # rattled water dimers: TIP3P for pre-training, GFN2-xTB for the fine-tune
        a = molecule("H2O")
        b = molecule("H2O")
        b.translate([2.9 + 0.1 * k, 0.0, 0.3])
        atoms = a + b
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        f = Frame.from_atoms(atoms)
        f.labels = {"tip3p": WaterFFLabeler().compute(f), "gfn2-xtb": XTBLabeler().compute(f)}
        frames.append(f)
    ff = Dataset([Frame(f.numbers, f.positions, labels={"tip3p": f.labels["tip3p"]}) for f in frames], "dimers-ff")
    xtb = Dataset([Frame(f.numbers, f.positions, labels={"gfn2-xtb": f.labels["gfn2-xtb"]}) for f in frames], "dimers-xtb")
    cfg = ll.models.PRESETS["dpa2-small"].__class__(**{**ll.models.PRESETS["dpa2-small"].to_dict(), **TINY})
    out = ff_pretrain_finetune(xtb, pretrain_data=ff, preset=cfg, pretrain_steps=4, steps=4, out_dir=tmp_path,
                               progress=False)
    assert out.pretrained.heads == ["ff"] and out.pretrain.steps == 4
    assert out.finetuned.model.heads == ["default"] and out.finetuned.label == "gfn2-xtb"
    assert (tmp_path / "finetune" / "finetuned.pt").exists() and (tmp_path / "pretrain" / "model.pt").exists()


def test_cli_configs_parse_and_a_scratch_run(tmp_path, capsys):
    from pathlib import Path

    from lam_lab.cli import build_parser, main
    from lam_lab.cli.finetune import load_spec

    root = Path(__file__).resolve().parents[1] / "configs"
    for name in ("finetune-rxn-dft.yaml", "finetune-delta-rxn-dft.yaml", "ff-pretrain-water.yaml"):
        args = build_parser().parse_args(["finetune", "--config", str(root / name)])
        spec = load_spec(args.config, args)
        assert spec.mode in ("finetune", "delta") and spec.train.steps
    assert load_spec(str(root / "ff-pretrain-water.yaml"), args).pretrain.data == "water-ff"
    rc = main(["finetune", "rxn-dft", "--pretrained", "none", "--mode", "delta", "--label", HIGH, "--info-split",
               "--frames", "4", "--steps", "2", "--out", str(tmp_path), "--quiet"])
    assert rc == 0 and (tmp_path / "finetuned.pt").exists()
    assert ll.load(tmp_path / "finetuned.pt").metadata["extra"]["delta"]["baseline"] == "gfn2-xtb"
    assert "delta: 2 steps" in capsys.readouterr().out
    # --resume continues that run in its folder (here already at its budget) and refuses without a folder to continue
    args = ["finetune", "rxn-dft", "--pretrained", "none", "--mode", "delta", "--label", HIGH, "--info-split",
            "--frames", "4", "--steps", "2", "--quiet", "--resume"]
    assert main([*args, "--out", str(tmp_path)]) == 0 and "delta: 2 steps" in capsys.readouterr().out
    assert main(args) == 2 and "name it with --out DIR" in capsys.readouterr().err
