"""Pre-training recipes: a typed YAML that names the model, the tasks and their splits, and the schedule.

``pretrain(recipe)`` trains the multi-task model (resumable), evaluates it on each set's test split and
on the held-out reaction of ``rxn-dft`` (zero-shot), and writes the model file with its card.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lam_lab.atomic import atomic_write_text
from lam_lab.config import ConfigError, Overrides, load_config
from lam_lab.data.dataset import Dataset
from lam_lab.data.errors import DataError
from lam_lab.json_safe import dumps
from lam_lab.train.config import ModelSpec, TrainConfig

RECIPES = Path(__file__).parent / "recipes"


@dataclass
class TaskRecipe:
    """One pre-training task: a data set (built-in name or file), its label set, weight and split."""

    source: str
    label: str | None = None
    weight: float = 1.0
    exclude: dict[str, list[str]] = field(default_factory=dict)  # info key -> values whose frames are left out
    split: Literal["random", "info"] = "random"  # "info": the frames' own info['split'] (train/val/test)
    val_fraction: float = 0.05
    test_fraction: float = 0.05
    frames: int | None = None  # random subset of N frames (tiny runs and tests)


@dataclass
class Recipe:
    """A whole pre-training recipe (see ``lam_lab/pretrained/recipes/*.yaml``)."""

    name: str
    tasks: dict[str, TaskRecipe]
    description: str = ""
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainConfig = field(default_factory=TrainConfig)

    def check(self, source: str | None = None) -> None:
        """Raise :class:`ConfigError` (with the key path) for training values out of range."""
        self.train.check(source)

    def replace(self, preset: str | None = None, steps: int | None = None, minutes: float | None = None,
                device: str | None = None, frames: int | None = None, **train: Any) -> "Recipe":
        """A scaled copy: another preset, budget, device or a frame cap per task (no code edits needed)."""
        model = dataclasses.replace(self.model, preset=preset) if preset else self.model
        given = {"steps": steps, "minutes": minutes, "device": device, **train}
        changes = {k: v for k, v in given.items() if v is not None}
        tasks = {k: dataclasses.replace(t, frames=frames) for k, t in self.tasks.items()} if frames else self.tasks
        return dataclasses.replace(self, model=model, train=self.train.replace(**changes), tasks=tasks)


@dataclass
class TaskSplit:
    """The frames of one task: train, validation (during training) and test (for the card)."""

    train: Dataset
    val: Dataset
    test: Dataset
    label: str


def recipe_names() -> list[str]:
    """Names of the recipes shipped with lam_lab."""
    return sorted(p.stem for p in RECIPES.glob("*.yaml"))


def load_recipe(name_or_path: str | Path, overrides: Overrides = None) -> Recipe:
    """A shipped recipe by name, or a recipe YAML file by path, with ``overrides`` (``{"train.lr": 1e-3}`` or
    ``"train.lr=1e-3"``); bad keys name their path."""
    path = Path(name_or_path)
    if not path.exists():
        path = RECIPES / f"{name_or_path}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown recipe {str(name_or_path)!r}; shipped: {', '.join(recipe_names())}")
    return load_config(path, Recipe, overrides, what="recipe")


def split_task(name: str, spec: TaskRecipe, seed: int) -> TaskSplit:
    """Load a task's data set, drop excluded frames and split it (seeded) into train/val/test."""
    from lam_lab.train.run import load_source

    ds = load_source(spec.source, f"tasks.{name}.source")
    label = spec.label or ds.default_label()
    if label not in ds.label_sets:
        raise ConfigError(f"label set {label!r} not in {spec.source!r} (it has {ds.label_sets})",
                          field=f"tasks.{name}.label")
    keep = [i for i, f in enumerate(ds) if not any(f.info.get(k) in set(v) for k, v in spec.exclude.items())]
    ds = ds[keep]
    if spec.frames is not None and spec.frames < len(ds):
        ds = ds.subset(spec.frames, seed)  # the one frame-picking rule (the shipped recipe takes every frame)
    if spec.split == "info":
        missing = [i for i, f in enumerate(ds) if f.info.get("split") not in ("train", "val", "test")]
        if missing:
            raise DataError("split: info needs info['split'] in train/val/test", source=spec.source, frame=missing[0],
                            field="info.split")
        parts = [ds.where(split=s) for s in ("train", "val", "test")]
    else:
        val, test = spec.val_fraction, spec.test_fraction
        parts = ds.split((1.0 - val - test, val, test), seed=seed)
    train, val, test = (p.with_label(label) if hasattr(p, "with_label") else p for p in parts)
    return TaskSplit(train, val, test, label)


@dataclass
class PretrainResult:
    """What ``pretrain`` returns: the model, its card (a dict) and the files written."""

    model: Any
    card: dict[str, Any]
    model_path: Path
    card_path: Path
    out_dir: Path


def pretrain(recipe: Recipe | str, out_dir: str | Path = "lam_lab_runs/pretrain", resume: bool = True,
             progress: bool = True, callbacks: tuple = (), stop_event: Any = None) -> PretrainResult:
    """Run a recipe (resuming from ``out_dir`` if a checkpoint is there), evaluate it, write model + card."""
    from lam_lab.models import build_model, save
    from lam_lab.train.run import type_map_for
    from lam_lab.train.trainer import train

    recipe = load_recipe(recipe) if isinstance(recipe, (str, Path)) else recipe
    out = Path(out_dir)
    cfg = recipe.train
    splits = {name: split_task(name, spec, cfg.seed) for name, spec in recipe.tasks.items()}
    # the type map covers val/test frames too: a small subset's training part may lack an element they hold
    type_map = recipe.model.type_map or type_map_for(p for s in splits.values() for p in (s.train, s.val, s.test))
    model = build_model(recipe.model.preset or "dpa2-small", type_map, heads=list(splits), **recipe.model.overrides)
    t0 = time.perf_counter()
    has_ckpt = any((out / "checkpoints").glob("*.pt")) if (out / "checkpoints").exists() else False
    result = train(model, {k: s.train for k, s in splits.items()},
                   weights={k: t.weight for k, t in recipe.tasks.items()}, config=cfg, out_dir=out,
                   validation={k: s.val for k, s in splits.items() if len(s.val)},
                   labels={k: s.label for k, s in splits.items()}, resume=resume and has_ckpt,
                   progress=progress, callbacks=callbacks, stop_event=stop_event)
    from lam_lab.pretrained.model_card import make_card, write_card

    card = make_card(recipe, result, splits, session_s=time.perf_counter() - t0)
    model_path = out / f"{recipe.name}.pt"
    save(result.model, model_path, extra={"name": recipe.name, "recipe": recipe.name, "steps": result.steps})
    card_path = write_card(card, out / f"{recipe.name}.card.json")
    atomic_write_text(out / f"{recipe.name}.history.json", dumps(compact_history(result.history)))
    return PretrainResult(result.model, card, model_path, card_path, out)


def compact_history(history: list[dict[str, Any]], points: int = 300) -> list[dict[str, Any]]:
    """Validation events and about ``points`` step events (step, per-task train RMSE, lr): enough to redraw curves."""
    steps = [e for e in history if e.get("kind") == "step"]
    every = max(1, len(steps) // points)
    keep = {id(e) for e in steps[::every]}
    return [{k: e.get(k) for k in ("kind", "step", "lr", "loss", "train_rmse", "validation", "elapsed_s")}
            for e in history if id(e) in keep or e.get("kind") == "validation"]


def hardware() -> str:
    """A one-line description of where this process runs (CPU model/threads or the CUDA device)."""
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA)"
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} thread(s)"
