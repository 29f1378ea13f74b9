"""DeePMD-kit side of train_speed.py: errors of a trained DeePMD-kit model on deepmd/npy test systems.

Runs in benchmarks/.venv-deepmd (not lam_lab's venv) and prints one JSON line.

Usage: .venv-deepmd/bin/python _deepmd_train_side.py MODEL TEST_ROOT [THREADS]
  -> stdout line "DEEPMD_TEST {"e_rmse": meV/atom, "f_rmse": meV/Å, "frames": n, "atoms": n, ...}"
MODEL is a checkpoint (.pt) or a frozen model (.pth); TEST_ROOT one system or a root of systems
(type.raw, type_map.raw, set.*/{coord,box,energy,force}.npy, nopbc). Types are mapped through each
system's type_map.raw onto the model's type map, so the test set may hold fewer elements. Errors are
taken as lam_lab's evaluate does: energy per atom over frames, force components over atoms.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def systems(root: Path) -> list[Path]:
    """System directories at or below ``root`` (those holding type.raw), sorted."""
    if (root / "type.raw").is_file():
        return [root]
    return sorted(p.parent for p in root.rglob("type.raw"))


def main() -> None:
    model_path, root = sys.argv[1], Path(sys.argv[2])
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["DP_INTRA_OP_PARALLELISM_THREADS"] = str(threads)
    os.environ["DP_INTER_OP_PARALLELISM_THREADS"] = "1"
    import numpy as np
    from deepmd.infer import DeepPot

    dp = DeepPot(model_path)
    model_tm = list(dp.get_type_map())
    e_sq = f_sq = 0.0
    n_frames = n_atoms = n_f = 0
    for sysdir in systems(root):
        tm = (sysdir / "type_map.raw").read_text().split()
        types = np.loadtxt(sysdir / "type.raw", dtype=int, ndmin=1)
        atype = np.array([model_tm.index(tm[t]) for t in types])
        nat = len(atype)
        periodic = not (sysdir / "nopbc").exists()
        for setdir in sorted(sysdir.glob("set.*")):
            coord = np.load(setdir / "coord.npy").reshape(-1, nat * 3)
            box = np.load(setdir / "box.npy").reshape(-1, 9) if periodic else None
            energy = np.load(setdir / "energy.npy").reshape(-1)
            force = np.load(setdir / "force.npy").reshape(-1, nat * 3)
            e, f, _ = dp.eval(coord, box, atype, atomic=False)
            e_sq += float((((e.reshape(-1) - energy) / nat) ** 2).sum())
            f_sq += float(((f.reshape(len(coord), -1) - force) ** 2).sum())
            n_frames += len(coord)
            n_atoms += nat * len(coord)
            n_f += force.size
    print("DEEPMD_TEST " + json.dumps({
        "e_rmse": 1000 * (e_sq / n_frames) ** 0.5, "f_rmse": 1000 * (f_sq / n_f) ** 0.5,
        "frames": n_frames, "atoms": n_atoms, "model": model_path, "type_map": model_tm,
    }))


if __name__ == "__main__":
    main()
