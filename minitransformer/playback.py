"""Attention over generated text, and "watch it decode" playback.

    cache = record_generation(model, src, src_tokenizer=task.src_tokenizer,
                              tgt_tokenizer=task.tgt_tokenizer, max_new_tokens=20)
    cache.output_tokens[0]          # what each decoder row produced
    playback = GenerationPlayback(cache, example=0)
    for t in range(1, len(playback) + 1):
        playback.step(t)            # the cache as it stood when token t was produced

Decoding runs first (greedy by default, with the key/value cache); then the finished sequence is
run once more with teacher forcing ([BOS] + generated tokens as the decoder input) and
attention asked for, so every generated token has its row. Because the decoder is causal, row i
of that one pass depends only on positions <= i, which are exactly the tokens it had when it
produced token i: the rows equal the attention of step-by-step decoding (up to float rounding;
tests/test_recorder.py checks it against decoding one token at a time). Playback step t is that
cache cut to its first t decoder positions.

Caveat for `generated=` tokens from elsewhere: a padding id inside them is masked as padding by
the teacher-forced pass (the decoders of `minitransformer.decoding` never generate PAD or BOS).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from .recorder import AttentionCache, Key, Tokens, record

DecodeFn = Callable[..., Any]


class GenerationCache(AttentionCache):
    """An AttentionCache of a generated sequence. Decoder row `prompt_length - 1 + i` (i >= 0)
    produced generated token i (`prompt_length` is 1, the BOS alone, unless a prompt was given);
    `generated_lengths[b]` counts example b's generated tokens, EOS included."""

    def __init__(self, base: AttentionCache, output_tokens: Tokens, prompt_length: int,
                 generated_lengths: list[int]):
        super().__init__(base._attn, base.src_tokens, base.tgt_tokens, base.src_keep,
                         base.tgt_keep, output_tokens)
        self.prompt_length = prompt_length
        self.generated_lengths = generated_lengths

    def generated_tokens(self, example: int = 0) -> list[str]:
        """The strings of example's generated tokens (EOS included when it was produced)."""
        b = self._check_example(example)
        first = self.prompt_length - 1
        return self.output_tokens[b][first : first + self.generated_lengths[b]]

    def playback(self, example: int = 0) -> GenerationPlayback:
        return GenerationPlayback(self, example)


def generated_lengths(tokens: Tensor, eos_id: int) -> list[int]:
    """Per row of (B, N) generated ids: the length up to and including the first EOS, or N."""
    lengths = []
    for row in tokens.tolist():
        lengths.append(row.index(eos_id) + 1 if eos_id in row else len(row))
    return lengths


