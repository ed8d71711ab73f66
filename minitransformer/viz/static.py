"""Static matplotlib figures: attention maps, positional encodings, training curves, head stats.

Every function takes tensors (torch on any device/dtype, or numpy) plus token lists and
RETURNS a matplotlib `Figure`; the caller displays it (last line of a notebook cell), saves it
(`save_figure`) or discards it. Nothing here imports pyplot or calls `show()`.
`large=True` is projector mode (fonts >= 16 pt, thick lines).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .inputs import (
    check_tokens,
    labels_that_fit,
    select_indices,
    set_token_ticks,
    to_array,
)
from .style import Style, get_style, new_figure, panel_inches, style_axes

ANNOTATE_MAX_CELLS = 12  # annotate every cell of maps up to 12 x 12 unless told otherwise
SAVE_FORMATS = (".png", ".svg", ".pdf")


# --------------------------------------------------------------------------- helpers


def _root_figure(ax: Axes) -> Figure:
    """The figure an Axes lives in (the top-level one when it sits in a subfigure)."""
    try:
        return ax.get_figure(root=True)  # matplotlib >= 3.10
    except TypeError:
        return ax.figure


def _label_inches(tokens: Sequence[str], style: Style) -> float:
    """Rough room (inches) that the longest tick label needs beside a heatmap."""
    longest = max((len(token) for token in tokens), default=1)
    return min(2.5, 0.3 + longest * 0.6 * style.ticks / 72)


def _annotate_cells(ax: Axes, image: Any, values: np.ndarray, fmt: str, style: Style) -> None:
    """Write each cell's value in it, in black or white depending on the cell colour."""
    for row in range(values.shape[0]):
        for col in range(values.shape[1]):
            value = values[row, col]
            red, green, blue, _ = image.cmap(image.norm(value))
            luminance = 0.299 * red + 0.587 * green + 0.114 * blue
            ax.text(
                col, row, format(value, fmt), ha="center", va="center",
                fontsize=style.annotation, color="black" if luminance > 0.5 else "white",
            )


def _colorbar(fig: Figure, image: Any, axes: Any, style: Style, label: str | None = None) -> None:
    colorbar = fig.colorbar(image, ax=axes, shrink=0.9)
    colorbar.ax.tick_params(labelsize=style.ticks)
    if label:
        colorbar.set_label(label, fontsize=style.label)


def _scale_max(values: np.ndarray, vmax: float | None) -> float:
    """The colour-scale maximum: `vmax`, or the data's maximum when `vmax` is None."""
    if vmax is not None:
        return float(vmax)
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


# --------------------------------------------------------------------------- attention


def plot_attention(
    weights: Any,
    query_tokens: Sequence[Any] | None,
    key_tokens: Sequence[Any] | None,
    *,
    title: str | None = None,
    ax: Axes | None = None,
    cmap: str = "viridis",
    large: bool = False,
    annotate: bool | None = None,
    vmax: float | None = 1.0,
) -> Figure:
    """One head's attention map: `weights` (Tq, Tk), queries down the y axis, keys along x.

    Rows are queries (the token that is attending), columns are keys (the token attended to).
    The colour scale runs 0..`vmax` (1 by default, so maps are comparable; None = data max).
    Cell values are written in when the map is at most 12 x 12 (or `annotate=True`).
    Long sequences show every k-th token label (at most ~40 per axis), each at its own cell.
    With `ax`, draws into that Axes and returns its figure; otherwise makes a new figure.
    """
    values = to_array(weights, "weights", ("Tq", "Tk"))  # (Tq, Tk)
    n_queries, n_keys = values.shape
    queries = check_tokens(query_tokens, n_queries, "query", "row")
    keys = check_tokens(key_tokens, n_keys, "key", "column")
    style = get_style(large)

    width, height = panel_inches(n_keys, style), panel_inches(n_queries, style)
    if ax is None:
        fig = new_figure(
            width + _label_inches(queries, style) + 1.3,
            height + _label_inches(keys, style) + (0.6 if title else 0.2),
            style,
        )
        ax = fig.add_subplot()
    else:
        fig = _root_figure(ax)
        width, height = ax.bbox.width / fig.dpi, ax.bbox.height / fig.dpi  # inches

    image = ax.imshow(
        values, cmap=cmap, vmin=0.0, vmax=_scale_max(values, vmax),
        aspect="auto", interpolation="nearest",
    )
    style_axes(ax, style)
    set_token_ticks(ax, keys, axis="x", max_labels=labels_that_fit(width, style))
    set_token_ticks(ax, queries, axis="y", max_labels=labels_that_fit(height, style))
    ax.set_xlabel("key (attended to)", fontsize=style.label)
    ax.set_ylabel("query (attending)", fontsize=style.label)
    if title:
        ax.set_title(title, fontsize=style.title)
    if annotate is None:
        annotate = n_queries <= ANNOTATE_MAX_CELLS and n_keys <= ANNOTATE_MAX_CELLS
    if annotate:
        _annotate_cells(ax, image, values, ".2f", style)
    _colorbar(fig, image, ax, style, "attention weight")
    return fig


