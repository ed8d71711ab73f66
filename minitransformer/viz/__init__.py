"""Figures for attention, positions and training.

Names load on first use, so importing one submodule (say the plotly one) does not import
matplotlib, and `import minitransformer.viz` never needs Jupyter.
"""

from __future__ import annotations

import importlib
from typing import Any

_STATIC_NAMES = (
    "plot_attention",
    "plot_attention_grid",
    "plot_encoding_curves",
    "plot_head_stats",
    "plot_position_similarity",
    "plot_positional_encoding",
    "plot_training_curves",
    "save_figure",
)
_LAZY_NAMES: dict[str, str] = dict.fromkeys(_STATIC_NAMES, "minitransformer.viz.static")

__all__ = list(_STATIC_NAMES)


def __getattr__(name: str) -> Any:
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'minitransformer.viz' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES))
