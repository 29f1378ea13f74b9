"""Build-stage cache: each expensive step's frames are stored once under a hash of its settings."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lam_lab.data.dataset import Dataset
from lam_lab.data.frame import Frame

log = logging.getLogger("lam_lab.datasets")


@dataclass
class BuildContext:
    """What every builder gets: cache directory (None: no cache), workers, quick flag, seed, progress."""

    name: str
    cache_dir: Path | None
    workers: int | None
    quick: bool
    seed: int
    progress: bool

    def say(self, msg: str) -> None:
        """A progress line (log and, when progress is on, stdout)."""
        log.info("%s: %s", self.name, msg)
        if self.progress:
            print(f"[{self.name}] {msg}", flush=True)

    def label_cache(self) -> str | None:
        """Directory of the labelers' content-hash cache."""
        return None if self.cache_dir is None else str(self.cache_dir / "labels")


def stage_key(name: str, params: dict[str, Any]) -> str:
    """Short hash of a stage's name and settings."""
    blob = json.dumps({"stage": name, **params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def stage(ctx: BuildContext, name: str, params: dict[str, Any], make: Callable[[], list[Frame]]) -> list[Frame]:
    """Frames of stage ``name``: read from the cache when built before with the same ``params``."""
    from lam_lab.data.io.lamh5 import read_lamh5, write_lamh5

    if ctx.cache_dir is None:
        return make()
    path = ctx.cache_dir / "stages" / f"{name}-{stage_key(name, params)}.lamh5"
    if path.is_file():
        try:
            return list(read_lamh5(path).frames)
        except Exception as exc:  # a stage file cut short by a kill is rebuilt, not trusted
            log.warning("rebuilding unreadable stage file %s: %s", path, exc)
    frames = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_lamh5(Dataset(frames, name), path, precision="float64")
    return frames


def json_stage(ctx: BuildContext, name: str, params: dict[str, Any],
               make: Callable[[], dict[str, Any]] | None) -> dict[str, Any] | None:
    """A stage whose result is a JSON document (e.g. a TS search), cached like :func:`stage`; ``make=None``
    only reads the cache (None when the stage has not run)."""
    import gzip

    from lam_lab.atomic import atomic_write

    if ctx.cache_dir is None:
        return make()
    base = ctx.cache_dir / "stages" / f"{name}-{stage_key(name, params)}"
    path = base.with_name(base.name + ".json.gz")
    for found in (path, base.with_name(base.name + ".json")):  # plain .json: written by earlier builds
        if found.is_file():
            try:
                raw = found.read_bytes()
                return json.loads(gzip.decompress(raw) if found.suffix == ".gz" else raw)
            except (OSError, ValueError) as exc:
                log.warning("rebuilding unreadable stage file %s: %s", found, exc)
    if make is None:
        return None
    doc = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: fh.write(gzip.compress(json.dumps(doc).encode(), mtime=0)))
    return doc