def _layer_head_maps(attentions: Any, example: int) -> np.ndarray:
    """Attention of one example as a (L, H, Tq, Tk) array.

    Accepts a tuple/list per layer of (B, H, Tq, Tk) or (H, Tq, Tk), an (L, H, Tq, Tk) tensor,
    or an (L, B, H, Tq, Tk) tensor (e.g. `torch.stack(out.encoder_attentions)`).
    """
    if attentions is None:
        raise ValueError(
            "attentions is None; run the model with output_attentions=True to get weights"
        )
    if isinstance(attentions, (tuple, list)):
        if len(attentions) == 0:
            raise ValueError("attentions is empty; expected one (B, H, Tq, Tk) tensor per layer")
        layers = []
        for index, layer in enumerate(attentions):
            name = f"attentions[{index}]"
            if _rank(layer) == 3:  # (H, Tq, Tk): already one example
                layers.append(to_array(layer, name, ("H", "Tq", "Tk")))
            else:
                layer = to_array(_pick_example(layer, example, name, 4), name,
                                 ("H", "Tq", "Tk"))
                layers.append(layer)
        shapes = {layer.shape for layer in layers}
        if len(shapes) > 1:
            raise ValueError(f"attention layers differ in shape (H, Tq, Tk): {sorted(shapes)}")
        return np.stack(layers)  # (L, H, Tq, Tk)
    if _rank(attentions) == 5:  # (L, B, H, Tq, Tk)
        return to_array(_pick_example(attentions, example, "attentions", 5, axis=1),
                        "attentions", ("L", "H", "Tq", "Tk"))
    return to_array(attentions, "attentions", ("L", "H", "Tq", "Tk"))


def _rank(values: Any) -> int:
    return len(values.shape) if hasattr(values, "shape") else np.ndim(values)


def _pick_example(batch: Any, example: int, name: str, rank: int, axis: int = 0) -> Any:
    """One example from the batch axis of `batch`, with clear errors for shape and index."""
    if not hasattr(batch, "shape"):
        batch = np.asarray(batch, dtype=np.float64)
    if len(batch.shape) != rank:
        layout = "(B, H, Tq, Tk)" if rank == 4 else "(L, B, H, Tq, Tk)"
        raise ValueError(
            f"{name} must be {rank}-D {layout}; got shape {tuple(batch.shape)}"
        )
    size = batch.shape[axis]
    if isinstance(example, bool) or not isinstance(example, (int, np.integer)) \
            or not -size <= example < size:
        raise ValueError(
            f"example {example!r} is out of range for {name}: the batch has {size} "
            f"example{'s' if size != 1 else ''} (0..{size - 1})"
        )
    return batch[example] if axis == 0 else batch[:, example]


