"""Multi-head attention with two paths that compute the same thing.

* fused: `F.scaled_dot_product_attention` (flash / memory-efficient kernels) -- used whenever
  the attention weights are not asked for;
* explicit: softmax(Q K^T / sqrt(d_k)) V written out, returning the weights (B, H, Tq, Tk),
  taken after the softmax and before dropout, with masked positions exactly 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .masks import causal_mask, combine
from .positional import apply_rotary


class KVCache:
    """Keys and values of positions already decoded, for incremental decoding.

    Entries are keyed by (layer, "self" | "cross"), each a pair of (B, H, T, Dh) tensors.
    `length` counts target positions processed so far (the next token's position).
    """

    def __init__(self) -> None:
        self.entries: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}
        self.length = 0

    def reorder(self, index: Tensor) -> None:
        """Keep batch rows `index` (B',) in every entry: beam search's parent selection."""
        self.entries = {
            key: (k.index_select(0, index), v.index_select(0, index))
            for key, (k, v) in self.entries.items()
        }

    def __len__(self) -> int:
        return self.length


class MultiHeadAttention(nn.Module):
    """Self-attention (one fused QKV projection) or cross-attention (`cross=True`: queries from
    the decoder, keys and values from the encoder's memory)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, cross: bool = False):
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.cross = cross
        self.dropout = dropout
        if cross:
            self.q_proj = nn.Linear(d_model, d_model)
            self.kv_proj = nn.Linear(d_model, 2 * d_model)
        else:
            self.qkv_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        *,
        key_mask: Tensor | None = None,
        causal: bool = False,
        rope: tuple[Tensor, Tensor] | None = None,
        need_weights: bool = False,
        cache: KVCache | None = None,
        cache_key: tuple[int, str] | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """x: (B, Tq, D); memory: (B, Tk, D) for cross-attention; key_mask: bool, broadcastable
        to (B, H, Tq, Tk), True = may attend. Returns (output (B, Tq, D), weights or None)."""
        q, k, v = self._project(x, memory, cache, cache_key)  # each (B, H, T, Dh)
        if rope is not None and not self.cross:
            cos, sin = rope
            q = apply_rotary(q, cos, sin)
            k = apply_rotary(k, cos, sin)
        if cache is not None and not self.cross:
            past = cache.entries.get(cache_key)
            if past is not None:
                k = torch.cat([past[0], k], dim=2)
                v = torch.cat([past[1], v], dim=2)
            cache.entries[cache_key] = (k, v)

        n_q, n_k = q.size(2), k.size(2)
        causal_part = causal_mask(n_q, n_k, x.device) if causal and n_q > 1 else None
        p_drop = self.dropout if self.training else 0.0
        if need_weights:
            out, weights = self._explicit(q, k, v, combine(key_mask, causal_part), p_drop)
        else:
            weights = None
            if key_mask is None and causal_part is not None and n_q == n_k:
                out = F.scaled_dot_product_attention(q, k, v, dropout_p=p_drop, is_causal=True)
            else:
                mask = combine(key_mask, causal_part)
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p_drop)
        out = out.transpose(1, 2).flatten(2)  # (B, Tq, D)
        return self.out_proj(out), weights

    def _project(
        self, x: Tensor, memory: Tensor | None, cache: KVCache | None, cache_key
    ) -> tuple[Tensor, Tensor, Tensor]:
        if not self.cross:
            q, k, v = self.qkv_proj(x).chunk(3, dim=-1)
            return self._heads(q), self._heads(k), self._heads(v)
        q = self._heads(self.q_proj(x))
        if cache is not None and cache_key in cache.entries:
            k, v = cache.entries[cache_key]  # the memory does not change while decoding
        else:
            if memory is None:
                raise ValueError("cross-attention needs the encoder memory (B, S, d_model)")
            k, v = (self._heads(t) for t in self.kv_proj(memory).chunk(2, dim=-1))
            if cache is not None:
                cache.entries[cache_key] = (k, v)
        return q, k, v

    def _heads(self, t: Tensor) -> Tensor:
        """(B, T, D) -> (B, H, T, Dh)."""
        b, n, _ = t.shape
        return t.view(b, n, self.n_heads, self.head_dim).transpose(1, 2)

    def _explicit(
        self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, p_drop: float
    ) -> tuple[Tensor, Tensor]:
        scores = (q @ k.transpose(-2, -1)).float() / math.sqrt(self.head_dim)  # (B, H, Tq, Tk)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        if mask is not None:  # exact zeros, and no NaN on a row with nothing to attend to
            weights = weights.masked_fill(~mask, 0.0)
        dropped = F.dropout(weights, p_drop, training=p_drop > 0)
        return dropped.to(v.dtype) @ v, weights  # (B, H, Tq, Dh), (B, H, Tq, Tk)
