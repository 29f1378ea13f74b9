"""Experiments built on the engine: ``learning_curve(...)`` -> LearningCurve (see learning_curve.py).

``lam_lab.experiments.learning_curve`` is the function (this package binds it over the module of the same
name); the module's other names import from it or from here: ``from lam_lab.experiments import CurveRow``.
"""

from __future__ import annotations

from lam_lab.experiments.learning_curve import METHODS, SIZES, CurveRow, LearningCurve, learning_curve

__all__ = ["learning_curve", "LearningCurve", "CurveRow", "METHODS", "SIZES"]
