"""Stage bookkeeping: a stage whose settings and upstream results did not change is skipped on a re-run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lam_lab.atomic import atomic_write_text


@dataclass
class StageRecord:
    """What a finished stage left: its cache key, wall time (s), artefact paths and summary numbers."""

    name: str
    key: str
    seconds: float
    files: dict[str, str] = field(default_factory=dict)  # role -> path relative to the pipeline's out dir
    summary: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False


def stage_key(name: str, settings: dict[str, Any], upstream: list[StageRecord],
              extra: dict[str, Any] | None = None) -> str:
    """A hash of a stage's settings, its upstream stages' keys and the lam_lab version."""
    from lam_lab import __version__

    blob = json.dumps({"stage": name, "settings": settings, "upstream": [r.key for r in upstream],
                       "extra": extra or {}, "lam_lab": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def builtin_fingerprint(folders: list[Path] | None = None) -> str:
    """A hash of the shipped data sets and models: rebuilding a built-in set or retraining a shipped model re-runs
    the stages that read them (their names and settings alone would not change)."""
    from lam_lab import datasets, pretrained

    h = hashlib.sha256()
    for folder in folders if folders is not None else [datasets.FILES, pretrained.FILES]:
        for p in sorted(x for x in Path(folder).glob("*") if x.is_file()):
            h.update(p.name.encode())
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:16]


def load_record(out: Path, name: str, key: str) -> StageRecord | None:
    """The stored record of ``name`` if it has the same key and all its files still exist."""
    path = out / name / "stage.json"
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if raw.get("key") != key or not all((out / f).exists() for f in raw.get("files", {}).values()):
        return None
    return StageRecord(name, key, float(raw.get("seconds", 0.0)), dict(raw.get("files", {})),
                       dict(raw.get("summary", {})), True)


def save_record(out: Path, record: StageRecord) -> None:
    """Write a stage's record (atomically: a killed pipeline never leaves a half-written record)."""
    from lam_lab.json_safe import dumps

    data = {"key": record.key, "seconds": record.seconds, "files": record.files, "summary": record.summary}
    atomic_write_text(out / record.name / "stage.json", dumps(data))
