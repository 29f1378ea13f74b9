"""The teacher of a distillation: resolve a model/file/shipped name, pick its head, label frames with it (eV, eV/Å)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
from ase import Atoms

from lam_lab.data.dataset import Dataset, LabelProvenance, Provenance
from lam_lab.data.errors import DataError
from lam_lab.data.frame import Frame, Labels

if TYPE_CHECKING:
    from lam_lab.committee import Committee
    from lam_lab.potential import Potential

LABEL = "teacher"  # label-set name of teacher labels in the student's training set


def resolve_teacher(teacher: "Potential | Committee | str | os.PathLike") -> tuple["Potential | Committee", str]:
    """The teacher model (a committee too) and a readable name of where it came from (file, shipped name, 'model')."""
    from lam_lab.committee import Committee
    from lam_lab.potential import Potential

    if isinstance(teacher, (Potential, Committee)):
        return teacher, str(teacher.metadata.get("source") or "model")
    if isinstance(teacher, (str, os.PathLike)):
        path = Path(teacher)
        if path.is_file():
            from lam_lab.models import load

            return load(path), str(path)
        from lam_lab import pretrained

        if str(teacher) in pretrained.available():
            return pretrained.load(str(teacher)), f"pretrained:{teacher}"
        shipped = ", ".join(pretrained.available()) or "none"
        raise DataError(f"teacher {str(teacher)!r} is neither a model file nor a shipped model (shipped: {shipped})",
                        source=str(teacher), field="teacher")
    raise TypeError(f"teacher must be a Potential, a model file or a shipped model name, got {type(teacher).__name__}")


def teacher_head(model: "Potential", head: str | None, source: str) -> str:
    """``head`` checked against the teacher's heads; the only head when ``head`` is None."""
    if head is None:
        if len(model.heads) == 1:
            return model.heads[0]
        raise DataError(f"the teacher has several heads {model.heads}: name one with head=", source=source,
                        field="head")
    if head not in model.heads:
        raise DataError(f"the teacher has no head {head!r} (heads: {model.heads})", source=source, field="head")
    return head


def as_atoms_list(systems: Sequence[Atoms] | Dataset | Atoms) -> list[Atoms]:
    """Starting structures as ASE Atoms (a Dataset's frames converted, labels dropped)."""
    if isinstance(systems, Atoms):
        return [systems.copy()]
    if isinstance(systems, Dataset):
        return [f.to_atoms() for f in systems]
    out = []
    for k, s in enumerate(systems):
        if isinstance(s, Frame):
            out.append(s.to_atoms())
        elif isinstance(s, Atoms):
            out.append(s.copy())
        else:
            raise DataError(f"expected ase.Atoms or Frame, got {type(s).__name__}", source="systems", frame=k)
    if not out:
        raise DataError("no starting structure given", source="systems")
    return out


def check_elements(type_map: Sequence[str], frames: Iterable[Atoms | Frame], what: str) -> list[str]:
    """The elements of ``frames`` (in ``type_map`` order); DataError naming the frame with an unknown one."""
    from ase.data import chemical_symbols

    known, seen = set(type_map), set()
    for k, f in enumerate(frames):
        numbers = f.numbers if isinstance(f, Frame) else f.get_atomic_numbers()
        symbols = {chemical_symbols[z] for z in np.unique(numbers)}
        missing = sorted(symbols - known)
        if missing:
            raise DataError(f"elements {missing} are not in the teacher's type map {list(type_map)}",
                            source=what, frame=k, field="numbers")
        seen |= symbols
    return [s for s in type_map if s in seen]


def label_frames(model: "Potential", head: str, frames: Sequence[Frame | Atoms], name: str, source: str,
                 info: dict[str, Any] | None = None) -> Dataset:
    """A Dataset of ``frames`` labelled by the teacher (label set ``"teacher"``: energy, forces, virial if periodic)."""
    from lam_lab.delta import RuntimeBaseline, delta_spec
    from lam_lab.distill.select import predict

    plain = [_plain_frame(f) for f in frames]
    pred = predict(model, plain, head=head, virial=True)
    spec = delta_spec(model)
    baseline = RuntimeBaseline(spec) if spec else None  # a Δ teacher's labels are model + baseline, as in its MD
    for f, e, F, v in zip(plain, pred.energy, pred.forces, pred.virial):
        if baseline is not None:
            atoms = f.to_atoms()
            base = baseline(atoms)
            e, F = e + base["energy"], F + base["forces"]
            v = None if v is None or "stress" not in base else v - _full(base["stress"]) * atoms.get_volume()
        f.labels[LABEL] = Labels(float(e), F, v)
        f.info.update(info or {})
    return Dataset(plain, name=name, provenance=teacher_provenance(source, head))


def _full(voigt: np.ndarray) -> np.ndarray:
    """3×3 tensor from ASE's Voigt order (xx, yy, zz, yz, xz, xy)."""
    xx, yy, zz, yz, xz, xy = np.asarray(voigt, float)
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def frame_from_snapshot(atoms: Atoms, info: dict[str, Any]) -> Frame:
    """A training frame from an MD snapshot whose calculator holds the teacher's energy and forces."""
    frame = Frame.from_atoms(atoms, label=LABEL)
    frame.info = {k: v for k, v in frame.info.items() if k in ("step", "time_fs", "temperature")}
    frame.info.update(info)
    return frame


def teacher_provenance(source: str, head: str) -> Provenance:
    """Provenance of a teacher-labelled set."""
    import lam_lab

    return Provenance(labels={LABEL: LabelProvenance(method=f"lam_lab model {source} head {head}", software="lam_lab",
                                                     version=lam_lab.__version__,
                                                     settings={"head": head, "model": source})},
                      builder="lam_lab.distill")


def _plain_frame(f: Frame | Atoms) -> Frame:
    if isinstance(f, Atoms):
        return Frame(f.get_atomic_numbers(), f.get_positions(), np.array(f.get_cell()), f.get_pbc(),
                     info={k: v for k, v in f.info.items() if isinstance(v, (str, int, float, bool))})
    return Frame(f.numbers.copy(), f.positions.copy(), f.cell.copy(), f.pbc.copy(), info=dict(f.info))


__all__ = ["LABEL", "resolve_teacher", "teacher_head", "as_atoms_list", "check_elements", "label_frames",
           "frame_from_snapshot", "teacher_provenance"]
