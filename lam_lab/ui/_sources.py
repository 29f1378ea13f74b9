"""Pickers shared by the panels: a model (shipped, file, trained in this session, xTB/EMT) and a system to simulate."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Sequence

import ipywidgets as w
from ase import Atoms

from lam_lab.data.errors import DataError

FILE = "model file…"
XTB, EMT = "GFN2-xTB (tblite)", "EMT (metals, ASE)"
AUTO_HEAD = "auto"


def shipped_models() -> list[str]:
    """Names from ``ll.pretrained.available()`` (empty while none ships)."""
    try:
        from lam_lab import pretrained

        return list(pretrained.available())
    except (ImportError, AttributeError):
        return []


class ModelPicker(w.VBox):
    """Dropdown of models: shipped ones, models handed over in this session (:meth:`add`), a file, and
    optionally the reference calculators GFN2-xTB and EMT; plus the head to use.

    A line under it says which model is used and where it came from. A model made in another tab is
    :meth:`offer`-ed: listed, with a notice and a "use it" button, never selected for the user.
    """

    def __init__(self, description: str = "model", calculators: bool = False, auto_head: bool = True,
                 default_head: str | None = None):
        self._models: dict[str, Any] = {}  # label -> Potential
        self._origins: dict[str, str] = {}  # label -> where it came from
        self._loaded: dict[str, Any] = {}  # shipped name / path -> Potential (cache)
        self.offered: str | None = None  # label of the model the notice offers
        self.calculators, self.auto_head, self.default_head = calculators, auto_head, default_head
        self.choice = w.Dropdown(description=description, layout=w.Layout(width="330px"))
        self.path = w.Text(placeholder="path to a .pt model file", layout=w.Layout(width="260px", display="none"))
        self.head = w.Dropdown(description="head", options=[AUTO_HEAD] if auto_head else [],
                               layout=w.Layout(width="220px"))
        self.origin = w.HTML("", layout=w.Layout(margin="0 0 0 8px"))
        self.notice_text = w.HTML("")
        self.use_button = w.Button(description="use it", button_style="info", layout=w.Layout(width="80px"),
                                   tooltip="switch this tab to the new model")
        self.dismiss_button = w.Button(description="keep mine", layout=w.Layout(width="90px"),
                                       tooltip="keep the model chosen now (the new one stays in the list)")
        self.use_button.on_click(lambda _: self.use_offered())
        self.dismiss_button.on_click(lambda _: self.dismiss())
        self.notice = w.HBox([self.notice_text, self.use_button, self.dismiss_button],
                             layout=w.Layout(display="none", align_items="center", border="1px solid #9ecae1",
                                             padding="2px 6px", margin="2px 0", width="fit-content"))
        self.notice.add_class("lam-model-offer")
        self.choice.observe(lambda _: self._changed(), names="value")
        self.path.observe(lambda _: self._changed(), names="value")
        super().__init__([w.HBox([self.choice, self.path, self.head]), self.origin, self.notice])
        self._options()

    def _options(self, select: str | None = None) -> None:
        opts = list(self._models) + shipped_models() + [FILE] + ([XTB, EMT] if self.calculators else [])
        current = select or self.choice.value
        self.choice.options = opts
        self.choice.value = current if current in opts else opts[0]
        self._changed()

    def add(self, model: Any, label: str, select: bool = True, origin: str = "") -> None:
        """List ``model`` (a Potential) under ``label`` (``origin``: where it came from); ``select`` chooses it."""
        self._models[label] = model
        self._origins[label] = origin or "handed to this panel"
        self._options(label if select else None)

    def offer(self, model: Any, label: str, origin: str) -> None:
        """List ``model`` and show "New: label from origin — use it"; the current choice stays."""
        self.add(model, label, select=False, origin=f"made in {origin}")
        self.offered = label
        self.notice_text.value = (f"<span style='color:#08519c'><b>New:</b> {html.escape(label)} from "
                                  f"{html.escape(origin)} —&nbsp;</span>")
        self.notice.layout.display = "" if self.choice.value != label else "none"

    def use_offered(self) -> None:
        """Choose the offered model (what "use it" does)."""
        if self.offered is not None:
            self.select(self.offered)
        self.dismiss()

    def dismiss(self) -> None:
        """Hide the notice; the offered model stays in the list."""
        self.notice.layout.display = "none"

    def origin_of(self, label: str | None = None) -> str:
        """Where the model ``label`` (default: the chosen one) came from, in words."""
        label = self.choice.value if label is None else label
        if label in self._origins:
            return self._origins[label]
        if label in (XTB, EMT):
            return "reference method, no lam_lab model"
        if label == FILE:
            return "read from a file" if self.path.value.strip() else "give a path"
        return "shipped with lam_lab (pre-trained)"

    def select(self, label: str, head: str | None = None) -> None:
        """Choose ``label`` (a listed name, :data:`XTB`, :data:`EMT`, or a file path) and optionally a head."""
        if label not in self.choice.options:
            self.choice.value, self.path.value = FILE, str(label)
        else:
            self.choice.value = label
        if head is not None:
            self.head.value = head

    @property
    def is_calculator(self) -> bool:
        """True when the choice is GFN2-xTB or EMT rather than a lam_lab model."""
        return self.choice.value in (XTB, EMT)

    def _changed(self) -> None:
        self.path.layout.display = "" if self.choice.value == FILE else "none"
        self.origin.value = (f"<span style='color:#555'>uses <b>{html.escape(self.label or '–')}</b> · "
                             f"{html.escape(self.origin_of())}</span>")
        if self.choice.value == self.offered:
            self.notice.layout.display = "none"
        heads: list[str] = []
        try:
            model = None if self.is_calculator else self.model()
            heads = list(model.heads) if model is not None else []
        except (DataError, OSError, ValueError, RuntimeError):
            heads = []
        self.head.layout.display = "none" if self.is_calculator else ""
        opts = ([AUTO_HEAD] if self.auto_head else []) + heads
        keep = self.head.value if self.head.value in opts and self.head.value != AUTO_HEAD else None
        self.head.options = opts or [AUTO_HEAD]
        pick = keep or (self.default_head if self.default_head in opts else None) or self.head.options[0]
        self.head.value = pick

    def model(self) -> Any:
        """The chosen lam_lab Potential (loaded once), or None for a calculator / an empty file field."""
        from lam_lab.models import load

        label = self.choice.value
        if label in self._models:
            return self._models[label]
        if label in (XTB, EMT):
            return None
        if label == FILE:
            p = self.path.value.strip()
            if not p:
                return None
            path = Path(p).expanduser()
            if not path.is_file():
                raise DataError("no such model file", source=str(path))
            key = str(path)
        else:
            from lam_lab import pretrained

            key = str(pretrained.path(label))
        if key not in self._loaded:
            self._loaded[key] = load(key)
        return self._loaded[key]

    def resolve(self) -> tuple[Any, str | None]:
        """(Potential, or "xtb"/"emt") and the head (None = automatic); DataError when nothing usable is chosen."""
        if self.choice.value == XTB:
            return "xtb", None
        if self.choice.value == EMT:
            return "emt", None
        model = self.model()
        if model is None:
            raise DataError("choose a model: a shipped one, one trained here, or a model file", field="model")
        head = None if self.head.value == AUTO_HEAD else self.head.value
        return model, head

    @property
    def label(self) -> str:
        """What is chosen, for titles."""
        return self.path.value.strip() if self.choice.value == FILE else self.choice.value


def reaction_names() -> list[str]:
    """Built-in reactions that have a verified transition state (shipped with the package)."""
    from lam_lab.md.reactive import verified_reactions

    return verified_reactions()


def resolve_system(spec: str, seed: int = 0, role: str = "ts") -> list[Atoms]:
    """Atoms for ``spec``: a built-in reaction name (its TS, or reactant+TS with role="both"), an existing
    structure file (every frame), "Cu13"-style icosahedral cluster, or a SMILES string (RDKit + MMFF)."""
    spec = spec.strip()
    if not spec:
        raise DataError("give a system: a reaction name, a SMILES string or a structure file", field="system")
    if spec in reaction_names():
        from lam_lab.md.reactive import builtin_ts

        ts = builtin_ts(spec)
        return [ts.ts] if role == "ts" else [ts.reactant, ts.ts]
    path = Path(spec).expanduser()
    if path.exists():
        from ase.io import read

        try:
            frames = read(str(path), ":")
        except Exception as exc:  # noqa: BLE001 - any reader failure becomes the panel's message
            raise DataError(f"cannot read a structure: {type(exc).__name__}: {exc}", source=str(path)) from exc
        if not frames:
            raise DataError("no frames", source=str(path))
        return list(frames)
    if spec.endswith("13") and spec[:-2] in ("Cu", "Ag", "Au", "Ni", "Pd", "Pt", "Al"):
        from ase.cluster import Icosahedron

        atoms = Icosahedron(spec[:-2], 2)
        atoms.center(vacuum=5.0)
        return [atoms]
    from rdkit import RDLogger

    from lam_lab.sampling.molecules import smiles_to_atoms

    RDLogger.DisableLog("rdApp.*")
    try:
        return [smiles_to_atoms(spec, seed=seed)[0]]
    except DataError:
        raise DataError(f"{spec!r} is not a built-in reaction, an existing file, a cluster like Cu13, "
                        "or a SMILES string RDKit can parse", field="system") from None
    finally:
        RDLogger.EnableLog("rdApp.*")


def resolve_systems(text: str, seed: int = 0, role: str = "both") -> list[Atoms]:
    """Several systems from a comma-separated ``text`` (each as :func:`resolve_system`)."""
    out: list[Atoms] = []
    for part in [p for p in text.split(",") if p.strip()] or [""]:
        out += resolve_system(part, seed, role)
    return out


def parse_floats(text: str, field: str) -> Sequence[float]:
    """'300, 600' -> (300.0, 600.0); DataError naming ``field`` otherwise."""
    try:
        values = tuple(float(x) for x in text.replace(";", ",").split(",") if x.strip())
    except ValueError:
        raise DataError(f"expected numbers separated by commas, got {text!r}", field=field) from None
    if not values:
        raise DataError("give at least one number", field=field)
    return values
