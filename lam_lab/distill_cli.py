"""Moved to :mod:`lam_lab.cli.distill`; these names stay importable here."""

from lam_lab.cli.distill import DistillRun, DistillSpec, cmd_distill, load_run, load_spec, load_systems

__all__ = ["DistillRun", "DistillSpec", "cmd_distill", "load_run", "load_spec", "load_systems"]
