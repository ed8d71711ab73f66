"""Record attention: one forward pass -> an `AttentionCache` of every layer's weights.

    cache = record(model, src, tgt, src_tokens=tok, tgt_tokens=tok)   # tokenizers or strings
    cache[("decoder", 1, "cross")]            # (B, H, T, S) float32 CPU tensor
    cache.stacked("encoder", "self")          # (L, H, S, S) for example 0, padding trimmed
    cache.example(2)                          # batch of one, padding trimmed
    head_view(**cache.to_bertviz())           # bertviz's layout

Keys are (stack, layer, kind): ("encoder", i, "self"), ("decoder", i, "self") and, for an
encoder-decoder, ("decoder", i, "cross"). The weights are the model's own (softmax output before
dropout, masked positions exactly 0): `record` asks the forward pass for them, so no hooks are
involved and nothing is left attached to the model afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from .tokenizer import SPECIAL_TOKENS

Key = tuple[str, int, str]
STACKS = ("encoder", "decoder")
KINDS = ("self", "cross")
Tokens = list[list[str]]


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no gradients inside; every submodule's own train/eval flag restored after,
    even on an exception."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        for module, training in modes:
            module.training = training


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


class AttentionKeyError(KeyError):
    """A (stack, layer, kind) that is not in a cache or model; the message says what exists."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def _sides(key: Key) -> tuple[str, str]:
    """Which token side ("src" / "tgt") the queries and the keys of `key` come from."""
    stack, _, kind = key
    if stack == "encoder":
        return "src", "src"
    return ("tgt", "src") if kind == "cross" else ("tgt", "tgt")


def _key_order(key: Key) -> tuple[int, int, int]:
    stack, layer, kind = key
    return STACKS.index(stack), layer, KINDS.index(kind)


def _check_key(key: Any) -> Key:
    ok = (
        isinstance(key, tuple) and len(key) == 3 and key[0] in STACKS and key[2] in KINDS
        and isinstance(key[1], int) and not isinstance(key[1], bool)
        and not (key[0] == "encoder" and key[2] == "cross")
    )
    if not ok:
        raise AttentionKeyError(
            f"{key!r} is not an attention key; use (stack, layer, kind) with stack in {STACKS}, "
            f"layer an int and kind in {KINDS} (cross only for the decoder), "
            "e.g. ('decoder', 0, 'cross')"
        )
    return key


def default_labels(ids: Sequence[int]) -> list[str]:
    """Labels when no tokenizer is given: the shared specials for ids 0..3, else the id."""
    return [SPECIAL_TOKENS[i] if 0 <= i < len(SPECIAL_TOKENS) else str(i) for i in ids]


def token_lists(tokens: Any, ids: Tensor, keep: Tensor, side: str) -> Tokens:
    """One list of strings per example, one string per position of `ids` (B, T).

    `tokens` may be None (labels from the ids), a tokenizer (anything with
    `tokens_to_strings(ids)`), one list of strings (batch of one), or a list of such lists.
    A list may cover every position, or only the real (non-padding) ones; padding positions
    are then labelled "<pad>".
    """
    rows = ids.tolist()
    if tokens is None:
        return [default_labels(row) for row in rows]
    if hasattr(tokens, "tokens_to_strings"):
        return [list(tokens.tokens_to_strings(row)) for row in rows]
    if isinstance(tokens, str):
        raise TypeError(f"{side}_tokens must be a list of token strings, not one string "
                        f"({tokens[:30]!r}); e.g. tokenizer.tokens_to_strings(ids)")
    tokens = list(tokens)
    if tokens and all(isinstance(t, str) for t in tokens):
        tokens = [tokens]
    if len(tokens) != len(rows):
        raise ValueError(f"{side}_tokens holds {len(tokens)} examples but {side} has batch size "
                         f"{len(rows)}; give one list of token strings per example")
    out: Tokens = []
    for b, row in enumerate(tokens):
        row = [str(t) for t in row]
        real = keep[b].nonzero().flatten().tolist()
        if len(row) == len(rows[b]):
            out.append(row)
        elif len(row) == len(real):
            full = [SPECIAL_TOKENS[0]] * len(rows[b])
            for position, token in zip(real, row, strict=True):
                full[position] = token
            out.append(full)
        else:
            raise ValueError(
                f"{side}_tokens[{b}] has {len(row)} strings but {side}[{b}] has {len(rows[b])} "
                f"positions ({len(real)} of them not padding); give one string per position"
            )
    return out


