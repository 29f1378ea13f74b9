"""Molecular dynamics with lam_lab models: the ASE calculator, bond/reaction analysis."""

from __future__ import annotations

from typing import Any

__all__ = ["LAMCalculator"]


def __getattr__(name: str) -> Any:
    # the calculator pulls in torch; analysis (and the player) should not have to
    if name == "LAMCalculator":
        from lam_lab.md.calculator import LAMCalculator

        return LAMCalculator
    raise AttributeError(f"module 'lam_lab.md' has no attribute {name!r}")
