"""What carries over from a pre-trained model into fine-tuning: the model itself, its type map, its heads
(zero-shot ranking, which to keep, what became of the others), the Eq. 6 bias refit and freezing.

Force errors meV/Å, energies eV.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from lam_lab.committee import Committee
from lam_lab.data.dataset import Dataset
from lam_lab.data.errors import DataError
from lam_lab.potential import Potential

HEAD = "default"  # the downstream head of a fine-tuned model
ZERO_SHOT_FRAMES = 16  # frames used to rank the pre-trained heads


def resolve_pretrained(pretrained: str | os.PathLike | Potential | Committee) -> tuple[Potential, str]:
    """A private copy of the pre-trained model (object, model file or shipped name) and where it came from."""
    from lam_lab.models import load

    if isinstance(pretrained, Potential):
        return copy.deepcopy(pretrained), str((pretrained.metadata or {}).get("source") or "model object")
    if isinstance(pretrained, Committee):
        model, where = pretrained, str((pretrained.metadata or {}).get("source") or "committee object")
    elif Path(pretrained).exists() or Path(pretrained).suffix == ".pt":
        model, where = load(pretrained), str(pretrained)
    else:
        from lam_lab import pretrained as shipped

        try:
            model, where = shipped.load(str(pretrained)), str(pretrained)
        except DataError as exc:
            raise DataError(f"{exc.message}; pass pretrained=<model file or Potential>, or pretrained=None to train "
                            "from scratch", source=exc.source, field="pretrained") from exc
    if isinstance(model, Committee):
        raise DataError(f"a committee of {len(model.members)} models is evaluated as one, not trained as one: "
                        "fine-tune each member (its .members[i]) and make a Committee of the results",
                        source=where, field="pretrained")
    return model, where


def missing_elements(model: Potential, ds: Dataset, error: bool = True) -> list[str]:
    """Elements of ``ds`` absent from the model's type map; with ``error`` a DataError at the first frame with one."""
    from ase.data import chemical_symbols

    known, missing = set(model.type_map), []
    for i, frame in enumerate(ds):
        new = sorted({chemical_symbols[z] for z in np.unique(frame.numbers)} - known - set(missing))
        if new and error:
            raise DataError(f"elements {new} are not in the pre-trained type map {model.type_map}; pass "
                            "new_elements='init' to give them a fresh embedding",
                            source=ds.provenance.source or ds.name,
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
        new.fit_input_stats(frames)
        new.descriptor.keep_input_stats(model.descriptor, len(model.type_map))
    new.metadata = copy.deepcopy(model.metadata)
    return new.to(model.device)


def zero_shot(model: Potential, ds: Dataset, label: str, heads: Sequence[str] | None = None,
              n: int = ZERO_SHOT_FRAMES, graphs: Sequence[Any] | None = None) -> dict[str, float]:
    """Force RMSE (meV/Å) of each head on up to ``n`` frames; key ``"fresh"``: the RMS of the labels (a zero model).

    ``graphs``: the frames of ``ds`` already prepared with ``label`` (a training GraphCache), reused.
    """
    from lam_lab.train.metrics import evaluate_graphs

    if graphs is None:
        src = ds.provenance.source or ds.name
        graphs = [model.prepare(f, label=label, index=i, source=src) for i, f in enumerate(ds[:n])]
    else:
        graphs = [graphs[i] for i in range(min(n, len(graphs)))]
    forces = [g.forces for g in graphs if g.forces is not None]
    out = {}
    if forces:
        for h in heads or model.heads:
            sums, _ = evaluate_graphs(model, graphs, h, 8, model.device)
            out[h] = sums.row(h, h, label, 1.0).f_rmse
        out["fresh"] = 1000 * float(np.sqrt(np.mean(np.concatenate(forces) ** 2)))
    return out


def choose_branch(model: Potential, ds: Dataset, label: str, allow_fresh: bool = True,
                  graphs: Sequence[Any] | None = None) -> tuple[str | None, dict[str, float]]:
    """The head with the lowest zero-shot force RMSE, or None (a fresh head) when predicting zero forces does better
    (``graphs``: as for :func:`zero_shot`)."""
    errors = zero_shot(model, ds, label, graphs=graphs)
    if not errors:  # no force labels: energies alone rank nothing, keep the first head's weights
        return (None if allow_fresh else model.heads[0]), errors
    heads = {h: e for h, e in errors.items() if h != "fresh"}
    best = min(heads, key=heads.get)
    return (None if allow_fresh and errors["fresh"] < heads[best] else best), errors


def head_fates(heads: Sequence[str], chosen: str | None, replays: Mapping[str, Any], zero: Mapping[str, float],
               mode: str) -> dict[str, str]:
    """What became of each pre-trained head (kept as the downstream head, replayed, or dropped), with a warning
    when none starts the downstream head; zero-shot force RMSEs (meV/Å) on the training labels say why."""
    import warnings

    def why(h: str) -> str:
        if h not in zero or "fresh" not in zero:
            return ""
        return f" (zero-shot F RMSE {zero[h]:.0f} meV/Å vs {zero['fresh']:.0f} for a fresh head)"

    fate = {}
    for h in heads:
        if h == chosen:
            again = "; its own data replayed against forgetting" if h in replays else ""
            fate[h] = f"kept: starts the downstream head {HEAD!r}{why(h)}{again}"
        elif h in replays:
            fate[h] = "kept: replayed against forgetting"
        else:
            fate[h] = f"dropped{why(h)}"
    if chosen is None:
        what = "label − baseline (Δ)" if mode == "delta" else "these labels"
        dropped = [h for h in heads if h not in replays]
        kept = f" ({list(replays)} kept for their replayed data)" if replays else ""
        warnings.warn(f"{mode}: no pre-trained head predicts {what} better than zero, so {dropped} were dropped{kept} "
                      f"and the downstream head {HEAD!r} starts fresh on the pre-trained descriptor; pass "
                      "branch=<head> to start from one anyway", stacklevel=4)
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
    fine-tuning); on a head whose network outputs zero this is Eq. 6 itself. ``frames`` may be graphs prepared
    with ``label`` (a training GraphCache), reused as they are.
    """
    from lam_lab.nn.batch import Graph, collate
    from lam_lab.nn.energy_bias import solve_energy_bias, type_counts

    prepared = (f if isinstance(f, Graph) else model.prepare(f, label=label, index=i) for i, f in enumerate(frames))
    graphs = [g for g in prepared if g.energy is not None]
    if not graphs:
        raise DataError(f"no frame has an energy for label {label!r}: cannot fit the energy bias (Eq. 6)",
                        field="energy")
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

    An int k freezes the descriptor's first k levels (``Descriptor.frozen_modules``: for DPA-2 the type
    embedding, repinit and the first k repformer layers, with k ≥ 1 also the projections feeding them);
    a descriptor without levels (student) freezes whole.
    """
    if isinstance(what, str) and what.isdigit():
        what = int(what)
    desc = model.descriptor
    if what == "none":
        return []
    if what == "descriptor":
        mods = [desc]
    elif isinstance(what, int) and not isinstance(what, bool):
        mods = desc.frozen_modules(what)
    else:
        raise ValueError(f"freeze must be 'none', 'descriptor' or a number of layers, got {what!r}")
    ids = {id(p) for m in mods for p in m.parameters()}
    for m in mods:
        m.requires_grad_(False)
    return [f"descriptor.{n}" for n, p in desc.named_parameters() if id(p) in ids]


def train_new_types(model: Potential, n_old: int) -> list[Any]:
    """Let only the new types' columns of a frozen type embedding train (a gradient mask); returns the hook handles
    (none when the type embedding trains anyway)."""
    weight = model.descriptor.type_weight()  # [dim, n_types]
    if weight.requires_grad:
        return []
    mask = torch.ones_like(weight)
    mask[:, :n_old] = 0
    weight.requires_grad_(True)
    return [weight.register_hook(lambda g: g * mask)]
