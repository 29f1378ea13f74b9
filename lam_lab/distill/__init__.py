"""Distillation (issue 7): a fine-tuned teacher drives MD, a fast student learns the frames it gets wrong.

    res = ll.distill("teacher.pt", [atoms], trust=(0.1, 1.5), temperatures=(300, 600), rounds=5)
    res.student            # the student Potential; res.path: student.pt under out_dir
"""

from lam_lab.distill.check import ReferenceCheck, reference_check
from lam_lab.distill.events import DistillRound, RoundEvent
from lam_lab.distill.explore import Exploration, Explorer
from lam_lab.distill.loop import DistillConfig, DistillResult, distill, distill_config
from lam_lab.distill.select import Selection, force_rmse, max_force_deviation, predict, trust_select
from lam_lab.distill.teacher import LABEL

__all__ = ["distill", "DistillConfig", "distill_config",
           "DistillResult", "DistillRound", "RoundEvent", "Selection", "trust_select", "max_force_deviation",
           "force_rmse", "predict", "Explorer", "Exploration", "LABEL", "ReferenceCheck", "reference_check"]
