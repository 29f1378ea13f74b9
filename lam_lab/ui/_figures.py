"""Figures in panels: static plotly figures shown in Output widgets from any thread, placeholders, number formats.

A job's worker thread cannot ``display()`` into an ``ipywidgets.Output`` once the cell that started it has
ended (the front end drops output whose parent message is finished). Setting the Output's ``outputs``
trait is a widget state change, which does reach the browser from any thread — that is what
:func:`show_figure` does.
"""

from __future__ import annotations

import json
import math
import threading
from typing import Any, Sequence

import ipywidgets as w
import plotly.graph_objects as go
import plotly.io as pio

PLOTLY_MIME = "application/vnd.plotly.v1+json"
REFIT_AFTER_S = (0.5, 2.0, 5.0)  # seconds after a panel is displayed when its live figures measure their width again


def fmt(value: Any, spec: str = ".3g", unit: str = "") -> str:
    """``value`` formatted with ``spec`` (and `` unit``), or "n/a" when it is missing or not a finite number."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(v):
        return "n/a"
    return f"{format(v, spec)}{' ' + unit if unit else ''}"


def figure_bundle(fig: go.Figure) -> dict[str, Any]:
    """``fig`` as a display_data output dict, as wide as its container; NaN/inf become null (not JSON numbers)."""
    spec = json.loads(pio.to_json(fig, validate=False))
    layout = spec.setdefault("layout", {})
    layout.pop("width", None)
    layout["autosize"] = True  # no config "responsive": it collapses the plot in Notebook 7
    title = getattr(getattr(fig.layout, "title", None), "text", None) or "figure"
    return {"output_type": "display_data", "metadata": {},
            "data": {PLOTLY_MIME: spec, "text/plain": f"<plotly figure: {title}>"}}


def show_figure(out: w.Output, fig: go.Figure | None) -> None:
    """Replace ``out``'s content with ``fig`` (None: empty it); safe from a worker thread."""
    out.outputs = () if fig is None else (figure_bundle(fig),)
    out.layout.display = "none" if fig is None else ""


def shown_titles(out: w.Output) -> list[str]:
    """Titles of the figures ``out`` holds (what a test asks of a panel)."""
    titles = []
    for o in out.outputs:
        spec = o.get("data", {}).get(PLOTLY_MIME)
        if spec is not None:
            titles.append(((spec.get("layout") or {}).get("title") or {}).get("text", ""))
    return titles


def figure_output(min_width: str = "420px", **layout: Any) -> w.Output:
    """An Output that shares a row with others and grows to fill it (alone it takes the full width)."""
    return w.Output(layout=w.Layout(flex=f"1 1 {min_width}", min_width="0", max_width="100%", **layout))


def figure_row(*outputs: w.Widget) -> w.HBox:
    """Outputs side by side on a wide panel, stacked on a narrow one, always the panel's full width."""
    return w.HBox(list(outputs), layout=w.Layout(flex_flow="row wrap", width="100%", align_items="flex-start"))


def empty_figure(title: str, x_title: str, y_title: str, note: str = "", height: int = 360,
                 x_type: str = "linear", y_type: str = "linear") -> go.Figure:
    """Axes with titles and units but no data yet, and a grey ``note`` (e.g. "press Start") in the middle."""
    fig = go.Figure()
    fig.update_layout(title=title, height=height, xaxis_title=x_title, yaxis_title=y_title, template="plotly_white",
                      margin=dict(l=60, r=10, t=50, b=50), showlegend=False)
    fig.update_xaxes(type=x_type, showgrid=True, zeroline=False)
    fig.update_yaxes(type=y_type, showgrid=True, zeroline=False)
    if note:
        fig.add_annotation(text=note, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                           font=dict(color="#999", size=13))
    return fig


def set_axis_titles(fig: go.Figure, titles: Sequence[tuple[str, str]]) -> None:
    """(x, y) axis titles of each subplot of ``fig``, in subplot order."""
    for k, (x, y) in enumerate(titles, start=1):
        fig.update_xaxes(title_text=x, row=1, col=k)
        fig.update_yaxes(title_text=y, row=1, col=k)


def refit_figures(widget: w.Widget) -> int:
    """Fit every plotly FigureWidget inside ``widget`` to its container's width; returns how many.

    A FigureWidget drawn while its tab was hidden measured no width and kept plotly's default 700 px;
    switching autosize off and on again makes the browser measure the now visible container.
    """
    n = 0
    stack = [widget]
    while stack:
        item = stack.pop()
        if isinstance(item, go.FigureWidget):
            _remeasure(item)
            n += 1
        stack.extend(getattr(item, "children", ()) or ())
    return n


def fit_width(fig: go.FigureWidget) -> go.FigureWidget:
    """Make a FigureWidget as wide as its container: autosize on, no fixed width (see :class:`FitsFigures`)."""
    fig.layout.autosize = True
    fig.layout.width = None
    return fig


def refit_after_display(widget: w.Widget, delays: Sequence[float] = REFIT_AFTER_S) -> None:
    """Fit ``widget``'s FigureWidgets to their containers ``delays`` seconds from now (background timers)."""
    for delay in delays:
        timer = threading.Timer(delay, refit_figures, args=(widget,))
        timer.daemon = True
        timer.start()


class FitsFigures:
    """Mixin for a panel: shortly after it is displayed, its FigureWidgets are fitted to the panel's width.

    Notebook 7 draws a FigureWidget before its element is on the page: it measures nothing and keeps plotly's
    default 700 px. Asked again once the panel is on the page, the browser measures the real width.
    """

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        refit_after_display(self)  # type: ignore[arg-type]
        return super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]


def _remeasure(fig: go.FigureWidget) -> None:
    """Switch autosize off and on: the browser measures the container again."""
    fig.layout.autosize = False
    fig.layout.autosize = True
