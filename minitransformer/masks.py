"""Attention masks as pure functions. Convention: boolean, True = may attend."""

from __future__ import annotations

import torch
from torch import Tensor


def padding_mask(ids: Tensor, pad_id: int) -> Tensor:
    """Keys that are real tokens: (B, T) ids -> (B, 1, 1, T) bool, broadcast over heads/queries."""
    return (ids != pad_id)[:, None, None, :]


def causal_mask(n_queries: int, n_keys: int, device: torch.device | None = None) -> Tensor:
    """(Tq, Tk) bool: query i may see keys up to its own position.

    With n_keys > n_queries the queries are the last n_queries positions (incremental decoding
    with cached keys), so query i sits at position i + (n_keys - n_queries).
    """
    offset = n_keys - n_queries
    q = torch.arange(n_queries, device=device)[:, None]
    k = torch.arange(n_keys, device=device)[None, :]
    return k <= q + offset


def combine(*masks: Tensor | None) -> Tensor | None:
    """AND of the given masks (broadcasting); None entries are ignored; None if all are None."""
    present = [m for m in masks if m is not None]
    if not present:
        return None
    out = present[0]
    for m in present[1:]:
        out = out & m
    return out
