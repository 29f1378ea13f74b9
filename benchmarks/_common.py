"""Shared helpers of the benchmark scripts: result files, water boxes, timing."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
WATER = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "water-deepmd"
WATER_NAME = "../shared/data/water-deepmd"  # how results name it: relative to the repository, no machine path


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import os

    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/NAME.json`` (with the machine description) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({**payload, "machine": machine()}, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def best_time(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1) -> float:
    """Best wall time of ``fn`` in seconds over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(min(times))


def water_box(n_molecules: int, density: float = 1.0, seed: int = 0):
    """A periodic liquid-like water box of ``n_molecules`` (ASE Atoms) at ``density`` g/cm³."""
    from ase import Atoms
    from ase.build import molecule

    rng = np.random.default_rng(seed)
    mass = 18.015 * n_molecules / 6.02214076e23  # g
    length = (mass / density) ** (1 / 3) * 1e8  # Å
    m = max(1, int(np.ceil(n_molecules ** (1 / 3))))
    grid = (np.stack(np.meshgrid(*[np.arange(m)] * 3, indexing="ij"), -1).reshape(-1, 3) + 0.5) * (length / m)
    h2o = molecule("H2O")
    atoms = Atoms(cell=[length] * 3, pbc=True)
    for center in grid[rng.permutation(len(grid))[:n_molecules]]:
        w = h2o.copy()
        w.rotate(rng.uniform(0, 360), rng.normal(size=3))
        w.translate(center - w.get_center_of_mass())
        atoms += w
    return atoms


def deepmd_thread_env(threads: int) -> dict[str, str]:
    """Environment for a DeePMD-kit subprocess with ``threads`` intra-op threads (one inter-op), GPU hidden."""
    import os

    return {**os.environ, "OMP_NUM_THREADS": str(threads), "DP_INTRA_OP_PARALLELISM_THREADS": str(threads),
            "DP_INTER_OP_PARALLELISM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
