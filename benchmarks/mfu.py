"""Model FLOP utilisation (MFU) of our training step, against this machine's own matmul peak
measured in the same run.

FLOPs of one training step (forward + backward = 3 x forward; a matmul of an (n, k) by a (k, m)
matrix is 2nkm FLOPs, so forward + backward is 6 x parameters x tokens for the weight matmuls):

    6 x [S x L_enc x (4 d^2 + 2 d d_ff)                 encoder: QKV + out, FFN  (per src token)
         + T x L_dec x (4 d^2 + 2 d^2 + 2 d d_ff)       decoder: self-attn, cross Q + out, FFN
         + S x L_dec x 2 d^2                            cross-attention K, V of the memory
         + T x d x V]                                   output projection        (x batch B)
    + 12 x d x [L_enc x S^2 + L_dec x T^2 + L_dec x T x S]   attention scores and weighted sums
                                                              (QK^T and AV, 2 x 2 x Tq x Tk x d
                                                              forward, x3 with backward; causal
                                                              halves are counted in full)

(decoder-only: S = 0, no cross terms). Embedding look-ups, norms, softmax and the optimizer are
not counted (the usual convention, e.g. PaLM's MFU). MFU = FLOPs x steps/s / peak, where the
peak is the best of several large fp32 matmuls (2048^3) on all cores; a bf16 peak is reported too.
"""

from __future__ import annotations

import sys
import time

import torch

from benchmarks import throughput
from benchmarks.common import Row, Stat, interleaved, main_for, rates
from benchmarks.throughput import DECONLY, ENCDEC, Spec

SECTION = "mfu"


def flops_per_step(spec: Spec) -> float:
    """Training FLOPs of one step of our model at `spec` (formula in the module docstring)."""
    d, f, v = spec.d_model, spec.d_ff, spec.vocab
    s, t = spec.src_len, spec.tgt_len
    l_enc = spec.n_encoder_layers if spec.arch == "encoder_decoder" else 0
    l_dec = spec.n_decoder_layers
    cross = spec.arch == "encoder_decoder"
    matmul_param_tokens = (s * l_enc * (4 * d * d + 2 * d * f)
                           + t * l_dec * (4 * d * d + (2 * d * d if cross else 0) + 2 * d * f)
                           + (s * l_dec * 2 * d * d if cross else 0)
                           + t * d * v)
    attention = 12 * d * (l_enc * s * s + l_dec * t * t + (l_dec * t * s if cross else 0))
    return spec.batch * (6 * matmul_param_tokens + attention)


def matmul_peak(n: int, dtype: torch.dtype, repeats: int) -> float:
    """Best FLOP/s of an (n, n) @ (n, n) matmul over `repeats` timed runs (after one warm-up)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(dtype)
    b = torch.randn(n, n, generator=g).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best


def _ours_tokens_per_s(spec: Spec, context: dict, plan: throughput.Plan) -> Stat:
    """From the throughput section of this run if it ran, else measured here (ours alone)."""
    if spec.name in context and context[spec.name]["spec"] == spec:
        return context[spec.name]["ours_tokens_per_s"]
    model = throughput.build_ours(spec)
    loop = throughput.TrainLoop(model, throughput.ours_forward(model),
                                throughput.make_batches(spec))
    loop.run(plan.warmup_steps)
    seconds = interleaved({"ours": lambda: loop.run(plan.steps)}, plan.repeats, warmup=0)
    return rates(seconds["ours"], spec.tokens_per_step * plan.steps)


def run(quick: bool = False, context: dict | None = None) -> list[Row]:
    context = {} if context is None else context
    n, repeats = (256, 1) if quick else (2048, 5)
    plan = throughput.QUICK if quick else throughput.SHORT
    peak32 = matmul_peak(n, torch.float32, repeats)
    peak16 = matmul_peak(n, torch.bfloat16, repeats)
    rows = [
        Row(SECTION, f"measured matmul peak fp32 ({n}^3, best of {repeats})",
            f"{peak32 / 1e9:,.1f} GFLOP/s"),
        Row(SECTION, f"measured matmul peak bf16 ({n}^3, best of {repeats})",
            f"{peak16 / 1e9:,.1f} GFLOP/s", f"{peak16 / peak32:.2f}x",
            note="vs the fp32 peak"),
    ]
    for spec, target in ((ENCDEC, 0.50), (DECONLY, 0.40)):
        spec = throughput.quick_spec(spec) if quick else spec
        tokens_per_s = _ours_tokens_per_s(spec, context, plan)
        flops = flops_per_step(spec)
        achieved = tokens_per_s.scaled(flops / spec.tokens_per_step)  # FLOP/s
        mfu = achieved.scaled(1 / peak32)
        rows.append(Row(
            SECTION, f"{spec.name} ours fp32 train step MFU", f"{mfu.median:.1%} "
            f"[{mfu.low:.1%}-{mfu.high:.1%}]", target=f">= {target:.0%}",
            passed=mfu.median >= target,
            note=f"{flops / 1e9:.3g} GFLOP/step, {achieved.median / 1e9:.3g} GFLOP/s achieved"))
    return rows


def main(argv: list[str] | None = None) -> None:
    main_for(run, "MFU of our training step against this machine's measured matmul peak", argv)


if __name__ == "__main__":
    sys.exit(main())
