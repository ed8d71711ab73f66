"""Input checks shared by the plots: arrays, token lists, index lists, token ticks.

Imports neither matplotlib nor plotly, so both the static and the interactive plots use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .style import Style

MAX_TICK_LABELS = 40  # at most this many token labels per axis; longer sequences are thinned

_WHITESPACE_SYMBOLS = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍"}


def to_array(values: Any, name: str, shape_names: Sequence[str]) -> np.ndarray:
    """`values` (torch tensor on any device/dtype, numpy array or nested list) as float64 numpy.

    Raises ValueError unless it has `len(shape_names)` dimensions; the message names the
    expected layout, e.g. "weights must be 2-D (Tq, Tk); got shape (2, 3, 4)".
    """
    if values is None:
        raise ValueError(f"{name} is None; expected a {len(shape_names)}-D tensor")
    if hasattr(values, "detach"):  # torch.Tensor (requires_grad, cuda, bf16 all fine)
        values = values.detach().cpu().float().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != len(shape_names):
        layout = ", ".join(shape_names)
        raise ValueError(
            f"{name} must be {len(shape_names)}-D ({layout}); got shape {tuple(array.shape)}"
        )
    return array


def check_tokens(tokens: Sequence[Any] | None, size: int, role: str, unit: str) -> list[str]:
    """Token strings for one axis of length `size`; None gives the positions "0", "1", ...

    `role` is "query" or "key", `unit` is "row" or "column", for the error message
    "3 query tokens for a 5-row attention map".
    """
    if tokens is None:
        return [str(i) for i in range(size)]
    if isinstance(tokens, str):
        raise ValueError(
            f"{role}_tokens must be a list of token strings, got the string {tokens[:30]!r}; "
            "use list(text) for characters or text.split() for words"
        )
    tokens = [str(token) for token in tokens]
    if len(tokens) != size:
        raise ValueError(f"{len(tokens)} {role} tokens for a {size}-{unit} attention map")
    return tokens


def display_token(token: str) -> str:
    """A token as shown on an axis: as-is, except whitespace-only tokens get visible symbols."""
    if token == "":
        return "∅"
    if token.isspace():
        return "".join(_WHITESPACE_SYMBOLS.get(char, char) for char in token)
    return token


def tick_indices(size: int, max_labels: int = MAX_TICK_LABELS) -> list[int]:
    """Positions that get a label: all of them, or every k-th so at most `max_labels` remain."""
    step = max(1, math.ceil(size / max(1, max_labels)))
    return list(range(0, size, step))


def labels_that_fit(side_inches: float, style: Style) -> int:
    """How many tick labels fit along `side_inches` without overlapping (at most 40)."""
    pitch_inches = style.ticks * 1.4 / 72  # one label's height plus a gap
    return max(2, min(MAX_TICK_LABELS, int(side_inches / pitch_inches)))


def set_token_ticks(
    ax: Axes,
    tokens: Sequence[str],
    *,
    axis: str,
    max_labels: int = MAX_TICK_LABELS,
    show_labels: bool = True,
) -> None:
    """Put `tokens` on the x or y axis of a heatmap; each label sits at its own token's cell.

    Long sequences show every k-th token (at most `max_labels`), never a shifted label.
    """
    positions = tick_indices(len(tokens), max_labels)
    labels = [display_token(tokens[i]) for i in positions] if show_labels else []
    if axis == "x":
        ax.set_xticks(positions)
        if labels:
            ax.set_xticklabels(
                labels, rotation=60, ha="right", rotation_mode="anchor", parse_math=False
            )
        else:
            ax.tick_params(axis="x", labelbottom=False)
    elif axis == "y":
        ax.set_yticks(positions)
        if labels:
            ax.set_yticklabels(labels, parse_math=False)
        else:
            ax.tick_params(axis="y", labelleft=False)
    else:
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")


def select_indices(chosen: int | Sequence[int] | None, available: int, what: str) -> list[int]:
    """Indices picked by the caller (None = all), each checked against `available`.

    Negative indices count from the end, as in Python. Raises ValueError naming what exists:
    "layer 7 is out of range: there are 6 layers (0..5)".
    """
    if chosen is None:
        return list(range(available))
    if isinstance(chosen, (int, np.integer)):
        chosen = [int(chosen)]
    picked = []
    for index in chosen:
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise ValueError(f"{what} indices must be integers, got {index!r}")
        if not -available <= index < available:
            raise ValueError(
                f"{what} {index} is out of range: there are {available} {what}s "
                f"(0..{available - 1})"
            )
        picked.append(int(index) % available)
    if not picked:
        raise ValueError(f"no {what}s selected; choose from 0..{available - 1}")
    return picked
