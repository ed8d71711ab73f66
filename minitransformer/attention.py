"""Multi-head attention with two paths that compute the same thing.

* fused: `F.scaled_dot_product_attention` (flash / memory-efficient kernels) -- used whenever
  the attention weights are not asked for, except in bf16 on a CPU;
* explicit: softmax(Q K^T / sqrt(d_k)) V written out, returning the weights (B, H, Tq, Tk),
  taken after the softmax and before dropout, with masked positions exactly 0.

In bf16 on a CPU the explicit path is the faster one: SDPA's CPU bf16 kernels (its backward
above all) are slow. Measured training steps under bf16 autocast on a 2-core AVX512-BF16 CPU,
explicit vs SDPA: 1.10-1.16x at d_model 64, 1.21-1.24x for 2+2 layers at d_model 256,
1.27-1.39x for a 4-layer decoder-only model at d_model 128, 1.55-1.75x for 3+3 layers at
d_model 128 (benchmarks/RESULTS.md).
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

    `entries` maps (layer, "self" | "cross") to a pair of (B, H, T, Dh) tensors. Self-attention
    keys and values live in buffers with spare room that double when full, so a new token is
    written in place rather than copying the whole past with `torch.cat` every step.
    `length` counts target positions processed so far (the next token's position);
    `memory_keep` is the source padding mask (B, 1, 1, S), worked out once per decoding.
    """

    def __init__(self) -> None:
        self.entries: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}
        self._buffers: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}
        self.length = 0
        self.memory_keep: Tensor | None = None
        self.has_memory_keep = False

    def append(self, key: tuple[int, str], k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Add new keys/values (B, H, t, Dh) after those stored under `key`; returns all of
        them so far, (B, H, T_past + t, Dh) each."""
        past = self.entries[key][0].size(2) if key in self.entries else 0
        total = past + k.size(2)
        buffers = self._buffers.get(key)
        if buffers is None or buffers[0].size(2) < total:
            room = max(total, 16, 2 * (buffers[0].size(2) if buffers is not None else 0))
            grown = tuple(t.new_empty(t.size(0), t.size(1), room, t.size(3)) for t in (k, v))
            if past:
                for new, old in zip(grown, self.entries[key], strict=True):
                    new[:, :, :past] = old
            buffers = self._buffers[key] = grown
        buffers[0][:, :, past:total] = k
        buffers[1][:, :, past:total] = v
        self.entries[key] = (buffers[0][:, :, :total], buffers[1][:, :, :total])
        return self.entries[key]

    def reorder(self, index: Tensor) -> None:
        """Keep batch rows `index` (B',) in every entry: beam search's parent selection."""
        self._buffers = {key: (k.index_select(0, index), v.index_select(0, index))
                         for key, (k, v) in self._buffers.items()}
        for key, (k, v) in self.entries.items():
            if key in self._buffers:
                n = k.size(2)
                self.entries[key] = tuple(b[:, :, :n] for b in self._buffers[key])
            else:
                self.entries[key] = (k.index_select(0, index), v.index_select(0, index))
        if self.memory_keep is not None:
            self.memory_keep = self.memory_keep.index_select(0, index)

    def __len__(self) -> int:
        return self.length


def _explicit_is_faster(q: Tensor) -> bool:
    """bf16 on a CPU: the explicit path beats SDPA's kernels (see the module docstring)."""
    return q.dtype == torch.bfloat16 and q.device.type == "cpu"


class MultiHeadAttention(nn.Module):
    """Self-attention (one fused QKV projection) or cross-attention (`cross=True`: queries from
    the decoder, keys and values from the encoder's memory)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, cross: bool = False):
        """`dropout`: on the attention weights, in training (ModelConfig.attention_dropout)."""
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
            k, v = cache.append(cache_key, k, v)

        n_q, n_k = q.size(2), k.size(2)
        causal = causal and n_q > 1  # one new query may see every cached key
        p_drop = self.dropout if self.training else 0.0
        explicit = need_weights or _explicit_is_faster(q)
        if not explicit and causal and key_mask is None and n_q == n_k:  # no mask to build
            out, weights = F.scaled_dot_product_attention(q, k, v, dropout_p=p_drop,
                                                          is_causal=True), None
        else:
            mask = combine(key_mask, causal_mask(n_q, n_k, x.device) if causal else None)
            if explicit:
                out, weights = self._explicit(q, k, v, mask, p_drop)
            else:
                out, weights = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                                              dropout_p=p_drop), None
        weights = weights if need_weights else None
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
