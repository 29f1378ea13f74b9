"""Content-addressed disk cache of labels: one small ``.npz`` per (structure, method, settings).

Entries are written one file each (atomic, safe with parallel workers) and can be packed into
compressed archives beside the folder (``<folder>.npz``, then shards ``<folder>-2.npz``, ...), read
when a key has no file: a long labelling job commits a few files per data set, not thousands, and a
pack adds a shard rather than rewriting a large archive.
"""

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

from lam_lab.atomic import atomic_write
from lam_lab.data.frame import Frame, Labels

# Positions are rounded to 1e-6 Å before hashing: far below any physical difference, far above
# the noise a text round trip (extxyz with 8 decimals) adds, so a re-read structure hits the cache.
POSITION_DECIMALS = 6
CACHE_FORMAT = 1
# A pack starts a new shard rather than grow one past this size (compressed bytes): each committed
# archive stays small and a pack rewrites at most one shard.
SHARD_BYTES = 8 * 2**20


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
    """Directory of ``<key[:2]>/<key>.npz`` files, each written atomically, plus the packed archives beside it."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self._packed: dict[str, tuple[dict[str, np.ndarray], Path]] | None = None

    def _from_archive(self, key: str) -> tuple[dict[str, np.ndarray], Path] | None:
        """The archived arrays of ``key`` and the archive holding them (archives read once, lazily)."""
        if self._packed is None:
            self._packed = {k: (arrays, path) for path in archive_paths(self.directory)
                            for k, arrays in read_archive(path).items()}
        return self._packed.get(key)

    def path(self, key: str) -> Path:
        """File of one key (two-level layout keeps directories small)."""
        return self.directory / key[:2] / f"{key}.npz"

    def get(self, key: str, n_atoms: int) -> CacheEntry | None:
        """The entry of ``key``, or None when absent or unreadable (a corrupt file is ignored)."""
        path = self.path(key)
        if not path.is_file():
            packed = self._from_archive(key)
            return None if packed is None else _entry(packed[0], n_atoms, str(packed[1]))
        try:
            with np.load(path, allow_pickle=False) as z:
                return _entry({k: z[k] for k in z.files}, n_atoms, str(path))
        except Exception as exc:  # truncated zip, bad pickle, wrong shapes: recompute instead
            warnings.warn(f"ignoring unreadable label cache entry {path}: {exc}", RuntimeWarning, stacklevel=2)
            return None

    def put(self, key: str, entry: CacheEntry) -> Path:
        """Write ``entry`` under ``key`` atomically; returns the file path."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = _arrays(entry)
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

    def keys(self) -> list[str]:
        """Keys held as files (not counting the archive)."""
        return sorted(p.stem for p in self.directory.glob("*/*.npz")) if self.directory.is_dir() else []

    def __len__(self) -> int:
        return len(set(self.keys()).union(*(read_archive(p) for p in archive_paths(self.directory))))


def archive_paths(directory: Path) -> list[Path]:
    """The packed archives of a cache folder, in order: ``<folder>.npz``, ``<folder>-2.npz``, ..."""
    shards = [p for p in directory.parent.glob(f"{directory.name}-*.npz") if _shard_index(directory, p) > 1]
    first = _shard_path(directory, 1)
    return ([first] if first.is_file() else []) + sorted(shards, key=lambda p: _shard_index(directory, p))


def _shard_path(directory: Path, index: int) -> Path:
    """Archive number ``index`` of a cache folder: 1 is ``<folder>.npz``, k > 1 is ``<folder>-k.npz``."""
    return directory.parent / (f"{directory.name}.npz" if index == 1 else f"{directory.name}-{index}.npz")


def _shard_index(directory: Path, path: Path) -> int:
    """The number of an archive named by :func:`_shard_path` (0 for a file that is not one)."""
    if path.name == f"{directory.name}.npz":
        return 1
    tail = path.stem[len(directory.name) + 1:]
    return int(tail) if path.stem.startswith(f"{directory.name}-") and tail.isdigit() else 0


