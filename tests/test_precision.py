"""Precision: what "auto" picks per device and model size, the attention path it implies, and
that bf16 training follows fp32's loss curve on the classroom tasks within the stated
tolerance (minitransformer.precision.BF16_TOLERANCE)."""

from __future__ import annotations

import pytest
import torch

import minitransformer as mt
from minitransformer import attention, precision
from minitransformer.__main__ import model_config_for
from minitransformer.precision import (
    BF16_TOLERANCE,
    bf16_instructions_in,
    choose_precision,
    loss_curve_gap,
    within_bf16_tolerance,
)

CPU = torch.device("cpu")


# ---- detection and choice --------------------------------------------------------------------
@pytest.mark.parametrize(("flags", "expected"), [
    ("fpu sse avx2 avx512f avx512bw amx_bf16 amx_tile avx512_bf16", "AMX"),
    ("fpu sse avx2 avx512f avx512_bf16 avx512_vnni", "AVX512-BF16"),
    ("fpu sse avx2 avx512f avx512bw avx512_vnni", None),
])
def test_bf16_instructions_read_from_cpuinfo(flags, expected):
    cpuinfo = f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n"
    assert bf16_instructions_in(cpuinfo) == expected
    assert bf16_instructions_in("processor\t: 0\n") is None


@pytest.fixture
def cpu_with(monkeypatch):
    """Pretend this CPU has the given native bf16 instructions (or none)."""
    def pretend(instructions):
        monkeypatch.setattr(precision, "cpu_bf16_instructions", lambda: instructions)
    return pretend


def test_auto_on_a_cpu_uses_bf16_only_with_native_bf16_and_a_wide_enough_model(cpu_with):
    cpu_with("AMX")
    assert choose_precision("auto", CPU, 128)[0] is torch.bfloat16
    dtype, reason = choose_precision("auto", CPU, 64)
    assert dtype is None and "d_model 64 < 128" in reason
    assert choose_precision("auto", CPU, None)[0] is None  # not a Transformer: stay safe
    cpu_with(None)
    dtype, reason = choose_precision("auto", CPU, 512)
    assert dtype is None and "no native bf16" in reason


def test_forced_precisions_and_other_devices(cpu_with, monkeypatch):
    cpu_with(None)
    assert choose_precision("bf16", CPU, 16)[0] is torch.bfloat16
    cpu_with("AMX")
    assert choose_precision("fp32", CPU, 1024) == (None, "fp32 (asked for)")
    assert choose_precision("auto", torch.device("mps"), 512)[0] is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert choose_precision("auto", torch.device("cuda"), 64)[0] is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert choose_precision("auto", torch.device("cuda"), 64)[0] is None
    with pytest.raises(ValueError, match="choose one of 'auto', 'fp32', 'bf16'"):
        choose_precision("fp16", CPU, 64)


def test_trainer_reports_what_auto_resolved_to(cpu_with):
    task = mt.get_task("copy", n_train=64, n_valid=8, n_test=8)
    cpu_with("AVX512-BF16")
    small = mt.build_model(mt.ModelConfig.small(vocab_size=task.tgt_vocab_size))
    tiny = mt.build_model(mt.ModelConfig.tiny(vocab_size=task.tgt_vocab_size))
    config = mt.TrainConfig.classroom(device="cpu", progress=False)
    trainer = mt.Trainer(small, task, config)
    assert trainer.precision == "bf16" and "AVX512-BF16" in trainer.precision_reason
    assert mt.Trainer(tiny, task, config).precision == "fp32"
    assert mt.Trainer(small, task, config.replace(precision="fp32")).precision == "fp32"


# ---- the attention path per dtype -----------------------------------------------------------
def _no_sdpa(*args, **kwargs):
    raise AssertionError("scaled_dot_product_attention was called")


@pytest.mark.parametrize("arch", ["encoder_decoder", "decoder_only"])
def test_cpu_bf16_uses_the_explicit_path_and_matches_sdpa(arch, monkeypatch):
    mt.seed_everything(0)
    model = mt.build_model(mt.ModelConfig.tiny(vocab_size=20, arch=arch)).eval()
    src = torch.randint(4, 20, (3, 7)) if arch == "encoder_decoder" else None
    tgt = torch.randint(4, 20, (3, 6))
    tgt[0, 4:] = mt.PAD_ID  # padding: masks on the explicit path
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with monkeypatch.context() as patch:
            patch.setattr(attention, "_explicit_is_faster", lambda q: False)
            via_sdpa = model(src, tgt).logits.float()
        monkeypatch.setattr(attention.F, "scaled_dot_product_attention", _no_sdpa)
        explicit = model(src, tgt).logits.float()
    # The same sums in bf16, in a different order: agree to bf16's resolution.
    torch.testing.assert_close(explicit, via_sdpa, atol=0.1, rtol=0.05)


def test_fp32_training_still_takes_the_fused_path(monkeypatch):
    model = mt.build_model(mt.ModelConfig.tiny(vocab_size=20)).train()
    calls = []
    real = attention.F.scaled_dot_product_attention
    monkeypatch.setattr(attention.F, "scaled_dot_product_attention",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    model(torch.randint(4, 20, (2, 5)), torch.randint(4, 20, (2, 5))).logits.sum().backward()
    assert len(calls) == 6  # 2 encoder self, 2 decoder self, 2 cross


# ---- the loss curve --------------------------------------------------------------------------
def test_loss_curve_gap():
    flat = [1.0] * 100
    assert loss_curve_gap(flat, flat) == {"mean_abs": 0.0, "max_abs": 0.0, "end": 0.0}
    lower = [0.9] * 100
    gap = loss_curve_gap(flat, lower)
    assert gap["mean_abs"] == pytest.approx(0.1) and gap["end"] == pytest.approx(-0.1)
    spike = flat[:50] + [3.5] + flat[51:]  # one step 2.5 higher, smoothed over 25 steps
    assert loss_curve_gap(flat, spike)["max_abs"] == pytest.approx(0.1)
    assert within_bf16_tolerance(gap)
    assert not within_bf16_tolerance(loss_curve_gap(flat, [0.8] * 100))
    with pytest.raises(ValueError, match="equally long"):
        loss_curve_gap(flat, flat[:-1])


CLASSROOM_TASKS = {"reverse": 300, "numbers_en_de": 150, "grammar_lm": 150}  # training steps


@pytest.mark.parametrize("task_name", list(CLASSROOM_TASKS))
def test_bf16_training_follows_fp32_within_the_tolerance(task_name):
    """The model where "auto" picks bf16 on a CPU (ModelConfig.small, d_model 128), trained
    with the classroom recipe from one seed in fp32 and in bf16 autocast."""
    task = mt.get_task(task_name)
    curves = {}
    for name in ("fp32", "bf16"):
        mt.seed_everything(0)
        model = mt.build_model(model_config_for(task, "small"))  # what the CLI would build
        trainer = mt.Trainer(model, task, mt.TrainConfig.classroom(
            precision=name, device="cpu", progress=False))
        curves[name] = [m["loss"] for m in trainer.run(CLASSROOM_TASKS[task_name])]
    gap = loss_curve_gap(curves["fp32"], curves["bf16"])
    assert curves["fp32"] != curves["bf16"]  # bf16 really ran
    assert curves["bf16"][-1] < 0.5 * curves["bf16"][0]  # and learned
    assert within_bf16_tolerance(gap), (gap, BF16_TOLERANCE)
