"""Fine-tuning (DPA-2 Methods): pre-trained descriptor, branch or fresh head, Eq. 6 bias refit, freezing,
replay, new elements; Δ-ML on a baseline and AtomFT correction modes; FF pre-training → ab initio fine-tune.

Energies eV, forces eV/Å, errors meV/atom and meV/Å.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Literal, Mapping

import torch

from lam_lab.config import ConfigError, load_config
from lam_lab.continuation import check_delta_continuation
from lam_lab.data.dataset import Dataset
from lam_lab.data.errors import DataError
from lam_lab.delta import delta_dataset, delta_label, delta_spec
from lam_lab.potential import ModelConfig, Potential, resolve_head
from lam_lab.train.config import TrainConfig
from lam_lab.train.data import GraphCache
from lam_lab.train.rundir import auto_dir, discard_if_empty
from lam_lab.transfer import (
    HEAD,
    ZERO_SHOT_FRAMES,
    choose_branch,
    extend_type_map,
    freeze_descriptor,
    head_fates,
    keep_heads,
    missing_elements,
    refit_energy_bias,
    resolve_pretrained,
    train_new_types,
    zero_shot,
)

if TYPE_CHECKING:
    from lam_lab.train.metrics import MetricsTable
    from lam_lab.train.trainer import TrainResult

Mode = Literal["finetune", "delta", "atomft", "scratch"]
MODES = ("finetune", "delta", "atomft", "scratch")
REPLAY_FRAMES = 500  # frames per replayed pre-training task (seeded subset)


@dataclass
class FinetuneResult:
    """A fine-tuned model (downstream head ``head``), its training run, validation metrics and file."""

    model: Potential
    train: "TrainResult"
    mode: str
    head: str
    metrics: "MetricsTable | None"
    path: Path | None
    branch: str | None = None  # pre-trained head it started from (None: a fresh head)
    label: str = ""  # label set trained on (the Δ label set in mode "delta")
    zero_shot: dict[str, float] = field(default_factory=dict)  # force RMSE (meV/Å) per candidate head
    heads: dict[str, str] = field(default_factory=dict)  # pre-trained head -> what became of it (kept/replayed/dropped)


@dataclass
class DeltaConfig:
    """Δ-ML (mode "delta"): the model learns ``label − baseline``; LAMCalculator adds the baseline back."""

    baseline: str = "gfn2-xtb"


@dataclass
class ReplayConfig:
    """Replayed pre-training tasks against forgetting: total ``weight`` (the downstream task has 1), frames per task."""

    weight: float = 0.0
    frames: int = REPLAY_FRAMES


@dataclass
class AtomFTConfig:
    """AtomFT (mode "atomft"): the base head is frozen and only α·Σ tanh(O_i) trains (``alpha`` in eV per atom)."""

    alpha: float = 0.1


@dataclass
class FinetuneConfig:
    """Everything :func:`finetune` does, with its defaults: the one source for the API, the CLI, pipeline and Lab.

    ``pretrained``: a shipped name or a model file (None: from scratch, ``preset``); ``branch``: the
    pre-trained head to start from (None: the best zero-shot, or a fresh head); ``frames``: a seeded
    subset; ``freeze``: "none", "descriptor" or a number of repformer layers; ``new_elements``: "init"
    adds elements the model lacks. Old flat names (``baseline``, ``replay``, ``alpha``, ``steps``,
    ``minutes``, ``device``, ``config``) are accepted as overrides and land in their section.
    """

    ALIASES: ClassVar[dict[str, str]] = {"baseline": "delta.baseline", "replay": "replay.weight",
                                         "alpha": "atomft.alpha", "steps": "train.steps", "minutes": "train.minutes",
                                         "device": "train.device", "config": "train"}

    pretrained: str | None = "lam-chon-small"
    mode: Mode = "finetune"
    label: str | None = None  # label set to learn (default: the data's default)
    branch: str | None = None
    frames: int | None = None
    freeze: str | int = "none"
    new_elements: Literal["error", "init"] = "error"
    preset: str = "dpa2-small"  # architecture when training from scratch
    seed: int = 0
    delta: DeltaConfig = field(default_factory=DeltaConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    atomft: AtomFTConfig = field(default_factory=AtomFTConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def check(self, source: str | None = None) -> None:
        """Raise :class:`ConfigError` (with the key path) for values :func:`finetune` cannot honour."""
        self.train.check(source)
        if self.replay.weight < 0:
            raise ConfigError(f"must be >= 0, got {self.replay.weight}", source=source, field="replay.weight")
        if self.mode == "atomft" and self.replay.weight:
            raise ConfigError("mode 'atomft' takes no replay (its base is frozen)", source=source,
                              field="replay.weight")


def finetune_config(config: Any = None, **overrides: Any) -> FinetuneConfig:
    """A :class:`FinetuneConfig` from a config (instance, dict, file; a TrainConfig is the ``train`` section) and
    keyword overrides (dotted keys or the old flat names; ``steps``/``minutes``/``device`` None keep the config's)."""
    if isinstance(config, TrainConfig):
        config, overrides = None, {"train": config, **overrides}
    if isinstance(config, FinetuneConfig) and type(config) is not FinetuneConfig:  # a CLI run file: its API part
        config = {f.name: getattr(config, f.name) for f in fields(FinetuneConfig)}
    overrides = {k: (str(v) if k == "device" else v) for k, v in overrides.items()
                 if not (k in ("steps", "minutes", "device") and v is None)}
    if isinstance(config, FinetuneConfig) and not overrides:
        return config
    return load_config(config, FinetuneConfig, overrides)


def finetune(dataset: Dataset, config: FinetuneConfig | TrainConfig | Mapping[str, Any] | str | Path | None = None, *,
             validation: Dataset | None = None, out_dir: str | Path | None = "auto", callbacks: Iterable[Any] = (),
             stop_event: Any = None, progress: bool = True, replay_data: Mapping[str, Dataset] | None = None,
             resume: bool = False, **overrides: Any) -> FinetuneResult:
    """Train a downstream model on ``dataset`` from a pre-trained one (or from scratch); see the module doc.

    ``config`` is a :class:`FinetuneConfig` (or a dict or YAML file of one); keyword ``overrides`` change
    its fields (``mode="delta", frames=50, baseline="gfn2-xtb", steps=200``). ``pretrained`` may also be a
    Potential and ``preset`` a ModelConfig. ``mode="delta"`` learns ``label − baseline`` (``pretrained=None``:
    Δ from scratch) and the result carries ``extra["delta"]`` so LAMCalculator adds the baseline back;
    ``mode="atomft"`` freezes the base head ``branch`` and trains only α·Σ tanh(O_i). A replay weight > 0
    adds the pre-training tasks (the model's recipe, or ``replay_data`` head → Dataset) with that total
    weight against 1 for the downstream task. With ``freeze`` and ``new_elements="init"`` the new elements'
    embedding still trains. A Δ model kept training in Δ mode takes the measured few-shot recipe
    (:mod:`lam_lab.continuation`) for what ``overrides`` and a TrainConfig ``config`` leave unset, and keeps its
    head (``branch`` None: the best of its heads, never a fresh one). ``resume=True`` continues the interrupted run
    in ``out_dir`` from its newest checkpoint (same data and settings) up to the budget.
    """
    from lam_lab.train.trainer import train

    if isinstance(dataset, Potential) and isinstance(config, Dataset):  # ll.finetune(model, data) reads too
        dataset, config, overrides = config, None, {"pretrained": dataset, **overrides}
    objects = {k: overrides.pop(k) for k in ("pretrained", "preset")
               if k in overrides and not isinstance(overrides[k], (str, os.PathLike, type(None)))}
    cfg = finetune_config(config, **overrides)
    pretrained, preset, mode, seed = objects.get("pretrained", cfg.pretrained), objects.get("preset", cfg.preset), \
        cfg.mode, cfg.seed
    if resume and out_dir in ("auto", None):  # a fresh folder has no checkpoint: it would silently start over
        raise ConfigError("resume=True continues a stopped run in its folder: pass that out_dir", field="out_dir")
    if mode == "atomft" and pretrained is None:
        raise ConfigError("mode 'atomft' needs a pre-trained base model", field="pretrained")
    label = cfg.label or dataset.default_label()
    baseline = cfg.delta.baseline
    scratch, recipe = mode == "scratch" or (mode == "delta" and pretrained is None), ""
    if scratch and cfg.replay.weight:  # nothing to replay on: it would be silently ignored
        raise ConfigError("replay needs a pre-trained model whose heads replay their data; this run starts from "
                          "scratch", field="replay.weight")
    if not scratch:
        base, source = resolve_pretrained(pretrained)
        check_delta_continuation(base, mode, baseline)
        if (config is None or isinstance(config, TrainConfig)) and mode == "delta" and delta_spec(base) is not None:
            from lam_lab.continuation import continuation_config

            given = {**overrides, **({"config": config} if config is not None else {})}
            cfg, replay_data, recipe = continuation_config(base, source, given, replay_data)
    train_ds = select_frames(dataset, label, cfg.frames, seed)
    target, spec, val_ds = label, None, validation
    if mode == "delta":
        from lam_lab.delta import baseline_spec

        spec = baseline_spec(dataset, label, baseline)
        train_ds, target = delta_dataset(train_ds, label, baseline), delta_label(label, baseline)
        val_ds = delta_dataset(validation, label, baseline) if validation is not None else None
    elif validation is not None:
        val_ds = validation.with_label(label)
    if scratch:
        from lam_lab.models import build_model
        from lam_lab.train.run import type_map_for

        start = _Start(build_model(preset, type_map_for([train_ds]), heads=[HEAD], seed=seed))
        # Eq. 6; the input statistics come from the trainer's graphs of the same frames (prepared once)
        start.model.fit_energy_bias(train_ds, head=HEAD, label=target, input_stats=False)
        source = None
    else:
        start = _start_from(base, cfg, train_ds, target, replay_data)
    model, chosen = start.model, start.chosen
    info = {"mode": mode, "pretrained": source, "branch": chosen, "label": label, "frames": len(train_ds),
            "freeze": str(cfg.freeze), "replay": float(cfg.replay.weight), "new_elements": start.added, "seed": seed,
            "heads": start.fate, **({"defaults": recipe} if recipe else {})}
    if mode == "atomft":
        info["alpha"] = float(cfg.atomft.alpha)
    extra = {"finetune": info, **({"delta": spec} if spec else {})}
    model.metadata = {"provenance": {}, "source": None, "extra": extra}
    sets, weights, labels, heads = _tasks(train_ds, target, start.replays, cfg.replay.weight, start.merged)
    fresh = out_dir == "auto"
    if fresh:  # unique even for two runs started in the same second
        out_dir = auto_dir(prefix=f"finetune-{mode}")
    try:
        res = train(model, sets, weights=weights, config=cfg.train.replace(fit_bias=False, seed=seed),
                    out_dir=out_dir, callbacks=callbacks, validation={HEAD: val_ds} if val_ds is not None else None,
                    stop_event=stop_event, labels=labels, heads=heads, progress=progress, resume=resume,
                    graphs={HEAD: start.graphs} if start.graphs is not None else None)
    except BaseException:
        if fresh:
            discard_if_empty(out_dir)
        raise
    finally:
        for h in start.hooks:
            h.remove()
    path = _save(res.model, out_dir)
    return FinetuneResult(res.model, res, mode, HEAD, res.metrics, path, chosen, target, start.zero, start.fate)


def _tasks(train_ds: Dataset, target: str, replays: Mapping[str, tuple[Dataset, str]], replay: float,
           merged: str | None = None) -> tuple[dict[str, Dataset], dict[str, float], dict[str, str], dict[str, str]]:
    """Training tasks: the downstream head (weight 1) and each replayed head (sharing weight ``replay``); the
    ``merged`` head's replayed data trains the downstream head itself."""
    sets, weights, labels, heads = {HEAD: train_ds}, {HEAD: 1.0}, {HEAD: target}, {HEAD: HEAD}
    for h, (ds, lab) in replays.items():
        sets[f"replay-{h}"], weights[f"replay-{h}"] = ds, replay / len(replays)
        labels[f"replay-{h}"], heads[f"replay-{h}"] = lab, HEAD if h == merged else h
    return sets, weights, labels, heads


def _save(model: Potential, out_dir: str | Path | None) -> Path | None:
    """``out_dir/finetuned.pt`` (None without an output folder)."""
    if out_dir is None:
        return None
    from lam_lab.models import save

    path = Path(out_dir) / "finetuned.pt"
    save(model, path)
    return path


@dataclass
class _Start:
    """The model training starts from, and what was done to the pre-trained one to make it."""

    model: Potential
    chosen: str | None = None
    zero: dict[str, float] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    hooks: list[Any] = field(default_factory=list)
    replays: dict[str, tuple[Dataset, str]] = field(default_factory=dict)
    fate: dict[str, str] = field(default_factory=dict)
    graphs: GraphCache | None = None  # the downstream frames' graphs, handed on to the trainer
    merged: str | None = None  # the replayed head that is the downstream head itself (Δ continuation)


def _start_from(base: Potential, cfg: FinetuneConfig, train_ds: Dataset, target: str,
                replay_data: Mapping[str, Dataset] | None) -> _Start:
    """New elements, branch choice, kept/replayed heads, bias refit, freezing and the AtomFT correction."""
    n_old = len(base.type_map)
    mode, branch, seed = cfg.mode, cfg.branch, cfg.seed
    added = missing_elements(base, train_ds, cfg.new_elements == "error")
    if added:
        base = extend_type_map(base, added, train_ds)
    # the training frames' graphs, built once: ranking the heads and the bias refit use them, then the trainer
    graphs = GraphCache(base, train_ds, target, keep=cfg.train.cache_graphs)
    zero: dict[str, float] = {}
    if branch is not None:
        resolve_head(base, branch)  # KeyError naming the heads
        chosen = branch
    else:
        # a Δ model kept training keeps its head even where it is worse than zero on the new frames: a fresh head
        # fitted to ten frames of one reaction made every other reaction 15× worse (oxirane, few-shot seed 1)
        continuing = mode == "delta" and delta_spec(base) is not None
        chosen, zero = choose_branch(base, train_ds, target, allow_fresh=mode != "atomft" and not continuing,
                                     graphs=graphs)
    replays = replay_sets(base, replay_data, seed, cfg.replay.frames) if cfg.replay.weight else {}
    # a Δ model kept training with its own data replayed: that data has the downstream target, so one head
    merged = chosen if chosen in replays and delta_spec(base) is not None else None
    model = keep_heads(base, [(HEAD, chosen)] + [(h, h) for h in replays if h != merged], seed=seed)
    fate = head_fates(base.heads, chosen, replays, zero, mode)
    if chosen is None:
        model.fit_energy_bias(train_ds, head=HEAD, label=target)
    else:
        refit_energy_bias(model, HEAD, graphs, target)
    freeze_descriptor(model, cfg.freeze)
    hooks = train_new_types(model, n_old) if added else []
    if mode == "atomft":
        from lam_lab.atomft import attach_correction

        attach_correction(model, HEAD, cfg.atomft.alpha)
    return _Start(model, chosen, zero, added, hooks, replays, fate, graphs, merged)


# -- data -------------------------------------------------------------------------------------------------
def select_frames(dataset: Dataset, label: str, n: int | None, seed: int = 0) -> Dataset:
    """The frames carrying ``label``; with ``n`` a seeded random subset (nested: the first n of one permutation)."""
    if label not in dataset.label_sets:
        raise DataError(f"label set {label!r} not in dataset {dataset.name!r} (it has {dataset.label_sets})",
                        source=dataset.provenance.source, field="label")
    ds = dataset.with_label(label)
    if n is None:
        return ds
    if not 0 < n <= len(ds):
        raise DataError(f"frames={n} but the data set has {len(ds)} frames with label {label!r}",
                        source=dataset.provenance.source, field="frames")
    return ds.subset(n, seed)


def replay_sets(model: Potential, replay_data: Mapping[str, Dataset] | None, seed: int = 0,
                max_frames: int = REPLAY_FRAMES) -> dict[str, tuple[Dataset, str]]:
    """head → (frames, label) of the pre-training data to replay: ``replay_data`` or the model's recipe.

    For a Δ model, ``replay_data`` holds full labels (e.g. its training set) and is replayed as label − baseline."""
    if replay_data is None:
        name = ((model.metadata or {}).get("extra") or {}).get("recipe")
        if not name:
            raise DataError("replay needs the pre-training data: this model names no recipe; pass "
                            "replay_data={head: Dataset}", source=(model.metadata or {}).get("source"), field="replay")
        from lam_lab.pretrained.recipe import load_recipe, split_task

        recipe = load_recipe(name)
        sets = {t: split_task(t, s, seed) for t, s in recipe.tasks.items() if t in model.heads}
        pairs = {t: (s.train, s.label) for t, s in sets.items()}
    else:
        pairs = {h: (ds, ds.default_label()) for h, ds in replay_data.items()}
        spec = delta_spec(model)
        if spec is not None:  # a Δ model's head learns label − baseline: replay its data as that difference
            pairs = {h: (delta_dataset(ds, spec["label"], spec["baseline"]), delta_label(spec["label"],
                                                                                          spec["baseline"]))
                     for h, (ds, _) in pairs.items()}
    for h in pairs:
        resolve_head(model, h)  # a replayed task trains its own pre-trained head
    out = {}
    for h, (ds, lab) in pairs.items():
        ds = ds.with_label(lab)
        out[h] = (ds.subset(min(max_frames, len(ds)), seed), lab)
    return out


# -- force-field pre-training → ab initio fine-tuning (seed 003) -------------------------------------------
@dataclass
class FFPretrainResult:
    """The force-field pre-trained model and its run, and the fine-tune on the higher-level labels."""

    pretrained: Potential
    pretrain: "TrainResult"
    finetuned: FinetuneResult


def ff_pretrain_finetune(dataset: Dataset, pretrain_data: Dataset | str = "water-ff", pretrain_label: str | None = None,
                         preset: str | ModelConfig = "dpa2-small", pretrain_steps: int | None = None,
                         pretrain_minutes: float | None = None, pretrain_frames: int | None = None,
                         pretrain_config: TrainConfig | None = None, out_dir: str | Path | None = "auto",
                         seed: int = 0, progress: bool = True, device: str | torch.device | None = None,
                         **finetune_kwargs: Any) -> FFPretrainResult:
    """Seed 003 in one call: pre-train on cheap force-field labels (e.g. water-ff), then fine-tune on ``dataset``.

    The model's type map covers both data sets; the pre-training head is called ``"ff"``. Remaining
    keyword arguments go to :func:`finetune` (label, mode, frames, steps, freeze, ...).
    """
    from lam_lab.data.io import load_source
    from lam_lab.models import build_model
    from lam_lab.train.run import type_map_for
    from lam_lab.train.trainer import train

    ff = load_source(pretrain_data)
    plabel = pretrain_label or ff.default_label()
    ff = select_frames(ff, plabel, pretrain_frames, seed)
    if out_dir == "auto":
        out_dir = auto_dir(prefix="ff-pretrain")
    sub = (lambda name: Path(out_dir) / name) if out_dir is not None else (lambda name: None)
    model = build_model(preset, type_map_for([ff, dataset]), heads=["ff"], seed=seed)
    cfg = (pretrain_config or TrainConfig()).replace(seed=seed)
    pre = train(model, ff, labels=plabel, heads="ff", steps=pretrain_steps, minutes=pretrain_minutes, config=cfg,
                out_dir=sub("pretrain"), progress=progress, device=device)
    extra = {"ff_pretrain": {"data": ff.name, "label": plabel}}
    pre.model.metadata = {"provenance": {}, "source": None, "extra": extra}
    ft = finetune(dataset, pretrained=pre.model, out_dir=sub("finetune"), seed=seed, progress=progress, device=device,
                  **finetune_kwargs)
    return FFPretrainResult(pre.model, pre, ft)


__all__ = ["finetune", "FinetuneConfig", "DeltaConfig", "ReplayConfig", "AtomFTConfig", "finetune_config",
           "FinetuneResult", "MODES", "HEAD", "REPLAY_FRAMES", "ZERO_SHOT_FRAMES", "select_frames",
           "replay_sets", "check_delta_continuation", "ff_pretrain_finetune", "FFPretrainResult",
           # re-exported from lam_lab.transfer and lam_lab.continuation, where they live
           "resolve_pretrained", "missing_elements", "extend_type_map", "zero_shot", "choose_branch", "head_fates",
           "keep_heads", "refit_energy_bias", "freeze_descriptor", "train_new_types"]
