"""Measure what attention heads do: per-head statistics, alignment, ablation, rollout.

    stats = head_stats(cache)                       # {(stack, kind): {"entropy": (L, H), ...}}
    acc = alignment_accuracy(cache, gold)           # (L, H) share of rows hitting the gold source
    layer, head, best = best_alignment_head(cache, gold)
    with ablate_heads(model, {("decoder", 1, "cross"): [0, 2]}):
        logits = model(src, tgt).logits             # those heads' outputs zeroed
    importance = head_importance(model, batch)      # {(stack, kind): (L, H) loss increase}
    attention_rollout(cache, "encoder")             # (T, T), Abnar & Zuidema 2020

Statistics average over real (non-padding) query rows of every example, and only real keys
carry weight (padding columns are exactly 0 in the model's weights).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .recorder import (
    STACKS,
    AttentionCache,
    AttentionKeyError,
    Key,
    _check_key,
    _sides,
    eval_mode,
    model_device,
)

SPECIALS = ("<bos>", "<eos>", "<pad>")
StatKey = tuple[str, str]


# ---- per-head statistics -----------------------------------------------------------------------
def entropy(weights: Tensor) -> Tensor:
    """Entropy in nats of each attention row: (..., Tk) -> (...). Zero weights (masked keys)
    contribute nothing, so a row over n real keys is at most log(n)."""
    w = weights.float()
    return -(w * torch.where(w > 0, w.log(), torch.zeros_like(w))).sum(-1)


def mean_distance(weights: Tensor) -> Tensor:
    """Expected |i - j| of each row, sum_j w_ij |i - j|: (..., Tq, Tk) -> (..., Tq)."""
    n_q, n_k = weights.shape[-2:]
    i = torch.arange(n_q, dtype=torch.float32)[:, None]
    j = torch.arange(n_k, dtype=torch.float32)[None, :]
    return (weights.float() * (i - j).abs()).sum(-1)


def _row_mean(per_row: Tensor, rows: Tensor) -> Tensor:
    """Mean over examples and real query rows: per_row (B, H, Tq), rows (B, Tq) bool -> (H,)."""
    rows = rows.to(per_row.dtype)[:, None, :]  # (B, 1, Tq)
    return (per_row * rows).sum((0, 2)) / rows.sum().clamp(min=1)


def _special_columns(tokens: list[list[str]], specials: Sequence[str]) -> Tensor:
    """(B, Tk) bool: keys whose string is one of `specials`."""
    wanted = set(specials)
    return torch.tensor([[t in wanted for t in row] for row in tokens], dtype=torch.bool)


def head_stats(
    cache: AttentionCache, special_tokens: Sequence[str] = SPECIALS
) -> dict[StatKey, dict[str, Tensor]]:
    """Per-head statistics for every (stack, kind) in the cache, each an (L, H) tensor:

    - "entropy": mean row entropy in nats (uniform over n keys: log n; one-hot: 0);
    - "distance": mean of sum_j w_ij |i - j| (positions). For cross-attention, i is the target
      position and j the source position: small when a head follows a monotonic alignment of
      similar lengths, so read it as "distance from the diagonal", not as a span;
    - "special": share of attention on keys whose string is in `special_tokens`
      (default <bos>, <eos>, <pad>: the usual attention sinks);
    - "max_weight": mean of each row's largest weight (1.0 = hard attention).
    """
    out: dict[StatKey, dict[str, Tensor]] = {}
    for key in cache.keys():
        stack, _, kind = key
        q_side, k_side = _sides(key)
        w = cache[key]  # (B, H, Tq, Tk)
        rows = cache.src_keep if q_side == "src" else cache.tgt_keep  # (B, Tq)
        key_tokens = cache.src_tokens if k_side == "src" else cache.tgt_tokens
        special = _special_columns(key_tokens, special_tokens)  # (B, Tk)
        values = {
            "entropy": _row_mean(entropy(w), rows),
            "distance": _row_mean(mean_distance(w), rows),
            "special": _row_mean((w * special[:, None, None, :]).sum(-1), rows),
            "max_weight": _row_mean(w.amax(-1), rows),
        }
        group = out.setdefault((stack, kind), {name: [] for name in values})
        for name, value in values.items():
            group[name].append(value)
    return {k: {n: torch.stack(v) for n, v in group.items()} for k, group in out.items()}


# ---- alignment -----------------------------------------------------------------------------------
def gold_tensor(gold: Tensor | Sequence[Tensor], shape: tuple[int, int, int]) -> Tensor:
    """Gold alignments as a (B, T, S) bool tensor of `shape`, zero-padded: accepts (T', S') for a
    batch of one, (B, T', S'), or a list of per-example (T'_b, S'_b) matrices (e.g.
    `task.gold_alignment_matrix(example)`), each no larger than (T, S)."""
    b, n_t, n_s = shape
    if isinstance(gold, Tensor):
        gold = [gold] if gold.dim() == 2 else list(gold)
    gold = list(gold)
    if len(gold) != b:
        raise ValueError(f"gold holds {len(gold)} examples but the attention has batch size {b}")
    out = torch.zeros(shape, dtype=torch.bool)
    for i, g in enumerate(gold):
        g = torch.as_tensor(g).detach().cpu()
        if g.dim() != 2 or g.size(0) > n_t or g.size(1) > n_s:
            raise ValueError(f"gold[{i}] has shape {tuple(g.shape)}; expected a (T, S) matrix "
                             f"no larger than the attention's (T={n_t}, S={n_s})")
        out[i, : g.size(0), : g.size(1)] = g != 0
    return out


def _cross_layers(attn: AttentionCache | Tensor | Sequence[Tensor]) -> tuple[Tensor, bool]:
    """(L, B, H, T, S) float from a cache (its cross-attention), a (B, H, T, S) tensor (L=1,
    flag False) or a sequence / (L, B, H, T, S) tensor of layers (flag True)."""
    if isinstance(attn, AttentionCache):
        keys = attn.layer_keys("decoder", "cross")
        return torch.stack([attn[k] for k in keys]), True
    if isinstance(attn, Tensor):
        if attn.dim() == 4:
            return attn.float()[None], False
        if attn.dim() == 5:
            return attn.float(), True
        raise ValueError(f"cross-attention must be (B, H, T, S) or (L, B, H, T, S), got "
                         f"{tuple(attn.shape)}")
    return torch.stack([torch.as_tensor(a).float() for a in attn]), True


def alignment_accuracy(attn: AttentionCache | Tensor | Sequence[Tensor],
                       gold: Tensor | Sequence[Tensor]) -> Tensor:
    """Share of target positions whose most-attended source position is a gold one.

    attn: a cache (uses every cross-attention layer -> (L, H)), a (B, H, T, S) tensor (-> (H,))
    or a sequence of such per layer (-> (L, H)). gold: 0/1, see `gold_tensor`; rows without any
    gold source (padding, EOS, the last row) are not counted. Ties in argmax go to the first.
    """
    layers, several = _cross_layers(attn)  # (L, B, H, T, S)
    _, b, _, n_t, n_s = layers.shape
    g = gold_tensor(gold, (b, n_t, n_s))  # (B, T, S)
    has_gold = g.any(-1)  # (B, T)
    if not bool(has_gold.any()):
        raise ValueError("gold has no aligned target position; nothing to score")
    pick = layers.argmax(-1, keepdim=True)  # (L, B, H, T, 1)
    hits = g[None, :, None].expand(layers.shape)  # (L, B, H, T, S)
    correct = hits.gather(-1, pick).squeeze(-1)  # (L, B, H, T)
    counted = has_gold[None, :, None, :]  # (1, B, 1, T)
    acc = (correct & counted).sum((1, 3)).float() / has_gold.sum().float()  # (L, H)
    return acc if several else acc[0]


def best_alignment_head(attn: AttentionCache | Sequence[Tensor],
                        gold: Tensor | Sequence[Tensor]) -> tuple[int, int, float]:
    """(layer, head, accuracy) of the cross-attention head that best matches `gold`."""
    acc = alignment_accuracy(attn, gold)
    acc = acc if acc.dim() == 2 else acc[None]
    flat = int(acc.argmax())
    layer, head = divmod(flat, acc.size(1))
    return layer, head, float(acc[layer, head])


# ---- ablation -----------------------------------------------------------------------------------
def attention_modules(model: nn.Module) -> dict[Key, nn.Module]:
    """{(stack, layer, kind): MultiHeadAttention} of a Transformer, in layer order."""
    found: dict[Key, nn.Module] = {}
    for i, layer in enumerate(getattr(model, "encoder_layers", ())):
        found[("encoder", i, "self")] = layer.self_attn
    for i, layer in enumerate(getattr(model, "decoder_layers", ())):
        found[("decoder", i, "self")] = layer.self_attn
        if getattr(layer, "src_attn", None) is not None:
            found[("decoder", i, "cross")] = layer.src_attn
    if not found:
        raise TypeError(f"{type(model).__name__} has no encoder_layers / decoder_layers with "
                        "attention; ablation needs a minitransformer Transformer")
    return found


def _checked_heads(modules: dict[Key, nn.Module], heads: Mapping[Key, Sequence[int]]
                   ) -> dict[Key, list[int]]:
    checked: dict[Key, list[int]] = {}
    for key, chosen in heads.items():
        key = _check_key(key) if not isinstance(key, list) else _check_key(tuple(key))
        if key not in modules:
            held = ", ".join(str(k) for k in modules)
            hint = (" (a decoder-only model has no cross-attention)"
                    if key[2] == "cross" and not any(k[2] == "cross" for k in modules) else "")
            raise AttentionKeyError(f"no {key} in this model; it has: {held}{hint}")
        n_heads = modules[key].n_heads
        chosen = [chosen] if isinstance(chosen, int) else list(chosen)
        bad = [h for h in chosen if isinstance(h, bool) or not isinstance(h, int)
               or not 0 <= h < n_heads]
        if bad:
            raise IndexError(f"head(s) {bad} of {key} are out of range; it has {n_heads} heads "
                             f"(0..{n_heads - 1})")
        checked[key] = sorted(set(chosen))
    return checked


@contextmanager
def ablate_heads(model: nn.Module, heads: Mapping[Key, Sequence[int]]) -> Iterator[nn.Module]:
    """Zero the outputs of chosen heads (before each attention's out_proj) inside the block.

    heads: {(stack, layer, kind): [head, ...]}. A forward pre-hook on `out_proj` multiplies the
    heads' slices of its input by 0; both attention paths (fused and explicit) and cached
    decoding go through it. The hooks are removed on exit, even on an exception, so the model
    is exactly as before. Returned attention weights are not changed (they are computed before
    the heads are combined); what changes is what those heads pass on.
    """
    modules = attention_modules(model)
    checked = _checked_heads(modules, heads)
    handles = []
    try:
        for key, chosen in checked.items():
            if not chosen:
                continue
            module = modules[key]
            mask = torch.ones(module.n_heads, 1)
            mask[chosen] = 0.0  # (H, 1)
            handles.append(module.out_proj.register_forward_pre_hook(_head_mask_hook(mask)))
        yield model
    finally:
        for handle in handles:
            handle.remove()


def _head_mask_hook(mask: Tensor):
    def hook(_module: nn.Module, args: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        x = args[0]  # (B, T, D), heads concatenated along D
        n_heads = mask.size(0)
        shaped = x.unflatten(-1, (n_heads, x.size(-1) // n_heads))  # (B, T, H, Dh)
        return ((shaped * mask.to(x.device, x.dtype)).flatten(-2), *args[1:])

    return hook


def _batch_parts(batch: Any) -> tuple[Tensor | None, Tensor, Tensor]:
    if hasattr(batch, "tgt_in") and hasattr(batch, "tgt_out"):
        return batch.src, batch.tgt_in, batch.tgt_out
    if isinstance(batch, Sequence) and len(batch) == 3:
        return batch[0], batch[1], batch[2]
    raise TypeError("expected a Batch or a tuple (src or None, tgt_in, tgt_out), got "
                    f"{type(batch).__name__}")


def batch_loss(model: nn.Module, batch: Any, pad_id: int | None = None) -> float:
    """Mean cross-entropy per non-padding target token (no label smoothing), eval mode."""
    src, tgt_in, tgt_out = _batch_parts(batch)
    pad = pad_id if pad_id is not None else getattr(model.config, "pad_id", 0)
    device = model_device(model)
    with eval_mode(model):
        logits = model(None if src is None else src.to(device), tgt_in.to(device)).logits
        loss = F.cross_entropy(logits.flatten(0, 1).float(), tgt_out.to(device).flatten(),
                               ignore_index=pad)
    return float(loss)


def head_importance(model: nn.Module, batch: Any, pad_id: int | None = None
                    ) -> dict[StatKey, Tensor]:
    """Loss increase when each head alone is ablated, on `batch` (eval mode, no grad):
    {(stack, kind): (L, H)}. batch: a Batch or (src or None, tgt_in, tgt_out). Costs one
    forward pass per head."""
    base = batch_loss(model, batch, pad_id)
    out: dict[StatKey, list[list[float]]] = {}
    for key, module in attention_modules(model).items():
        row = []
        for head in range(module.n_heads):
            with ablate_heads(model, {key: [head]}):
                row.append(batch_loss(model, batch, pad_id) - base)
        out.setdefault((key[0], key[2]), []).append(row)
    return {k: torch.tensor(v) for k, v in out.items()}


# ---- rollout ------------------------------------------------------------------------------------
def attention_rollout(cache: AttentionCache, stack: str = "encoder", example: int = 0,
                      residual: float = 0.5) -> Tensor:
    """Attention rollout (Abnar & Zuidema 2020) through a self-attention stack: (T, T).

    Per layer: average the heads, mix in the residual connection (residual * I +
    (1 - residual) * A, 0.5 in the paper), renormalise rows; multiply from the first layer up.
    Row i says how much the top layer's position i draws on each input position. For the decoder
    of an encoder-decoder this follows self-attention only (cross-attention is left out).
    """
    if stack not in STACKS:
        raise ValueError(f"stack must be one of {STACKS}, got {stack!r}")
    if not 0.0 <= residual <= 1.0:
        raise ValueError(f"residual must be in [0, 1], got {residual}")
    layers = cache.stacked(stack, "self", example)  # (L, H, T, T)
    n = layers.size(-1)
    eye = torch.eye(n)
    rollout = eye
    for attn in layers.mean(1):  # (T, T), first layer first
        mixed = residual * eye + (1.0 - residual) * attn
        mixed = mixed / mixed.sum(-1, keepdim=True)
        rollout = mixed @ rollout
    return rollout


def uniform_entropy(n_keys: int) -> float:
    """log(n): the entropy of attention spread evenly over n keys (the most a row can have)."""
    return math.log(n_keys)
