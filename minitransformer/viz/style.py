"""One place for the look of every static figure: font sizes, line widths, figure class.

`large=True` is projector mode: bigger fonts and thicker lines. Every plotting function asks
`get_style(large)` instead of hard-coding sizes, so the two modes stay consistent.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.figure import Figure


@dataclass(frozen=True)
class Style:
    """Font sizes (points), line width and cell sizes (inches) for one display mode."""

    title: float
    label: float
    ticks: float
    annotation: float
    legend: float
    linewidth: float
    cell_inches: float  # size of one heatmap cell before clamping
    panel_min_inches: float  # smallest side of one heatmap panel
    panel_max_inches: float  # largest side of one heatmap panel
    dpi: int  # resolution of the inline (notebook) rendering


NORMAL = Style(
    title=12, label=11, ticks=9, annotation=8, legend=9, linewidth=1.6,
    cell_inches=0.32, panel_min_inches=2.2, panel_max_inches=6.0, dpi=100,
)
LARGE = Style(
    title=20, label=18, ticks=16, annotation=14, legend=16, linewidth=3.0,
    cell_inches=0.55, panel_min_inches=3.5, panel_max_inches=10.0, dpi=100,
)


def get_style(large: bool) -> Style:
    """The style for normal (laptop) or large (projector) mode."""
    return LARGE if large else NORMAL


class NotebookFigure(Figure):
    """A matplotlib `Figure` that shows itself as a PNG in Jupyter without importing pyplot.

    Figures are built directly (not through pyplot), so they are never kept open by pyplot,
    never displayed twice, and never leak; the caller displays, saves or discards them.
    """

    def _repr_png_(self) -> bytes | None:
        if not self.axes:
            return None
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=self.dpi, bbox_inches="tight")
        return buffer.getvalue()


def new_figure(width: float, height: float, style: Style) -> NotebookFigure:
    """An empty constrained-layout figure of `width` x `height` inches."""
    return NotebookFigure(figsize=(width, height), dpi=style.dpi, layout="constrained")


def style_axes(ax: Axes, style: Style) -> None:
    """Apply tick label sizes (kept for ticks matplotlib creates later, too)."""
    ax.tick_params(labelsize=style.ticks)


def panel_inches(n_cells: int, style: Style) -> float:
    """Side of a heatmap panel showing `n_cells` rows or columns, clamped to the style's range."""
    return min(style.panel_max_inches, max(style.panel_min_inches, n_cells * style.cell_inches))
