"""The Lab: one tabbed dashboard (Data, Train, Fine-tune·Δ, Distill, MD) over the lam_lab engine."""

from __future__ import annotations

import html
import importlib
from typing import Any, Sequence

import ipywidgets as w

from lam_lab.data import Dataset
from lam_lab.ui._figures import FitsFigures, refit_figures
from lam_lab.ui.data_panel import DataPanel
from lam_lab.ui.md_panel import MDPanel, PlaybackPanel

__all__ = ["Lab", "PlaybackPanel", "unavailable"]


def unavailable(title: str, reason: str) -> w.HTML:
    """A tab body saying plainly why a panel cannot be shown in this install."""
    return w.HTML(f"<div style='padding:12px;color:#555'><b>{html.escape(title)}</b> is not available here: "
                  f"{html.escape(reason)}</div>")


def _panel(module: str, cls: str, title: str, engine: str, **kwargs: Any) -> Any:
    """Build a panel; if its engine module does not import, say so in the tab instead."""
    try:
        importlib.import_module(engine)
    except ImportError as exc:
        return unavailable(title, f"{engine} does not import ({exc})")
    return getattr(importlib.import_module(module), cls)(**kwargs)


class Lab(FitsFigures, w.VBox):
    """The dashboard: every tab is a panel that also works alone, and every button is a method.

    ``lab.data`` (:class:`DataPanel`), ``lab.train`` (:class:`TrainPanel`), ``lab.finetune``
    (:class:`FinetunePanel`), ``lab.distill`` (:class:`DistillPanel`), ``lab.md`` (:class:`MDPanel`,
    whose ``playback`` is also ``lab.playback``). A model made in one tab is offered in the others
    (a notice with a 'use it' button), never selected for the user.
    """

    TABS = ("Data", "Train", "Fine-tune · Δ", "Distill", "MD")

    def __init__(self, dataset: Dataset | None = None, builtins: Sequence[str] | None = None,
                 out_root: str = "lam_lab_runs", **kwargs: Any):
        self.data = DataPanel(dataset=dataset, builtins=builtins)
        self.train = _panel("lam_lab.ui.train_panel", "TrainPanel", "Train", "lam_lab.train.trainer", out_root=out_root)
        self.finetune = _panel("lam_lab.ui.finetune_panel", "FinetunePanel", "Fine-tune · Δ", "lam_lab.finetune",
                               out_root=out_root)
        self.distill = _panel("lam_lab.ui.distill_panel", "DistillPanel", "Distill", "lam_lab.distill",
                              out_root=out_root)
        self.md = MDPanel()
        self.playback = self.md.playback
        for tab, source in (("Train", self.train), ("Fine-tune · Δ", self.finetune), ("Distill", self.distill)):
            if hasattr(source, "on_model"):
                source.on_model.append(lambda model, label, tab=tab: self.offer_model(model, label, tab))
        self.md.uncertainty.on_data.append(self.offer_data)
        self.tabs = w.Tab(children=[self.data, self.train, self.finetune, self.distill, self.md],
                          titles=list(self.TABS))
        # figures drawn in a hidden tab got plotly's default width: fit them when their tab is shown
        self.tabs.observe(lambda ch: refit_figures(self.tabs.children[ch["new"]]) if ch["new"] is not None else None,
                          names="selected_index")
        from lam_lab import __version__

        title = f"<h3 style='margin:4px 0'>lam_lab Lab <small style='color:#888'>v{__version__}</small></h3>"
        super().__init__([w.HTML(title),
                          self.tabs], **kwargs)

    def offer_model(self, model: Any, label: str, source: str = "another tab") -> None:
        """Offer ``model`` (a Potential) made in tab ``source`` to the other tabs among Fine-tune, Distill and MD.

        Each lists it and shows "New: label from source — use it"; none switches to it by itself.
        """
        pickers = {"Fine-tune · Δ": getattr(self.finetune, "pretrained", None),
                   "Distill": getattr(self.distill, "teacher", None), "MD": self.md.model}
        for tab, picker in pickers.items():
            if picker is not None and tab != source:
                picker.offer(model, label, source)

    def offer_data(self, dataset: Dataset, label: str) -> None:
        """Offer a data set made in the MD tab (frames labelled by DFT) to the Fine-tune · Δ tab, joined to its
        built-in downstream set when the labels match (the Δ set grows); never selected for the user."""
        if hasattr(self.finetune, "offer_dataset"):
            self.finetune.offer_dataset(dataset, label)

    def select(self, tab: str) -> None:
        """Switch to the tab titled ``tab``."""
        self.tabs.selected_index = list(self.TABS).index(tab)
