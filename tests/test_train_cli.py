"""`lam-lab train CONFIG` and `lam-lab test MODEL DATASET` end to end, and the example run files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from lam_lab.cli.train import add_parser
from lam_lab.train.config import ConfigError, load_run_config
from test_train_fixtures import TINY, emt_frames

ROOT = Path(__file__).resolve().parents[1]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lam-lab")
    add_parser(p.add_subparsers(dest="verb", required=True))
    return p


def _run(*argv: str) -> int:
    args = _parser().parse_args(list(argv))
    return args.func(args)


def test_train_then_test_from_a_yaml_file(tmp_path, capsys):
    from lam_lab.data import write

    write(emt_frames("Cu", 6, seed=0), tmp_path / "cu.extxyz")
    write(emt_frames("Ag", 4, seed=1), tmp_path / "ag.extxyz")
    overrides = {k: list(v) if isinstance(v, tuple) else v for k, v in TINY.items()}
    (tmp_path / "run.yaml").write_text(json.dumps({  # JSON is YAML
        "model": {"preset": "dpa2-small", "overrides": overrides},
        "data": {"cu": {"source": "cu.extxyz", "weight": 2, "validation": 0.34}, "ag": "ag.extxyz"},
        "train": {"steps": 50, "lr": 0.005, "log_every": 2},
        "out_dir": str(tmp_path / "out"),
    }))
    assert _run("train", str(tmp_path / "run.yaml"), "--steps", "6", "--quiet", "--set", "train.batch_size=2") == 0
    text = capsys.readouterr().out
    assert "trained 6 steps" in text and "cu" in text and "model:" in text
    model_file = tmp_path / "out" / "model.pt"
    assert model_file.exists() and (tmp_path / "out" / "events.jsonl").exists()
    assert _run("test", str(model_file), str(tmp_path / "cu.extxyz"), "--head", "cu",
                "--json", str(tmp_path / "m.json")) == 0
    out = capsys.readouterr().out
    assert "E RMSE" in out and "meV/atom" in out
    assert json.loads((tmp_path / "m.json").read_text())["rows"][0]["head"] == "cu"
    # --resume continues from the newest checkpoint up to the new budget
    assert _run("train", str(tmp_path / "run.yaml"), "--steps", "8", "--quiet", "--resume") == 0
    assert "trained 8 steps" in capsys.readouterr().out


def test_config_errors_come_before_training(tmp_path):
    (tmp_path / "run.yaml").write_text("data:\n  cu: {source: missing.extxyz}\ntrain: {steps: 5}\n")
    with pytest.raises(ConfigError) as err:
        _run("train", str(tmp_path / "run.yaml"), "--quiet")
    assert err.value.field == "data.cu.source" and "run.yaml" in str(err.value)
    with pytest.raises(ConfigError) as err:
        _run("train", str(tmp_path / "run.yaml"), "--set", "train.stepz=3")
    assert err.value.field == "train.stepz" and "did you mean 'steps'" in str(err.value)


TRAIN_FILES = [p for p in sorted((ROOT / "configs").glob("*.yaml"))
               if not any(verb in p.read_text() for verb in ("lam-lab finetune", "lam-lab distill"))]


@pytest.mark.parametrize("path", TRAIN_FILES, ids=lambda p: p.name)
def test_example_run_files_parse(path):
    cfg = load_run_config(path)
    assert cfg.data and cfg.out_dir
