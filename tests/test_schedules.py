"""Learning-rate schedules: pure functions of the 1-based update number."""

from __future__ import annotations

import math

import pytest

from minitransformer.schedules import SCHEDULES, constant_lr, cosine_lr, noam_lr


def test_known_schedules():
    assert set(SCHEDULES) == {"noam", "cosine", "constant"}


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (1, 512**-0.5 * 4000**-1.5),  # warmup: linear in the step
        (400, 512**-0.5 * 400 * 4000**-1.5),
        (4000, 512**-0.5 * 4000**-0.5),  # the peak, both branches agree
        (16000, 512**-0.5 * 16000**-0.5),  # decay: inverse square root
    ],
)
def test_noam_formula_paper_base(step, expected):
    """The paper's eq. (3) with d_model 512, warmup 4000."""
    assert noam_lr(step, 512, 4000) == pytest.approx(expected, rel=1e-12)


def test_noam_peak_value_and_shape():
    peak = noam_lr(4000, 512, 4000)
    assert peak == pytest.approx(6.987712429686844e-4, rel=1e-9)
    values = [noam_lr(s, 512, 4000) for s in range(1, 12001, 50)]
    top = max(range(len(values)), key=values.__getitem__)
    assert abs(range(1, 12001, 50)[top] - 4000) <= 50
    assert noam_lr(3999, 512, 4000) < peak and noam_lr(4001, 512, 4000) < peak
    assert noam_lr(4000 * 4, 512, 4000) == pytest.approx(peak / 2, rel=1e-12)  # step^-0.5


def test_noam_scale_and_step_zero():
    assert noam_lr(100, 64, 10, scale=2.0) == pytest.approx(2 * noam_lr(100, 64, 10))
    assert noam_lr(0, 64, 10) == noam_lr(1, 64, 10)  # never a division by zero


def test_cosine_warmup_peak_middle_and_end():
    peak, warmup, total = 3e-3, 10, 110
    assert cosine_lr(1, peak, warmup, total) == pytest.approx(peak / 10)
    assert cosine_lr(5, peak, warmup, total) == pytest.approx(peak / 2)
    assert cosine_lr(warmup, peak, warmup, total) == pytest.approx(peak)
    middle = warmup + (total - warmup) // 2
    assert cosine_lr(middle, peak, warmup, total) == pytest.approx(peak * (0.1 + 0.9 * 0.5))
    assert cosine_lr(total, peak, warmup, total) == pytest.approx(0.1 * peak)
    assert cosine_lr(total + 500, peak, warmup, total) == pytest.approx(0.1 * peak)  # floor
    assert cosine_lr(total, peak, warmup, total, min_ratio=0.0) == pytest.approx(0.0, abs=1e-15)
    after = [cosine_lr(s, peak, warmup, total) for s in range(warmup, total + 1)]
    assert all(a >= b for a, b in zip(after, after[1:], strict=False))  # decays monotonically


def test_cosine_without_warmup_starts_at_peak():
    first = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 100))  # one step into the decay
    assert cosine_lr(1, 1.0, 0, 100) == pytest.approx(first)
    assert first > 0.99


def test_constant_warmup_then_flat():
    assert constant_lr(1, 1e-3, 4) == pytest.approx(2.5e-4)
    assert constant_lr(2, 1e-3, 4) == pytest.approx(5e-4)
    assert constant_lr(4, 1e-3, 4) == pytest.approx(1e-3)
    assert constant_lr(1000, 1e-3, 4) == pytest.approx(1e-3)
    assert constant_lr(1, 1e-3, 0) == pytest.approx(1e-3)  # no warmup
