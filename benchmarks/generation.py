"""Generation speed: greedy, sampling and beam search, with and without the key/value cache.

A small untrained model generates exactly 64 new tokens per row (EOS is switched off with
eos_id=-1, so every contender does the same number of steps). Tokens/s counts generated tokens
of the returned rows (beam search: B rows, each from beam_size running hypotheses).
"""

from __future__ import annotations

import sys

import torch

import minitransformer as mt
from benchmarks.common import Row, fmt_rate, fmt_ratio, interleaved, main_for, paired_ratio, rates

SECTION = "generation"
NEW_TOKENS = 64
TARGET_SPEEDUP = 3.0
NO_EOS = -1  # an id the model never produces: decoding runs to max_new_tokens


def small_config(arch: str, quick: bool) -> mt.ModelConfig:
    if quick:
        return mt.ModelConfig(arch=arch, tgt_vocab_size=50, d_model=32, n_heads=2,
                              n_encoder_layers=1, n_decoder_layers=1, d_ff=64, max_len=16)
    return mt.ModelConfig(arch=arch, tgt_vocab_size=1000, d_model=128, n_heads=4,
                          n_encoder_layers=2, n_decoder_layers=2, d_ff=512, max_len=128)


def _model(arch: str, quick: bool) -> mt.Transformer:
    mt.seed_everything(0)
    return mt.build_model(small_config(arch, quick)).eval()


def compare(label: str, decode, new_tokens: int, rows_out: int, repeats: int,
            target: float | None) -> list[Row]:
    """decode(use_cache) -> DecodeResult; cached vs uncached, interleaved."""
    for use_cache in (True, False):  # both must really generate new_tokens per row
        lengths = decode(use_cache).lengths
        if not bool((lengths == new_tokens).all()):
            raise RuntimeError(f"{label}: expected {new_tokens} tokens per row, got "
                               f"{lengths.tolist()}")
    seconds = interleaved({"cache": lambda: decode(True), "no cache": lambda: decode(False)},
                          repeats, warmup=0)
    work = rows_out * new_tokens
    speedup = paired_ratio(seconds["no cache"], seconds["cache"])
    return [
        Row(SECTION, f"{label}, KV cache", fmt_rate(rates(seconds["cache"], work))),
        Row(SECTION, f"{label}, no cache", fmt_rate(rates(seconds["no cache"], work))),
        Row(SECTION, f"{label}: cache speed-up", "", fmt_ratio(speedup),
            f">= {target:.1f}x" if target else "",
            None if target is None else speedup.median >= target),
    ]


def run(quick: bool = False, context: dict | None = None) -> list[Row]:
    new, repeats = (8, 1) if quick else (NEW_TOKENS, 7)
    encdec, deconly = _model("encoder_decoder", quick), _model("decoder_only", quick)
    vocab = encdec.config.tgt_vocab_size
    rows: list[Row] = []
    for batch in (8, 1):
        src = torch.randint(4, vocab, (batch, 8 if quick else 32),
                            generator=torch.Generator().manual_seed(batch))
        rows += compare(f"enc-dec greedy, B{batch}, {new} tokens",
                        lambda c, s=src: mt.greedy_decode(encdec, s, max_new_tokens=new,
                                                          eos_id=NO_EOS, use_cache=c),
                        new, batch, repeats, TARGET_SPEEDUP)
    src = torch.randint(4, vocab, (8, 8 if quick else 32),
                        generator=torch.Generator().manual_seed(0))
    rows += compare(f"enc-dec sampling top_p=0.9, B8, {new} tokens",
                    lambda c: mt.sample(encdec, src, top_p=0.9, max_new_tokens=new,
                                        eos_id=NO_EOS, use_cache=c,
                                        generator=torch.Generator().manual_seed(0)),
                    new, 8, repeats, None)
    rows += compare(f"enc-dec beam search (beam 4), B8, {new} tokens",
                    lambda c: mt.beam_search(encdec, src, beam_size=4, max_new_tokens=new,
                                             eos_id=NO_EOS, use_cache=c),
                    new, 8, repeats, None)
    rows += compare(f"dec-only greedy, B8, {new} tokens",
                    lambda c: mt.greedy_decode(deconly, max_new_tokens=new, batch_size=8,
                                               eos_id=NO_EOS, use_cache=c),
                    new, 8, repeats, TARGET_SPEEDUP)
    return rows


def main(argv: list[str] | None = None) -> None:
    main_for(run, "Decoding speed with and without the key/value cache", argv)


if __name__ == "__main__":
    sys.exit(main())
