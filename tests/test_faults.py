"""Faults and bad inputs, one table per area: each case asserts the message the user gets (nothing silent)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import lam_lab as ll
from lam_lab.data.errors import DataError
from lam_lab.train.guard import NonFiniteError
from lam_lab.train.rundir import RunFolderError, RunLock
from tests.test_train_fixtures import emt_frames, tiny_model

FAST = dict(progress=False, lr=1e-3, batch_size=2, log_every=1, fit_bias=True)


@pytest.fixture(scope="module")
def cu():
    return emt_frames("Cu", 6)


# -- 1. run folders ------------------------------------------------------------------------------------
def test_fresh_run_refuses_a_folder_holding_another_run(tmp_path, cu):
    ll.train(tiny_model(["Cu"]), cu, steps=2, out_dir=tmp_path, **FAST)
    before = (tmp_path / "model.pt").read_bytes()
    with pytest.raises(RunFolderError, match=r"already holds a training run \(model\.pt.*resume=True \(CLI: --resume\)"):
        ll.train(tiny_model(["Cu"]), cu, steps=2, out_dir=tmp_path, **FAST)
    assert (tmp_path / "model.pt").read_bytes() == before  # nothing of the first run was touched
    res = ll.train(tiny_model(["Cu"]), cu, steps=4, out_dir=tmp_path, resume=True, **FAST)
    assert res.steps == 4


def test_a_caller_owning_the_folder_may_replace_a_run_and_loses_nothing(tmp_path, cu):
    from lam_lab.train.rundir import replacing_runs

    ll.train(tiny_model(["Cu"]), cu, steps=2, out_dir=tmp_path, **FAST)
    before = (tmp_path / "model.pt").read_bytes()
    with replacing_runs():
        ll.train(tiny_model(["Cu"]), cu, steps=2, out_dir=tmp_path, **FAST)
    old = list(tmp_path.glob("replaced-*/model.pt"))
    assert len(old) == 1 and old[0].read_bytes() == before and (tmp_path / "model.pt").exists()


def test_auto_folders_are_unique_within_one_second(tmp_path, monkeypatch):
    from lam_lab.train.rundir import auto_dir

    monkeypatch.chdir(tmp_path)
    names = {auto_dir() for _ in range(5)}
    assert len(names) == 5 and all(p.is_dir() for p in names)


def test_a_second_writer_is_refused_by_the_lock(tmp_path, cu):
    with RunLock(tmp_path):
        with pytest.raises(RunFolderError, match=rf"another training run \(pid {os.getpid()} .*\) is writing"):
            ll.train(tiny_model(["Cu"]), cu, steps=1, out_dir=tmp_path, **FAST)
    # a lock held by a process that died is free again (the kernel drops flock locks with their process)
    code = f"from lam_lab.train.rundir import RunLock; RunLock({str(tmp_path)!r}).acquire(); import os; os._exit(0)"
    subprocess.run([sys.executable, "-c", code], check=True)
    RunLock(tmp_path).acquire().release()


# -- 2. non-finite values in training --------------------------------------------------------------------
def test_nan_force_in_a_python_dataset_is_refused(cu):
    bad = ll.data.Dataset([f.copy() for f in cu], name="cu")
    bad[3].labels["emt"].forces[1, 2] = np.nan
    with pytest.raises(DataError, match=r"frame 3, field labels\['emt'\]\.forces: forces contain NaN"):
        ll.train(tiny_model(["Cu"]), bad, steps=2, out_dir=None, **FAST)


def test_divergence_stops_with_the_task_and_keeps_the_checkpoint(tmp_path, cu):
    ll.train(tiny_model(["Cu"]), {"cu": cu}, steps=2, out_dir=tmp_path, checkpoint_every=1, **FAST)
    ckpts = sorted((tmp_path / "checkpoints").glob("step_*.pt"))
    kept = {p: p.read_bytes() for p in ckpts}
    with pytest.raises(NonFiniteError, match=r"training diverged at step \d+ of task 'cu': (loss|gradient norm) is (nan|inf).*; the weights were not updated"):
        ll.train(tiny_model(["Cu"]), {"cu": cu}, steps=50, out_dir=tmp_path, resume=True,
                 **{**FAST, "lr": 1e30})
    assert all(p.read_bytes() == b for p, b in kept.items())
    state = torch.load(ckpts[-1], weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


# -- 3. model and checkpoint files -------------------------------------------------------------------------
def test_resume_with_another_type_map_order_or_size_is_refused(tmp_path):
    data = emt_frames("Cu", 4) + emt_frames("Ag", 4)
    ll.train(tiny_model(["Cu", "Ag"]), data, steps=2, out_dir=tmp_path, checkpoint_every=1, **FAST)
    with pytest.raises(DataError, match=r"type map \['Cu', 'Ag'\] in the file vs \['Ag', 'Cu'\] here \(the same elements in another order\)"):
        ll.train(tiny_model(["Ag", "Cu"]), data, steps=4, out_dir=tmp_path, resume=True, **FAST)
    with pytest.raises(DataError, match=r"model size/config differs \(file vs here\): repformer_layers 1 vs 2"):
        ll.train(tiny_model(["Cu", "Ag"], repformer_layers=2), data, steps=4, out_dir=tmp_path, resume=True, **FAST)


def test_flipped_bytes_in_a_model_file_are_detected(tmp_path):
    model = tiny_model(["Cu"])
    path = tmp_path / "m.pt"
    ll.save(model, path)
    raw = bytearray(path.read_bytes())
    # flip one byte inside the largest tensor record (the weights), which the zip container does not check
    key = max(model.state_dict(), key=lambda k: model.state_dict()[k].numel())
    blob = model.state_dict()[key].numpy().tobytes()
    at = bytes(raw).find(blob[:64])
    assert at > 0
    raw[at + 40] ^= 0x10
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"m\.pt: content checksum mismatch .* corrupted"):
        ll.load(path)


@pytest.mark.parametrize("what", ["model", "checkpoint", "x.extxyz", "x.lamh5", "deepmd"])
def test_files_follow_the_umask(tmp_path, cu, what):
    old = os.umask(0o027)
    try:
        if what == "model":
            ll.save(tiny_model(["Cu"]), tmp_path / "m.pt")
            path = tmp_path / "m.pt"
        elif what == "checkpoint":
            ll.train(tiny_model(["Cu"]), cu, steps=1, out_dir=tmp_path / "run", **FAST)
            path = next((tmp_path / "run" / "checkpoints").glob("step_*.pt"))
        else:
            path = tmp_path / what
            ll.data.write(cu, path, format="deepmd/npy" if what == "deepmd" else None)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == (0o750 if path.is_dir() else 0o640)  # mkstemp/mkdtemp gave 0600/0700


# -- 6. every verb: missing, binary, non-mapping, mistyped arguments -> one line on stderr, exit status 2 --
CONFIG_VERBS = {  # verb -> argv with {f} for a config file
    "train": ["train", "{f}"], "finetune": ["finetune", "rxn-xtb", "--config", "{f}"],
    "distill": ["distill", "emt", "smiles:C", "--config", "{f}"], "pipeline": ["pipeline", "--config", "{f}"],
    "pretrain": ["pretrain", "--recipe", "{f}"],
}
MODEL_VERBS = {  # verb -> argv with {f} for a model file
    "test": ["test", "{f}", "rxn-xtb"], "md": ["md", "{f}", "C", "--steps", "1"],
    "distill": ["distill", "{f}", "smiles:C"], "finetune": ["finetune", "rxn-xtb", "--pretrained", "{f}", "--steps", "1"],
    "learning-curve": ["learning-curve", "--pretrained", "{f}", "--sizes", "2", "--steps", "1", "--methods", "finetune"],
}
DATA_VERBS = {  # verb -> argv with {f} for a data file and {m} for a good model
    "data info": ["data", "info", "{f}"], "data convert": ["data", "convert", "{f}", "{d}/o.extxyz"],
    "test": ["test", "{m}", "{f}"], "md": ["md", "emt", "{f}", "--steps", "1"],
    "finetune": ["finetune", "{f}", "--pretrained", "none", "--steps", "1"], "distill": ["distill", "{m}", "{f}"],
    "learning-curve": ["learning-curve", "--dataset", "{f}", "--sizes", "2", "--steps", "1", "--methods", "scratch"],
}
BAD = {  # kind -> (file name, bytes or None for missing)
    "missing": ("nope.yaml", None), "binary": ("bin.yaml", bytes(range(256)) * 8),
    "non-mapping": ("list.yaml", b"- a\n- b\n"), "mistyped": ("typo.yaml", b"data: 5\ntrain: {steps: abc}\n"),
    "folder": ("folder", "dir"),
}


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    for name, content in BAD.values():
        if content == "dir":
            (d / name).mkdir()
        elif content is not None:
            (d / name).write_bytes(content)
    ll.save(tiny_model(["H", "C", "N", "O"]), d / "m.pt")
    return d


def _run_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    from lam_lab.cli import main

    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    return rc, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def _cases(verbs: dict[str, list[str]], kinds: tuple[str, ...], suffix: str) -> list:
    return [pytest.param(argv, kind, suffix, id=f"{verb}-{kind}") for verb, argv in verbs.items() for kind in kinds]


@pytest.mark.parametrize("argv,kind,suffix", _cases(CONFIG_VERBS, tuple(BAD), ".yaml")
                         + _cases(MODEL_VERBS, ("missing", "binary", "non-mapping", "folder"), ".pt")
                         + _cases(DATA_VERBS, ("missing", "binary", "non-mapping", "folder"), ".extxyz"))
def test_every_verb_answers_bad_files_with_one_line_and_status_2(argv, kind, suffix, cli_dir, capsys, monkeypatch):
    monkeypatch.chdir(cli_dir)  # a verb that made its run folder before failing left nothing in the repository
    name, _ = BAD[kind]
    path = cli_dir / (name if kind == "folder" else name.replace(".yaml", suffix))
    if not path.exists() and kind != "missing":
        path.write_bytes((cli_dir / name).read_bytes())
    args = [a.format(f=path, m=cli_dir / "m.pt", d=cli_dir) for a in argv]
    rc, err = _run_cli(args, capsys)
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("lam-lab: ") and "Traceback" not in err[0]
    assert not (cli_dir / "lam_lab_runs").exists() or not any((cli_dir / "lam_lab_runs").iterdir())  # no empty run folders
    if kind in ("missing", "binary", "folder") and "rxn-xtb" not in str(path):
        assert path.name in err[0] or "built-in" in err[0] or "shipped" in err[0], err[0]


@pytest.mark.parametrize("argv,message", [
    (["train", "x.yaml", "--steps", "abc"], r"lam-lab train: error: argument --steps: invalid int value: 'abc'"),
    (["data", "build", "nope"], r"unknown built-in data set 'nope'"),
    (["md", "emt", "nope.xyz"], r"'nope.xyz' is not a reaction, an existing file, or a SMILES"),
    (["nonsense-verb"], r"lam-lab: error: argument verb: invalid choice: 'nonsense-verb'"),
])
def test_mistyped_arguments(argv, message, capsys):
    rc, err = _run_cli(argv, capsys)
    assert rc == 2 and len(err) == 1 and __import__("re").search(message, err[0]), err


def test_the_console_script_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lam_lab.cli", "train", str(tmp_path / "missing.yaml")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [f"lam-lab: file {tmp_path / 'missing.yaml'}: run file not found"]


# -- 7. energies in another unit than eV ------------------------------------------------------------------
@pytest.fixture(scope="module")
def dft():
    return ll.datasets.load("rxn-dft")[:12].with_label("wb97x/6-31g*")


def _scaled(ds, e_factor: float, f_factor: float):
    out = ll.data.Dataset([f.copy() for f in ds], name=ds.name)
    for f in out:
        f.labels = {k: v for k, v in f.labels.items() if k == "wb97x/6-31g*"}
        for lab in f.labels.values():
            lab.energy *= e_factor
            lab.forces = lab.forces * f_factor
    return out


@pytest.mark.parametrize("e_factor,f_factor,unit", [
    (1 / 27.211386, 1 / 51.422, r"look like Hartree \(1 Hartree = 27.211386 eV"),
    (1 / 27.211386, None, r"look like Hartree"),
    (23.0605, 23.0605, r"look like kcal/mol \(1 kcal/mol = 0.0433641043 eV\)"),
    (96.485, 96.485, r"look like kJ/mol"),
])
def test_energies_in_hartree_or_kcal_get_a_warning_naming_the_unit(dft, tmp_path, e_factor, f_factor, unit):
    ds = _scaled(dft, e_factor, f_factor or 1.0)
    if f_factor is None:
        for f in ds:
            for lab in f.labels.values():
                lab.forces = None
    with pytest.warns(UserWarning, match=rf"label set 'wb97x/6-31g\*': per-atom energies of about .* {unit}"):
        ds.validate()
    ll.data.write(ds, tmp_path / "x.extxyz")
    with pytest.warns(UserWarning, match=rf"x\.extxyz: label set .* {unit}"):
        ll.data.read(tmp_path / "x.extxyz")


@pytest.mark.parametrize("name", ["rxn-dft", "rxn-xtb", "metals-emt", "water-ff"])
def test_shipped_ev_data_gets_no_unit_warning(name):
    from lam_lab.data.units import unit_hints

    assert unit_hints(ll.datasets.load(name)) == []


# -- 4. inputs that would crash native code, and what the calculator and MD say instead ------------------
@pytest.fixture(scope="module")
def chon_model():
    return tiny_model(["H", "C", "N", "O"])


def _atoms(kind: str):
    from ase import Atoms

    return {
        "far": Atoms("CH", positions=[[0, 0, 0], [1e6, 0, 0]]),
        "nan": Atoms("CH", positions=[[0, 0, 0], [np.nan, 0, 0]]),
        "inf-cell": Atoms("CH", positions=[[0, 0, 0], [1, 0, 0]], cell=np.diag([np.inf, 5, 5]), pbc=True),
        "empty": Atoms(),
        "coincident": Atoms("CHH", positions=[[0, 0, 0], [1, 0, 0], [1, 0, 0]]),
    }[kind]


@pytest.mark.parametrize("kind,message", [
    ("far", r"field positions: atom 1 is at \[1000000.0, 0.0, 0.0\] Å, beyond ±100000 Å \(wrong units"),
    ("nan", r"field positions: atom 1 has non-finite coordinates \[nan, 0.0, 0.0\]"),
    ("inf-cell", r"field cell: cell .* is non-finite"),
    ("empty", r"LAMCalculator: the Atoms object has no atoms"),
    ("coincident", r"LAMCalculator: atoms H1 and H2 coincide \(0 Å apart\)"),
])
def test_calculator_refuses_what_would_crash_or_return_nan(chon_model, kind, message):
    from lam_lab.md.calculator import LAMCalculator

    atoms = _atoms(kind)
    atoms.calc = LAMCalculator(chon_model)
    with pytest.raises(ValueError, match=message):
        atoms.get_potential_energy()


def test_a_1e6_angstrom_coordinate_no_longer_kills_the_interpreter():
    code = ("import numpy as np; from lam_lab.nn.neighbor_list import neighbor_list\n"
            "try:\n    neighbor_list(np.array([[0., 0, 0], [1e6, 0, 0]]), 6.0)\n"
            "except ValueError as e:\n    print('refused:', e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and "refused: field positions: atom 1 is at" in proc.stdout  # was SIGFPE (-8)


@pytest.mark.parametrize("kind,reason", [
    ("nan", r"non-finite positions \(NaN or inf\) on 1 atom\(s\), first H1"),
    ("far", r"atom H1 is beyond ±100000 Å"),
])
def test_md_from_a_broken_start_stops_with_the_guard(chon_model, kind, reason):
    from lam_lab.md.calculator import LAMCalculator
    from lam_lab.md.runner import run_md

    res = run_md(_atoms(kind), LAMCalculator(chon_model), steps=5, on_guard="stop")
    assert res.status == "guard" and res.trip.kind == "nonfinite" and res.steps_done == 0
    assert __import__("re").search(reason, res.reason)


@pytest.mark.parametrize("mutate,message", [
    (lambda f: setattr(f, "positions", f.positions[:0]) or setattr(f, "numbers", f.numbers[:0]), r"frame 1, field numbers: frame has no atoms"),
    (lambda f: f.positions.__setitem__((0, 0), np.nan), r"frame 1, field positions: non-finite coordinates"),
    (lambda f: f.labels["emt"].__setattr__("energy", np.inf), r"frame 1, field labels\['emt'\]\.energy: energy is inf"),
    (lambda f: f.positions.__setitem__(1, f.positions[0]), r"frame 1, field positions: atoms 0 and 1 overlap"),
    (lambda f: f.positions.__setitem__((2, 0), 1e6), r"frame 1, field positions: atom 2 is at \[1000000.0, .* beyond ±100000 Å"),
])
def test_train_validates_python_datasets_like_files(cu, mutate, message):
    bad = ll.data.Dataset([f.copy() for f in cu], name="cu")
    mutate(bad[1])
    with pytest.raises(DataError, match=message):
        ll.train(tiny_model(["Cu"]), {"cu": bad}, steps=1, out_dir=None, **FAST)


def test_cli_train_twice_into_one_folder_names_resume(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    data = tmp_path / "cu.extxyz"
    ll.data.write(emt_frames("Cu", 4), data)
    cfg.write_text(f"data: {{cu: {{source: {data}}}}}\nmodel: {{preset: dpa2-small, overrides: {{repformer_layers: 1}}}}\n"
                   f"train: {{steps: 1, batch_size: 1}}\nout_dir: {tmp_path / 'out'}\n")
    assert _run_cli(["train", str(cfg), "--quiet"], capsys)[0] == 0
    rc, err = _run_cli(["train", str(cfg), "--quiet"], capsys)
    assert rc == 2 and len(err) == 1 and "already holds a training run" in err[0] and "--resume" in err[0]
    assert _run_cli(["train", str(cfg), "--quiet", "--resume", "--steps", "2"], capsys)[0] == 0


def test_flipped_bytes_in_a_checkpoint_stop_the_resume(tmp_path, cu):
    ll.train(tiny_model(["Cu"]), cu, steps=2, out_dir=tmp_path, checkpoint_every=1, **FAST)
    path = sorted((tmp_path / "checkpoints").glob("step_*.pt"))[-1]
    state = torch.load(path, weights_only=True)
    blob = max(state["model"].values(), key=lambda t: t.numel()).numpy().tobytes()
    raw = bytearray(path.read_bytes())
    at = bytes(raw).find(blob[:64])
    raw[at + 8] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=rf"{path.name}: content checksum mismatch"):
        ll.train(tiny_model(["Cu"]), cu, steps=4, out_dir=tmp_path, resume=True, **FAST)


def test_a_model_given_an_empty_frame_says_so(chon_model):
    from lam_lab.data import Frame

    with pytest.raises(DataError, match=r"field numbers: the structure has no atoms"):  # was "cannot reshape tensor"
        chon_model.prepare(Frame(np.zeros(0, int), np.zeros((0, 3))))


@pytest.mark.parametrize("model_keys,message", [
    ("type_map: [Ag, Cu]", r"field model.type_map: the model file does not match this run file: type map \['Cu', 'Ag'\] in the file vs \['Ag', 'Cu'\] here"),
    ("overrides: {repformer_layers: 3}", r"field model.overrides: model.overrides cannot change a model loaded from a file \(repformer_layers 1 in the file vs 3\)"),
])
def test_a_run_file_loading_a_model_with_other_settings_is_refused(tmp_path, model_keys, message):
    from lam_lab.train.config import ConfigError, load_run_config
    from lam_lab.train.run import prepare_run

    ll.save(tiny_model(["Cu", "Ag"]), tmp_path / "m.pt")
    ll.data.write(emt_frames("Cu", 2), tmp_path / "cu.extxyz")
    (tmp_path / "run.yaml").write_text(f"data: {{cu: {{source: cu.extxyz}}}}\nmodel: {{path: m.pt, {model_keys}}}\n")
    with pytest.raises(ConfigError, match=message):
        prepare_run(load_run_config(tmp_path / "run.yaml"), str(tmp_path / "run.yaml"))
