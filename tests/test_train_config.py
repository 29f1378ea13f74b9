"""Run files: YAML/TOML loading, and every error reported with its key path before training starts."""

from __future__ import annotations

import pytest

from lam_lab.train.config import ConfigError, TrainConfig, load_run_config, parse_run_config
from lam_lab.train.run import prepare_run
from test_train_fixtures import emt_frames


def _write_data(tmp_path):
    from lam_lab.data import write

    write(emt_frames("Cu", 4), tmp_path / "cu.extxyz")
    return "cu.extxyz"


def test_yaml_and_toml_load_to_the_same_config(tmp_path):
    (tmp_path / "run.yaml").write_text(
        "model: {preset: dpa2-small, overrides: {repformer_layers: 1}}\n"
        "data:\n  cu: {source: cu.extxyz, weight: 2}\n  ag: ag.extxyz\n"
        "train: {steps: 50, lr: 0.005, loss: {pf_f_start: 50}}\nout_dir: runs/x\n"
    )
    (tmp_path / "run.toml").write_text(
        'out_dir = "runs/x"\n[model]\npreset = "dpa2-small"\noverrides = {repformer_layers = 1}\n'
        '[data.cu]\nsource = "cu.extxyz"\nweight = 2\n[data.ag]\nsource = "ag.extxyz"\n'
        "[train]\nsteps = 50\nlr = 0.005\n[train.loss]\npf_f_start = 50\n"
    )
    a, b = load_run_config(tmp_path / "run.yaml"), load_run_config(tmp_path / "run.toml")
    assert a == b
    assert a.data["cu"].weight == 2.0 and a.data["ag"].source == "ag.extxyz"
    assert a.train.loss.pf_f_start == 50 and a.train.loss.pf_e_start == TrainConfig().loss.pf_e_start
    c = load_run_config(tmp_path / "run.yaml", ["train.steps=7", "data.cu.weight=3"])
    assert c.train.steps == 7 and c.data["cu"].weight == 3


@pytest.mark.parametrize("raw, field, words", [
    ({"data": {"a": "x"}, "train": {"lr_rate": 1}}, "train.lr_rate", "did you mean 'lr'"),
    ({"data": {"a": "x"}, "train": {"loss": {"pf_f_strat": 1}}}, "train.loss.pf_f_strat", "pf_f_start"),
    ({"data": {"a": {"source": "x", "wieght": 2}}}, "data.a.wieght", "weight"),
    ({"data": {"a": {"weight": 2}}}, "data.a.source", "missing"),
    ({"data": {"a": "x"}, "train": {"steps": "many"}}, "train.steps", "integer"),
    ({"data": {"a": "x"}, "train": {"schedule": "cosin"}}, "train.schedule", "cosine"),
    ({"data": {"a": "x"}, "train": {"steps": 0}}, "train.steps", "≥ 1"),
    ({"model": {"preset": "dpa2-small"}}, "data", "missing"),
])
def test_bad_keys_are_named_with_their_path(raw, field, words):
    with pytest.raises(ConfigError) as err:
        parse_run_config(raw, source="run.yaml")
    assert err.value.field == field and words in str(err.value) and "run.yaml" in str(err.value)


def test_missing_dataset_bad_label_and_preset_typo_before_training(tmp_path):
    src = str(tmp_path / "run.yaml")
    _write_data(tmp_path)
    with pytest.raises(ConfigError) as err:
        prepare_run(parse_run_config({"data": {"cu": "nope.extxyz"}}), src)
    assert err.value.field == "data.cu.source" and "nope.extxyz" in str(err.value)
    with pytest.raises(ConfigError) as err:
        prepare_run(parse_run_config({"data": {"cu": {"source": "cu.extxyz", "label": "emtt"}}}), src)
    assert err.value.field == "data.cu.label" and "did you mean 'emt'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        prepare_run(parse_run_config({"model": {"preset": "dpa2-smal"}, "data": {"cu": "cu.extxyz"}}), src)
    assert err.value.field == "model.preset" and "dpa2-small" in str(err.value)
    with pytest.raises(ConfigError) as err:
        prepare_run(parse_run_config({"model": {"overrides": {"repformer_layer": 1}}, "data": {"cu": "cu.extxyz"}}), src)
    assert err.value.field == "model.overrides"


def test_head_typo_against_a_saved_model(tmp_path):
    from lam_lab.models import save
    from test_train_fixtures import tiny_model

    src = str(tmp_path / "run.yaml")
    _write_data(tmp_path)
    save(tiny_model(heads=["metals-emt"]), tmp_path / "pre.pt")
    raw = {"model": {"path": "pre.pt"}, "data": {"cu": {"source": "cu.extxyz", "head": "metal-emt"}}}
    with pytest.raises(ConfigError) as err:
        prepare_run(parse_run_config(raw), src)
    assert err.value.field == "data.cu.head" and "did you mean 'metals-emt'" in str(err.value)
    raw["data"]["cu"]["new_head"] = True
    run = prepare_run(parse_run_config(raw), src)
    assert run.heads == {"cu": "metal-emt"}
    raw = {"data": {"cu": {"source": "cu.extxyz", "validation": 0.25}}, "model": {"overrides": {"repformer_layers": 1}}}
    run = prepare_run(parse_run_config(raw), src)
    assert len(run.datasets["cu"]) == 3 and len(run.validation["cu"]) == 1
    assert run.model.type_map == ["Cu"] and run.model.heads == ["cu"]
