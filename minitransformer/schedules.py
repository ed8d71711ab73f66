"""Learning-rate schedules as pure functions of the update number (1-based).

Being pure, they need no state of their own: a resumed run gets the same rate from the step.
"""

from __future__ import annotations

import math

SCHEDULES = ("noam", "cosine", "constant")


def noam_lr(step: int, d_model: int, warmup_steps: int, scale: float = 1.0) -> float:
    """The paper's schedule: scale * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)."""
    step = max(step, 1)
    return scale * d_model**-0.5 * min(step**-0.5, step * warmup_steps**-1.5)


def cosine_lr(step: int, peak_lr: float, warmup_steps: int, total_steps: int,
              min_ratio: float = 0.1) -> float:
    """Linear warmup to `peak_lr`, then cosine decay to `min_ratio * peak_lr` at total_steps."""
    if step <= warmup_steps:
        return peak_lr * step / max(warmup_steps, 1)
    progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
    return peak_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def constant_lr(step: int, peak_lr: float, warmup_steps: int) -> float:
    """Linear warmup to `peak_lr`, then constant."""
    return peak_lr * min(1.0, step / max(warmup_steps, 1))
