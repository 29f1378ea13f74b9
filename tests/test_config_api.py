"""Configs are the API: one ``load_config`` for files, dicts and overrides; one ``--set`` on every verb."""

from __future__ import annotations

import dataclasses

import pytest

from lam_lab.cli import build_parser, main
from lam_lab.cli.common import overrides
from lam_lab.config import ConfigError, load_config, parse_overrides
from lam_lab.distill import DistillConfig, distill_config
from lam_lab.distill.explore import default_md_config
from lam_lab.finetune import FinetuneConfig, ReplayConfig, finetune_config
from lam_lab.train.config import RunConfig, TrainConfig, load_run_config

RUN = "data:\n  cu: {source: cu.extxyz, weight: 2}\ntrain: {steps: 50, lr: 0.005, loss: {pf_f_start: 50}}\n"


def _args(*argv: str):
    return build_parser().parse_args(list(argv))


# -- load_config ------------------------------------------------------------------------------------------
def test_load_config_reads_yaml_and_dicts_with_overrides(tmp_path):
    (tmp_path / "run.yaml").write_text(RUN)
    from_file = load_config(tmp_path / "run.yaml", RunConfig, {"train.lr": 0.001, "data.cu.weight": 3})
    from_dict = load_config({"data": {"cu": {"source": "cu.extxyz", "weight": 2}},
                             "train": {"steps": 50, "lr": 0.005, "loss": {"pf_f_start": 50}}},
                            RunConfig, ["train.lr=1e-3", "data.cu.weight=3"])
    assert from_file == from_dict
    assert from_file.train.lr == 0.001 and from_file.data["cu"].weight == 3.0 and from_file.train.steps == 50
    assert from_file.train.loss.pf_f_start == 50 and from_file.train.loss.pf_e_start == TrainConfig().loss.pf_e_start
    # a partial section refines the class's own defaults (the distillation explores with Langevin, not NVE)
    cfg = load_config({"md": {"timestep": 1.0}}, DistillConfig, "train.lr=0.01")
    assert cfg.md.ensemble == "langevin" and cfg.md.timestep == 1.0
    assert cfg.train.batch_atoms == 64 and cfg.train.lr == 0.01
    # an instance is a source too; None gives the defaults
    assert load_config(cfg, DistillConfig) == cfg and load_config(None, FinetuneConfig) == FinetuneConfig()
    assert parse_overrides(["a.b=[1, 2]", "c=null", "d=true", "e=1e-3", "f=text"]) == {
        "a.b": [1, 2], "c": None, "d": True, "e": 0.001, "f": "text"}


