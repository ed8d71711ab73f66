"""Reference models for the benchmarks, at the same sizes as ours.

- `TorchSeq2Seq`: `torch.nn.Transformer` (post-norm, ReLU, batch_first) with what a model needs
  around it, done as ours does it: one token embedding shared by source, target and the output
  projection, scaled by sqrt(d_model), plus the fixed sinusoidal table, and a causal target mask.
- `NanoGPTStyle`: a small GPT in the style of Karpathy's nanoGPT, written here from the idea:
  token + learned position embeddings, pre-norm blocks (LayerNorm -> causal self-attention with
  `scaled_dot_product_attention(is_causal=True)` -> residual; LayerNorm -> 4x GELU MLP ->
  residual), a final LayerNorm and a head tied to the token embedding.

Both take ids and return logits (B, T, V) so the benchmark's training step is the same code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from minitransformer import sinusoidal_encoding


class TorchSeq2Seq(nn.Module):
    """nn.Transformer with tied, scaled embeddings, sinusoidal positions and an output head."""

    def __init__(self, vocab_size: int, d_model: int, n_heads: int, n_encoder_layers: int,
                 n_decoder_layers: int, d_ff: int, dropout: float, max_len: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embed.weight, std=d_model ** -0.5)
        self.register_buffer("positions", sinusoidal_encoding(max_len, d_model), persistent=False)
        self.scale = math.sqrt(d_model)
        self.dropout = nn.Dropout(dropout)
        self.transformer = nn.Transformer(
            d_model=d_model, nhead=n_heads, num_encoder_layers=n_encoder_layers,
            num_decoder_layers=n_decoder_layers, dim_feedforward=d_ff, dropout=dropout,
            batch_first=True)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.embed.weight  # tied, as in the paper (and in our model)

    def _embed(self, ids: Tensor) -> Tensor:
        x = self.embed(ids) * self.scale + self.positions[: ids.size(1)]  # (B, T, D)
        return self.dropout(x)

    def forward(self, src: Tensor, tgt: Tensor) -> Tensor:
        """src (B, S), tgt (B, T) ids -> logits (B, T, V)."""
        n = tgt.size(1)
        causal = nn.Transformer.generate_square_subsequent_mask(n, device=tgt.device)  # (T, T)
        hidden = self.transformer(self._embed(src), self._embed(tgt), tgt_mask=causal,
                                  tgt_is_causal=True)  # (B, T, D)
        return self.head(hidden)


class _CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.p_drop = dropout
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)
                   for z in (q, k, v))  # each (B, H, T, Dh)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.p_drop if self.training else 0.0)
        y = y.transpose(1, 2).reshape(b, t, d)  # (B, T, D)
        return self.resid_dropout(self.proj(y))


class _Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = _CausalSelfAttention(d_model, n_heads, dropout)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model),
                                 nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class NanoGPTStyle(nn.Module):
    """A nanoGPT-style decoder-only language model: ids (B, T) -> logits (B, T, V)."""

    def __init__(self, vocab_size: int, d_model: int, n_heads: int, n_layers: int, d_ff: int,
                 dropout: float, max_len: int):
        super().__init__()
        self.token_embed = nn.Embedding(vocab_size, d_model)
        self.position_embed = nn.Embedding(max_len, d_model)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(d_model, n_heads, d_ff, dropout)
                                    for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.token_embed.weight
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, src: Tensor | None, tgt: Tensor) -> Tensor:
        """src is ignored (None); tgt (B, T) ids -> logits (B, T, V)."""
        positions = torch.arange(tgt.size(1), device=tgt.device)
        x = self.dropout(self.token_embed(tgt) + self.position_embed(positions))  # (B, T, D)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))
