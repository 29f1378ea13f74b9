"""Fine-tuning (DPA-2 Methods): pre-trained descriptor, branch or fresh head, Eq. 6 bias refit, freezing,
replay, new elements; Δ-ML on a baseline and AtomFT correction modes; FF pre-training → ab initio fine-tune.

Energies eV, forces eV/Å, errors meV/atom and meV/Å.
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from lam_lab.data.dataset import Dataset
from lam_lab.data.errors import DataError
from lam_lab.potential import ModelConfig, Potential
from lam_lab.train.config import TrainConfig

if TYPE_CHECKING:
    from lam_lab.train.metrics import MetricsTable
    from lam_lab.train.trainer import TrainResult

Mode = Literal["finetune", "delta", "atomft", "scratch"]
MODES = ("finetune", "delta", "atomft", "scratch")
HEAD = "default"  # the downstream head of a fine-tuned model
REPLAY_FRAMES = 500  # frames per replayed pre-training task (seeded subset)
ZERO_SHOT_FRAMES = 16  # frames used to rank the pre-trained heads


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


def finetune(
    dataset: Dataset,
    pretrained: str | os.PathLike | Potential | None = "lam-chon-small",
    mode: Mode = "finetune",
    label: str | None = None,
    baseline: str = "gfn2-xtb",
    branch: str | None = None,
    frames: int | None = None,
    freeze: Literal["none", "descriptor"] | int = "none",
    replay: float = 0.0,
    new_elements: Literal["error", "init"] = "error",
    alpha: float = 0.1,
    preset: str | ModelConfig = "dpa2-small",
    validation: Dataset | None = None,
    steps: int | None = None,
    minutes: float | None = None,
    config: TrainConfig | None = None,
    out_dir: str | Path | None = "auto",
    callbacks: Iterable[Any] = (),
    stop_event: Any = None,
    progress: bool = True,
    device: str | torch.device | None = None,
    seed: int = 0,
    replay_data: Mapping[str, Dataset] | None = None,
) -> FinetuneResult:
    """Train a downstream model on ``dataset`` from a pre-trained one (or from scratch); see the module doc.

    ``mode="delta"`` learns ``label − baseline`` (``pretrained=None``: Δ from scratch) and the result
    carries ``extra["delta"]`` so LAMCalculator adds the baseline back; ``mode="atomft"`` freezes the
    base head ``branch`` and trains only α·Σ tanh(O_i). ``replay`` > 0 adds the pre-training tasks
    (the model's recipe, or ``replay_data`` head → Dataset) with that total weight against 1 for the
    downstream task. With ``freeze`` and ``new_elements="init"`` the new elements' embedding still trains.
    """
    from lam_lab.train.trainer import train

    if isinstance(dataset, Potential) and isinstance(pretrained, Dataset):  # ll.finetune(model, data) reads naturally too
        dataset, pretrained = pretrained, dataset
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if new_elements not in ("error", "init"):
        raise ValueError(f"new_elements must be 'error' or 'init', got {new_elements!r}")
    if replay < 0:
        raise ValueError(f"replay weight must be >= 0, got {replay}")
    if mode == "atomft" and (pretrained is None or replay):
        raise ValueError("mode='atomft' needs a pre-trained base model and takes no replay (its base is frozen)")
    label = label or dataset.default_label()
    scratch = mode == "scratch" or (mode == "delta" and pretrained is None)
    if not scratch:
        base, source = resolve_pretrained(pretrained)
        check_delta_continuation(base, mode, baseline)
    train_ds = select_frames(dataset, label, frames, seed)
    target, spec, val_ds = label, None, validation
    if mode == "delta":
        from lam_lab.delta import baseline_spec, delta_dataset, delta_label

        spec = baseline_spec(dataset, label, baseline)
        train_ds, target = delta_dataset(train_ds, label, baseline), delta_label(label, baseline)
        val_ds = delta_dataset(validation, label, baseline) if validation is not None else None
    elif validation is not None:
        val_ds = validation.with_label(label)
    chosen, zero, added, hooks, replays, fate = None, {}, [], [], {}, {}
    if scratch:
        from lam_lab.models import build_model
        from lam_lab.train.run import _elements

        model = build_model(preset, _elements([train_ds]), heads=[HEAD], seed=seed)
        model.fit_energy_bias(train_ds, head=HEAD, label=target)  # Eq. 6 (and input statistics)
        source = None
    else:
        n_old = len(base.type_map)
        added = missing_elements(base, train_ds, new_elements == "error")
        if added:
            base = extend_type_map(base, added, train_ds)
        if branch is not None:
            base._head_index(branch)  # KeyError naming the heads
            chosen = branch
        else:
            chosen, zero = choose_branch(base, train_ds, target, allow_fresh=mode != "atomft")
        if replay:
            replays = replay_sets(base, replay_data, seed)
        model = keep_heads(base, [(HEAD, chosen)] + [(h, h) for h in replays], seed=seed)
        fate = head_fates(base.heads, chosen, replays, zero, mode)
        if chosen is None:
            model.fit_energy_bias(train_ds, head=HEAD, label=target)
        else:
            refit_energy_bias(model, HEAD, train_ds, target)
        frozen = freeze_descriptor(model, freeze)
        if added and any(n.startswith("descriptor.type_embedding") for n in frozen):
            hooks = train_new_types(model, n_old)
        if mode == "atomft":
            from lam_lab.atomft import attach_correction

            attach_correction(model, HEAD, alpha)
    info = {"mode": mode, "pretrained": source, "branch": chosen, "label": label, "frames": len(train_ds),
            "freeze": str(freeze), "replay": float(replay), "new_elements": added, "seed": seed, "heads": fate}
    if mode == "atomft":
        info["alpha"] = float(alpha)
    model.metadata = {"provenance": {}, "source": None, "extra": {"finetune": info, **({"delta": spec} if spec else {})}}
    sets, weights, labels, heads = {HEAD: train_ds}, {HEAD: 1.0}, {HEAD: target}, {HEAD: HEAD}
    for h, (ds, lab) in replays.items():
        sets[f"replay-{h}"], weights[f"replay-{h}"] = ds, replay / len(replays)
        labels[f"replay-{h}"], heads[f"replay-{h}"] = lab, h
    cfg = (config or TrainConfig()).replace(fit_bias=False, seed=seed)
    if out_dir == "auto":
        out_dir = Path("lam_lab_runs") / _dt.datetime.now().strftime(f"finetune-{mode}-%Y%m%d-%H%M%S")
    try:
        res = train(model, sets, weights=weights, steps=steps, minutes=minutes, config=cfg, out_dir=out_dir,
                    callbacks=callbacks, device=device, validation={HEAD: val_ds} if val_ds is not None else None,
                    stop_event=stop_event, labels=labels, heads=heads, progress=progress)
    finally:
        for h in hooks:
            h.remove()
    path = None
    if out_dir is not None:
        from lam_lab.models import save

        path = Path(out_dir) / "finetuned.pt"
        save(res.model, path)
    return FinetuneResult(res.model, res, mode, HEAD, res.metrics, path, chosen, target, zero, fate)


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


def check_delta_continuation(base: Potential, mode: str, baseline: str) -> None:
    """A Δ model keeps training only as Δ on its own baseline: other modes or baselines are a DataError saying so."""
    from lam_lab.delta import delta_spec

    spec = delta_spec(base)
    if spec is None:
        return
    if mode != "delta":
        raise DataError(f"the pre-trained model is a Δ model (it predicts label − {spec['baseline']}); mode={mode!r} "
                        f"would train its head on full labels and drop the baseline. Keep training it with "
                        f"mode='delta', baseline={spec['baseline']!r}", field="mode")
    if spec.get("baseline") != baseline:
        raise DataError(f"the pre-trained Δ model learned label − {spec['baseline']!r}, not − {baseline!r}; pass "
                        f"baseline={spec['baseline']!r}", field="baseline")


def replay_sets(model: Potential, replay_data: Mapping[str, Dataset] | None, seed: int = 0,
                max_frames: int = REPLAY_FRAMES) -> dict[str, tuple[Dataset, str]]:
    """head → (frames, label) of the pre-training data to replay: ``replay_data`` or the model's recipe."""
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
    for h in pairs:
        model._head_index(h)  # a replayed task trains its own pre-trained head
    out = {}
    for h, (ds, lab) in pairs.items():
        ds = ds.with_label(lab)
        out[h] = (ds.subset(min(max_frames, len(ds)), seed), lab)
    return out


# -- the pre-trained model ------------------------------------------------------------------------------
def resolve_pretrained(pretrained: str | os.PathLike | Potential) -> tuple[Potential, str]:
    """A private copy of the pre-trained model (object, model file or shipped name) and where it came from."""
    from lam_lab.models import load

    if isinstance(pretrained, Potential):
        return copy.deepcopy(pretrained), str((pretrained.metadata or {}).get("source") or "model object")
    path = Path(pretrained)
    if path.exists() or path.suffix == ".pt":
        return load(path), str(path)
    from lam_lab import pretrained as shipped

    try:
        return shipped.load(str(pretrained)), str(pretrained)
    except DataError as exc:
        raise DataError(f"{exc.message}; pass pretrained=<model file or Potential>, or pretrained=None to train "
                        "from scratch", source=exc.source, field="pretrained") from exc


def missing_elements(model: Potential, ds: Dataset, error: bool = True) -> list[str]:
    """Elements of ``ds`` absent from the model's type map; with ``error`` a DataError at the first frame with one."""
    from ase.data import chemical_symbols

    known, missing = set(model.type_map), []
    for i, frame in enumerate(ds):
        new = sorted({chemical_symbols[z] for z in np.unique(frame.numbers)} - known - set(missing))
        if new and error:
            raise DataError(f"elements {new} are not in the pre-trained type map {model.type_map}; pass "
                            "new_elements='init' to give them a fresh embedding", source=ds.provenance.source or ds.name,
                            frame=i, field="numbers")
        missing += new
    return missing


def extend_type_map(model: Potential, elements: Sequence[str], frames: Sequence | None = None) -> Potential:
    """A copy of ``model`` whose type map ends with ``elements``: old types keep every weight, new ones start fresh.

    Every type-indexed axis (type embedding columns, energy biases, input scales, the student's
    pair coefficients) holds the old types first, so old weights are copied into the leading slice.
    New types' input scales come from ``frames`` when given.
    """
    new = Potential(model.config, list(model.type_map) + list(elements), model.heads)
    from lam_lab.atomft import apply_atomft_spec, atomft_spec

    apply_atomft_spec(new, atomft_spec(model))
    state = new.state_dict()
    for key, old in model.state_dict().items():
        dst = state[key]
        if dst.shape != old.shape:
            if dst.dim() != old.dim() or any(a > b for a, b in zip(old.shape, dst.shape)):
                raise ValueError(f"cannot extend {key}: {tuple(old.shape)} -> {tuple(dst.shape)}")
            dst[tuple(slice(0, s) for s in old.shape)] = old
        else:
            dst.copy_(old)
    new.load_state_dict(state)
    if frames is not None:
        scale = new.descriptor.env_scale.clone()
        new.fit_input_stats(frames)
        n_old = len(model.type_map)
        with torch.no_grad():
            new.descriptor.env_scale[:, :n_old] = scale[:, :n_old]
            # the neighbour normalisation is part of the pre-trained descriptor: keep it
            for blocks_new, blocks_old in zip(new.neighbor_norm_modules(), model.neighbor_norm_modules()):
                for b_new, b_old in zip(blocks_new, blocks_old):
                    b_new.n_norm.copy_(b_old.n_norm)
    new.metadata = copy.deepcopy(model.metadata)
    return new.to(model.device)


def zero_shot(model: Potential, ds: Dataset, label: str, heads: Sequence[str] | None = None,
              n: int = ZERO_SHOT_FRAMES) -> dict[str, float]:
    """Force RMSE (meV/Å) of each head on up to ``n`` frames; key ``"fresh"``: the RMS of the labels (a zero model)."""
    from lam_lab.train.metrics import evaluate_graphs

    src = ds.provenance.source or ds.name
    graphs = [model.prepare(f, label=label, index=i, source=src) for i, f in enumerate(ds[:n])]
    forces = [g.forces for g in graphs if g.forces is not None]
    out = {}
    if forces:
        for h in heads or model.heads:
            sums, _ = evaluate_graphs(model, graphs, h, 8, model.device)
            out[h] = sums.row(h, h, label, 1.0).f_rmse
        out["fresh"] = 1000 * float(np.sqrt(np.mean(np.concatenate(forces) ** 2)))
    return out


def choose_branch(model: Potential, ds: Dataset, label: str, allow_fresh: bool = True) -> tuple[str | None, dict[str, float]]:
    """The head with the lowest zero-shot force RMSE, or None (a fresh head) when predicting zero forces does better."""
    errors = zero_shot(model, ds, label)
    if not errors:  # no force labels: energies alone rank nothing, keep the first head's weights
        return (None if allow_fresh else model.heads[0]), errors
    heads = {h: e for h, e in errors.items() if h != "fresh"}
    best = min(heads, key=heads.get)
    return (None if allow_fresh and errors["fresh"] < heads[best] else best), errors


def head_fates(heads: Sequence[str], chosen: str | None, replays: Mapping[str, Any], zero: Mapping[str, float],
               mode: str) -> dict[str, str]:
    """What became of each pre-trained head (kept as the downstream head, replayed, or dropped), with a warning
    when every one was dropped; zero-shot force RMSEs (meV/Å) on the training labels say why."""
    import warnings

    def why(h: str) -> str:
        return f" (zero-shot F RMSE {zero[h]:.0f} meV/Å vs {zero['fresh']:.0f} for a fresh head)" if h in zero and "fresh" in zero else ""

    fate = {}
    for h in heads:
        if h == chosen:
            fate[h] = f"kept: starts the downstream head {HEAD!r}{why(h)}"
        elif h in replays:
            fate[h] = "kept: replayed against forgetting"
        else:
            fate[h] = f"dropped{why(h)}"
    if chosen is None:
        what = "label − baseline (Δ)" if mode == "delta" else "these labels"
        warnings.warn(f"{mode}: no pre-trained head predicts {what} better than zero, so all of {list(heads)} were "
                      f"dropped and the downstream head {HEAD!r} starts fresh on the pre-trained descriptor; pass "
                      "branch=<head> to start from one anyway", stacklevel=3)
    return fate


def keep_heads(model: Potential, heads: Sequence[tuple[str, str | None]], seed: int = 0) -> Potential:
    """A copy of ``model`` with exactly these heads: (new name, head whose weights to copy, or None for fresh)."""
    m = copy.deepcopy(model)
    taken = dict(zip(m.heads, m.fittings))
    m.fittings, m.heads = nn.ModuleList(), []
    for name, src in heads:
        if src is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                m.add_head(name)
        else:
            m.fittings.append(copy.deepcopy(taken[src]))
            m.heads.append(name)
    return m.to(model.device)


@torch.no_grad()
def refit_energy_bias(model: Potential, head: str, frames: Sequence, label: str | None = None,
                      batch_size: int = 16) -> np.ndarray:
    """Eq. 6 on what the head misses: Σ_z c_mz δ(z) = E*_m − E_m(model); adds δ to the bias, returns it [n_types] (eV).

    A pre-trained head keeps its network and only shifts per element (DeePMD-kit's bias change on
    fine-tuning); on a head whose network outputs zero this is Eq. 6 itself.
    """
    from lam_lab.nn.batch import collate
    from lam_lab.nn.energy_bias import solve_energy_bias, type_counts

    graphs = [g for g in (model.prepare(f, label=label, index=i) for i, f in enumerate(frames)) if g.energy is not None]
    if not graphs:
        raise DataError(f"no frame has an energy for label {label!r}: cannot fit the energy bias (Eq. 6)", field="energy")
    pred = np.concatenate([model(collate(graphs[s:s + batch_size]), head=head, forces=False).energy.cpu().numpy()
                           for s in range(0, len(graphs), batch_size)])
    ref = np.array([g.energy for g in graphs])
    delta = solve_energy_bias(type_counts([g.types for g in graphs], len(model.type_map)), ref - pred,
                              previous=np.zeros(len(model.type_map)))
    buf = model.energy_bias[head]
    buf += torch.as_tensor(delta, dtype=buf.dtype, device=buf.device)
    return buf.cpu().numpy().copy()


def freeze_descriptor(model: Potential, what: Literal["none", "descriptor"] | int | str) -> list[str]:
    """Stop training (requires_grad=False) the whole descriptor or its first stages; returns the frozen names.

    An int k freezes the type embedding, repinit and the first k repformer layers (with k ≥ 1 also the
    projections feeding them); a descriptor without repformer layers (student) freezes whole.
    """
    if isinstance(what, str) and what.isdigit():
        what = int(what)
    desc = model.descriptor
    if what == "none":
        return []
    if what == "descriptor":
        mods = [desc]
    elif isinstance(what, int) and not isinstance(what, bool):
        layers = getattr(desc, "layers", None)
        if layers is None:
            mods = [desc]
        elif not 0 <= what <= len(layers):
            raise ValueError(f"freeze={what}: the descriptor has {len(layers)} repformer layers")
        else:
            mods = [desc.type_embedding, desc.repinit] + ([desc.proj_f, desc.proj_g] if what else []) + list(layers[:what])
    else:
        raise ValueError(f"freeze must be 'none', 'descriptor' or a number of layers, got {what!r}")
    ids = {id(p) for m in mods for p in m.parameters()}
    for m in mods:
        m.requires_grad_(False)
    return [f"descriptor.{n}" for n, p in desc.named_parameters() if id(p) in ids]


def train_new_types(model: Potential, n_old: int) -> list[Any]:
    """Let only the new types' columns of a frozen type embedding train (a gradient mask); returns the hook handles."""
    weight = model.descriptor.type_embedding.net.layers[0].weight  # [dim, n_types]
    mask = torch.ones_like(weight)
    mask[:, :n_old] = 0
    weight.requires_grad_(True)
    return [weight.register_hook(lambda g: g * mask)]


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
    from lam_lab.train.run import _elements
    from lam_lab.train.trainer import train

    ff = load_source(pretrain_data)
    plabel = pretrain_label or ff.default_label()
    ff = select_frames(ff, plabel, pretrain_frames, seed)
    if out_dir == "auto":
        out_dir = Path("lam_lab_runs") / _dt.datetime.now().strftime("ff-pretrain-%Y%m%d-%H%M%S")
    sub = (lambda name: Path(out_dir) / name) if out_dir is not None else (lambda name: None)
    model = build_model(preset, _elements([ff, dataset]), heads=["ff"], seed=seed)
    cfg = (pretrain_config or TrainConfig()).replace(seed=seed)
    pre = train(model, ff, labels=plabel, heads="ff", steps=pretrain_steps, minutes=pretrain_minutes, config=cfg,
                out_dir=sub("pretrain"), progress=progress, device=device)
    pre.model.metadata = {"provenance": {}, "source": None, "extra": {"ff_pretrain": {"data": ff.name, "label": plabel}}}
    ft = finetune(dataset, pretrained=pre.model, out_dir=sub("finetune"), seed=seed, progress=progress, device=device,
                  **finetune_kwargs)
    return FFPretrainResult(pre.model, pre, ft)


# ``lam_lab.finetune`` is both this module and the function ``ll.finetune(...)``: once the module is
# imported it is the package attribute, so the module forwards calls to finetune() (as lam_lab.train does).
import sys as _sys  # noqa: E402
import types as _types  # noqa: E402


class _CallableModule(_types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> FinetuneResult:  # noqa: D102
        return finetune(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
