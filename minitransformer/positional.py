"""Positional encodings: the paper's sinusoids, learned embeddings, rotary (RoPE), or none.

Additive encodings (sinusoidal, learned) are added to the scaled token embeddings; rotary
rotates queries and keys inside self-attention instead, so its module only supplies cos/sin.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_encoding(max_len: int, d_model: int) -> Tensor:
    """The paper's table, (max_len, d_model):

    PE(pos, 2i) = sin(pos / 10000^(2i/d_model)),  PE(pos, 2i+1) = cos(pos / 10000^(2i/d_model)).
    """
    if max_len <= 0 or d_model <= 0:
        raise ValueError(f"max_len and d_model must be positive, got {max_len} and {d_model}")
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)  # (T, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (ceil(D/2),)
    angle = position / torch.pow(10000.0, two_i / d_model)  # (T, ceil(D/2))
    table = torch.zeros(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return table.float()


class SinusoidalEncoding(nn.Module):
    """Adds the fixed sinusoidal table; the table is a non-persistent buffer (not checkpointed)."""

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.register_buffer("table", sinusoidal_encoding(max_len, d_model), persistent=False)

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """x: (B, T, D) -> x + PE[start : start + T]."""
        return x + self.table[start : start + x.size(1)].to(x.dtype)


class LearnedEncoding(nn.Module):
    """One trained vector per position (as in BERT/GPT); saved with the weights."""

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.embedding = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.embedding.weight, std=0.02)

    @property
    def table(self) -> Tensor:
        return self.embedding.weight

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        return x + self.embedding.weight[start : start + x.size(1)].to(x.dtype)


class RotaryEmbedding(nn.Module):
    """RoPE (Su et al., 2021): supplies cos/sin tables, (max_len, head_dim), for `apply_rotary`."""

    def __init__(self, max_len: int, head_dim: int, base: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        angle = torch.outer(torch.arange(max_len, dtype=torch.float64), inv_freq)  # (T, Dh/2)
        angle = torch.cat([angle, angle], dim=-1)  # (T, Dh)
        self.register_buffer("cos", angle.cos().float(), persistent=False)
        self.register_buffer("sin", angle.sin().float(), persistent=False)

    def forward(self, start: int, length: int) -> tuple[Tensor, Tensor]:
        """cos, sin for positions start .. start+length-1, each (length, head_dim)."""
        return self.cos[start : start + length], self.sin[start : start + length]


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate pairs of channels of x, (B, H, T, Dh), by position-dependent angles."""
    half = x.size(-1) // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


def build_positional(kind: str, max_len: int, d_model: int) -> nn.Module | None:
    """The additive encoding module for `kind`, or None for "rope"/"none" (nothing to add)."""
    if kind == "sinusoidal":
        return SinusoidalEncoding(max_len, d_model)
    if kind == "learned":
        return LearnedEncoding(max_len, d_model)
    return None


def embedding_scale(d_model: int) -> float:
    """The paper multiplies embeddings by sqrt(d_model) before adding positions."""
    return math.sqrt(d_model)
