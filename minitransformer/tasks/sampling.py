"""Deterministic sampling helpers shared by the generated tasks.

Every generator draws from `task_rng(name, seed)`, a `random.Random` seeded with a string:
Python documents that string seeds give the same sequence on every platform and version 3.2+.
Items are made unique by their source string and cut into disjoint train/valid/test splits, so
no test source is ever seen in training.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def task_rng(name: str, seed: int) -> random.Random:
    """A private random generator for task `name` and `seed` (never the global one)."""
    check_int("seed", seed, minimum=None)
    return random.Random(f"minitransformer.tasks:{name}:{seed}")


def check_int(field: str, value: Any, minimum: int | None = 0) -> int:
    """`value` if it is an int (not a bool) >= minimum, else ValueError naming `field`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{field} must be >= {minimum}, got {value!r}")
    return value


def check_split_sizes(task: str, n_train: int, n_valid: int, n_test: int) -> int:
    """Validate the three split sizes; returns their total."""
    check_int(f"{task}: n_train", n_train, minimum=1)
    check_int(f"{task}: n_valid", n_valid, minimum=0)
    check_int(f"{task}: n_test", n_test, minimum=0)
    return n_train + n_valid + n_test


def sample_unique(
    rng: random.Random,
    draw: Callable[[random.Random], T],
    key: Callable[[T], str],
    n: int,
    *,
    space: int,
    what: str,
) -> list[T]:
    """`n` draws with distinct `key`s, in draw order.

    `space` is the number of distinct keys `draw` can produce; asking for more raises a
    ValueError naming `what` (the task and its options), as does a space too crowded for
    rejection sampling to finish.
    """
    if n > space:
        raise ValueError(
            f"{what}: asked for {n} distinct examples but only {space} exist; "
            "lower n_train/n_valid/n_test or widen the options"
        )
    seen: set[str] = set()
    out: list[T] = []
    tries = 0
    limit = 200 * n + 1000
    while len(out) < n:
        item = draw(rng)
        k = key(item)
        tries += 1
        if k not in seen:
            seen.add(k)
            out.append(item)
        elif tries > limit:
            raise ValueError(
                f"{what}: could not draw {n} distinct examples in {limit} tries "
                f"(only {len(out)} found); lower n_train/n_valid/n_test or widen the options"
            )
    return out


def cut_splits(
    items: Sequence[T], n_train: int, n_valid: int, n_test: int
) -> tuple[list[T], list[T], list[T]]:
    """Consecutive, disjoint train/valid/test slices of `items` (valid, test, then train).

    Valid and test come first so that growing n_train keeps the evaluation splits fixed.
    """
    valid = list(items[:n_valid])
    test = list(items[n_valid : n_valid + n_test])
    train = list(items[n_valid + n_test : n_valid + n_test + n_train])
    return train, valid, test