class AttentionCache:
    """Attention weights of one forward pass, keyed by (stack, layer, kind), with token strings.

    attentions[key]: (B, H, Tq, Tk) CPU tensors (stored as float32, or float16 after `.half()`;
    reading through `cache[key]` always gives float32). src_tokens / tgt_tokens: per example a
    list with one string per position (padding included; accessors trim it). src_keep /
    tgt_keep: (B, S) / (B, T) bool, True on real (non-padding) positions. output_tokens
    (optional, generation): per example the token each decoder row produced.
    """

    def __init__(
        self,
        attentions: dict[Key, Tensor],
        src_tokens: Tokens | None,
        tgt_tokens: Tokens,
        src_keep: Tensor | None = None,
        tgt_keep: Tensor | None = None,
        output_tokens: Tokens | None = None,
    ):
        if not attentions:
            raise ValueError("an AttentionCache needs at least one attention tensor")
        keys = sorted((_check_key(k) for k in attentions), key=_key_order)
        self._attn = {k: attentions[k] for k in keys}
        first = self._attn[keys[0]]
        self.batch_size, self.n_heads = int(first.shape[0]), int(first.shape[1])
        self.src_tokens = src_tokens
        self.tgt_tokens = tgt_tokens
        lengths = {"tgt": len(tgt_tokens[0]) if tgt_tokens else 0,
                   "src": len(src_tokens[0]) if src_tokens else 0}
        self.src_keep = (_full_keep(src_keep, self.batch_size, lengths["src"])
                         if src_tokens else None)
        self.tgt_keep = _full_keep(tgt_keep, self.batch_size, lengths["tgt"])
        self.output_tokens = output_tokens
        for key, t in self._attn.items():
            q_side, k_side = _sides(key)
            if q_side == "src" or k_side == "src":
                if src_tokens is None:
                    raise ValueError(f"{key} needs src_tokens (this cache has none)")
            want = (self.batch_size, self.n_heads, lengths[q_side], lengths[k_side])
            if t.dim() != 4 or tuple(t.shape) != want:
                raise ValueError(f"attention {key} has shape {tuple(t.shape)}; expected "
                                 f"(B, H, Tq, Tk) = {want} from the batch and token lists")
        for side, toks in (("src", src_tokens), ("tgt", tgt_tokens)):
            if toks is not None and (len(toks) != self.batch_size
                                     or any(len(r) != lengths[side] for r in toks)):
                raise ValueError(f"{side}_tokens must hold {self.batch_size} lists of "
                                 f"{lengths[side]} strings; got lengths {[len(r) for r in toks]}")

    # ---- access ------------------------------------------------------------------------------
    def keys(self) -> list[Key]:
        """All keys, encoder first, then decoder layer by layer (self before cross)."""
        return list(self._attn)

    def __contains__(self, key: object) -> bool:
        return key in self._attn

    def __iter__(self) -> Iterator[Key]:
        return iter(self._attn)

    def __len__(self) -> int:
        return len(self._attn)

    def __getitem__(self, key: Key) -> Tensor:
        """(B, H, Tq, Tk) float32 weights of `key` (padding included)."""
        return self._stored(key).float()

    @property
    def attentions(self) -> dict[Key, Tensor]:
        """{key: (B, H, Tq, Tk) float32 tensor} for every key."""
        return {k: t.float() for k, t in self._attn.items()}

    @property
    def is_encoder_decoder(self) -> bool:
        return self.src_tokens is not None

    @property
    def dtype(self) -> torch.dtype:
        return next(iter(self._attn.values())).dtype

    @property
    def nbytes(self) -> int:
        """Bytes held by the attention tensors (token strings not counted)."""
        return sum(t.numel() * t.element_size() for t in self._attn.values())

    def n_layers(self, stack: str, kind: str = "self") -> int:
        """How many layers of `stack` have attention of `kind` in this cache (0 if none)."""
        return sum(1 for s, _, k in self._attn if s == stack and k == kind)

    def layer_keys(self, stack: str, kind: str = "self") -> list[Key]:
        """Keys of one (stack, kind), in layer order; a clear error when there are none."""
        keys = [k for k in self._attn if k[0] == stack and k[2] == kind]
        if not keys:
            self._missing((stack, 0, kind))
        return keys

    def query_tokens(self, key: Key, example: int = 0) -> list[str]:
        """Token strings of the query rows of `key`, padding trimmed."""
        return self._trimmed(_sides(self._checked(key))[0], self._check_example(example))

    def key_tokens(self, key: Key, example: int = 0) -> list[str]:
        """Token strings of the key columns of `key`, padding trimmed."""
        return self._trimmed(_sides(self._checked(key))[1], self._check_example(example))

    def weights(self, key: Key, example: int = 0, head: int | None = None) -> Tensor:
        """One example's weights, padding trimmed: (H, Tq, Tk), or (Tq, Tk) for one head."""
        b = self._check_example(example)
        q_side, k_side = _sides(self._checked(key))
        w = self[key][b]  # (H, Tq, Tk)
        w = w[:, self._real(q_side, b)][:, :, self._real(k_side, b)]
        if head is None:
            return w
        return w[self._check_head(head)]

    def stacked(self, stack: str, kind: str = "self", example: int = 0) -> Tensor:
        """(L, H, Tq, Tk) for one example: every layer of (stack, kind), padding trimmed."""
        return torch.stack([self.weights(k, example) for k in self.layer_keys(stack, kind)])

    def example(self, i: int) -> AttentionCache:
        """Example `i` alone (batch of one), padding trimmed."""
        b = self._check_example(i)
        real = {side: self._real(side, b) for side in ("src", "tgt") if self._has(side)}
        attn = {}
        for key, t in self._attn.items():
            q_side, k_side = _sides(key)
            attn[key] = t[b : b + 1][:, :, real[q_side]][:, :, :, real[k_side]]

        def pick(tokens: Tokens | None, side: str) -> Tokens | None:
            return None if tokens is None else [[tokens[b][j] for j in real[side].tolist()]]

        output = None
        if self.output_tokens is not None:
            output = [[self.output_tokens[b][j] for j in real["tgt"].tolist()]]
        return AttentionCache(attn, pick(self.src_tokens, "src"), pick(self.tgt_tokens, "tgt"),
                              output_tokens=output)

    def truncate_target(self, n: int) -> AttentionCache:
        """Only the first `n` decoder positions: decoder self-attention (n, n), cross-attention
        (n, S), target tokens cut to n. The encoder part is unchanged."""
        t_len = len(self.tgt_tokens[0])
        if not 1 <= n <= t_len:
            raise ValueError(f"n={n} is out of range; this cache has {t_len} target positions "
                             f"(1..{t_len})")
        attn = {}
        for key, t in self._attn.items():
            q_side, k_side = _sides(key)
            t = t[:, :, :n] if q_side == "tgt" else t
            attn[key] = t[:, :, :, :n] if k_side == "tgt" else t
        output = None if self.output_tokens is None else [r[:n] for r in self.output_tokens]
        return AttentionCache(attn, self.src_tokens, [r[:n] for r in self.tgt_tokens],
                              self.src_keep, self.tgt_keep[:, :n], output)

    def half(self) -> AttentionCache:
        """A copy storing float16 (half the memory; reads still return float32)."""
        return self.to(torch.float16)

    def to(self, dtype: torch.dtype) -> AttentionCache:
        """A copy storing the attention tensors as `dtype`."""
        return AttentionCache({k: t.to(dtype) for k, t in self._attn.items()}, self.src_tokens,
                              self.tgt_tokens, self.src_keep, self.tgt_keep, self.output_tokens)

    def to_bertviz(self, example: int = 0) -> dict[str, Any]:
        """Keyword arguments for `bertviz.head_view` (or model_view): tuples with one
        (1, H, T, T) tensor per layer, padding trimmed. Encoder-decoder: encoder_attention,
        decoder_attention, cross_attention, encoder_tokens, decoder_tokens; decoder-only:
        attention, tokens."""
        one = self.example(example)

        def layers(stack: str, kind: str) -> tuple[Tensor, ...]:
            return tuple(one[k] for k in one.layer_keys(stack, kind))

        tgt = one.tgt_tokens[0]
        if not one.is_encoder_decoder:
            return {"attention": layers("decoder", "self"), "tokens": tgt}
        return {
            "encoder_attention": layers("encoder", "self"),
            "decoder_attention": layers("decoder", "self"),
            "cross_attention": layers("decoder", "cross"),
            "encoder_tokens": one.src_tokens[0],
            "decoder_tokens": tgt,
        }

    def __repr__(self) -> str:
        enc, dec = self.n_layers("encoder"), self.n_layers("decoder")
        cross = self.n_layers("decoder", "cross")
        kind = "encoder-decoder" if self.is_encoder_decoder else "decoder-only"
        return (f"AttentionCache({kind}, batch {self.batch_size}, {self.n_heads} heads, "
                f"layers: encoder {enc}, decoder {dec}, cross {cross}; "
                f"{self.nbytes / 2**20:.2f} MiB {str(self.dtype).replace('torch.', '')})")

    # ---- helpers -----------------------------------------------------------------------------
    def _stored(self, key: Key) -> Tensor:
        return self._attn[self._checked(key)]

    def _checked(self, key: Any) -> Key:
        if key not in self._attn:
            _check_key(key)
            self._missing(key)
        return key

    def _missing(self, key: Key) -> None:
        held = ", ".join(str(k) for k in self._attn)
        hint = ""
        if key[2] == "cross" and not self.is_encoder_decoder:
            hint = " (a decoder-only model has no cross-attention)"
        elif key[0] == "encoder" and not self.is_encoder_decoder:
            hint = " (a decoder-only model has no encoder)"
        elif key[0] in STACKS and key[2] in KINDS:
            n = self.n_layers(key[0], key[2])
            hint = f" ({key[0]} {key[2]}-attention has layers 0..{n - 1})" if n else ""
        raise AttentionKeyError(f"no {key} in this cache; it holds: {held}{hint}")

    def _check_example(self, example: int) -> int:
        if not -self.batch_size <= example < self.batch_size:
            raise IndexError(f"example {example} is out of range; this cache holds "
                             f"{self.batch_size} examples (0..{self.batch_size - 1})")
        return example % self.batch_size

    def _check_head(self, head: int) -> int:
        if not 0 <= head < self.n_heads:
            raise IndexError(f"head {head} is out of range; this cache has {self.n_heads} heads "
                             f"(0..{self.n_heads - 1})")
        return head

    def _has(self, side: str) -> bool:
        return side == "tgt" or self.src_tokens is not None

    def _real(self, side: str, b: int) -> Tensor:
        keep = self.src_keep if side == "src" else self.tgt_keep
        return keep[b].nonzero().flatten()

    def _trimmed(self, side: str, b: int) -> list[str]:
        tokens = self.src_tokens if side == "src" else self.tgt_tokens
        return [tokens[b][j] for j in self._real(side, b).tolist()]


