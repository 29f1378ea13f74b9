"""Seed frames of a distillation: the geometries a reaction's teacher was trained on, for the student's first fit.

A student fitted only to a few MD snapshots of the starts knows nothing of the barrier region the
teacher learnt from its DFT frames; the TS-centred frames of ``rxn-dft`` (train split: NEB path and
thermal samples around reactant, TS and product) give it that region from round 0, and the reaction's
GFN2-xTB samples in ``rxn-xtb`` widen it to where the teacher's MD goes. Only geometries are taken: the
teacher relabels them (:func:`lam_lab.distill.teacher.label_frames`), no DFT label is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from lam_lab.data.frame import Frame

SEED_SET = "rxn-dft"  # the Δ teacher's DFT data: train-split geometries are its own training frames
XTB_SET = "rxn-xtb"  # the same reactions sampled with GFN2-xTB: geometries around every reaction's path


@dataclass(frozen=True)
class SeededFit:
    """The student's measured recipe for a first fit on seed frames on a CPU (the Lab's Distill tab, ``make demo``).

    Measured on Diels–Alder with the labels of ``lam-chon-delta`` as trained on the 20-reaction rxn-dft (force RMSE,
    meV/Å, on frames never trained on; the 43-reaction teacher, 57, gives a student of 117 on the same recipe, 91
    with the Lab's 24000-step first fit): 20000 steps on the 213 bare seeds learnt them (72) but not the surface
    between them (163 vs the teacher); nine rattled copies of each at 0.05 Å: 111 (thirty copies 110; 0.1 Å 142;
    0.025 Å 126 vs ωB97X where 0.05 gave 114). Adam lr in 2000 steps (vs the teacher): 5e-3 218, 1e-2 202, 2e-2 176,
    5e-2 168. Atoms per step, 12000 steps (vs ωB97X, teacher 70): 64 atoms 130, 256 114 (1.6× the time), 512 116;
    36000 steps of 64 atoms 117, a wider student (basis 40, width 128) 137, 300 xTB seed frames 112, a light energy
    weight 118. With the 46-reaction teacher (55) and 24000 steps, every capacity knob stays within one distorted
    frame's swing of 105 (``benchmarks/student_fit.py``: 92–135 in all, 74–81 without that frame).
    """

    rattle_copies: int = 9
    rattle_sigma: float = 0.05  # Å
    lr: float = 2e-2
    batch_atoms: int = 256


SEEDED_FIT = SeededFit()


def reaction_names(text: str | Iterable[str]) -> list[str]:
    """The built-in reactions of ``SEED_SET`` named in ``text`` (comma-separated or a list), in order."""
    parts = [p.strip() for p in (text.split(",") if isinstance(text, str) else text)]
    known = set(known_reactions())
    return [p for p in dict.fromkeys(parts) if p in known]


def known_reactions() -> list[str]:
    """Reactions with frames in ``SEED_SET``."""
    from lam_lab import datasets

    return sorted({str(f.info["reaction"]) for f in datasets.load(SEED_SET) if f.info.get("reaction")})


def reaction_frames(reactions: Sequence[str], splits: Sequence[str] = ("train",), xtb_frames: int = 0,
                    exclude: Sequence[Frame] = ()) -> list[Frame]:
    """Geometries (labels dropped) of ``reactions``: their ``SEED_SET`` frames in ``splits`` and, per reaction,
    ``xtb_frames`` frames evenly taken from ``XTB_SET`` (thermal, normal-mode and IRC samples around reactant, TS
    and product). Frames at the geometry of a ``SEED_SET`` frame outside ``splits`` (the held-out frames a
    student is scored on) or of one of ``exclude`` are left out."""
    from lam_lab import datasets

    want, keep = set(reactions), set(splits)
    dft = [f for f in datasets.load(SEED_SET) if f.info.get("reaction") in want]
    held = heldout_frames(reactions, splits) + list(exclude)
    out = [_bare(f) for f in dft if f.info.get("split") in keep and not _among(f, held)]
    if xtb_frames > 0:
        xtb = [f for f in datasets.load(XTB_SET) if f.info.get("reaction") in want]
        for name in dict.fromkeys(r for r in reactions if r in want):
            pool = [f for f in xtb if f.info.get("reaction") == name and not _among(f, held)]
            out += [_bare(f) for f in pool[:: max(1, len(pool) // xtb_frames)][:xtb_frames]]
    return out


def heldout_frames(reactions: Sequence[str], splits: Sequence[str] = ("train",)) -> list[Frame]:
    """The ``SEED_SET`` frames of ``reactions`` outside ``splits``, labels kept: the frames :func:`reaction_frames`
    never seeds a student with, on which it is checked against DFT."""
    from lam_lab import datasets

    want, keep = set(reactions), set(splits)
    return [f for f in datasets.load(SEED_SET) if f.info.get("reaction") in want and f.info.get("split") not in keep]


def rattled_copies(frames: Sequence[Frame], copies: int, sigma: float, seed: int = 0) -> list[Frame]:
    """``copies`` copies of each frame, every coordinate displaced by a normal deviate of ``sigma`` Å (labels dropped).

    The teacher labels them for almost nothing (one force call each), and a student fitted to a few hundred
    geometries learns each of them, not the surface between them: on Diels–Alder its force error vs the teacher
    on frames it never saw fell from 163 to 111 meV/Å with nine copies at 0.05 Å (same steps)."""
    rng = np.random.default_rng(seed)
    return [Frame(f.numbers.copy(), f.positions + rng.normal(0.0, sigma, f.positions.shape), f.cell.copy(),
                  f.pbc.copy(), info={**f.info, "rattled": float(sigma)}) for _ in range(copies) for f in frames]


def _bare(f: Frame) -> Frame:
    return Frame(f.numbers.copy(), f.positions.copy(), f.cell.copy(), f.pbc.copy(), info=dict(f.info))


def _among(frame: Frame, others: Sequence[Frame]) -> bool:
    return any(len(o) == len(frame) and np.allclose(o.positions, frame.positions, atol=1e-3) for o in others)


__all__ = ["SEED_SET", "XTB_SET", "SeededFit", "SEEDED_FIT", "reaction_names", "known_reactions", "reaction_frames",
           "heldout_frames", "rattled_copies"]
