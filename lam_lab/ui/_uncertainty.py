"""Uncertainty you can see: a committee's per-atom force disagreement on the played trajectory, and the most
uncertain frames sent to DFT and into a Δ data set (active learning by hand)."""

from __future__ import annotations

from typing import Any, Callable

import ipywidgets as w

from lam_lab.data.errors import DataError
from lam_lab.ui._figures import fmt
from lam_lab.ui._jobs import BackgroundJob, JobContext
from lam_lab.ui._live import message_html
from lam_lab.ui._sources import EMT, FILE, XTB, ModelPicker

SEP = " · "


class UncertaintyBox(w.VBox):
    """Committee members (model · head, from a :class:`ModelPicker`'s list), an **Uncertainty** button that
    colours the player's atoms by the committee's force disagreement, and **Label** that sends the k most
    uncertain frames to the DFT labeler and into :attr:`delta_set` (``on_data`` callbacks get it).

    ``player`` is a callable returning the current :class:`ReactionPlayer` (or None).
    """

    def __init__(self, picker: ModelPicker, player: Callable[[], Any]):
        self.picker, self._player = picker, player
        self.disagreement: list[Any] | None = None  # per frame, per atom (eV/Å)
        self.chosen: list[int] = []  # frame indices sent to DFT last time (0-based)
        self.delta_set: Any = None  # the growing Δ data set (DFT + GFN2-xTB labels)
        self.on_data: list[Callable[[Any, str], None]] = []
        self.error = ""
        self.members = w.SelectMultiple(description="committee", rows=4, layout=w.Layout(width="420px"),
                                        tooltip="two or more models or heads; ctrl-click to choose several")
        self.k = w.IntText(value=3, description="frames", layout=w.Layout(width="150px"))
        self.dft = w.Text(value="wb97x/6-31g*", description="DFT", layout=w.Layout(width="230px"),
                          tooltip="functional/basis for PySCF")
        self.job = BackgroundJob(self._disagree_job, start_label="Uncertainty", on_done=self._show,
                                 on_start=self.compute)
        self.label_job = BackgroundJob(self._label_job, start_label="Label these frames", on_start=self.label)
        self.label_job.start_button.icon = "flask"
        self.label_job.start_button.layout.width = "180px"
        self.message = w.HTML("")
        super().__init__([
            w.HTML("<b>Uncertainty</b>: where a committee (several models, or several heads of one) disagrees on the "
                   "forces, the models have not seen such structures. The player colours atoms by the disagreement "
                   "and plots its maximum under the energy; <i>Label these frames</i> sends the most uncertain ones "
                   "to DFT (PySCF) and into a Δ data set for the Fine-tune · Δ tab."),
            w.HBox([self.members, w.VBox([self.job.widget, w.HBox([self.k, self.dft]), self.label_job.widget])]),
            self.message,
        ])
        picker.choice.observe(lambda _: self.refresh(), names=["options", "value"])
        self.refresh()

    def refresh(self) -> None:
        """List "model · head" for every lam_lab model the picker offers (default: two heads of the first)."""
        opts = []
        for label in self.picker.choice.options:
            if label in (FILE, XTB, EMT):
                continue
            try:
                model = self.picker._models.get(label) or self._load(label)
            except (DataError, OSError, ValueError, RuntimeError):
                continue
            opts += [f"{label}{SEP}{h}" for h in model.heads]
        keep = [v for v in self.members.value if v in opts]
        self.members.options = opts
        if not keep and len(opts) >= 2:  # default: two heads of the model the MD tab uses (or of the first model)
            mine = [o for o in opts if o.rsplit(SEP, 1)[0] == self.picker.choice.value]
            mine = mine if len(mine) >= 2 else [o for o in opts if o.rsplit(SEP, 1)[0] == opts[0].rsplit(SEP, 1)[0]]
            pref = [o for o in mine if o.endswith((SEP + "rxn-xtb", SEP + "rxn-dft"))]
            keep = (pref if len(pref) >= 2 else mine)[:2]
        self.members.value = tuple(keep)

    def _load(self, label: str) -> Any:
        from lam_lab import pretrained
        from lam_lab.models import load

        key = str(pretrained.path(label))
        if key not in self.picker._loaded:
            self.picker._loaded[key] = load(key)
        return self.picker._loaded[key]

    def committee(self) -> list[tuple[Any, str]]:
        """The chosen members as (Potential, head) pairs; DataError with fewer than two."""
        if len(self.members.value) < 2:
            raise DataError("choose at least two committee members (models or heads)", field="committee")
        out = []
        for item in self.members.value:
            label, head = item.rsplit(SEP, 1)
            out.append((self.picker._models.get(label) or self._load(label), head))
        return out

    def _frames(self) -> list[Any]:
        player = self._player()
        if player is None:
            raise DataError("run MD or open a trajectory first: the committee judges the frames in the player")
        traj = player.trajectory
        from ase import Atoms

        return [Atoms(numbers=traj.numbers, positions=traj.positions[t], cell=traj.cells[t], pbc=traj.pbc)
                for t in range(traj.n_frames)]

    # -- actions ----------------------------------------------------------------------------------
    def compute(self) -> bool:
        """Committee disagreement on every frame of the player, in the background; False when the form is wrong."""
        try:
            members, frames = self.committee(), self._frames()
        except DataError as exc:
            return self._fail(str(exc))
        self.message.value, self.error = message_html(f"{len(members)} models on {len(frames)} frames…"), ""
        return self.job.start(members, frames)

    def _disagree_job(self, ctx: JobContext, members: list, frames: list) -> Any:
        from lam_lab.distill.uncertainty import force_disagreement

        ctx.progress(0.1, "predicting forces with every committee member…")
        self.disagreement = force_disagreement(frames, members)
        return self.disagreement

    def _show(self, d: list) -> None:
        from lam_lab.distill.uncertainty import frame_uncertainty

        player = self._player()
        if player is not None and len(d) == player.n_frames:
            player.set_atom_values(d)
        score = frame_uncertainty(d)
        worst = int(score.argmax()) if len(score) else 0
        largest = fmt(score.max() if len(score) else None, ".2f", "eV/Å")
        self.message.value = message_html(f"largest disagreement {largest} "
                                          f"at frame {worst + 1}; atoms coloured by it (player: colour menu)")

    def label(self, k: int | None = None, dft: str | None = None) -> bool:
        """Send the ``k`` most uncertain frames to DFT (+ GFN2-xTB) in the background; they join :attr:`delta_set`."""
        if self.disagreement is None:
            return self._fail("press Uncertainty first: the frames are ranked by the committee's disagreement")
        try:
            frames = self._frames()
        except DataError as exc:
            return self._fail(str(exc))
        if len(frames) != len(self.disagreement):
            return self._fail("the player shows another trajectory now: press Uncertainty again")
        k = int(k if k is not None else self.k.value)
        return self.label_job.start(frames, max(1, k), (dft or self.dft.value).strip())

    def _label_job(self, ctx: JobContext, frames: list, k: int, dft: str) -> Any:
        from lam_lab.distill.uncertainty import extend, label_for_delta, most_uncertain

        self.chosen = most_uncertain(frames, k=k, min_separation=max(1, len(frames) // (4 * k)),
                                     disagreement=self.disagreement)
        ctx.progress(0.05, f"DFT ({dft}) on frames {', '.join(str(i + 1) for i in self.chosen)}…")
        # on the lowest SCF solution (UKS where RKS is unstable, as near a saddle it can be), as rxn-dft is labelled
        new = label_for_delta(frames, self.chosen, dft=dft, name="uncertain-frames",
                              dft_settings={"lowest_solution": True})
        self.delta_set = extend(self.delta_set, new, name="uncertain-frames")
        label = f"uncertain frames ({len(self.delta_set)})"
        self.message.value = message_html(
            f"{len(new)} of {len(self.chosen)} frames labelled with {dft} and GFN2-xTB (DFT on the lowest SCF "
            f"solution); the Δ set has "
            f"{len(self.delta_set)} frames — offered to the Fine-tune · Δ tab as {label!r}")
        for fn in self.on_data:
            fn(self.delta_set, label)
        return new

    def _fail(self, text: str) -> bool:
        self.error = text
        self.message.value = message_html(text, ok=False)
        return False
