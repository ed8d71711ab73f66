"""ipywidgets explorers over caches, histories, trainers and models (need a Jupyter kernel to
be interactive; they construct and respond in plain Python too, which the tests use).

    mt.AttentionExplorer(cache_or_history)
    mt.PositionalEncodingExplorer(model=None)
    mt.TrainingDashboard(trainer)
    mt.HeadAblationExplorer(model, task)

Each instance displays itself (last line of a cell) and updates its figures in place.
"""

from .ablation import HeadAblationExplorer
from .attention import AttentionExplorer
from .positional import PositionalEncodingExplorer
from .training import TrainingDashboard, default_trainer

__all__ = [
    "AttentionExplorer",
    "HeadAblationExplorer",
    "PositionalEncodingExplorer",
    "TrainingDashboard",
    "default_trainer",
]
