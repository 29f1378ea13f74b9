"""Moved to :mod:`lam_lab.cli.finetune` (and :mod:`lam_lab.cli.learning_curve`); these names stay importable here."""

from lam_lab.cli.finetune import FinetuneRun, FinetuneSpec, PretrainSpec, cmd_finetune, load_run, load_spec
from lam_lab.cli.learning_curve import cmd_learning_curve

__all__ = ["FinetuneRun", "FinetuneSpec", "PretrainSpec", "cmd_finetune", "cmd_learning_curve", "load_run",
           "load_spec"]
