"""Typed training configuration and the YAML/TOML run file, validated with key paths before training."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# the config machinery lives in lam_lab.config; its names stay importable from here
from lam_lab.config import (  # noqa: F401
    ConfigError,
    Overrides,
    from_dict,
    load_config,
    parse_overrides,
    read_config_file,
    set_key,
    suggest,
)


@dataclass
class LossConfig:
    """Loss prefactors of Eq. 38/41: each goes from ``*_start`` to ``*_limit`` as the LR decays.

    Energies enter per atom, ``((E − E*)/N)²`` in eV², forces as the mean of ``(F − F*)²`` over the
    3N components in (eV/Å)², virials as ``((Ξ − Ξ*)/N)²`` averaged over the 9 components. The
    defaults are force-heavy at first (MACE-like, forces:energy = 100:1) and give energy more weight
    as the LR decays (1:1 at the end, like MACE's second stage): on DeePMD water (dpa2-small, 400
    steps of one 192-atom frame) ending at ``pf_e=10`` left a 136 meV/atom energy drift, ending at
    100 gave 2.9 meV/atom and 430 meV/Å. ``energy_norm="paper"`` uses Eq. 38 literally, ``|ΔE|²/N``.
    """

    pf_e_start: float = 1.0
    pf_e_limit: float = 100.0
    pf_f_start: float = 100.0
    pf_f_limit: float = 100.0
    pf_v_start: float = 0.0
    pf_v_limit: float = 0.0
    energy_norm: Literal["per_atom", "paper"] = "per_atom"


@dataclass
class TrainConfig:
    """How to train: budget, batching, optimizer, schedule, EMA, loss, logging and checkpoints.

    The defaults are a recipe that learns fast per minute of wall time (issue 11, MACE-like):
    AMSGrad Adam at ``lr=2e-3`` with a 5 % linear warm-up and a cosine decay to 5 % of ``lr``
    stretched over the requested ``steps`` or ``minutes`` (a time budget drives the schedule by the
    elapsed fraction, so a 10-minute run anneals at minute 10, not earlier), an exponential moving
    average of the weights (``ema_decay=0.99``; the EMA weights are used for validation, checkpoints
    and the returned model), force-heavy prefactors (:class:`LossConfig`), per-element energy bias
    fitted by least squares on each task's data before step 0 (Eq. 6), gradient-norm clipping at 10.

    The DPA-2 paper's recipe is ``schedule="exp", warmup=0, amsgrad=False, ema_decay=None`` with
    ``final_lr_ratio`` ≈ 1e-4 and DeePMD prefactors (``pf_e 0.02→1, pf_f 1000→1``).
    """

    steps: int | None = None  # optimizer steps; with ``minutes`` too, whichever ends first
    minutes: float | None = None  # wall-time budget (min); the LR schedule follows the time fraction
    batch_size: int = 1  # frames per step (per process under DDP)
    batch_atoms: int | None = None  # if set: add frames until the batch holds at least this many atoms
    lr: float = 2e-3
    schedule: Literal["cosine", "exp", "linear", "constant"] = "cosine"
    warmup: float | None = None  # fraction of the run; None: 0.05 (0 for "exp")
    final_lr_ratio: float = 0.05  # lr at the end / lr
    optimizer: Literal["adam", "adamw"] = "adam"
    amsgrad: bool = True
    weight_decay: float = 0.0
    grad_clip: float | None = 10.0  # max gradient 2-norm, None: no clipping
    ema_decay: float | None = 0.99  # None: no EMA
    loss: LossConfig = field(default_factory=LossConfig)
    fit_bias: bool = True  # Eq. 6 energy bias per task before step 0 (not on resume)
    seed: int = 0
    log_every: int = 10  # steps between step events (also at least every ``log_seconds``)
    log_seconds: float = 5.0
    eval_every: int | None = None  # steps between validations; None: 10 times per run
    checkpoint_every: int | None = None  # steps between checkpoints; None: at each validation
    keep_checkpoints: int = 3
    val_batch_size: int = 8
    cache_graphs: bool = True  # keep each frame's neighbor lists (≈0.4 MB per 192-atom frame); False: rebuild
    device: str | None = None  # None: cuda if available, else cpu
    bf16: bool = False  # autocast to bfloat16 on CUDA
    tf32: bool = True  # TF32 matmuls on CUDA
    threads: int | None = None  # torch CPU threads (None: leave torch's choice)

    default_steps: typing.ClassVar[int] = 1000

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with some fields changed (``loss`` may be a dict of LossConfig fields)."""
        if isinstance(changes.get("loss"), dict):
            changes["loss"] = dataclasses.replace(self.loss, **changes["loss"])
        return dataclasses.replace(self, **changes)

    def check(self, source: str | None = None) -> None:
        """Raise :class:`ConfigError` (with the key path, and the run file if given) for values out of range."""
        def bad(key: str, msg: str) -> None:
            """Raise the error for ``train.<key>``."""
            raise ConfigError(msg, source=source, field=f"train.{key}")

        if self.steps is not None and self.steps < 1:
            bad("steps", f"must be ≥ 1, got {self.steps}")
        if self.minutes is not None and self.minutes <= 0:
            bad("minutes", f"must be > 0, got {self.minutes}")
        if self.batch_size < 1:
            bad("batch_size", f"must be ≥ 1, got {self.batch_size}")
        if self.lr <= 0:
            bad("lr", f"must be > 0, got {self.lr}")
        if not 0 < self.final_lr_ratio <= 1:
            bad("final_lr_ratio", f"must be in (0, 1], got {self.final_lr_ratio}")
        if self.warmup is not None and not 0 <= self.warmup < 1:
            bad("warmup", f"must be in [0, 1), got {self.warmup}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            bad("ema_decay", f"must be in (0, 1) or null, got {self.ema_decay}")
        if self.keep_checkpoints < 1:
            bad("keep_checkpoints", f"must be ≥ 1, got {self.keep_checkpoints}")


@dataclass
class ModelSpec:
    """Which model to train: a preset name (+ overrides) or a saved model file (``path``)."""

    preset: str | None = "dpa2-small"
    path: str | None = None
    type_map: list[str] | None = None  # None: the elements of all data sets
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataSpec:
    """One task: a built-in data set name or a file path, its label set, weight, head, validation."""

    SHORTHAND: typing.ClassVar[str] = "source"  # a bare string is shorthand for {source: ...}

    source: str
    label: str | None = None
    weight: float = 1.0
    head: str | None = None  # None: the task name
    validation: float | str | None = None  # fraction split off (seeded) or another source
    frames: int | None = None  # use a random subset of N frames (seeded by train.seed; quick runs)
    new_head: bool = False  # allow a head the loaded model does not have yet


@dataclass
class RunConfig:
    """A whole ``lam-lab train`` run file: model, data (task name → DataSpec), train, out_dir."""

    data: dict[str, DataSpec]
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainConfig = field(default_factory=TrainConfig)
    out_dir: str = "lam_lab_runs/train"
    resume: bool = False

    def check(self, source: str | None = None) -> None:
        """Raise :class:`ConfigError` for a run without data or with training values out of range."""
        if not self.data:
            raise ConfigError("missing 'data': name at least one data set", source=source, field="data")
        self.train.check(source)


# -- loading -----------------------------------------------------------------------------------------
def load_run_config(path: str | Path, overrides: Overrides = None) -> RunConfig:
    """Read a YAML or TOML run file, apply ``key.path=value`` (or ``{"key.path": value}``) overrides, validate."""
    return load_config(path, RunConfig, overrides, what="run file")


def parse_run_config(raw: dict[str, Any], source: str | None = None) -> RunConfig:
    """A validated :class:`RunConfig` from a plain dict (unknown keys and bad types name their path)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"top level must be a mapping, got {type(raw).__name__}", source=source)
    return load_config(raw, RunConfig, name=source)


def apply_override(raw: dict[str, Any], item: str, source: str) -> None:
    """Set ``a.b.c=value`` (value parsed as YAML) inside the raw dict."""
    for key, value in parse_overrides([item], source).items():
        set_key(raw, key, value, source)
