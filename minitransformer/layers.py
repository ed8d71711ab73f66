"""The paper's building blocks: position-wise feed-forward, encoder layer, decoder layer.

Each sub-layer is wrapped in a residual connection with layer norm, either after the addition
(post-norm, the paper: LayerNorm(x + Sublayer(x))) or before the sub-layer (pre-norm).
"""

from __future__ import annotations

from torch import Tensor, nn

from .attention import KVCache, MultiHeadAttention


class FeedForward(nn.Module):
    """FFN(x) = max(0, x W1 + b1) W2 + b2, applied to each position: (B, T, D) -> (B, T, D).

    As in the paper, dropout is applied to the sub-layer's output (by the residual wrapper),
    not inside on the d_ff-wide activations, which would cost a mask 4x the model width."""

    def __init__(self, d_model: int, d_ff: int, activation: str = "relu"):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.activation = nn.ReLU() if activation == "relu" else nn.GELU()
        self.linear2 = nn.Linear(d_ff, d_model)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear2(self.activation(self.linear1(x)))


class _ResidualLayer(nn.Module):
    """Shared residual plumbing: `_inp` before a sub-layer, `_add` after it."""

    def __init__(self, dropout: float, norm_first: bool):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.norm_first = norm_first

    def _inp(self, x: Tensor, norm: nn.LayerNorm) -> Tensor:
        return norm(x) if self.norm_first else x

    def _add(self, x: Tensor, sublayer_out: Tensor, norm: nn.LayerNorm) -> Tensor:
        if self.training:  # (in eval mode dropout is the identity: skip the call)
            sublayer_out = self.dropout(sublayer_out)
        x = x + sublayer_out
        return x if self.norm_first else norm(x)


class EncoderLayer(_ResidualLayer):
    """Self-attention, then feed-forward."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float,
                 attention_dropout: float = 0.0, norm_first: bool = False,
                 activation: str = "relu"):
        super().__init__(dropout, norm_first)
        self.self_attn = MultiHeadAttention(d_model, n_heads, attention_dropout)
        self.feed_forward = FeedForward(d_model, d_ff, activation)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, key_mask: Tensor | None = None, rope=None,
                need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """x: (B, S, D) -> (B, S, D), self-attention weights (B, H, S, S) or None."""
        attn, weights = self.self_attn(self._inp(x, self.norm1), key_mask=key_mask, rope=rope,
                                       need_weights=need_weights)
        x = self._add(x, attn, self.norm1)
        x = self._add(x, self.feed_forward(self._inp(x, self.norm2)), self.norm2)
        return x, weights


class DecoderLayer(_ResidualLayer):
    """Masked self-attention, then (encoder-decoder only) cross-attention, then feed-forward."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float,
                 attention_dropout: float = 0.0, norm_first: bool = False,
                 activation: str = "relu", cross: bool = True, index: int = 0):
        super().__init__(dropout, norm_first)
        self.index = index
        self.self_attn = MultiHeadAttention(d_model, n_heads, attention_dropout)
        self.src_attn = (MultiHeadAttention(d_model, n_heads, attention_dropout, cross=True)
                         if cross else None)
        self.feed_forward = FeedForward(d_model, d_ff, activation)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model) if cross else None
        self.norm3 = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, memory: Tensor | None = None, *,
                self_key_mask: Tensor | None = None, memory_key_mask: Tensor | None = None,
                rope=None, need_weights: bool = False, cache: KVCache | None = None
                ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """x: (B, T, D), memory: (B, S, D) -> (B, T, D), self weights (B, H, T, T) and
        cross weights (B, H, T, S), each None unless asked for."""
        attn, self_w = self.self_attn(
            self._inp(x, self.norm1), key_mask=self_key_mask, causal=True, rope=rope,
            need_weights=need_weights, cache=cache, cache_key=(self.index, "self"))
        x = self._add(x, attn, self.norm1)
        cross_w = None
        if self.src_attn is not None:
            attn, cross_w = self.src_attn(
                self._inp(x, self.norm2), memory, key_mask=memory_key_mask,
                need_weights=need_weights, cache=cache, cache_key=(self.index, "cross"))
            x = self._add(x, attn, self.norm2)
        x = self._add(x, self.feed_forward(self._inp(x, self.norm3)), self.norm3)
        return x, self_w, cross_w
