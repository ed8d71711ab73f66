"""Which number format to train in, per device and model size.

`TrainConfig.precision="auto"` resolves here:

* CUDA: bf16 autocast where the GPU supports bf16 (Ampere and later), else fp32.
* CPU: bf16 autocast when the CPU multiplies bf16 natively (AMX or AVX512-BF16) *and* the model
  is wide enough (d_model >= 128) for the faster matmuls to outweigh the casts; else fp32.
  Measured on a 2-core AMD EPYC with AVX512-BF16 (training steps, bf16 vs fp32,
  benchmarks/RESULTS.md): d_model 64 0.85-0.97x (slower), d_model 128 1.26-1.52x,
  d_model 256 1.67-1.84x. Without those instructions bf16 is emulated and slower.
* MPS and anything else: fp32.

"fp32" and "bf16" force a format on any device. The attention kernel that suits a format is
chosen in `attention.py` (on a CPU, bf16 uses the explicit path).
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Sequence
from pathlib import Path

import torch

from .config import PRECISIONS

CPU_BF16_MIN_D_MODEL = 128  # below this, bf16 autocast measured slower than fp32 on a CPU

# How far a bf16 loss curve may stray from fp32's from the same seed (`loss_curve_gap`, nats;
# checked by tests/test_precision.py on the classroom tasks). Measured with ModelConfig.small
# and TrainConfig.classroom(), seeds 0-2: reverse (300 steps) mean |gap| 0.037-0.093, end gap
# +0.007..+0.088; numbers_en_de and grammar_lm (150 steps) mean |gap| <= 0.022 and 0.004. For
# scale, fp32 alone with another seed: reverse mean |gap| 0.047-0.073, end losses 0.46-0.58.
BF16_TOLERANCE = {"mean_abs": 0.15, "end": 0.15}


@functools.cache
def cpu_bf16_instructions() -> str | None:
    """"AMX" or "AVX512-BF16" when this x86 CPU multiplies bf16 natively, else None."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    try:
        return bf16_instructions_in(Path("/proc/cpuinfo").read_text(errors="replace"))
    except OSError:  # not Linux: no cheap way to ask, so stay with fp32
        return None


def bf16_instructions_in(cpuinfo: str) -> str | None:
    """The native bf16 instructions named on the first "flags" line of /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            if "amx_bf16" in flags:
                return "AMX"
            return "AVX512-BF16" if "avx512_bf16" in flags else None
    return None


def choose_precision(precision: str, device: torch.device,
                     d_model: int | None = None) -> tuple[torch.dtype | None, str]:
    """(autocast dtype or None for fp32, a one-line reason a student can read)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not supported; choose one of "
                         + ", ".join(repr(p) for p in PRECISIONS))
    if precision == "fp32":
        return None, "fp32 (asked for)"
    if precision == "bf16":
        return torch.bfloat16, "bf16 autocast (asked for)"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16, "bf16 autocast (auto: this GPU supports bf16)"
        return None, "fp32 (auto: this GPU has no bf16)"
    if device.type != "cpu":
        return None, f"fp32 (auto: bf16 autocast is not used on {device.type})"
    instructions = cpu_bf16_instructions()
    if instructions is None:
        return None, "fp32 (auto: this CPU has no native bf16 matmul, AMX or AVX512-BF16)"
    if d_model is None or d_model < CPU_BF16_MIN_D_MODEL:
        return None, (f"fp32 (auto: at d_model {d_model} < {CPU_BF16_MIN_D_MODEL} bf16 is "
                      f"slower on a CPU, even with {instructions})")
    return torch.bfloat16, f"bf16 autocast (auto: CPU has {instructions}, d_model {d_model})"


def loss_curve_gap(reference: Sequence[float], other: Sequence[float],
                   window: int = 25) -> dict[str, float]:
    """How far `other`'s per-step losses stray from `reference`'s (same steps, e.g. bf16 vs
    fp32 from one seed). Both curves are smoothed by a trailing mean over `window` steps.

    Returns mean_abs and max_abs, the mean and largest |gap| in nats over all steps, and
    end, other minus reference in the mean loss of the last 2 x `window` steps (nats)."""
    if len(reference) != len(other) or not reference:
        raise ValueError(f"loss_curve_gap needs two equally long, non-empty curves, got "
                         f"{len(reference)} and {len(other)} steps")
    a, b = _trailing_mean(reference, window), _trailing_mean(other, window)
    gaps = [abs(x - y) for x, y in zip(a, b, strict=True)]
    tail = min(len(reference), 2 * window)
    end = (sum(other[-tail:]) - sum(reference[-tail:])) / tail
    return {"mean_abs": sum(gaps) / len(gaps), "max_abs": max(gaps), "end": end}


def within_bf16_tolerance(gap: dict[str, float]) -> bool:
    """Does a `loss_curve_gap` result stay within BF16_TOLERANCE?"""
    return (gap["mean_abs"] <= BF16_TOLERANCE["mean_abs"]
            and abs(gap["end"]) <= BF16_TOLERANCE["end"])


def _trailing_mean(values: Sequence[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out
