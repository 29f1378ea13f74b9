"""Reference methods behind one interface: EMT (ASE), GFN2-xTB (tblite), DFT (PySCF), water FF.

    lab = get_labeler("gfn2-xtb", charge=0)
    result = lab.label(dataset, cache_dir="cache/", executor=2)   # LabelingResult
    print(result.summary()); ds = result.to_dataset()

Names: "emt"; "gfn2-xtb" (aliases "xtb", "gfn2"), "gfn1-xtb"; "dft" (settings xc=, basis=) or a
"functional/basis" name such as "wb97x/6-31g*"; "tip3p" (alias "forcefield", "water").
"""

from __future__ import annotations

from typing import Any, Callable

from lam_lab.labelers.base import (
    FailedFrame,
    Labeler,
    LabelingFailed,
    LabelingResult,
    LabelingSummary,
    settings_from_kwargs,
)
from lam_lab.labelers.cache import LabelCache, frame_key
from lam_lab.labelers.dft import DFTLabeler, DFTSettings
from lam_lab.labelers.emt import EMTLabeler, EMTSettings
from lam_lab.labelers.executor import DaskExecutor, Executor, LocalExecutor, SerialExecutor, make_executor
from lam_lab.labelers.forcefield import WaterFFLabeler, WaterFFSettings
from lam_lab.labelers.xtb import XTBLabeler, XTBSettings

__all__ = [
    "Labeler", "LabelingResult", "LabelingSummary", "FailedFrame", "LabelingFailed",
    "LabelCache", "frame_key", "Executor", "SerialExecutor", "LocalExecutor", "DaskExecutor",
    "make_executor", "get_labeler", "register_labeler", "available",
    "EMTLabeler", "XTBLabeler", "DFTLabeler", "WaterFFLabeler",
    "EMTSettings", "XTBSettings", "DFTSettings", "WaterFFSettings",
]


def _emt(**kw: Any) -> Labeler:
    return EMTLabeler(settings_from_kwargs(EMTSettings, kw))


def _xtb(method: str) -> Callable[..., Labeler]:
    def make(**kw: Any) -> Labeler:
        kw.setdefault("method", method)
        return XTBLabeler(settings_from_kwargs(XTBSettings, kw, aliases={"uhf": "spin"}))

    return make


def _dft(**kw: Any) -> Labeler:
    return DFTLabeler(settings_from_kwargs(DFTSettings, kw, aliases={"functional": "xc", "uhf": "spin"}))


def _water(**kw: Any) -> Labeler:
    return WaterFFLabeler(settings_from_kwargs(WaterFFSettings, kw))


_REGISTRY: dict[str, Callable[..., Labeler]] = {
    "emt": _emt,
    "gfn2-xtb": _xtb("GFN2-xTB"), "xtb": _xtb("GFN2-xTB"), "gfn2": _xtb("GFN2-xTB"),
    "gfn1-xtb": _xtb("GFN1-xTB"), "gfn1": _xtb("GFN1-xTB"),
    "dft": _dft, "pyscf": _dft,
    "tip3p": _water, "forcefield": _water, "water": _water,
}


def register_labeler(name: str, factory: Callable[..., Labeler]) -> None:
    """Make ``get_labeler(name, **settings)`` call ``factory(**settings)``."""
    _REGISTRY[name.lower()] = factory


def available() -> list[str]:
    """Registered labeler names (aliases included)."""
    return sorted(_REGISTRY)


def get_labeler(name: str, **settings: Any) -> Labeler:
    """A labeler by name with its settings; ``"xc/basis"`` names a PySCF DFT level directly."""
    key = name.strip().lower()
    if key in _REGISTRY:
        return _REGISTRY[key](**settings)
    if "/" in key:
        xc, basis = key.split("/", 1)
        return _dft(xc=xc, basis=basis, **settings)
    raise KeyError(f"unknown labeler {name!r}; available: {', '.join(available())} or 'functional/basis'")

