"""Pieces every explorer shares: display-as-widget, and attention panels that update in place.

Figures are plotly `FigureWidget`s built with their whole layout in the constructor (Voila
drops a layout set afterwards, before the first render), then changed only by mutating
`fig.data[i]` / `fig.layout` under `fig.batch_update()`: the widget is never rebuilt.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from ..inputs import tick_indices
from ..interactive import (
    HOVER_TEMPLATE,
    MAX_TICK_LABELS,
    base_layout,
    get_plotly_style,
    heatmap_trace,
    hover_data,
    plotly_label,
)

ALL_HEADS = "all"  # head choice: a grid with every head
MEAN_HEADS = "mean"  # head choice: the average over heads
SECTION_NAMES = {
    ("encoder", "self"): "encoder self-attention",
    ("decoder", "self"): "decoder self-attention",
    ("decoder", "cross"): "cross-attention (decoder → encoder)",
}


class Explorer:
    """Base class: `self.widget` is the top-level box; the instance displays as that box."""

    widget: widgets.Box

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # A FigureWidget re-sends its whole data and layout as widget state when it is shown
        # on its own; inside a box it is not, and in Voila changes made before the first
        # render (sent as messages) can be lost. So sync every figure's state first.
        for figure in self.figure_widgets():
            figure._repr_mimebundle_()
        return self.widget._repr_mimebundle_(**kwargs)

    def figure_widgets(self) -> list[go.FigureWidget]:
        """Every plotly FigureWidget of this explorer (shown now or not)."""
        found = {id(v): v for v in vars(self).values() if isinstance(v, go.FigureWidget)}
        for holder in vars(self).values():
            figure = getattr(holder, "figure", None)
            if isinstance(figure, go.FigureWidget):
                found[id(figure)] = figure
        return list(found.values())

    def close(self) -> None:
        """Close the widgets (front-end views go away; the explorer is unusable after)."""
        _close_tree(self.widget)


def _close_tree(widget: Any) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


def sections_of(cache: Any) -> list[tuple[str, str]]:
    """(stack, kind) pairs a cache holds, in the order encoder self, decoder self, cross."""
    present = {(key[0], key[2]) for key in cache.keys()}
    return [pair for pair in SECTION_NAMES if pair in present]


def head_options(n_heads: int, with_all: bool = True) -> list[tuple[str, int | str]]:
    options: list[tuple[str, int | str]] = [(f"head {h}", h) for h in range(n_heads)]
    if n_heads > 1:
        if with_all:
            options.append(("all heads (grid)", ALL_HEADS))
        options.append(("mean of heads", MEAN_HEADS))
    return options


def axis_ticks(tokens: Sequence[str], max_labels: int = MAX_TICK_LABELS) -> dict[str, Any]:
    shown = tick_indices(len(tokens), max_labels)
    return dict(tickvals=shown, ticktext=[plotly_label(tokens[i]) for i in shown])


class AttentionPanel:
    """One attention map in a FigureWidget; `show(values, queries, keys, title)` updates it."""

    def __init__(self, *, large: bool = False, title: str = "", width: int | None = None,
                 height: int | None = None):
        style = self.style = get_plotly_style(large)
        width = width or (820 if large else 560)
        height = height or (720 if large else 500)
        layout = base_layout(style, title or " ", width, height, ["·"], ["·"])
        layout["margin"] = dict(l=100, r=30, t=70, b=100)
        self.figure = go.FigureWidget(
            data=[heatmap_trace(np.zeros((1, 1)), hover_data(["·"], ["·"]), 1.0, style)],
            layout=layout,
        )
        self.lock = threading.RLock()

    def show(self, values: np.ndarray, queries: Sequence[str], keys: Sequence[str],
             title: str | None = None) -> None:
        """values: (Tq, Tk) weights; queries / keys: their token strings."""
        with self.lock, self.figure.batch_update():
            trace = self.figure.data[0]
            trace.z = np.asarray(values, dtype=float)
            trace.customdata = hover_data(queries, keys)
            self.figure.layout.xaxis.update(axis_ticks(keys))
            self.figure.layout.yaxis.update(axis_ticks(queries))
            if title is not None:
                self.figure.layout.title.text = title


class HeadGridPanel:
    """Every head of one layer side by side (`n_heads` small maps, one shared 0..1 scale)."""

    def __init__(self, n_heads: int, *, large: bool = False, per_row: int = 4):
        from plotly.subplots import make_subplots

        self.n_heads = n_heads
        style = self.style = get_plotly_style(large)
        cols = min(n_heads, per_row)
        rows = -(-n_heads // cols)
        panel = 300 if large else 210
        base = make_subplots(rows=rows, cols=cols,
                             subplot_titles=[f"head {h}" for h in range(n_heads)],
                             horizontal_spacing=0.05, vertical_spacing=0.16 / rows + 0.02)
        for h in range(n_heads):
            base.add_trace(go.Heatmap(
                z=np.zeros((1, 1)), customdata=hover_data(["·"], ["·"]),
                hovertemplate=HOVER_TEMPLATE, coloraxis="coloraxis",
            ), row=h // cols + 1, col=h % cols + 1)
        base.update_yaxes(autorange="reversed", tickfont=dict(size=style.ticks - 2))
        base.update_xaxes(tickfont=dict(size=style.ticks - 2))
        base.update_layout(
            coloraxis=dict(colorscale="Viridis", cmin=0.0, cmax=1.0,
                           colorbar=dict(title=dict(text="weight"))),
            width=cols * panel + 200, height=rows * (panel + 40) + 110,
            template="plotly_white", font=dict(size=style.font),
            title=dict(text=" ", font=dict(size=style.title)),
            margin=dict(l=80, r=30, t=80, b=60),
        )
        base.update_annotations(font_size=style.font)
        self.figure = go.FigureWidget(data=base.data, layout=base.layout)
        self.lock = threading.RLock()

    def show(self, maps: np.ndarray, queries: Sequence[str], keys: Sequence[str],
             title: str | None = None) -> None:
        """maps: (H, Tq, Tk) for one layer."""
        hover = hover_data(queries, keys)
        with self.lock, self.figure.batch_update():
            for h, trace in enumerate(self.figure.data):
                trace.z = np.asarray(maps[h], dtype=float)
                trace.customdata = hover
            self.figure.update_xaxes(axis_ticks(keys, 16))
            self.figure.update_yaxes(axis_ticks(queries, 16))
            if title is not None:
                self.figure.layout.title.text = title


def pick_head(maps: np.ndarray, head: int | str) -> np.ndarray:
    """(H, Tq, Tk) -> (Tq, Tk): one head, or the mean over heads."""
    return maps.mean(axis=0) if head == MEAN_HEADS else maps[int(head)]


def status_html(text: str, level: str = "info") -> str:
    colour = {"info": "#333", "ok": "#0a7d32", "error": "#b00020"}.get(level, "#333")
    return f'<span style="color:{colour}">{text}</span>'
