"""Built-in tasks (generated offline from a seed) and loaders for a user's own data.

    mt.list_tasks()                          # ['addition', 'arithmetic_lm', 'copy', ...]
    task = mt.get_task("numbers_en_de", seed=0)
    task.train[0]          # Example(src='...', tgt='...', alignment=((0, 1), (2, 0)))
    task.src_tokenizer, task.tgt_tokenizer, task.kind, task.description, task.has_alignment
    for batch in task.batches("train", 32, generator=torch.Generator().manual_seed(0)): ...

The same generation, with default options and seed 0, is committed in data/ (see
data/README.md and `python -m minitransformer.tasks.generate`). This package imports nothing
from the model, trainer or visualisation code. See `base` for the gold alignment convention.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .base import Example, ProbeBatch, Task
from .synthetic import addition_task, copy_task, reverse_task, sort_task
from .text import arithmetic_lm_task, grammar_lm_task
from .translation import dates_task, numbers_en_de_task, numbers_en_fr_task
from .user import task_from_pairs, task_from_text_file, task_from_tsv

TASKS: dict[str, Callable[..., Task]] = {
    "copy": copy_task,
    "reverse": reverse_task,
    "sort": sort_task,
    "addition": addition_task,
    "numbers_en_de": numbers_en_de_task,
    "numbers_en_fr": numbers_en_fr_task,
    "dates": dates_task,
    "arithmetic_lm": arithmetic_lm_task,
    "grammar_lm": grammar_lm_task,
}


def list_tasks() -> list[str]:
    """Names of the built-in tasks, sorted."""
    return sorted(TASKS)


def task_options(name: str) -> dict[str, Any]:
    """The options of built-in task `name` with their default values."""
    factory = _factory(name)
    return {
        p.name: p.default
        for p in inspect.signature(factory).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def get_task(name: str, seed: int = 0, **options: Any) -> Task:
    """Generate built-in task `name` from `seed`; `options` override its defaults.

    Unknown names or options raise a ValueError listing what is allowed.
    """
    factory = _factory(name)
    allowed = task_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"task {name!r} has no option(s) {unknown}; allowed: {', '.join(sorted(allowed))}"
        )
    return factory(seed, **options)


def _factory(name: str) -> Callable[..., Task]:
    if name not in TASKS:
        raise ValueError(f"task {name!r} is not known; choose one of {', '.join(list_tasks())}")
    return TASKS[name]


__all__ = [
    "TASKS",
    "Example",
    "ProbeBatch",
    "Task",
    "get_task",
    "list_tasks",
    "task_from_pairs",
    "task_from_text_file",
    "task_from_tsv",
    "task_options",
]
