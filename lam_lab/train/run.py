"""A run file made real: data sets and model resolved (errors with key paths) before any training."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lam_lab.data.dataset import Dataset
from lam_lab.data.errors import DataError
from lam_lab.train.config import ConfigError, RunConfig, load_run_config
from lam_lab.train.data import split_validation

if TYPE_CHECKING:
    from lam_lab.potential import Potential
    from lam_lab.train.trainer import TrainResult


@dataclass
class PreparedRun:
    """Everything :func:`lam_lab.train` needs, checked: model, data per task, weights, labels, heads."""

    config: RunConfig
    model: "Potential"
    datasets: dict[str, Dataset]
    validation: dict[str, Dataset]
    weights: dict[str, float]
    labels: dict[str, str]
    heads: dict[str, str]


def load_source(source: str, where: str, base: Path | None = None, cfg_file: str | None = None) -> Dataset:
    """A built-in data set by name or a file/folder by path (relative to the run file's folder first).

    Any problem is a ConfigError naming the run file ``cfg_file`` and the key path ``where``.
    """
    from lam_lab.data.errors import UnknownSourceError
    from lam_lab.data.io import load_source as resolve

    try:
        return resolve(source, base=base)
    except UnknownSourceError as exc:
        raise ConfigError(exc.message, source=cfg_file, field=where) from None
    except DataError as exc:
        raise ConfigError(f"cannot read {exc.source or source}: {exc}", source=cfg_file, field=where) from exc


def prepare_run(cfg: RunConfig, source: str | None = None) -> PreparedRun:
    """Load every data set and build (or load) the model; any problem raises ConfigError with its key path."""
    base = Path(source).parent if source else None
    datasets, validation, weights, labels, heads = {}, {}, {}, {}, {}
    for task, spec in cfg.data.items():
        where = f"data.{task}"
        ds = load_source(spec.source, f"{where}.source", base, source)
        if spec.frames is not None and spec.frames < len(ds):
            ds = ds.subset(spec.frames, cfg.train.seed)  # the one frame-picking rule (as lam-lab finetune)
        label = spec.label or _default_label(ds, where, source)
        if label not in ds.label_sets:
            close = difflib.get_close_matches(label, ds.label_sets, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; it has {ds.label_sets}"
            raise ConfigError(f"label set {label!r} not in {spec.source!r}{hint}", source=source,
                              field=f"{where}.label")
        if isinstance(spec.validation, str):
            train_ds, val = ds, load_source(spec.validation, f"{where}.validation", base, source)
        else:
            try:
                train_ds, val = split_validation(ds, spec.validation, seed=cfg.train.seed)
            except DataError as exc:
                raise ConfigError(exc.message, source=source, field=f"{where}.validation") from exc
        datasets[task], weights[task], labels[task] = train_ds, spec.weight, label
        heads[task] = spec.head or task
        if val is not None:
            validation[task] = val
        if spec.weight <= 0:
            raise ConfigError(f"weight must be > 0, got {spec.weight}", source=source, field=f"{where}.weight")
    # the type map covers validation frames too: a small training subset may lack an element they hold
    model = _model(cfg, [*datasets.values(), *validation.values()], heads, source)
    return PreparedRun(cfg, model, datasets, validation, weights, labels, heads)


def _default_label(ds: Dataset, where: str, source: str | None) -> str:
    try:
        return ds.default_label()
    except DataError as exc:
        raise ConfigError(exc.message, source=source, field=f"{where}.label") from exc


def _model(cfg: RunConfig, datasets: list[Dataset], heads: dict[str, str], source: str | None) -> "Potential":
    spec = cfg.model
    if spec.path:
        from lam_lab.models import load

        path = Path(spec.path)
        if not path.is_absolute() and source and (Path(source).parent / path).exists():
            path = Path(source).parent / path
        if not path.exists():
            raise ConfigError(f"model file {spec.path!r} not found", source=source, field="model.path")
        model = load(path)
        changed = {k: (getattr(model.config, k, None), v) for k, v in spec.overrides.items()
                   if getattr(model.config, k, v) != v}
        if changed:
            what = ", ".join(f"{k} {a!r} in the file vs {b!r}" for k, (a, b) in changed.items())
            raise ConfigError(f"model.overrides cannot change a model loaded from a file ({what}); drop them or "
                              "train a new model from model.preset", source=source, field="model.overrides")
        if spec.type_map and list(spec.type_map) != list(model.type_map):
            from lam_lab.integrity import describe_mismatch

            diff = describe_mismatch({"type_map": model.type_map}, {"type_map": list(spec.type_map)})
            raise ConfigError(f"the model file does not match this run file: {'; '.join(diff)}; drop model.type_map "
                              "or give the model's own order", source=source, field="model.type_map")
        for task, head in heads.items():
            if head not in model.heads and not cfg.data[task].new_head:
                close = difflib.get_close_matches(head, model.heads, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ConfigError(f"the model has no head {head!r} (heads: {model.heads}); {hint}"
                                  "set new_head: true to add one", source=source, field=f"data.{task}.head")
        return model
    from lam_lab.models import PRESETS, build_model

    if spec.preset not in PRESETS:
        close = difflib.get_close_matches(str(spec.preset), list(PRESETS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; presets: {', '.join(PRESETS)}"
        raise ConfigError(f"unknown model preset {spec.preset!r}{hint}", source=source, field="model.preset")
    type_map = spec.type_map or type_map_for(datasets)
    try:
        return build_model(spec.preset, type_map, heads=list(dict.fromkeys(heads.values())), **spec.overrides)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc), source=source, field="model.overrides") from exc


def type_map_for(sets: Iterable[Dataset]) -> list[str]:
    """The chemical symbols present in any of ``sets``, sorted by atomic number (a new model's type map)."""
    from ase.data import atomic_numbers

    found = {el for ds in sets for el in ds.elements}
    return sorted(found, key=lambda el: atomic_numbers[el])


def run_file(path: str | Path, overrides: list[str] | None = None, **train_kwargs: Any) -> "TrainResult":
    """Load, check and train a YAML/TOML run file (``overrides`` like ``["train.steps=100"]``)."""
    from lam_lab.train.trainer import train

    cfg = load_run_config(path, overrides)
    run = prepare_run(cfg, str(path))
    kwargs = {"out_dir": cfg.out_dir, "resume": cfg.resume, **train_kwargs}
    return train(run.model, run.datasets, weights=run.weights, config=cfg.train, validation=run.validation or None,
                 labels=run.labels, heads=run.heads, **kwargs)
