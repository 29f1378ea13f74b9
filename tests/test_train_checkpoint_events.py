"""Checkpoints (atomic, keep-last-k, weights_only, corrupt files) and events (JSONL, callables, failing subscribers)."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from lam_lab.data.errors import DataError
from lam_lab.train import checkpoint as ck
from lam_lab.train.events import Event, EventBus, JSONLLogger, TqdmProgress, read_jsonl


def _state(x: float) -> dict:
    return {"step": int(x), "model": {"w": torch.full((3,), x)}, "rng": {"torch": torch.get_rng_state()},
            "config": {"lr": 1e-3, "warmup": None}, "history": [{"kind": "step", "loss": 1.5}]}


def test_keep_last_k_and_weights_only_roundtrip(tmp_path):
    mgr = ck.CheckpointManager(tmp_path / "c", keep=2)
    for s in (1, 2, 3):
        mgr.save(_state(s), s)
    assert [p.name for p in mgr.paths()] == ["step_00000002.pt", "step_00000003.pt"]
    state = ck.load_checkpoint(mgr.latest())
    assert state["step"] == 3 and torch.equal(state["model"]["w"], torch.full((3,), 3.0))
    assert state["format"] == "lam_lab.checkpoint"


def test_failure_during_write_never_corrupts_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c" / "step_00000001.pt"
    ck.atomic_save({"format": "lam_lab.checkpoint", **_state(1)}, path)
    before = path.read_bytes()
    real_save = torch.save

    def crash(obj, fh, *a, **k):  # write half a file, then die as a killed process would
        real_save(obj, fh, *a, **k)
        fh.truncate(fh.tell() // 2)
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        ck.atomic_save({"format": "lam_lab.checkpoint", **_state(2)}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == before
    assert ck.load_checkpoint(path)["step"] == 1
    assert list(path.parent.glob("*.tmp")) == []


def test_corrupt_and_foreign_files_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="bad.pt"):
        ck.load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"w": torch.zeros(2)}, other)
    with pytest.raises(DataError, match="not a lam_lab training checkpoint"):
        ck.load_checkpoint(other)
    with pytest.raises(DataError, match="not found"):
        ck.load_checkpoint(tmp_path / "missing.pt")


def test_jsonl_callable_and_a_failing_subscriber(tmp_path):
    seen = []
    log = JSONLLogger(tmp_path / "events.jsonl")

    def broken(ev):
        raise RuntimeError("plot closed")

    bus = EventBus([seen.append, broken, log])
    with pytest.warns(UserWarning, match="plot closed"):
        bus.emit(Event("start", step=0, total_steps=10))
    bus.emit(Event("step", step=1, loss=float("nan"), train_rmse={"a": {"e": 1.0, "f": 2.0}}))
    bus.close()
    assert [e.kind for e in seen] == ["start", "step"]
    rows = read_jsonl(tmp_path / "events.jsonl")
    assert rows[1]["loss"] is None and rows[1]["train_rmse"]["a"]["f"] == 2.0
    json.dumps(rows)


def test_events_from_threads_and_tqdm_bar():
    bar = TqdmProgress(disable=True)
    bus = EventBus([bar])
    got = []
    bus.subscribe(got.append)
    threads = [threading.Thread(target=lambda k=k: bus.emit(Event("step", step=k, lr=1e-3, loss=1.0))) for k in range(8)]
    bus.emit(Event("start", step=0, total_steps=8))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bus.emit(Event("end", step=8))
    assert len(got) == 10
