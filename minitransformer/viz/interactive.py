"""Interactive plotly figures: hoverable attention maps, layer/head menus, a training-step slider,
cross-attention against the gold alignment, positional-encoding tables.

Every function takes tensors (torch on any device/dtype, or numpy) or an `AttentionCache` /
`AttentionHistory` plus token lists, and RETURNS a `plotly.graph_objects.Figure`; the caller
displays it (last line of a cell) or exports it (`export_figure`). Nothing here needs a kernel:
menus and sliders are plotly's own (`updatemenus`, `sliders`, `frames`), so they keep working
in exported HTML. In JupyterLab plotly's default renderer ("plotly_mimetype", served by the
jupyterlab-plotly extension that ships with plotly) loads no JavaScript from the network.
`large=True` is projector mode (fonts >= 18 px). Any number of layers and heads.

Token strings are HTML-escaped for plotly ("<eos>" is shown as "<eos>", not swallowed as a tag):
`plotly_label(token)` is what ends up in tick labels and hover data.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from .inputs import check_tokens, display_token, tick_indices, to_array

STACKS = ("encoder", "decoder")
KINDS = ("self", "cross")
MEAN_HEADS = "mean"  # head choice meaning "average over heads"


# --------------------------------------------------------------------------- look


@dataclass(frozen=True)
class PlotlyStyle:
    """Font sizes (px) and heatmap cell sizes (px) for laptop or projector mode."""

    font: int
    title: int
    ticks: int
    cell: int  # pixels per heatmap cell before clamping
    panel_min: int
    panel_max: int


NORMAL = PlotlyStyle(font=13, title=16, ticks=12, cell=28, panel_min=240, panel_max=620)
LARGE = PlotlyStyle(font=20, title=26, ticks=18, cell=44, panel_min=380, panel_max=900)
COLORSCALE = "Viridis"  # the static figures use viridis too
MAX_TICK_LABELS = 40
GOLD_COLOUR = "#ff3b30"  # red open squares on gold-alignment cells
ARGMAX_COLOUR = "#00c7ff"  # cyan crosses on each row's argmax: visible on dark and bright cells


def get_plotly_style(large: bool) -> PlotlyStyle:
    return LARGE if large else NORMAL


def plotly_label(token: Any) -> str:
    """A token as plotly shows it: whitespace made visible, then HTML-escaped."""
    return html.escape(display_token(str(token)), quote=False)


def panel_px(n_cells: int, style: PlotlyStyle) -> int:
    return int(min(style.panel_max, max(style.panel_min, n_cells * style.cell)))


def token_axis(tokens: Sequence[str], title: str, style: PlotlyStyle) -> dict[str, Any]:
    """Axis settings that label cells 0..n-1 with their tokens (every k-th for long inputs)."""
    shown = tick_indices(len(tokens), MAX_TICK_LABELS)
    return dict(
        title=dict(text=title, font=dict(size=style.font)),
        tickmode="array",
        tickvals=shown,
        ticktext=[plotly_label(tokens[i]) for i in shown],
        tickfont=dict(size=style.ticks),
        showgrid=False,
        zeroline=False,
    )


def hover_data(query_tokens: Sequence[str], key_tokens: Sequence[str]) -> np.ndarray:
    """(Tq, Tk, 2) object array: [query token, key token] of each cell, escaped for plotly."""
    queries = [plotly_label(t) for t in query_tokens]
    keys = [plotly_label(t) for t in key_tokens]
    data = np.empty((len(queries), len(keys), 2), dtype=object)
    data[:, :, 0] = np.asarray(queries, dtype=object)[:, None]
    data[:, :, 1] = np.asarray(keys, dtype=object)[None, :]
    return data


HOVER_TEMPLATE = (
    "query %{customdata[0]} (pos %{y})<br>"
    "key %{customdata[1]} (pos %{x})<br>"
    "weight %{z:.3f}<extra></extra>"
)


def heatmap_trace(values: np.ndarray, hover: np.ndarray, zmax: float, style: PlotlyStyle,
             *, colorbar: bool = True, name: str = "", visible: bool = True,
             template: str = HOVER_TEMPLATE) -> go.Heatmap:
    return go.Heatmap(
        z=values, customdata=hover, hovertemplate=template, name=name, visible=visible,
        colorscale=COLORSCALE, zmin=0.0, zmax=zmax, showscale=colorbar,
        colorbar=dict(title=dict(text="weight", font=dict(size=style.font)),
                      tickfont=dict(size=style.ticks)),
    )


def _scale_max(values: np.ndarray, zmax: float | None) -> float:
    if zmax is not None:
        return float(zmax)
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def base_layout(style: PlotlyStyle, title: str | None, width: int, height: int,
            query_tokens: Sequence[str], key_tokens: Sequence[str]) -> dict[str, Any]:
    return dict(
        title=dict(text=title or "", font=dict(size=style.title)),
        font=dict(size=style.font),
        width=width,
        height=height,
        xaxis=token_axis(key_tokens, "key (attended to)", style),
        yaxis=dict(token_axis(query_tokens, "query (attending)", style), autorange="reversed"),
        template="plotly_white",
        margin=dict(l=90, r=30, t=90 if title else 50, b=90),
    )


# --------------------------------------------------------------------------- one map


def attention_heatmap(
    weights: Any,
    query_tokens: Sequence[Any] | None,
    key_tokens: Sequence[Any] | None,
    *,
    title: str | None = None,
    large: bool = False,
    zmax: float | None = 1.0,
) -> go.Figure:
    """One head's attention map (Tq, Tk) as a hoverable heatmap: queries down, keys across.

    Hovering a cell shows the query token, the key token and the weight. The colour scale runs
    0..`zmax` (1 by default so maps are comparable; None = the map's maximum).
    """
    values = to_array(weights, "weights", ("Tq", "Tk"))  # (Tq, Tk)
    n_queries, n_keys = values.shape
    queries = check_tokens(query_tokens, n_queries, "query", "row")
    keys = check_tokens(key_tokens, n_keys, "key", "column")
    style = get_plotly_style(large)
    hover = hover_data(queries, keys)
    fig = go.Figure(heatmap_trace(values, hover, _scale_max(values, zmax), style))
    fig.update_layout(**base_layout(style, title, panel_px(n_keys, style) + 200,
                                    panel_px(n_queries, style) + 180, queries, keys))
    return fig


# --------------------------------------------------------------------------- caches


def _describe_keys(keys: Sequence[tuple]) -> str:
    return ", ".join(repr(tuple(k)) for k in sorted(keys)) or "nothing"


def _check_stack_kind(stack: str, kind: str) -> None:
    if stack not in STACKS:
        raise ValueError(f"stack must be one of {STACKS}, got {stack!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def cache_layers(cache: Any, stack: str, kind: str) -> list[int]:
    """The layer indices the cache holds for (stack, kind); a clear error when there are none."""
    _check_stack_kind(stack, kind)
    keys = [tuple(k) for k in cache.keys()]
    layers = sorted(layer for (s, layer, k) in keys if s == stack and k == kind)
    if not layers:
        hint = ""
        if kind == "cross" or stack == "encoder":
            hint = " (a decoder-only model has no encoder and no cross-attention)"
        raise ValueError(
            f"no ({stack!r}, layer, {kind!r}) attention in this cache; it holds: "
            f"{_describe_keys(keys)}{hint}"
        )
    return layers


def _check_index(value: Any, size: int, what: str, where: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or not -size <= value < size:
        raise ValueError(
            f"{what} {value!r} is out of range{where}: there {'is' if size == 1 else 'are'} "
            f"{size} {what}{'' if size == 1 else 's'} (0..{size - 1})"
        )
    return int(value) % size


def _tokens_or_positions(tokens: Sequence[Any] | None, size: int, role: str) -> list[str]:
    return check_tokens(tokens, size, role, "row" if role == "query" else "column")


def cache_maps(cache: Any, stack: str, kind: str, example: int = 0
               ) -> tuple[np.ndarray, list[str], list[str]]:
    """One example's maps from an AttentionCache: ((L, H, Tq, Tk) float array, query tokens,
    key tokens), padding trimmed (via `cache.example(i)`)."""
    layers = cache_layers(cache, stack, kind)
    example = _check_index(example, int(cache.batch_size), "example", " for this cache")
    single = cache.example(example) if hasattr(cache, "example") else cache
    row = 0 if single is not cache else example
    first = (stack, layers[0], kind)
    maps = np.stack([
        to_array(single[(stack, layer, kind)][row], f"cache[{(stack, layer, kind)!r}]",
                 ("H", "Tq", "Tk"))
        for layer in layers
    ])  # (L, H, Tq, Tk)
    queries = _tokens_or_positions(single.query_tokens(first, row), maps.shape[2], "query")
    keys = _tokens_or_positions(single.key_tokens(first, row), maps.shape[3], "key")
    return maps, queries, keys


def _head_options(n_heads: int, with_mean: bool) -> list[int | str]:
    return list(range(n_heads)) + ([MEAN_HEADS] if with_mean else [])


def _pick_head(maps: np.ndarray, head: int | str) -> np.ndarray:
    """(L, H, Tq, Tk) -> (L, Tq, Tk) for one head, or the mean over heads."""
    return maps.mean(axis=1) if head == MEAN_HEADS else maps[:, head]


def _menu(buttons: list[dict], x: float, label: str, active: int, style: PlotlyStyle) -> dict:
    return dict(
        buttons=buttons, direction="down", showactive=True, active=active,
        x=x, xanchor="left", y=1.0, yanchor="bottom", pad=dict(t=8, b=8),
        font=dict(size=style.ticks), name=label,
    )


def attention_figure(
    cache: Any,
    stack: str,
    kind: str,
    example: int = 0,
    *,
    layer: int = 0,
    head: int | str = 0,
    title: str | None = None,
    large: bool = False,
    zmax: float | None = 1.0,
) -> go.Figure:
    """One (stack, kind) of an AttentionCache with two dropdown menus: layer, and head (or the
    mean over heads). Works in exported HTML too (no kernel needed).

    How the two menus combine: the figure holds one heatmap per layer and shows one of them;
    the layer menu switches which is visible, the head menu swaps every layer's map to that
    head. So any layer x head pair is reachable, whatever the order of clicks.
    """
    maps, queries, keys = cache_maps(cache, stack, kind, example)  # (L, H, Tq, Tk)
    n_layers, n_heads, n_queries, n_keys = maps.shape
    layer = _check_index(layer, n_layers, "layer", f" for {stack} {kind}-attention")
    if head != MEAN_HEADS:
        head = _check_index(head, n_heads, "head", f" for {stack} {kind}-attention")
    style = get_plotly_style(large)
    scale = _scale_max(maps, zmax)
    hover = hover_data(queries, keys)
    shown = _pick_head(maps, head)  # (L, Tq, Tk)
    fig = go.Figure([
        heatmap_trace(shown[i], hover, scale, style, name=f"layer {i}", visible=i == layer)
        for i in range(n_layers)
    ])
    layer_buttons = [
        dict(label=f"layer {i}", method="restyle",
             args=[{"visible": [j == i for j in range(n_layers)]}])
        for i in range(n_layers)
    ]
    options = _head_options(n_heads, with_mean=n_heads > 1)
    head_buttons = [
        dict(label=f"head {h}" if h != MEAN_HEADS else "mean of heads", method="restyle",
             args=[{"z": list(_pick_head(maps, h))}, list(range(n_layers))])
        for h in options
    ]
    title = title or f"{stack} {kind}-attention (example {example})"
    layout = base_layout(style, title, panel_px(n_keys, style) + 200,
                         panel_px(n_queries, style) + 220, queries, keys)
    layout["margin"]["t"] = 130
    layout["updatemenus"] = [
        _menu(layer_buttons, 0.0, "layer", layer, style),
        _menu(head_buttons, 0.35, "head", options.index(head), style),
    ]
    fig.update_layout(**layout)
    return fig


# --------------------------------------------------------------------------- over training


def attention_over_training(
    history: Any,
    stack: str,
    kind: str,
    layer: int,
    head: int | str,
    example: int = 0,
    *,
    title: str | None = None,
    large: bool = False,
    zmax: float | None = 1.0,
    frame_ms: int = 400,
) -> go.Figure:
    """One head's map over the recorded training history: a slider over the snapshots (labelled
    by training step) and Play / Pause buttons. `head` may be "mean" (average over heads).

    `history` is an `AttentionHistory` (or anything with `.snapshots`, each with `.step`,
    `.loss` and `.cache`), recorded on a fixed probe batch, so tokens are the same throughout.
    """
    snapshots = list(getattr(history, "snapshots", history) or [])
    if not snapshots:
        raise ValueError(
            "the attention history is empty: no snapshots recorded yet; train with the "
            "AttentionHistory callback attached (or call history.capture(model, step)) first"
        )
    per_step = [cache_maps(s.cache, stack, kind, example) for s in snapshots]
    maps0, queries, keys = per_step[0]
    n_layers, n_heads, n_queries, n_keys = maps0.shape
    where = f" for {stack} {kind}-attention"
    layer = _check_index(layer, n_layers, "layer", where)
    if head != MEAN_HEADS:
        head = _check_index(head, n_heads, "head", where)
    frames_z = []
    for snapshot, (maps, q, k) in zip(snapshots, per_step, strict=True):
        if maps.shape != maps0.shape or q != queries or k != keys:
            raise ValueError(
                f"snapshot at step {snapshot.step} differs from the first one (maps "
                f"{maps.shape} vs {maps0.shape}); a history must use one probe batch"
            )
        frames_z.append(_pick_head(maps, head)[layer])  # (Tq, Tk)
    style = get_plotly_style(large)
    scale = _scale_max(np.stack(frames_z), zmax)
    hover = hover_data(queries, keys)
    head_name = "mean of heads" if head == MEAN_HEADS else f"head {head}"
    base_title = title or f"{stack} {kind}-attention, layer {layer}, {head_name}"

    def frame_title(snapshot: Any) -> str:
        loss = f", loss {snapshot.loss:.3f}" if snapshot.loss is not None else ""
        return f"{base_title}<br><sub>step {snapshot.step}{loss}</sub>"

    names = [str(s.step) for s in snapshots]
    fig = go.Figure(
        data=[heatmap_trace(frames_z[-1], hover, scale, style)],
        frames=[
            go.Frame(name=name, data=[go.Heatmap(z=z)],
                     layout=dict(title=dict(text=frame_title(s))))
            for name, z, s in zip(names, frames_z, snapshots, strict=True)
        ],
    )
    play = dict(frame=dict(duration=frame_ms, redraw=True), fromcurrent=True,
                transition=dict(duration=0))
    pause = dict(frame=dict(duration=0, redraw=False), mode="immediate",
                 transition=dict(duration=0))
    layout = base_layout(style, frame_title(snapshots[-1]), panel_px(n_keys, style) + 200,
                         panel_px(n_queries, style) + 300, queries, keys)
    layout["margin"]["b"] = 170
    layout["updatemenus"] = [dict(
        type="buttons", direction="left", x=0.0, y=-0.22, xanchor="left", yanchor="top",
        showactive=False, font=dict(size=style.ticks),
        buttons=[dict(label="▶ play", method="animate", args=[None, play]),
                 dict(label="❚❚ pause", method="animate", args=[[None], pause])],
    )]
    layout["sliders"] = [dict(
        active=len(snapshots) - 1, x=0.2, len=0.8, y=-0.22, yanchor="top",
        currentvalue=dict(prefix="step ", xanchor="right", font=dict(size=style.font)),
        font=dict(size=style.ticks),
        steps=[dict(label=name, method="animate",
                    args=[[name], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                       transition=dict(duration=0))])
               for name in names],
    )]
    fig.update_layout(**layout)
    return fig


# --------------------------------------------------------------------------- alignment


def alignment_accuracy_of(weights: np.ndarray, gold: np.ndarray) -> float | None:
    """Share of target rows with a gold source whose argmax source position is a gold one
    (None when no row has a gold source)."""
    rows = gold.sum(axis=1) > 0
    if not rows.any():
        return None
    best = weights.argmax(axis=1)  # (Tq,)
    hits = gold[np.arange(len(best)), best] > 0
    return float(hits[rows].mean())


def alignment_figure(
    cross_weights: Any,
    src_tokens: Sequence[Any] | None,
    tgt_tokens: Sequence[Any] | None,
    gold: Any,
    *,
    title: str | None = None,
    large: bool = False,
    zmax: float | None = 1.0,
    show_argmax: bool = True,
) -> go.Figure:
    """Cross-attention (Tq target rows, Tk source columns) with the gold alignment overlaid:
    open squares on gold cells, small crosses on each row's argmax. The title gives the share
    of target rows whose argmax is a gold cell.

    Decoder row i reads [BOS]+target and predicts target token i, so label the rows with the
    tokens they predict (`probe.tgt_out_tokens[i]`) and use
    `task.gold_alignment_matrix(example, include_specials=True)` for `gold` (T+1, S+1).
    """
    values = to_array(cross_weights, "cross_weights", ("Tq", "Tk"))  # (Tq, Tk)
    gold_array = to_array(gold, "gold", ("Tq", "Tk"))
    if gold_array.shape != values.shape:
        raise ValueError(
            f"gold alignment has shape {gold_array.shape} but the cross-attention map has "
            f"{values.shape} (target rows, source columns); they must match"
        )
    accuracy = alignment_accuracy_of(values, gold_array)
    score = f"argmax on gold for {accuracy:.0%} of target tokens" if accuracy is not None \
        else "no gold alignment"
    heading = f"{title or 'cross-attention vs gold alignment'}<br><sub>{score}</sub>"
    fig = attention_heatmap(values, tgt_tokens, src_tokens, title=heading, large=large,
                            zmax=zmax)
    style = get_plotly_style(large)
    rows, cols = np.nonzero(gold_array > 0)
    marker_size = max(10, min(40, int(style.cell * 0.8)))
    fig.add_trace(go.Scatter(
        x=cols, y=rows, mode="markers", name="gold alignment",
        marker=dict(symbol="square-open", size=marker_size, color=GOLD_COLOUR,
                    line=dict(width=3 if large else 2)),
        hovertemplate="gold: %{y} ↔ %{x}<extra></extra>",
    ))
    if show_argmax:
        best = values.argmax(axis=1)
        fig.add_trace(go.Scatter(
            x=best, y=np.arange(values.shape[0]), mode="markers", name="argmax",
            marker=dict(symbol="x-thin", size=marker_size // 2, color=ARGMAX_COLOUR,
                        line=dict(width=3 if large else 2, color=ARGMAX_COLOUR)),
            hovertemplate="argmax of row %{y}: %{x}<extra></extra>",
        ))
    fig.update_layout(  # room for the legend under the map
        height=fig.layout.height + 40, xaxis_title_text="source token (key)",
        yaxis_title_text="target token (query)",
        legend=dict(orientation="h", x=0, y=-0.18, yanchor="top"))
    return fig


# --------------------------------------------------------------------------- positions


def position_similarity(table: np.ndarray) -> np.ndarray:
    """(T, D) -> (T, T) cosine similarity between position vectors."""
    norms = np.linalg.norm(table, axis=1, keepdims=True)
    unit = table / np.where(norms > 0, norms, 1.0)
    return unit @ unit.T


def positional_figure(
    table: Any,
    *,
    title: str | None = None,
    large: bool = False,
    similarity: bool = True,
) -> go.Figure:
    """A positional-encoding table (T positions, D dimensions) as a hoverable heatmap, and
    beside it (with `similarity=True`) the cosine similarity between positions."""
    from plotly.subplots import make_subplots

    values = to_array(table, "table", ("positions", "d_model"))  # (T, D)
    n_positions, d_model = values.shape
    style = get_plotly_style(large)
    cols = 2 if similarity else 1
    fig = make_subplots(
        rows=1, cols=cols, horizontal_spacing=0.16,
        subplot_titles=["encoding value"] + (["cosine similarity of positions"] if similarity
                                             else []),
    )
    limit = float(np.abs(values).max()) or 1.0
    fig.add_trace(go.Heatmap(
        z=values, colorscale="RdBu", zmid=0.0, zmin=-limit, zmax=limit,
        colorbar=dict(x=0.43 if similarity else 1.02, len=0.9, tickfont=dict(size=style.ticks)),
        hovertemplate="position %{y}<br>dimension %{x}<br>value %{z:.3f}<extra></extra>",
    ), row=1, col=1)
    if similarity:
        fig.add_trace(go.Heatmap(
            z=position_similarity(values), colorscale=COLORSCALE, zmin=-1.0, zmax=1.0,
            colorbar=dict(x=1.02, len=0.9, tickfont=dict(size=style.ticks)),
            hovertemplate="position %{y} vs %{x}<br>cosine %{z:.3f}<extra></extra>",
        ), row=1, col=2)
        fig.update_xaxes(title_text="position", row=1, col=2)
        fig.update_yaxes(title_text="position", autorange="reversed", row=1, col=2)
    fig.update_xaxes(title_text="dimension", row=1, col=1)
    fig.update_yaxes(title_text="position", autorange="reversed", row=1, col=1)
    side = panel_px(max(n_positions, 16), style)
    fig.update_layout(
        title=dict(text=title or f"positional encoding ({n_positions} positions x "
                   f"{d_model} dimensions)", font=dict(size=style.title)),
        font=dict(size=style.font), template="plotly_white",
        width=side * cols + 260, height=side + 200,
    )
    fig.update_annotations(font_size=style.font)
    return fig


__all__ = [
    "alignment_figure",
    "attention_figure",
    "attention_heatmap",
    "attention_over_training",
    "cache_maps",
    "plotly_label",
    "positional_figure",
]
