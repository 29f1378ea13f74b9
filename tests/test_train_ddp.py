"""Data-parallel training: 2 CPU processes (gloo) stay in sync and match one process with twice the batch."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

HERE = str(Path(__file__).parent)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    sys.path.insert(0, HERE)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from lam_lab.train import TrainConfig, train
    from test_train_fixtures import emt_frames, tiny_model

    data = {"cu": emt_frames("Cu", 6, seed=0), "ag": emt_frames("Ag", 4, seed=1)}
    cfg = TrainConfig(lr=1e-2, batch_size=1, log_every=2, device="cpu")
    res = train(tiny_model(["Cu", "Ag"]), data, steps=8, config=cfg, out_dir=Path(out) / "run", progress=False,
                validation={"cu": data["cu"][:2]})
    torch.save({k: v.clone() for k, v in res.model.state_dict().items()}, Path(out) / f"rank{rank}.pt")


@pytest.mark.slow
def test_two_gloo_processes_stay_in_sync_and_equal_a_double_batch(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in r0:
        torch.testing.assert_close(r0[k], r1[k], rtol=0, atol=0)
    # same run in one process with batch_size 2: DDP averages the two ranks' gradients = the mean over 2 frames
    sys.path.insert(0, HERE)
    from lam_lab.train import TrainConfig, train
    from test_train_fixtures import emt_frames, tiny_model

    data = {"cu": emt_frames("Cu", 6, seed=0), "ag": emt_frames("Ag", 4, seed=1)}
    single = train(tiny_model(["Cu", "Ag"]), data, steps=8, out_dir=None, progress=False,
                   config=TrainConfig(lr=1e-2, batch_size=2, device="cpu"))
    init = tiny_model(["Cu", "Ag"]).state_dict()
    moved = 0
    for k, v in single.model.state_dict().items():
        torch.testing.assert_close(r0[k], v, rtol=1e-4, atol=1e-5)
        moved += k in init and not torch.equal(init[k], v)
    assert moved > 0
    assert (tmp_path / "run" / "model.pt").exists() and (tmp_path / "run" / "events.jsonl").exists()
