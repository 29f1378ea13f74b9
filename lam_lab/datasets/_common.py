"""Shared builder helpers: software versions, provenance, labelling through the cached labelers."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from lam_lab.data.dataset import Dataset, LabelProvenance, Provenance
from lam_lab.data.frame import Frame, Labels
from lam_lab.datasets._stages import BuildContext


def software_versions(*packages: str) -> dict[str, str]:
    """Installed versions of lam_lab, numpy, ase and the named packages."""
    import lam_lab

    out = {"lam_lab": lam_lab.__version__}
    for pkg in ("numpy", "ase", *packages):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def provenance(ctx: BuildContext, labels: dict[str, LabelProvenance], packages: tuple[str, ...],
               notes: str) -> Provenance:
    """Provenance of a built-in set: label methods, builder module, seed, date, versions, notes."""
    return Provenance(
        labels=labels,
        builder=f"lam_lab.datasets.build({ctx.name!r}{', quick=True' if ctx.quick else ''})",
        seed=ctx.seed,
        versions=software_versions(*packages),
        notes=notes,
    )


@dataclass
class Labelled:
    """Result of :func:`label`: labelled frames, their input indices, label name, provenance, failures."""

    frames: list[Frame]
    indices: list[int]
    name: str
    provenance: LabelProvenance
    failures: list[tuple[int, str]]


def label(ctx: BuildContext, frames: list[Frame], method: str, workers: int | None = None, **settings) -> Labelled:
    """Frames labelled by ``method`` through the labelers' content-hash cache (so a killed build resumes)."""
    from lam_lab.labelers import get_labeler

    lab = get_labeler(method, **settings)
    n = workers if workers is not None else (ctx.workers or 1)
    res = lab.label(Dataset(frames, ctx.name), cache_dir=ctx.label_cache(), executor=n, progress=ctx.progress)
    ctx.say(str(res.summary()).splitlines()[0])
    for i, reason in [(f.index, f.reason) for f in res.failed][:20]:
        ctx.say(f"  failed frame {i}: {reason[:200]}")
    return Labelled(res.frames, res.indices, lab.name, res.provenance, [(f.index, f.reason) for f in res.failed])


def _cache(ctx: BuildContext, method: str, settings: dict):
    from lam_lab.labelers import LabelCache, frame_key, get_labeler

    lab = get_labeler(method, **settings)
    identity = lab.cache_identity()
    return LabelCache(ctx.label_cache()), lambda f: frame_key(f, {**identity, "frame": lab.frame_params(f)})


def labelled_so_far(ctx: BuildContext, frames: list[Frame], method: str, labelled: bool = True,
                    **settings) -> list[Frame]:
    """The ``frames`` whose ``method`` label is in the build's cache already (a partial set), or with
    ``labelled=False`` those still to compute."""
    cache, key = _cache(ctx, method, settings)
    return [f for f in frames if (cache.get(key(f), len(f)) is not None) == labelled]


def cache_labels(ctx: BuildContext, labelled: list[tuple[Frame, Labels]], method: str, **settings) -> None:
    """Put ``method`` labels computed elsewhere (energy eV, forces eV/Å; e.g. by a TS search with the same labeler)
    into the build's cache where it has none, so the label phase does not compute them again."""
    from lam_lab.labelers.cache import CacheEntry

    if ctx.cache_dir is None:
        return
    cache, key = _cache(ctx, method, settings)
    for f, labels in labelled:
        if cache.get(key(f), len(f)) is None:
            cache.put(key(f), CacheEntry(labels))
