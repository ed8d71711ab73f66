"""PositionalEncodingExplorer: sliders over d_model, positions, one dimension and one position.

Three pictures update together:
- the table (positions x dimensions) with a cross-hair on the chosen dimension and position;
- curves: the chosen dimension over positions, with its sin/cos partner;
- similarity: how the chosen position relates to every other position.

Encodings: "sinusoidal" (the paper's table); "rope" (rotary: the table is cos of the rotation
angle pos * theta_i per channel pair; the similarity is the rotated query-key score of one fixed
query at the chosen position against the same fixed key at every position, which depends only
on the offset); "learned" (a trained model's own table, when a model with
pos_encoding="learned" is given).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch

from ...positional import RotaryEmbedding, apply_rotary, sinusoidal_encoding
from ..interactive import get_plotly_style, position_similarity
from ._base import Explorer

ENCODINGS = ("sinusoidal", "rope", "learned")
MAX_POSITIONS = 512
MAX_D_MODEL = 512


@dataclass
class PositionalView:
    """What the explorer draws for one setting: table (T, C); the chosen column's curve and its
    partner's (T,); the chosen position's similarity to every position (T,)."""

    table: np.ndarray
    column_name: str  # what a table column is ("dimension", "channel pair")
    curve: np.ndarray
    partner: np.ndarray
    curve_names: tuple[str, str]
    similarity: np.ndarray
    similarity_name: str


def rope_scores(n_positions: int, head_dim: int, position: int, seed: int = 0) -> np.ndarray:
    """(T,) cosine of the rotated query at `position` with the rotated key at every position,
    for one fixed random query/key pair: RoPE makes it a function of the offset only."""
    generator = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, head_dim, generator=generator, dtype=torch.float64)
    rotary = RotaryEmbedding(n_positions, head_dim)
    cos, sin = rotary(0, n_positions)
    queries = apply_rotary(q.expand(1, 1, n_positions, head_dim).float(), cos, sin)[0, 0]
    keys = apply_rotary(k.expand(1, 1, n_positions, head_dim).float(), cos, sin)[0, 0]
    scores = keys @ queries[position]  # (T,)
    return (scores / (q.norm() * k.norm()).float()).numpy().astype(float)


def positional_view(encoding: str, n_positions: int, d_model: int, dimension: int,
                    position: int, model: Any = None) -> PositionalView:
    """The numbers behind the explorer for one setting (no widgets: testable on its own)."""
    if encoding == "sinusoidal":
        table = sinusoidal_encoding(n_positions, d_model).numpy().astype(float)
    elif encoding == "learned":
        learned = learned_table(model)
        table = learned[:n_positions]
    elif encoding == "rope":
        if d_model % 2:
            raise ValueError(f"rope needs an even head size, got {d_model}")
        rotary = RotaryEmbedding(n_positions, d_model)
        angles = torch.atan2(rotary.sin, rotary.cos)[:, : d_model // 2]  # (T, D/2)
        table = np.cos(angles.numpy().astype(float))
        pair = min(dimension, table.shape[1] - 1)
        angle = angles[:, pair].numpy().astype(float)
        return PositionalView(
            table=table, column_name="channel pair", curve=np.cos(angle), partner=np.sin(angle),
            curve_names=(f"cos(pos·θ_{pair})", f"sin(pos·θ_{pair})"),
            similarity=rope_scores(n_positions, d_model, position),
            similarity_name=f"rotated q·k, query at {position} (depends on offset only)",
        )
    else:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    dim = min(dimension, table.shape[1] - 1)
    partner = dim ^ 1 if (dim ^ 1) < table.shape[1] else dim
    return PositionalView(
        table=table, column_name="dimension", curve=table[:, dim], partner=table[:, partner],
        curve_names=(f"dimension {dim}", f"dimension {partner}"),
        similarity=position_similarity(table)[position],
        similarity_name=f"cosine similarity with position {position}",
    )


def learned_table(model: Any) -> np.ndarray:
    """A model's learned positional table (max_len, d_model) as numpy."""
    table = getattr(getattr(model, "positional", None), "table", None)
    encoding = getattr(getattr(model, "config", None), "pos_encoding", None)
    if encoding != "learned" or table is None:
        raise ValueError(
            f"the 'learned' view needs a model built with pos_encoding='learned'; this one has "
            f"pos_encoding={encoding!r}")
    return table.detach().float().cpu().numpy().astype(float)


