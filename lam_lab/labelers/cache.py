"""Content-addressed disk cache of labels: one small ``.npz`` per (structure, method, settings)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lam_lab.data.frame import Frame, Labels

# Positions are rounded to 1e-6 Å before hashing: far below any physical difference, far above
# the noise a text round trip (extxyz with 8 decimals) adds, so a re-read structure hits the cache.
POSITION_DECIMALS = 6
CACHE_FORMAT = 1


def frame_key(frame: Frame, method: dict[str, Any]) -> str:
    """Hex SHA-256 of the structure (numbers, rounded positions/cell Å, pbc) and the method dict."""
    h = hashlib.sha256()
    h.update(f"lam_lab-label-cache-v{CACHE_FORMAT}".encode())
    h.update(np.ascontiguousarray(frame.numbers, dtype="<i8").tobytes())
    # + 0.0 turns -0.0 into 0.0 so both signs of zero hash alike
    h.update((np.round(frame.positions, POSITION_DECIMALS) + 0.0).astype("<f8").tobytes())
    h.update((np.round(frame.cell, POSITION_DECIMALS) + 0.0).astype("<f8").tobytes())
    h.update(np.asarray(frame.pbc, dtype=bool).tobytes())
    h.update(json.dumps(method, sort_keys=True, default=str).encode())
    return h.hexdigest()


@dataclass
class CacheEntry:
    """What the cache holds for one key: labels (eV, eV/Å, eV) or the reason the method failed."""

    labels: Labels | None
    failure: str | None = None
    seconds: float = 0.0


class LabelCache:
    """Directory of ``<key[:2]>/<key>.npz`` files, each written atomically (temp file + rename)."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        """File of one key (two-level layout keeps directories small)."""
        return self.directory / key[:2] / f"{key}.npz"

    def get(self, key: str, n_atoms: int) -> CacheEntry | None:
        """The entry of ``key``, or None when absent or unreadable (a corrupt file is ignored)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                seconds = float(z["seconds"]) if "seconds" in z else 0.0
                if "failure" in z:
                    return CacheEntry(None, str(z["failure"]), seconds)
                energy = float(z["energy"]) if "energy" in z else None
                forces = np.array(z["forces"]) if "forces" in z else None
                virial = np.array(z["virial"]) if "virial" in z else None
            if forces is not None and forces.shape != (n_atoms, 3):
                raise ValueError(f"forces shape {forces.shape} != ({n_atoms}, 3)")
            if virial is not None and virial.shape != (3, 3):
                raise ValueError(f"virial shape {virial.shape} != (3, 3)")
            return CacheEntry(Labels(energy, forces, virial), None, seconds)
        except Exception as exc:  # truncated zip, bad pickle, wrong shapes: recompute instead
            warnings.warn(f"ignoring unreadable label cache entry {path}: {exc}", RuntimeWarning, stacklevel=2)
            return None

    def put(self, key: str, entry: CacheEntry) -> Path:
        """Write ``entry`` under ``key`` atomically; returns the file path."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {"seconds": np.float64(entry.seconds)}
        if entry.failure is not None:
            arrays["failure"] = np.str_(entry.failure)
        elif entry.labels is not None:
            lab = entry.labels
            if lab.energy is not None:
                arrays["energy"] = np.float64(lab.energy)
            if lab.forces is not None:
                arrays["forces"] = lab.forces
            if lab.virial is not None:
                arrays["virial"] = lab.virial
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:8]}-", suffix=".npz.tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the whole new one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*/*.npz")) if self.directory.is_dir() else 0
