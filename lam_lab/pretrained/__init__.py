"""Pre-trained models shipped inside lam_lab (no download): ``available()``, ``load(name)``, ``card(name)``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lam_lab.data.errors import DataError

if TYPE_CHECKING:
    from lam_lab.committee import Committee
    from lam_lab.potential import Potential

FILES = Path(__file__).parent / "files"
DEFAULT = "lam-chon-small"


def available() -> list[str]:
    """Names of the pre-trained models in this installation, the default (``lam-chon-small``) first."""
    return sorted((p.stem for p in FILES.glob("*.pt")), key=lambda n: (n != DEFAULT, n))


def path(name: str = DEFAULT) -> Path:
    """The model file of a shipped model; a clear error naming the shipped ones otherwise."""
    p = FILES / f"{name}.pt"
    if not p.exists():
        shipped = ", ".join(available()) or "none (build one: lam-lab pretrain --recipe lam-chon-small --install)"
        raise DataError(f"no pre-trained model {name!r}; shipped: {shipped}", source=str(p))
    return p


def load(name: str = DEFAULT, map_location: Any = "cpu") -> "Potential | Committee":
    """A ready model or committee (all heads, energy biases, provenance) from the package, loaded with
    weights_only=True."""
    from lam_lab.models import load as load_model

    return load_model(path(name), map_location=map_location)


def card(name: str = DEFAULT, as_dict: bool = False) -> str | dict[str, Any]:
    """The model card as Markdown (or the JSON dict with ``as_dict=True``)."""
    base = path(name).with_suffix("")
    if as_dict:
        return json.loads(base.with_suffix(".card.json").read_text())
    return base.with_suffix(".card.md").read_text()


def __getattr__(name: str) -> Any:
    if name in ("pretrain", "load_recipe", "recipe_names", "Recipe"):
        from lam_lab.pretrained import recipe

        return getattr(recipe, name)
    raise AttributeError(name)