def plot_attention_grid(
    attentions: Any,
    query_tokens: Sequence[Any] | None,
    key_tokens: Sequence[Any] | None,
    *,
    example: int = 0,
    layers: int | Sequence[int] | None = None,
    heads: int | Sequence[int] | None = None,
    title: str | None = None,
    large: bool = False,
    cmap: str = "viridis",
    vmax: float | None = 1.0,
) -> Figure:
    """A layers x heads grid of attention maps for one example, on one shared 0..1 colour scale.

    `attentions`: what the model returns (`out.encoder_attentions`, `out.decoder_attentions`,
    `out.cross_attentions`: a tuple per layer of (B, H, Tq, Tk)), or an (L, H, Tq, Tk) tensor.
    `example` picks the batch row; `layers` / `heads` pick a subset (None = all; indices are
    0-based like `out.encoder_attentions[i]`). Rows are labelled "layer i", columns "head j";
    token labels sit on the outer axes only (queries left, keys bottom).
    """
    maps = _layer_head_maps(attentions, example)  # (L, H, Tq, Tk)
    n_layers, n_heads, n_queries, n_keys = maps.shape
    layer_ids = select_indices(layers, n_layers, "layer")
    head_ids = select_indices(heads, n_heads, "head")
    queries = check_tokens(query_tokens, n_queries, "query", "row")
    keys = check_tokens(key_tokens, n_keys, "key", "column")
    style = get_style(large)

    shrink = 1.0 if len(head_ids) <= 2 else 0.75 if len(head_ids) <= 4 else 0.6
    panel_width = max(style.panel_min_inches * 0.7, panel_inches(n_keys, style) * shrink)
    panel_height = max(style.panel_min_inches * 0.7, panel_inches(n_queries, style) * shrink)
    fig = new_figure(
        len(head_ids) * panel_width + _label_inches(queries, style) + 1.6,
        len(layer_ids) * panel_height + _label_inches(keys, style) + (1.0 if title else 0.6),
        style,
    )
    axes = fig.subplots(len(layer_ids), len(head_ids), squeeze=False)
    scale_max = _scale_max(maps[layer_ids][:, head_ids], vmax)
    image = None
    for row, layer in enumerate(layer_ids):
        for col, head in enumerate(head_ids):
            ax = axes[row][col]
            image = ax.imshow(
                maps[layer, head], cmap=cmap, vmin=0.0, vmax=scale_max,
                aspect="auto", interpolation="nearest",
            )
            style_axes(ax, style)
            is_bottom, is_left = row == len(layer_ids) - 1, col == 0
            set_token_ticks(ax, keys, axis="x", show_labels=is_bottom,
                            max_labels=labels_that_fit(panel_width, style))
            set_token_ticks(ax, queries, axis="y", show_labels=is_left,
                            max_labels=labels_that_fit(panel_height, style))
            if row == 0:
                ax.set_title(f"head {head}", fontsize=style.label)
            if is_left:
                ax.set_ylabel(f"layer {layer}", fontsize=style.label)
    if title:
        fig.suptitle(title, fontsize=style.title)
    fig.supxlabel("key (attended to)", fontsize=style.label)
    fig.supylabel("query (attending)", fontsize=style.label)
    _colorbar(fig, image, axes, style, "attention weight")
    return fig


# --------------------------------------------------------------------------- positions


def plot_positional_encoding(
    table: Any, *, title: str | None = None, large: bool = False, vmax: float | None = 1.0
) -> Figure:
    """A (positions, d_model) encoding table as a heatmap: x = dimension, y = position.

    Diverging colours on -1..1 (sinusoids live there); `vmax=None` scales to the data instead
    (useful for learned embeddings, whose values are much smaller).
    """
    values = to_array(table, "table", ("positions", "d_model"))  # (P, D)
    n_positions, d_model = values.shape
    style = get_style(large)
    limit = _scale_max(np.abs(values), vmax)
    fig = new_figure(10 if large else 7.5, 6.5 if large else 4.5, style)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto",
                      interpolation="nearest")
    style_axes(ax, style)
    _integer_ticks(ax, "x", "y")
    ax.set_xlabel("dimension i", fontsize=style.label)
    ax.set_ylabel("position", fontsize=style.label)
    ax.set_title(title or f"positional encoding ({n_positions} positions × {d_model} dims)",
                 fontsize=style.title)
    _colorbar(fig, image, ax, style, "value")
    return fig


