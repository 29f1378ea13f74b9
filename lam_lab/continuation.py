"""Keeping a Δ model training on a new reaction (few-shot): the measured recipe as :func:`lam_lab.finetune`'s defaults.

``benchmarks/delta_fewshot.py`` (10 frames of a reaction ``lam-chon-delta-heldout`` never saw, no TS among them)
chose them: lr 1e-3 for 200 steps of 4 frames and ten times the trainer's energy prefactors (ten frames carry ten
energies beside hundreds of force components, and a barrier is an energy difference: on the 20-reaction model the
mean barrier error after / before was 0.31 against 1.15 with ×1), while 1,000 frames of the model's own Δ training
data are replayed with weight 2. Without replay the other held-out reactions got up to 1.8× worse; on the
41-reaction model 200 frames at weight 0.5 still let two of the five reach 1.10–1.11×, 1,000 at weight 2 keep all
five within 1.08× with the same force gain (mean after / before 0.67). A caller's own values win, key by key; a
TrainConfig is taken whole for the training keys; a FinetuneConfig or run file gets no recipe at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from lam_lab.data.errors import DataError
from lam_lab.delta import delta_spec
from lam_lab.train.config import TrainConfig

if TYPE_CHECKING:
    from lam_lab.data.dataset import Dataset
    from lam_lab.potential import Potential

LR, STEPS, BATCH, REPLAY, REPLAY_FRAMES, ENERGY_WEIGHT = 1e-3, 200, 4, 2.0, 1000, 10.0
# keys of finetune()'s keyword overrides that set each default (flat aliases included)
_SETS = {"train.lr": ("config", "train"), "train.steps": ("steps", "minutes", "train.minutes", "config", "train"),
         "train.batch_size": ("config", "train"), "replay.weight": ("replay",), "replay.frames": (),
         "train.loss.pf_e_start": ("config", "train", "train.loss"),
         "train.loss.pf_e_limit": ("config", "train", "train.loss")}


def check_delta_continuation(base: "Potential", mode: str, baseline: str) -> None:
    """A Δ model keeps training only as Δ on its own baseline: other modes or baselines are a DataError saying so."""
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


def continuation_defaults(overrides: Mapping[str, Any], replay_known: bool) -> dict[str, Any]:
    """The recipe's dotted keys that ``overrides`` leaves unset (replay only when the model's data is known)."""
    loss = TrainConfig().loss
    recipe: dict[str, Any] = {"train.lr": LR, "train.steps": STEPS, "train.batch_size": BATCH,
                              "replay.weight": REPLAY if replay_known else 0.0, "replay.frames": REPLAY_FRAMES,
                              "train.loss.pf_e_start": ENERGY_WEIGHT * loss.pf_e_start,
                              "train.loss.pf_e_limit": ENERGY_WEIGHT * loss.pf_e_limit}
    overrides = {k: v for k, v in overrides.items() if v is not None}  # steps=None etc.: not given
    out = {k: v for k, v in recipe.items() if k not in overrides and not any(s in overrides for s in _SETS[k])}
    if not overrides.get("replay", overrides.get("replay.weight", out.get("replay.weight"))):
        out.pop("replay.frames", None)  # nothing replayed
    return out


def shipped_name(model: "Potential", source: str) -> str | None:
    """The shipped model's name when ``model`` (from ``source``) is one of ``ll.pretrained.available()``."""
    from lam_lab import pretrained

    for where in (source, str((model.metadata or {}).get("source") or "")):
        name = Path(where).stem if where.endswith(".pt") else where
        if name in pretrained.available() and (not where.endswith(".pt") or Path(where).parent == pretrained.FILES):
            return name
    return None


def own_data(name: str | None) -> "dict[str, Dataset] | None":
    """{"default": the frames shipped Δ model ``name`` was trained on, full labels} from its card; None otherwise."""
    if name is None:
        return None
    from lam_lab import datasets, pretrained

    recipe = pretrained.card(name, as_dict=True).get("recipe") or {}
    if not recipe.get("data") or "baseline" not in recipe:
        return None
    data = datasets.load(recipe["data"])
    return {"default": data.where(split=list(recipe.get("splits") or ["train"]))}


def continuation_config(base: "Potential", source: str, overrides: Mapping[str, Any],
                        replay_data: "Mapping[str, Dataset] | None") -> tuple[Any, Any, str]:
    """(FinetuneConfig with the recipe under ``overrides``, the data to replay, a note) for continuing Δ model
    ``base``; the replayed data is ``replay_data`` or, for a shipped model, its own training data."""
    from lam_lab.finetune import finetune_config

    name = shipped_name(base, source)
    data = replay_data if replay_data is not None else own_data(name)
    defaults = continuation_defaults(overrides, data is not None)
    rest = {k: v for k, v in overrides.items() if k != "config"}
    return finetune_config(overrides.get("config"), **defaults, **rest), data, describe(defaults, name)


def describe(defaults: Mapping[str, Any], name: str | None) -> str:
    """One line for the model's metadata: which recipe values were used."""
    if not defaults:
        return ""
    parts = [f"{k.split('.')[-1]}={v:g}" for k, v in defaults.items()]
    data = f" ({name}'s own training data replayed)" if defaults.get("replay.weight") else ""
    return "Δ continuation defaults: " + ", ".join(parts) + data


__all__ = ["check_delta_continuation", "continuation_defaults", "continuation_config", "shipped_name", "own_data",
           "describe", "LR", "STEPS", "BATCH", "REPLAY", "REPLAY_FRAMES", "ENERGY_WEIGHT"]