def record_generation(
    model: nn.Module,
    src: Tensor | None = None,
    *,
    prompt: Tensor | None = None,
    src_tokenizer: Any = None,
    tgt_tokenizer: Any = None,
    max_new_tokens: int = 32,
    generated: Tensor | None = None,
    decode: DecodeFn | None = None,
    bos_id: int = 1,
    eos_id: int = 2,
    **decode_options: Any,
) -> GenerationCache:
    """Decode, then record attention over the whole generated text in one teacher-forced pass.

    Encoder-decoder: `src` (B, S) ids (the decoder starts from BOS, or from `prompt`).
    Decoder-only: `prompt` (B, P) ids to continue, starting with BOS, all of the same length
    (no padding). `generated` (B, N): tokens already decoded
    (e.g. by beam search), padded after EOS; when None, `decode(model, src, prompt=...,
    max_new_tokens=..., **decode_options).tokens` makes them (default: `greedy_decode`).
    Tokenizers label the axes (None: ids). Returns a GenerationCache (an AttentionCache).
    """
    pad_id = getattr(getattr(model, "config", None), "pad_id", 0)
    encoder_decoder = bool(getattr(model, "is_encoder_decoder", src is not None))
    if encoder_decoder and src is None:
        raise ValueError("this encoder-decoder model needs src (B, S) ids to translate")
    if not encoder_decoder and src is not None:
        raise ValueError("a decoder-only model takes no src; pass prompt=(B, P) ids")
    if prompt is None:
        if not encoder_decoder:
            raise ValueError("record_generation needs prompt=(B, P) ids (starting with BOS) "
                             "for a decoder-only model")
        prefix = torch.full((src.size(0), 1), bos_id, dtype=torch.long)
    else:
        if not isinstance(prompt, Tensor) or prompt.dim() != 2 or prompt.size(1) == 0:
            raise ValueError(f"prompt must be a (B, P) tensor of ids with P >= 1, got "
                             f"{getattr(prompt, 'shape', type(prompt).__name__)}")
        if bool((prompt == pad_id).any()):
            raise ValueError("prompt holds padding; give prompts of equal length, or record "
                             "one example at a time")
        prefix = prompt.detach().cpu().long()
    batch = prefix.size(0)
    if generated is None:
        if decode is None:
            from .decoding import greedy_decode

            decode = greedy_decode
        result = decode(model, src, prompt=prompt, max_new_tokens=max_new_tokens,
                        **decode_options)
        generated = result.tokens  # (B, N): new tokens only, EOS included, pad after
    generated = generated.detach().cpu().long()
    if generated.dim() != 2 or generated.size(0) != batch or generated.size(1) == 0:
        raise ValueError(f"generated must have shape (B={batch}, N >= 1), got "
                         f"{tuple(generated.shape)}")
    lengths = generated_lengths(generated, eos_id)

    p = prefix.size(1)
    width = p + max(lengths) - 1
    decoder_in = torch.full((batch, width), pad_id, dtype=torch.long)  # (B, P + N - 1)
    decoder_in[:, :p] = prefix
    produced = torch.full((batch, width), pad_id, dtype=torch.long)  # what row i produced
    produced[:, : p - 1] = prefix[:, 1:]
    for b, n in enumerate(lengths):
        decoder_in[b, p : p + n - 1] = generated[b, : n - 1]
        produced[b, p - 1 : p - 1 + n] = generated[b, :n]

    base = record(model, src, decoder_in, src_tokenizer if encoder_decoder else None,
                  tgt_tokenizer)
    output = _labels(tgt_tokenizer, produced)
    return GenerationCache(base, output, prompt_length=p, generated_lengths=lengths)


def _labels(tokenizer: Any, ids: Tensor) -> Tokens:
    from .recorder import default_labels

    rows = ids.tolist()
    if tokenizer is None:
        return [default_labels(row) for row in rows]
    return [list(tokenizer.tokens_to_strings(row)) for row in rows]


class GenerationPlayback:
    """Step through one example's generation: `step(t)` is the attention cache as it stood when
    generated token t (1-based) was produced, i.e. the decoder's first `prompt_length - 1 + t`
    positions. Derived from the single teacher-forced pass of `record_generation`; by causality
    these rows are exactly those computed during generation."""

    def __init__(self, cache: GenerationCache, example: int = 0):
        if not isinstance(cache, GenerationCache):
            raise TypeError("GenerationPlayback needs the cache from record_generation(), got "
                            f"{type(cache).__name__}")
        b = cache._check_example(example)
        self.cache = cache.example(b)  # batch of one, padding trimmed
        self.offset = cache.prompt_length - 1
        self.n_steps = cache.generated_lengths[b]
        self.tokens = cache.generated_tokens(b)

    def __len__(self) -> int:
        return self.n_steps

    def _check_step(self, t: int) -> int:
        if not 1 <= t <= self.n_steps:
            raise IndexError(f"step {t} is out of range; this generation has {self.n_steps} "
                             f"steps (1..{self.n_steps})")
        return t

    def step(self, t: int) -> AttentionCache:
        """The cache with the decoder's first prompt_length - 1 + t positions (t = 1..len)."""
        return self.cache.truncate_target(self.offset + self._check_step(t))

    def token(self, t: int) -> str:
        """The token produced at step t."""
        return self.tokens[self._check_step(t) - 1]

    def row(self, key: Key, t: int, head: int | None = None) -> Tensor:
        """The attention of the query that produced token t: (H, Tk) or (Tk,) for one head;
        for decoder self-attention only the keys it could see (Tk = prompt_length - 1 + t)."""
        weights = self.step(t).weights(key, 0, head)  # (H, Tq, Tk) or (Tq, Tk)
        return weights[..., -1, :]

    def __iter__(self) -> Iterator[tuple[int, str, AttentionCache]]:
        """(t, token, cache at step t) for t = 1..len."""
        for t in range(1, self.n_steps + 1):
            yield t, self.token(t), self.step(t)

    def __repr__(self) -> str:
        return f"GenerationPlayback({self.n_steps} steps: {' '.join(self.tokens)})"
