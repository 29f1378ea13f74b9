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
    with pytest.raises(NonFiniteError, match=r"training diverged at step \d+: .* of task 'cu'; the weights were not updated"):
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


def test_model_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        ll.save(tiny_model(["Cu"]), tmp_path / "m.pt")
    finally:
        os.umask(old)
    assert (tmp_path / "m.pt").stat().st_mode & 0o777 == 0o644
