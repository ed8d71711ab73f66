"""AttentionExplorer: drag through examples, layers, heads and training steps of recorded attention.

    mt.AttentionExplorer(mt.record(model, src, tgt, src_tokens, tgt_tokens))
    mt.AttentionExplorer(history)        # an AttentionHistory: adds a training-step slider

"All heads" shows a grid with every head of the chosen layer (one small map per head, on one
shared 0..1 scale) rather than their mean, because heads usually do different things and the
mean hides exactly that; "mean of heads" is offered as well for a one-picture summary.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import numpy as np

from ..interactive import cache_layers, cache_maps
from ._base import (
    ALL_HEADS,
    SECTION_NAMES,
    AttentionPanel,
    Explorer,
    HeadGridPanel,
    head_options,
    pick_head,
    sections_of,
)

MEMO_SIZE = 64  # (snapshot, stack, kind, example) maps kept for fast slider dragging


class AttentionExplorer(Explorer):
    """Widgets over an `AttentionCache` or an `AttentionHistory`.

    Controls (attributes, for scripting and tests): `example`, `attention` ((stack, kind)),
    `layer`, `head` (an int, "all" or "mean") and, for a history, `step` (snapshot index;
    labelled with the training step). Figures: `figure` (one map) and `grid_figure` (all
    heads); whichever fits the head choice is shown, and both update in place.
    """

    def __init__(self, source: Any, *, stack: str | None = None, kind: str | None = None,
                 example: int = 0, layer: int = 0, head: int | str = 0, large: bool = False):
        self._snapshots = self._read_source(source)
        self._caches = [s.cache for s in self._snapshots] if self._snapshots else [source]
        latest = self._caches[-1]
        sections = sections_of(latest)
        if stack is not None or kind is not None:
            chosen = (stack or "decoder", kind or "self")
            cache_layers(latest, *chosen)  # a clear error when the cache has no such maps
        else:
            chosen = ("decoder", "cross") if ("decoder", "cross") in sections else sections[0]
        self._memo: dict[tuple, tuple[np.ndarray, list[str], list[str]]] = {}
        n_examples = int(latest.batch_size)
        if not -n_examples <= example < n_examples:
            raise ValueError(f"example {example} is out of range: the cache holds {n_examples} "
                             f"examples (0..{n_examples - 1})")
        n_heads = int(latest.n_heads)
        options = head_options(n_heads)
        if head not in [value for _, value in options]:
            allowed = ", ".join(repr(v) for _, v in options)
            raise ValueError(f"head {head!r} is not available; choose one of {allowed}")

        self.attention = widgets.Dropdown(
            options=[(SECTION_NAMES[pair], pair) for pair in sections], value=chosen,
            description="attention")
        self.example = widgets.Dropdown(options=self._example_options(latest),
                                        value=example % n_examples, description="example")
        n_layers = len(cache_layers(latest, *chosen))
        if not -n_layers <= layer < n_layers:
            raise ValueError(f"layer {layer} is out of range: {chosen[0]} {chosen[1]}-attention "
                             f"has {n_layers} layers (0..{n_layers - 1})")
        self.layer = widgets.IntSlider(value=layer % n_layers, min=0, max=n_layers - 1,
                                       description="layer", continuous_update=True)
        self.head = widgets.Dropdown(options=options, value=head, description="head")
        self.step: widgets.SelectionSlider | None = None
        self.step_info = widgets.HTML()
        controls: list[widgets.Widget] = [
            widgets.HBox([self.attention, self.example]),
            widgets.HBox([self.layer, self.head]),
        ]
        if self._snapshots:
            self.step = widgets.SelectionSlider(
                options=[(str(s.step), i) for i, s in enumerate(self._snapshots)],
                value=len(self._snapshots) - 1, description="step",
                continuous_update=True, layout=widgets.Layout(width="60%"))
            controls.append(widgets.HBox([self.step, self.step_info]))

        self.panel = AttentionPanel(large=large)
        self.grid = HeadGridPanel(n_heads, large=large)
        self.figure = self.panel.figure
        self.grid_figure = self.grid.figure
        self._view = widgets.Box([self.figure])
        self.widget = widgets.VBox([*controls, self._view])
        for control in (self.attention, self.example, self.layer, self.head, self.step):
            if control is not None:
                control.observe(self._on_change, names="value")
        self.update()

    # ---- inputs ------------------------------------------------------------------------------
    @staticmethod
    def _read_source(source: Any) -> list[Any] | None:
        if hasattr(source, "snapshots"):
            snapshots = list(source.snapshots)
            if not snapshots:
                raise ValueError(
                    "the attention history is empty: no snapshots recorded yet; attach it to a "
                    "trainer (history.attach(trainer)) or call history.capture(model, step)")
            return snapshots
        if not (hasattr(source, "keys") and hasattr(source, "example")):
            raise TypeError(
                "AttentionExplorer needs an AttentionCache (mt.record(...)) or an "
                f"AttentionHistory, got {type(source).__name__}")
        return None

    @staticmethod
    def _example_options(cache: Any) -> list[tuple[str, int]]:
        key = cache.keys()[0]
        options = []
        for i in range(int(cache.batch_size)):
            text = " ".join(cache.query_tokens(key, i))
            options.append((f"{i}: {text[:40]}{'…' if len(text) > 40 else ''}", i))
        return options

    # ---- updating ----------------------------------------------------------------------------
    def _on_change(self, change: dict[str, Any]) -> None:
        if change["owner"] is self.attention:
            n_layers = len(cache_layers(self._current_cache(), *self.attention.value))
            with self.layer.hold_trait_notifications():
                self.layer.value = min(self.layer.value, n_layers - 1)
                self.layer.max = n_layers - 1
        self.update()

    def _current_index(self) -> int:
        return self.step.value if self.step is not None else 0

    def _current_cache(self) -> Any:
        return self._caches[self._current_index()]

    def maps(self) -> tuple[np.ndarray, list[str], list[str]]:
        """(L, H, Tq, Tk) maps of the current snapshot/attention/example, and their tokens."""
        stack, kind = self.attention.value
        key = (self._current_index(), stack, kind, self.example.value)
        if key not in self._memo:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.pop(next(iter(self._memo)))
            self._memo[key] = cache_maps(self._current_cache(), stack, kind, self.example.value)
        return self._memo[key]

    def update(self) -> None:
        """Redraw the shown figure from the controls (in place)."""
        maps, queries, keys = self.maps()
        stack, kind = self.attention.value
        layer = min(self.layer.value, maps.shape[0] - 1)
        head = self.head.value
        where = f"{stack} {kind}-attention, layer {layer}"
        if self._snapshots:
            snapshot = self._snapshots[self._current_index()]
            loss = f", loss {snapshot.loss:.3f}" if snapshot.loss is not None else ""
            self.step_info.value = f"training step {snapshot.step}{loss}"
            where += f" · step {snapshot.step}"
        if head == ALL_HEADS:
            self.grid.show(maps[layer], queries, keys, title=where)
            if self._view.children[0] is not self.grid_figure:
                self._view.children = (self.grid_figure,)
        else:
            name = f"head {head}" if isinstance(head, int) else "mean of heads"
            self.panel.show(pick_head(maps[layer], head), queries, keys,
                            title=f"{where}, {name}")
            if self._view.children[0] is not self.figure:
                self._view.children = (self.figure,)
