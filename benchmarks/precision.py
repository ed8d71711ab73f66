"""bf16 autocast on a CPU, through the Trainer: speed, and how closely the loss follows fp32.

For each classroom task a `ModelConfig.small` model (d_model 128: where precision="auto" picks
bf16 on a CPU with AMX or AVX512-BF16) trains with `TrainConfig.classroom()` twice from the
same seed, in fp32 and in bf16 autocast, in interleaved chunks of steps. Reported per task:
the speed ratio, and the gap between the loss curves (`minitransformer.precision.loss_curve_gap`)
against the tolerance that tests/test_precision.py holds.

    python -m benchmarks.precision            # 3 tasks (a few minutes on 2 cores)
    python -m benchmarks.precision --quick    # tiny model, few steps (seconds)
"""

from __future__ import annotations

import sys
import time

import minitransformer as mt
from benchmarks.common import Row, fmt_ratio, main_for, paired_ratio
from minitransformer.__main__ import model_config_for
from minitransformer.precision import (
    BF16_TOLERANCE,
    cpu_bf16_instructions,
    loss_curve_gap,
    within_bf16_tolerance,
)

SECTION = "bf16"
TASKS = {"reverse": 300, "numbers_en_de": 150, "grammar_lm": 150}  # task: training steps
CHUNK = 25  # steps per timed chunk; fp32 and bf16 chunks alternate


def trainer(task: mt.Task, precision: str, quick: bool, seed: int = 0) -> mt.Trainer:
    mt.seed_everything(seed)
    model = mt.build_model(model_config_for(task, "tiny" if quick else "small"))
    config = mt.TrainConfig.classroom(precision=precision, device="cpu", progress=False,
                                      seed=seed)
    return mt.Trainer(model, task, config)


def run(quick: bool = False, context: dict | None = None) -> list[Row]:
    rows = [Row(SECTION, "native bf16 matmul on this CPU", cpu_bf16_instructions() or "none",
                note="AMX or AVX512-BF16; without them bf16 is emulated and slower")]
    for name, steps in TASKS.items():
        task = mt.get_task(name)
        steps, chunk = (4, 2) if quick else (steps, CHUNK)
        runs = {p: trainer(task, p, quick) for p in ("fp32", "bf16")}
        seconds: dict[str, list[float]] = {p: [] for p in runs}
        for i in range(steps // chunk):
            for precision in (("fp32", "bf16") if i % 2 == 0 else ("bf16", "fp32")):
                started = time.perf_counter()
                runs[precision].run(chunk, progress=False)
                seconds[precision].append(time.perf_counter() - started)
        losses = {p: [m["loss"] for m in t.history] for p, t in runs.items()}
        gap = loss_curve_gap(losses["fp32"], losses["bf16"])
        end_fp32 = sum(losses["fp32"][-50:]) / len(losses["fp32"][-50:])
        speed = paired_ratio(seconds["fp32"], seconds["bf16"])
        size = "tiny" if quick else "small"
        rows += [
            Row(SECTION, f"{name}, {size} model, {steps} steps: bf16 vs fp32 speed", "",
                fmt_ratio(speed), note=f"Trainer.run, {len(seconds['fp32'])} interleaved "
                f"chunks of {chunk} steps each (>1: bf16 faster)"),
            Row(SECTION, f"{name}, {size} model: bf16 loss curve vs fp32",
                f"mean |gap| {gap['mean_abs']:.3f}, end {gap['end']:+.3f} nats", "",
                f"both <= {BF16_TOLERANCE['mean_abs']} nats", within_bf16_tolerance(gap),
                f"max |gap| {gap['max_abs']:.3f}; fp32 end loss {end_fp32:.3f}; curves "
                f"smoothed over 25 steps; end = mean of the last 50"),
        ]
    return rows


def main(argv: list[str] | None = None) -> None:
    main_for(run, "bf16 autocast on a CPU: speed and loss-curve agreement", argv)


if __name__ == "__main__":
    sys.exit(main())