def plot_encoding_curves(
    table: Any,
    dims: Sequence[int] = (0, 1, 4, 5, 8, 9),
    *,
    title: str | None = None,
    large: bool = False,
) -> Figure:
    """Selected dimensions of a (positions, d_model) table as curves over position.

    Low dimensions oscillate fast, high ones slowly: each pair (sin, cos) is one frequency.
    """
    values = to_array(table, "table", ("positions", "d_model"))  # (P, D)
    dim_ids = select_indices(list(dims), values.shape[1], "dimension")
    style = get_style(large)
    fig = new_figure(12 if large else 8, 6 if large else 4, style)
    ax = fig.add_subplot()
    positions = np.arange(values.shape[0])
    for dim in dim_ids:
        ax.plot(positions, values[:, dim], linewidth=style.linewidth, label=f"dim {dim}")
    style_axes(ax, style)
    _integer_ticks(ax, "x")
    ax.set_xlabel("position", fontsize=style.label)
    ax.set_ylabel("value", fontsize=style.label)
    ax.set_title(title or "encoding value by position", fontsize=style.title)
    ax.legend(fontsize=style.legend, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(alpha=0.3)
    return fig


def plot_position_similarity(
    table: Any, *, title: str | None = None, large: bool = False
) -> Figure:
    """Cosine similarity between every pair of positions of a (positions, d_model) table.

    A bright diagonal band means nearby positions look alike, far ones differ.
    """
    values = to_array(table, "table", ("positions", "d_model"))  # (P, D)
    norms = np.linalg.norm(values, axis=1, keepdims=True)  # (P, 1)
    unit = values / np.maximum(norms, 1e-12)
    similarity = unit @ unit.T  # (P, P)
    style = get_style(large)
    side = 8 if large else 5.5
    fig = new_figure(side + 1.2, side, style)
    ax = fig.add_subplot()
    image = ax.imshow(similarity, cmap="RdBu_r", vmin=-1.0, vmax=1.0, interpolation="nearest")
    style_axes(ax, style)
    _integer_ticks(ax, "x", "y")
    ax.set_xlabel("position", fontsize=style.label)
    ax.set_ylabel("position", fontsize=style.label)
    ax.set_title(title or "cosine similarity between positions", fontsize=style.title)
    _colorbar(fig, image, ax, style, "cosine similarity")
    return fig


def _integer_ticks(ax: Axes, *axes: str) -> None:
    """Tick labels on whole numbers only (positions and dimensions have no 2.5)."""
    for name in axes:
        getattr(ax, f"{name}axis").set_major_locator(MaxNLocator(integer=True))


# --------------------------------------------------------------------------- training


def _series(entries: list[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of the entries that have `key`; a missing "step" counts entries from 1."""
    steps, values = [], []
    for position, entry in enumerate(entries, start=1):
        value = entry.get(key)
        if value is None:
            continue
        steps.append(float(entry.get("step", position)))
        values.append(float(value))
    return steps, values


def plot_training_curves(
    history: Iterable[Mapping[str, Any]],
    *,
    keys: Sequence[str] = ("loss",),
    lr_key: str | None = "lr",
    title: str | None = None,
    ylabel: str | None = None,
    large: bool = False,
    logy: bool = False,
) -> Figure:
    """Loss curves (and the learning rate on a second panel when the history has it).

    `history`: a list of dicts such as `{"step": 1, "loss": 2.3, "lr": 1e-4}`; evaluation
    entries may carry "valid_loss". For each key in `keys`, "valid_<key>" is drawn too when
    present (dashed, with markers). `ylabel` defaults to the key's name when there is one key
    ("token acc" for "token_acc"), else "value".
    """
    if isinstance(history, Mapping) or not isinstance(history, Iterable):
        raise ValueError(
            "history must be a list of dicts like {'step': 1, 'loss': 2.3}; "
            f"got {type(history).__name__}"
        )
    entries = list(history)
    if not all(isinstance(entry, Mapping) for entry in entries):
        raise ValueError("history must be a list of dicts like {'step': 1, 'loss': 2.3}")
    if isinstance(keys, str):
        keys = (keys,)
    seen = sorted({key for entry in entries for key in entry})
    curves = []
    for key in keys:
        for name in (key, f"valid_{key}") if not key.startswith("valid_") else (key,):
            steps, values = _series(entries, name)
            if steps and name not in [curve[0] for curve in curves]:
                curves.append((name, steps, values))
    if not curves:
        raise ValueError(f"history has no values for keys {list(keys)}; keys present: {seen}")
    lr_steps, lr_values = _series(entries, lr_key) if lr_key else ([], [])

    style = get_style(large)
    has_lr = bool(lr_steps)
    fig = new_figure(12 if large else 8, (9 if large else 6) if has_lr else (6 if large else 4),
                     style)
    if has_lr:
        loss_ax, lr_ax = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    else:
        loss_ax, lr_ax = fig.add_subplot(), None
    for name, steps, values in curves:
        is_eval = name.startswith("valid_")
        loss_ax.plot(
            steps, values, label=name, linewidth=style.linewidth,
            linestyle="--" if is_eval else "-",
            marker="o" if is_eval or len(steps) <= 30 else None,
            markersize=style.linewidth * 2.5,
        )
    if logy:
        loss_ax.set_yscale("log")
    style_axes(loss_ax, style)
    if ylabel is None:
        ylabel = keys[0].replace("_", " ") if len(keys) == 1 else "value"
    loss_ax.set_ylabel(ylabel, fontsize=style.label)
    loss_ax.legend(fontsize=style.legend)
    loss_ax.grid(alpha=0.3)
    loss_ax.set_title(title or "training curves", fontsize=style.title)
    bottom_ax = loss_ax
    if lr_ax is not None:
        lr_ax.plot(lr_steps, lr_values, color="tab:gray", linewidth=style.linewidth)
        style_axes(lr_ax, style)
        lr_ax.set_ylabel("learning rate", fontsize=style.label)
        lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        lr_ax.grid(alpha=0.3)
        bottom_ax = lr_ax
    bottom_ax.set_xlabel("step", fontsize=style.label)
    return fig


# --------------------------------------------------------------------------- head statistics


def plot_head_stats(
    values: Any,
    *,
    title: str,
    cmap: str = "magma",
    large: bool = False,
    fmt: str = ".2f",
) -> Figure:
    """An (L, H) table of per-head numbers (entropy, distance, ...) as a layers x heads heatmap.

    Each cell shows its value formatted with `fmt`.
    """
    table = to_array(values, "values", ("L", "H"))  # (L, H)
    n_layers, n_heads = table.shape
    style = get_style(large)
    cell = 1.0 if large else 0.7
    fig = new_figure(max(4.0, n_heads * cell + 2.2), max(2.5, n_layers * cell * 0.8 + 1.4), style)
    ax = fig.add_subplot()
    finite = table[np.isfinite(table)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    image = ax.imshow(table, cmap=cmap, vmin=low, vmax=high if high > low else low + 1e-9,
                      aspect="auto", interpolation="nearest")
    style_axes(ax, style)
    ax.set_xticks(range(n_heads), [f"head {head}" for head in range(n_heads)])
    ax.set_yticks(range(n_layers), [f"layer {layer}" for layer in range(n_layers)])
    if n_heads > 4:
        ax.tick_params(axis="x", labelrotation=45)
    _annotate_cells(ax, image, table, fmt, style)
    ax.set_title(title, fontsize=style.title)
    _colorbar(fig, image, ax, style)
    return fig


# --------------------------------------------------------------------------- saving


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write `fig` to `path` as PNG (150 dpi), SVG or PDF, chosen by the suffix.

    Tight bounding box; parent folders are created; the file is written to a temporary name
    and renamed, so an interrupted save never leaves half a file. Returns the path.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SAVE_FORMATS:
        raise ValueError(
            f"path must end in {', '.join(SAVE_FORMATS)}; got {str(path)!r} (suffix {suffix!r})"
        )
    if not hasattr(fig, "savefig"):
        raise ValueError(f"save_figure expects a matplotlib Figure, got {type(fig).__name__}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    options: dict[str, Any] = {"format": suffix[1:], "bbox_inches": "tight"}
    if suffix == ".png":
        options["dpi"] = 150
    try:
        fig.savefig(temporary, **options)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
