"""Model presets, ``build_model``, and one-file ``save``/``load`` (atomic write, ``weights_only`` read)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from lam_lab.atomic import atomic_save
from lam_lab.committee import Committee
from lam_lab.data.errors import DataError
from lam_lab.integrity import seal, verify
from lam_lab.potential import ModelConfig, Potential

FORMAT = "lam_lab.model"
FORMAT_VERSION = 1
# keys of ``model.metadata["extra"]`` that describe the model itself (not one save), so every later
# save of it carries them: a Δ model keeps its baseline through the trainer's best.pt/model.pt.
MODEL_EXTRA_KEYS = ("delta", "finetune")

PRESETS: dict[str, ModelConfig] = {
    # DeePMD-kit examples/water/dpa2/input_torch_small.json: repinit 6 Å/120, repformer 4 Å/48, 3 layers,
    # conv + both symmetrisations; no local attention, no f_i⊙f_j term, no gated attention (as there).
    "dpa2-small": ModelConfig(),
    # input_torch_medium.json: 6 layers with the gated g attention (4 heads × 32).
    "dpa2-medium": ModelConfig(repformer_layers=6, g2_attn=True),
    # the paper's layer with every term of Eq. 24–32 (1/√3, 1/√4 residuals), 12 layers.
    "dpa2-paper": ModelConfig(repformer_layers=12, loc_attn=True, g1g1=True, g2_attn=True),
    # distillation student: DPA-1 without attention (two-body embedding + symmetrisation, one 5 Å list,
    # sel 80 (water has ≤ 65 neighbors within 5 Å), smooth from 0.5 Å) with the embedding in compressed
    # form: 20 cubic B-splines in r per element pair (0.29 Å knots) → 64 channels, axis 16, fitting
    # [128, 128, 128]. Measured on DFT water, 5 training minutes, 1 thread: force RMSE 0.087 eV/Å vs
    # 0.093 with axis 8 / fitting 64³ at the same step count (the pair work dominates a step, not the
    # fitting net) and 0.102 with a 6 Å / sel 120 list (half the steps). student_embedding="mlp" gives
    # the uncompressed [25, 50, 100] embedding net instead.
    "student": ModelConfig(kind="student", repinit_rcut=5.0, repinit_sel=80, student_basis=20, repinit_neuron=(64,),
                           repinit_axis=16, fitting_neuron=(128, 128, 128), neighbor_norm_min=1.0),
}


def build_model(preset: str | ModelConfig, type_map: Sequence[str], heads: Sequence[str] = ("default",),
                **overrides: Any) -> Potential:
    """A freshly initialised model from a preset name (see ``PRESETS``) or a config, with field overrides."""
    if isinstance(preset, ModelConfig):
        base = preset
    else:
        try:
            base = PRESETS[preset]
        except KeyError:
            raise ValueError(f"unknown model preset {preset!r}; choose one of {sorted(PRESETS)}") from None
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown model option(s) {unknown}; known: {sorted(known)}")
    return Potential(dataclasses.replace(base, **overrides), type_map, heads)


def to_payload(model: Potential | Committee, extra: dict | None = None) -> dict[str, Any]:
    """Everything needed to rebuild ``model``, as plain types and tensors (what ``save`` writes)."""
    from lam_lab.atomft import atomft_spec

    own = (getattr(model, "metadata", None) or {}).get("extra") or {}
    extra = {**{k: own[k] for k in MODEL_EXTRA_KEYS if k in own}, **(extra or {})}
    if isinstance(model, Committee):  # each member whole (and sealed), the committee's own extra beside them
        return seal({"format": FORMAT, "format_version": FORMAT_VERSION,
                     "committee": [to_payload(m) for m in model.members],
                     "provenance": {"lam_lab": _version(), "torch": str(torch.__version__),
                                    "saved": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")},
                     "extra": _plain(extra, "extra")})
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "type_map": list(model.type_map),
        "heads": list(model.heads),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "energy_bias": {h: b.detach().cpu().tolist() for h, b in model.energy_bias.items()},
        "provenance": {
            "lam_lab": _version(),
            "torch": str(torch.__version__),
            "saved": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        },
        "extra": _plain(extra, "extra"),
    }
    spec = atomft_spec(model)
    if spec:  # AtomFT heads (base + bounded correction): rebuilt by from_payload before the weights load
        payload["atomft"] = spec
    return seal(payload)


def from_payload(payload: Any, source: str | os.PathLike | None = None,
                 map_location: Any = "cpu") -> Potential | Committee:
    """Rebuild a model from :func:`to_payload` output; DataError naming ``source`` when it is not one."""
    src = None if source is None else str(source)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        what = f"keys {sorted(payload)[:8]}" if isinstance(payload, dict) else type(payload).__name__
        raise DataError(f"not a lam_lab model file (expected format {FORMAT!r}, found {what})", source=src)
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise DataError(f"model file format {payload['format_version']} is newer than this lam_lab "
                        f"reads ({FORMAT_VERSION}); upgrade lam_lab", source=src)
    problem = verify(payload)
    if problem:
        raise DataError(problem, source=src)
    if "committee" in payload:
        try:
            model = Committee([from_payload(p, source, map_location) for p in payload["committee"]])
        except (TypeError, ValueError) as err:
            raise DataError(f"model file holds a committee whose members do not fit together: {err}",
                            source=src) from err
        model.metadata = {"provenance": payload.get("provenance", {}), "extra": payload.get("extra", {}), "source": src}
        return model
    try:
        model = Potential(ModelConfig.from_dict(dict(payload["config"])), payload["type_map"], payload["heads"])
        if payload.get("atomft"):
            from lam_lab.atomft import apply_atomft_spec

            apply_atomft_spec(model, payload["atomft"])
        state = dict(payload["state_dict"])
        for key, value in model.state_dict().items():  # files from before N^m was fitted used the paper's sel
            if key.endswith("n_norm") and key not in state:
                state[key] = value
        model.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise DataError(f"model file is damaged or inconsistent: {err}", source=src) from err
    model.metadata = {"provenance": payload.get("provenance", {}), "extra": payload.get("extra", {}), "source": src}
    return model.to(map_location) if map_location is not None else model


def save(model: Potential | Committee, path: str | os.PathLike, extra: dict | None = None) -> None:
    """Write ``model`` (config, type map, heads, weights, energy bias, provenance, ``extra``) to one file atomically."""
    atomic_save(to_payload(model, extra), path)


def load(path: str | os.PathLike, map_location: Any = "cpu") -> Potential | Committee:
    """Read a model (or committee) written by :func:`save` with ``torch.load(weights_only=True)``.

    A DataError names the file if it is unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is a folder, not a model file" if path.is_dir()
                                else f"model file {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many kinds for truncated/foreign files
        raise DataError(f"cannot read model file (corrupt, truncated or not a lam_lab model): "
                        f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
                        source=str(path)) from err
    return from_payload(payload, path, map_location)


def _version() -> str:
    from lam_lab import __version__

    return __version__


def _plain(value: Any, where: str) -> Any:
    """``value`` as types ``weights_only`` loading accepts (numpy → lists/scalars); else TypeError naming the key."""
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value), where)
    if value is None or isinstance(value, (str, int, float, bool, torch.Tensor)):
        return value.detach().cpu() if isinstance(value, torch.Tensor) else value
    raise TypeError(f"{where}: cannot store {type(value).__name__} in a model file (use plain types)")
