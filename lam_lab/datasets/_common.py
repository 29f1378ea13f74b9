"""Shared builder helpers: software versions, provenance, labelling through the cached labelers."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from lam_lab.data.dataset import Dataset, LabelProvenance, Provenance
from lam_lab.data.frame import Frame
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