def _full_keep(keep: Tensor | None, batch: int, length: int) -> Tensor:
    if keep is None:
        return torch.ones(batch, length, dtype=torch.bool)
    keep = keep.detach().to("cpu", torch.bool)
    if tuple(keep.shape) != (batch, length):
        raise ValueError(f"keep mask has shape {tuple(keep.shape)}; expected {(batch, length)}")
    return keep


def attentions_of(output: Any) -> dict[Key, Tensor]:
    """{key: detached CPU float32 (B, H, Tq, Tk)} from a ModelOutput with attentions."""
    found: dict[Key, Tensor] = {}
    for stack, kind, tensors in (
        ("encoder", "self", output.encoder_attentions),
        ("decoder", "self", output.decoder_attentions),
        ("decoder", "cross", output.cross_attentions),
    ):
        for layer, t in enumerate(tensors or ()):
            if t is None:
                raise RuntimeError(f"the model returned no weights for {(stack, layer, kind)} "
                                   "although output_attentions=True")
            found[(stack, layer, kind)] = t.detach().to("cpu", torch.float32)
    return found


def record(
    model: nn.Module,
    src: Tensor | None,
    tgt: Tensor,
    src_tokens: Any = None,
    tgt_tokens: Any = None,
) -> AttentionCache:
    """Run `model(src, tgt, output_attentions=True)` in eval mode without gradients and keep
    every attention map. The model's train/eval mode is restored after, even on an exception.

    src: (B, S) ids, or None for a decoder-only model; tgt: (B, T) decoder input ids. Token
    strings: a tokenizer, a list of strings (batch of one) or one list per example (see
    `token_lists`); None labels positions by their ids. The model's `config.pad_id` marks
    padding, which the cache trims in its per-example views.
    """
    pad_id = getattr(getattr(model, "config", None), "pad_id", 0)
    device = model_device(model)
    with eval_mode(model):
        output = model(None if src is None else src.to(device), tgt.to(device),
                       output_attentions=True)
    attn = attentions_of(output)
    tgt_cpu = tgt.detach().cpu()
    tgt_keep = tgt_cpu != pad_id
    tgt_strings = token_lists(tgt_tokens, tgt_cpu, tgt_keep, "tgt")
    if src is None:
        if src_tokens is not None:
            raise ValueError("src_tokens were given but src is None (decoder-only input)")
        return AttentionCache(attn, None, tgt_strings, None, tgt_keep)
    src_cpu = src.detach().cpu()
    src_keep = src_cpu != pad_id
    src_strings = token_lists(src_tokens, src_cpu, src_keep, "src")
    return AttentionCache(attn, src_strings, tgt_strings, src_keep, tgt_keep)
