"""A distilled student against the reference label on frames it never saw, beside its teacher on the same frames."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from lam_lab.data.frame import Frame
    from lam_lab.evaluation import Scores
    from lam_lab.potential import Potential


KEEPS_ACCURACY = 1.3  # student/teacher force RMSE up to which a student keeps its teacher's accuracy


@dataclass
class ReferenceCheck:
    """Student and teacher scored against ``label`` on the same unseen frames (meV/Å, meV/atom, eV)."""

    label: str
    n_frames: int
    student: "Scores"
    teacher: "Scores"
    # part -> (frames, student/teacher force RMSE): the first selection and the extra rounds' hotter frames apart
    by_part: dict[str, tuple[int, float]] = field(default_factory=dict)

    @property
    def student_over_teacher(self) -> float:
        """Student's force RMSE over the teacher's (within ``KEEPS_ACCURACY`` the student keeps its
        teacher's accuracy)."""
        return self.student.force_rmse_mev_per_A / self.teacher.force_rmse_mev_per_A


def reference_check(student: "Potential", teacher: "Potential", frames: Sequence["Frame"], label: str,
                    head: str | None = None) -> ReferenceCheck | None:
    """Student and teacher (its ``head``; a Δ teacher with its baseline added back) against label set ``label`` on
    the ``frames`` that carry its forces, and apart on the first selection and the extra rounds where both are
    there (``by_part``); None when no frame carries them."""
    from lam_lab.data.dataset import Dataset
    from lam_lab.evaluation import predict, score
    from lam_lab.pretrained.delta_card import selection_parts

    keep = [f for f in frames if label in f.labels and f.labels[label].forces is not None]
    if not keep:
        return None
    ds = Dataset(keep, name="unseen")
    by_part = {}
    for tag, part in selection_parts(ds).items():
        f_student, f_teacher = (score(predict(m, part, h), part, label).force_rmse_mev_per_A
                                for m, h in ((student, None), (teacher, head)))
        by_part[tag] = (len(part), f_student / f_teacher)
    return ReferenceCheck(label, len(ds), score(predict(student, ds), ds, label),
                          score(predict(teacher, ds, head), ds, label), by_part)


__all__ = ["KEEPS_ACCURACY", "ReferenceCheck", "reference_check"]