def test_unknown_keys_name_the_key_and_the_valid_ones(tmp_path):
    (tmp_path / "ft.yaml").write_text("mode: delta\ntrain: {lr_rate: 0.1}\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "ft.yaml", FinetuneConfig)
    text = str(err.value)
    assert err.value.field == "train.lr_rate" and "ft.yaml" in text and "did you mean 'lr'" in text
    assert "valid keys:" in text and "final_lr_ratio" in text
    with pytest.raises(ConfigError, match=r"unknown key 'bogus'.*valid keys: pretrained, mode"):
        load_config({}, FinetuneConfig, {"bogus": 1})
    with pytest.raises(ConfigError, match="must look like key.path=value"):
        parse_overrides(["no-equals-sign"])


@pytest.mark.parametrize("cls, override, field, words", [
    (FinetuneConfig, {"frames": "many"}, "frames", "integer"),
    (FinetuneConfig, {"mode": "fine"}, "mode", "not one of"),
    (FinetuneConfig, {"replay.weight": "high"}, "replay.weight", "number"),
    (FinetuneConfig, {"train.amsgrad": "yes"}, "train.amsgrad", "true/false"),
    (DistillConfig, {"trust": 0.1}, "trust", "list"),
    (DistillConfig, {"md.ensemble": "npt"}, "md.ensemble", "not one of"),
    (DistillConfig, {"rounds": -1}, "rounds", ">= 0"),
    (TrainConfig, {"steps": 0}, "train.steps", "≥ 1"),
])
def test_wrong_types_name_the_field(cls, override, field, words):
    with pytest.raises(ConfigError) as err:
        load_config(None, cls, override)
    assert err.value.field == field and words in str(err.value)


# -- the Python call and the command line give the same config ---------------------------------------------
def test_train_set_parses_to_the_same_config_as_the_python_call(tmp_path):
    from lam_lab.cli.train import TRAIN_FLAGS

    (tmp_path / "run.yaml").write_text(RUN)
    args = _args("train", str(tmp_path / "run.yaml"), "--steps", "7", "--set", "train.lr=0.001",
                 "--set", "train.loss.pf_e_limit=10", "--device", "cpu")
    cli = load_run_config(args.config, overrides(args, TRAIN_FLAGS))
    py = load_run_config(tmp_path / "run.yaml")
    assert cli.train == py.train.replace(steps=7, lr=0.001, device="cpu", loss={"pf_e_limit": 10.0})
    assert cli.data == py.data and cli.out_dir == py.out_dir


def test_finetune_set_parses_to_the_same_config_as_the_python_call():
    from lam_lab.cli.finetune import load_spec

    args = _args("finetune", "rxn-dft", "--mode", "delta", "--frames", "50", "--pretrained", "none",
                 "--baseline", "gfn2-xtb", "--steps", "20", "--set", "train.lr=0.001", "--set", "replay.frames=100",
                 "--freeze", "2")
    cli = finetune_config(load_spec(None, args))
    typed = FinetuneConfig(pretrained=None, mode="delta", frames=50, freeze=2, replay=ReplayConfig(frames=100),
                           train=TrainConfig(steps=20, lr=0.001))
    old_keywords = finetune_config(config=TrainConfig(lr=0.001), mode="delta", frames=50, pretrained=None,
                                   baseline="gfn2-xtb", steps=20, minutes=None, freeze=2, **{"replay.frames": 100})
    assert cli == typed == old_keywords
    assert finetune_config(typed, replay=0.5).replay == ReplayConfig(weight=0.5, frames=100)


def test_distill_set_parses_to_the_same_config_as_the_python_call():
    from lam_lab.cli.distill import FLAGS, load_run

    args = _args("distill", "teacher.pt", "smiles:C", "--rounds", "2", "--trust", "0.05", "0.5", "--device", "cpu",
                 "--set", "md.timestep=1.0", "--set", "train.lr=1e-3", "--set", "student_options={student_basis: 8}")
    spec = load_run(None, overrides(args, FLAGS))
    cli = distill_config(spec)
    typed = DistillConfig(rounds=2, trust=[0.05, 0.5], student_options={"student_basis": 8},
                          md=dataclasses.replace(default_md_config(), timestep=1.0),
                          train=TrainConfig(batch_atoms=64, lr=0.001, device="cpu"))
    keywords = distill_config(rounds=2, trust=(0.05, 0.5), device="cpu", student_options={"student_basis": 8},
                              **{"md.timestep": 1.0, "train.lr": 1e-3})
    assert cli == typed == keywords and spec.out_dir == "auto"


def test_set_on_pipeline_pretrain_and_md():
    from lam_lab.cli.pretrain import FLAGS
    from lam_lab.pipeline.config import load_pipeline_config
    from lam_lab.pretrained.recipe import load_recipe

    args = _args("pipeline", "--quick", "--set", "finetune.steps=7", "--set", "distill.rounds=1")
    cfg = load_pipeline_config(None, "quick", overrides(args, {}))
    assert cfg.finetune.steps == 7 and cfg.distill.rounds == 1 and cfg.scale == "quick"
    assert cfg.finetune.sizes == load_pipeline_config(None, "quick").finetune.sizes
    args = _args("pretrain", "--steps", "5", "--set", "train.lr=0.001", "--set", "tasks.rxn-xtb.weight=2")
    recipe = load_recipe(args.recipe, overrides(args, FLAGS))
    assert recipe.train.steps == 5 and recipe.train.lr == 0.001 and recipe.tasks["rxn-xtb"].weight == 2.0
    assert _args("md", "emt", "C", "--set", "guards.every=5").set == ["guards.every=5"]
    assert _args("lab").func.__name__ == "cmd_lab"


def test_shipped_finetune_files_keep_their_flat_keys():
    from pathlib import Path

    from lam_lab.cli.finetune import load_run

    root = Path(__file__).resolve().parents[1] / "configs"
    spec = load_run(root / "finetune-delta-rxn-dft.yaml")
    assert spec.delta.baseline == "gfn2-xtb" and spec.mode == "delta" and spec.train.steps == 2000
    assert load_run(root / "finetune-rxn-dft.yaml", ["replay=0.25"]).replay.weight == 0.25


@pytest.mark.parametrize("argv, words", [
    (["finetune", "rxn-dft", "--set", "train.stepz=3"], "train.stepz"),
    (["distill", "emt", "smiles:C", "--set", "roundz=3"], "valid keys"),
    (["pipeline", "--set", "finetune=3"], "finetune"),
    (["pretrain", "--set", "train.lr=fast"], "train.lr"),
    (["md", "emt", "C", "--steps", "1", "--set", "guards.evry=2"], "guards.evry"),
    (["train", "x.yaml", "--set", "no-equals"], "key.path=value"),
])
def test_bad_set_answers_with_one_line_and_status_2(argv, words, capsys):
    rc = main(argv)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(err) == 1 and err[0].startswith("lam-lab: ") and words in err[0], err


def test_finetune_takes_its_config(tmp_path):
    import lam_lab as ll

    ds = ll.datasets.load("rxn-dft")
    cfg = {"pretrained": None, "mode": "delta", "label": "wb97x/6-31g*", "frames": 4, "train": {"steps": 2}}
    res = ll.finetune(ds.where(split="train"), cfg, out_dir=None, progress=False)
    assert res.train.steps == 2 and res.model.metadata["extra"]["delta"]["baseline"] == "gfn2-xtb"
    assert res.model.metadata["extra"]["finetune"]["frames"] == 4


def test_train_reads_a_data_file_path_like_the_dataset_it_holds(tmp_path):
    import torch

    import lam_lab as ll
    from lam_lab.data.errors import UnknownSourceError
    from test_train_fixtures import emt_frames, tiny_model

    torch.set_num_threads(1)
    path = tmp_path / "cu.extxyz"
    ll.data.write(emt_frames("Cu", 4), path)
    kw = dict(steps=2, out_dir=None, progress=False)
    ref = ll.train(tiny_model(["Cu"]), ll.data.read(path), **kw).model.state_dict()
    for source in (str(path), path, {"default": path}):  # one source resolver: a path stands for its Dataset
        got = ll.train(tiny_model(["Cu"]), source, **kw).model.state_dict()
        assert all(torch.equal(got[k], v) for k, v in ref.items()), source
    with pytest.raises(UnknownSourceError, match="nowhere.extxyz"):
        ll.train(tiny_model(["Cu"]), tmp_path / "nowhere.extxyz", **kw)