class PositionalEncodingExplorer(Explorer):
    """Sliders: encoding, d_model (head size for RoPE), number of positions, dimension,
    position. Attributes: `encoding`, `d_model`, `positions`, `dimension`, `position`
    (controls) and `table_figure`, `curve_figure`, `similarity_figure` (FigureWidgets)."""

    def __init__(self, model: Any = None, *, encoding: str | None = None, n_positions: int = 50,
                 d_model: int | None = None, large: bool = False):
        self.model = model
        has_learned = getattr(getattr(model, "config", None), "pos_encoding", None) == "learned"
        options = [e for e in ENCODINGS if e != "learned" or has_learned]
        if encoding is None:
            encoding = "learned" if has_learned else "sinusoidal"
        if encoding not in options:
            hint = "" if has_learned else " ('learned' needs a model with pos_encoding='learned')"
            raise ValueError(f"encoding {encoding!r} is not available; choose one of "
                             f"{options}{hint}")
        if d_model is None:
            d_model = int(getattr(getattr(model, "config", None), "d_model", 64))
        if not 2 <= d_model <= MAX_D_MODEL:
            raise ValueError(f"d_model must be in 2..{MAX_D_MODEL}, got {d_model}")
        if not 2 <= n_positions <= MAX_POSITIONS:
            raise ValueError(f"n_positions must be in 2..{MAX_POSITIONS}, got {n_positions}")
        self.style = style = get_plotly_style(large)

        self.encoding = widgets.ToggleButtons(options=options, value=encoding,
                                              description="encoding")
        self.d_model = widgets.IntSlider(value=d_model, min=4, max=MAX_D_MODEL, step=2,
                                         description="d_model")
        self.positions = widgets.IntSlider(value=n_positions, min=2, max=MAX_POSITIONS,
                                           description="positions")
        self.dimension = widgets.IntSlider(value=min(4, d_model - 1), min=0, max=d_model - 1,
                                           description="dimension")
        self.position = widgets.IntSlider(value=min(5, n_positions - 1), min=0,
                                          max=n_positions - 1, description="position")
        self.note = widgets.HTML()
        self._adjusting = False
        width = 480 if not large else 820  # normal: table and curves fit side by side
        common = dict(template="plotly_white", font=dict(size=style.font),
                      margin=dict(l=70, r=30, t=60, b=60))
        self.table_figure = go.FigureWidget(
            data=[
                go.Heatmap(z=np.zeros((1, 1)), colorscale="RdBu", zmid=0.0,
                           hovertemplate="position %{y}<br>column %{x}<br>value %{z:.3f}"
                                         "<extra></extra>"),
                go.Scatter(x=[0, 0], y=[0, 1], mode="lines", name="dimension",
                           line=dict(color="black", width=2), hoverinfo="skip"),
                go.Scatter(x=[0, 1], y=[0, 0], mode="lines", name="position",
                           line=dict(color="black", width=2, dash="dot"), hoverinfo="skip"),
            ],
            layout=dict(common, title=dict(text="table", font=dict(size=style.title)),
                        width=width, height=width, showlegend=False,
                        xaxis=dict(title=dict(text="dimension")),
                        yaxis=dict(title=dict(text="position"), autorange="reversed")),
        )
        self.curve_figure = go.FigureWidget(
            data=[go.Scatter(x=[0], y=[0], mode="lines", name="curve"),
                  go.Scatter(x=[0], y=[0], mode="lines", name="partner",
                             line=dict(dash="dash")),
                  go.Scatter(x=[0], y=[0], mode="markers", name="chosen position",
                             marker=dict(size=14 if large else 10, color="black"))],
            layout=dict(common, title=dict(text="curves", font=dict(size=style.title)),
                        width=width, height=int(width * 0.62),
                        xaxis=dict(title=dict(text="position")),
                        yaxis=dict(title=dict(text="value"), range=[-1.15, 1.15])),
        )
        self.similarity_figure = go.FigureWidget(
            data=[go.Scatter(x=[0], y=[0], mode="lines", name="similarity"),
                  go.Scatter(x=[0], y=[0], mode="markers", name="chosen position",
                             marker=dict(size=14 if large else 10, color="black"))],
            layout=dict(common, title=dict(text="similarity", font=dict(size=style.title)),
                        width=width, height=int(width * 0.62), showlegend=False,
                        xaxis=dict(title=dict(text="position")),
                        yaxis=dict(title=dict(text="similarity"), range=[-1.05, 1.05])),
        )
        side = widgets.VBox([self.curve_figure, self.similarity_figure])
        figures = (widgets.VBox([self.table_figure, side]) if large
                   else widgets.HBox([self.table_figure, side]))
        self.widget = widgets.VBox([
            self.encoding,
            widgets.HBox([self.d_model, self.positions]),
            widgets.HBox([self.dimension, self.position]),
            self.note,
            figures,
        ])
        for control in (self.encoding, self.d_model, self.positions, self.dimension,
                        self.position):
            control.observe(self._on_change, names="value")
        self._fit_controls()
        self.update()

    def _fit_controls(self) -> None:
        """Limits that depend on the encoding: a learned table fixes d_model and max positions;
        RoPE's table has d_model / 2 channel pairs."""
        self._adjusting = True
        try:
            self._fit_limits()
        finally:
            self._adjusting = False

    def _fit_limits(self) -> None:
        learned = self.encoding.value == "learned"
        if learned:
            table = learned_table(self.model)
            self.d_model.value = table.shape[1]
            self.positions.max = min(MAX_POSITIONS, table.shape[0])
        else:
            self.positions.max = MAX_POSITIONS
        self.d_model.disabled = learned
        self.d_model.description = "head size" if self.encoding.value == "rope" else "d_model"
        columns = self.d_model.value // 2 if self.encoding.value == "rope" else self.d_model.value
        self.dimension.max = max(0, columns - 1)
        self.dimension.description = "pair" if self.encoding.value == "rope" else "dimension"
        self.position.max = self.positions.value - 1

    def _on_change(self, change: dict[str, Any]) -> None:
        if self._adjusting:
            return
        if change["owner"] in (self.encoding, self.d_model, self.positions):
            self._fit_controls()
        self.update()

    def view(self) -> PositionalView:
        return positional_view(self.encoding.value, self.positions.value, self.d_model.value,
                               self.dimension.value, self.position.value, self.model)

    def update(self) -> None:
        """Redraw all three figures from the controls (in place)."""
        view = self.view()
        n_positions, n_columns = view.table.shape
        positions = np.arange(n_positions)
        dim = min(self.dimension.value, n_columns - 1)
        pos = min(self.position.value, n_positions - 1)
        limit = float(np.abs(view.table).max()) or 1.0
        encoding = self.encoding.value
        with self.table_figure.batch_update():
            heat, vertical, horizontal = self.table_figure.data
            heat.z = view.table
            heat.zmin, heat.zmax = -limit, limit
            vertical.x, vertical.y = [dim, dim], [-0.5, n_positions - 0.5]
            horizontal.x, horizontal.y = [-0.5, n_columns - 0.5], [pos, pos]
            self.table_figure.layout.xaxis.title.text = view.column_name
            self.table_figure.layout.title.text = (
                f"{encoding} table: {n_positions} positions x {n_columns} {view.column_name}s")
        with self.curve_figure.batch_update():
            curve, partner, marker = self.curve_figure.data
            curve.x, curve.y, curve.name = positions, view.curve, view.curve_names[0]
            partner.x, partner.y, partner.name = positions, view.partner, view.curve_names[1]
            marker.x, marker.y = [pos], [float(view.curve[pos])]
            self.curve_figure.layout.title.text = f"{view.curve_names[0]} over positions"
            span = max(1.0, float(np.abs(np.concatenate([view.curve, view.partner])).max()))
            self.curve_figure.layout.yaxis.range = [-1.15 * span, 1.15 * span]
        with self.similarity_figure.batch_update():
            line, marker = self.similarity_figure.data
            line.x, line.y = positions, view.similarity
            marker.x, marker.y = [pos], [float(view.similarity[pos])]
            self.similarity_figure.layout.title.text = view.similarity_name
        if encoding == "rope":
            self.note.value = ("RoPE adds nothing to the embeddings: it rotates each pair of "
                               "query/key channels by pos·θ_i, so q·k depends on the offset.")
        elif encoding == "learned":
            self.note.value = "The model's own trained table (one vector per position)."
        else:
            self.note.value = ("PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), "
                               "PE(pos, 2i+1) = cos(pos / 10000^(2i/d_model))")
