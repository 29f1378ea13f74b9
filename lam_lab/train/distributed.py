"""Data-parallel training through torchrun + DDP (NCCL on GPUs, gloo on CPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    """Where this process runs: rank, world size, local rank, device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # True when setup() created the process group (so cleanup() ends it)

    @property
    def enabled(self) -> bool:
        """True with more than one process."""
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files and reports events."""
        return self.rank == 0


def pick_device(device: str | torch.device | None, local_rank: int = 0) -> torch.device:
    """``device`` if given, else cuda (this process's local GPU) when available, else cpu."""
    if device is not None and str(device) != "auto":
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup(device: str | torch.device | None = None) -> DistInfo:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1), or run as a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
        return DistInfo(rank, world, local, pick_device(device, local), owns_group=False)
    if world <= 1:
        return DistInfo(device=pick_device(device))
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    dev = pick_device(device, local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world)
    return DistInfo(rank, world, local, dev, owns_group=True)


def cleanup(info: DistInfo) -> None:
    """End the process group if :func:`setup` started it."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """DDP around ``model`` when several processes run, else ``model`` itself.

    ``find_unused_parameters`` is on because a multi-task step trains one head and leaves the
    others idle; inputs are moved by the trainer, so no ``device_ids`` (DDP would otherwise try to
    copy the Batch dataclass).
    """
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, find_unused_parameters=True, broadcast_buffers=False)


def all_max(values: list[float], info: DistInfo) -> list[float]:
    """Element-wise maximum over ranks (used to agree on stop requests and elapsed time)."""
    if not info.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=info.device if info.device.type == "cuda" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def all_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum of ``t`` over ranks (CPU tensors are moved for NCCL and back)."""
    if not info.enabled:
        return t
    dev = info.device if info.device.type == "cuda" else torch.device("cpu")
    x = t.to(dev).clone()
    dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x.to(t.device)