def read_archive(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """key -> arrays of a packed archive (empty when there is none; a corrupt one warns and is ignored)."""
    if not path.is_file():
        return {}
    out: dict[str, dict[str, np.ndarray]] = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            for name in z.files:
                key, field = name.split("/", 1)
                out.setdefault(key, {})[field] = z[name]
    except Exception as exc:
        warnings.warn(f"ignoring unreadable label archive {path}: {exc}", RuntimeWarning, stacklevel=2)
        return {}
    return out


def pack(directory: str | os.PathLike, remove: bool = False, shard_bytes: int = SHARD_BYTES) -> list[Path]:
    """Add the folder's entries that no archive holds yet to the archives (compressed, written atomically).

    They join the last archive while it stays under ``shard_bytes``, otherwise they start new shards
    of about that size; earlier archives are never rewritten. Returns the archives written.
    """
    cache = LabelCache(directory)
    archives = archive_paths(cache.directory)
    held = set().union(*(read_archive(p) for p in archives))
    new: dict[str, dict[str, np.ndarray]] = {}
    for key in cache.keys():
        if key not in held:
            with np.load(cache.path(key), allow_pickle=False) as z:
                new[key] = {k: z[k] for k in z.files}
    written: list[Path] = []
    if new:
        size = len(_compressed(new))
        if archives and archives[-1].stat().st_size + size <= shard_bytes:
            _write_archive(archives[-1], {**read_archive(archives[-1]), **new})
            written.append(archives[-1])
        else:  # after the highest shard number, so no archive is ever overwritten
            index = _shard_index(cache.directory, archives[-1]) + 1 if archives else 1
            n_shards = min(len(new), -(-size // shard_bytes))  # an entry is never split, no shard is empty
            for k, part in enumerate(np.array_split(np.array(sorted(new)), n_shards)):
                written.append(_shard_path(cache.directory, index + k))
                _write_archive(written[-1], {key: new[key] for key in part})
    if remove:
        for key in cache.keys():
            cache.path(key).unlink()
    return written


def _compressed(entries: dict[str, dict[str, np.ndarray]]) -> bytes:
    """The compressed ``.npz`` bytes of key -> arrays (fields stored as ``<key>/<field>``)."""
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **{f"{k}/{f}": v for k, fields in sorted(entries.items()) for f, v in fields.items()})
    return buf.getvalue()


def _write_archive(path: Path, entries: dict[str, dict[str, np.ndarray]]) -> None:
    """Write one archive atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _compressed(entries)
    atomic_write(path, lambda fh: fh.write(data))


def _entry(z: dict[str, np.ndarray], n_atoms: int, where: str) -> CacheEntry | None:
    """A CacheEntry from stored arrays; wrong shapes warn and count as a miss (the frame is recomputed)."""
    seconds = float(z["seconds"]) if "seconds" in z else 0.0
    if "failure" in z:
        return CacheEntry(None, str(z["failure"]), seconds)
    energy = float(z["energy"]) if "energy" in z else None
    forces = np.array(z["forces"]) if "forces" in z else None
    virial = np.array(z["virial"]) if "virial" in z else None
    if forces is not None and forces.shape != (n_atoms, 3):
        warnings.warn(f"ignoring label cache entry in {where}: forces shape {forces.shape} != ({n_atoms}, 3)",
                      RuntimeWarning, stacklevel=3)
        return None
    if virial is not None and virial.shape != (3, 3):
        warnings.warn(f"ignoring label cache entry in {where}: virial shape {virial.shape} != (3, 3)",
                      RuntimeWarning, stacklevel=3)
        return None
    return CacheEntry(Labels(energy, forces, virial), None, seconds)


def _arrays(entry: CacheEntry) -> dict[str, Any]:
    """The arrays stored for one entry."""
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
    return arrays
