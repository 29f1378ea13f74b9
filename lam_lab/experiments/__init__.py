"""Experiments built on the engine: ``learning_curve(...)`` -> LearningCurve (see learning_curve.py)."""

from __future__ import annotations

from lam_lab.experiments.learning_curve import METHODS, SIZES, CurveRow, LearningCurve, learning_curve

__all__ = ["learning_curve", "LearningCurve", "CurveRow", "METHODS", "SIZES"]
