"""The cost of looking: what recording attention costs a training run and a forward pass.

1. Training with `mt.AttentionHistory` (a probe batch of 4 recorded every k=50 steps) against
   the same training without it: two identical mt.Trainers on the tiny reverse task, run in
   interleaved chunks of k steps, so each chunk of the recording trainer holds one capture.
2. The same cost predicted from its parts: one capture's time / (k x one step's time).
3. One eval forward with the weights asked for (`output_attentions=True`, the explicit path)
   against the fused path (`scaled_dot_product_attention`), at two sizes.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

import minitransformer as mt
from benchmarks import throughput
from benchmarks.common import Row, fmt_ratio, interleaved, main_for, paired_ratio
from benchmarks.throughput import ENCDEC

SECTION = "looking"
EVERY = 50
TARGET_COST = 0.03


def tiny_reverse(quick: bool) -> tuple[mt.Task, mt.ModelConfig]:
    task = (mt.get_task("reverse", n_train=128, n_valid=16, n_test=16) if quick
            else mt.get_task("reverse"))
    sizes = dict(d_model=32, n_heads=2, d_ff=64) if quick else {}
    cfg = mt.ModelConfig.tiny(vocab_size=task.tgt_vocab_size,
                              src_vocab_size=task.src_vocab_size, **sizes)
    return task, cfg


def _trainer(task: mt.Task, cfg: mt.ModelConfig) -> mt.Trainer:
    mt.seed_everything(0)
    return mt.Trainer(mt.build_model(cfg), task,
                      mt.TrainConfig.classroom(device="cpu", progress=False))


def history_cost(quick: bool) -> list[Row]:
    every, rounds = (2, 1) if quick else (EVERY, 12)
    task, cfg = tiny_reverse(quick)
    plain, looking = _trainer(task, cfg), _trainer(task, cfg)
    history = mt.AttentionHistory.from_task(task, n=4, every=every)
    history.attach(looking)  # the step-0 capture happens here, before the timing
    plain.run(every)  # warm-up, outside the timing
    looking.run(every)
    seconds = interleaved({"plain": lambda: plain.run(every),
                           "history": lambda: looking.run(every)}, rounds, warmup=0)
    total = sum(seconds["history"]) / sum(seconds["plain"]) - 1
    ratio = paired_ratio(seconds["history"], seconds["plain"])
    rows = [Row(SECTION, f"training with AttentionHistory(every={every}) vs without",
                f"{total:+.1%} time", fmt_ratio(ratio), f"<= +{TARGET_COST:.0%}",
                total <= TARGET_COST,
                f"{rounds} x {every} steps each, interleaved; ratio = time with / without "
                f"per chunk; {len(history)} snapshots, {history.nbytes:,} B")]

    # Predicted from parts: one capture / (every x one step), timed back to back.
    capture_s = []
    for _ in range(3 if quick else 9):
        started = time.perf_counter()
        history.capture(looking.model, looking.state.step)
        capture_s.append(time.perf_counter() - started)
    step_s = statistics.median(m["seconds"] for m in plain.history if "seconds" in m)
    capture = statistics.median(capture_s)
    rows.append(Row(SECTION, f"one capture / ({every} x one training step)",
                    f"{capture / (every * step_s):+.1%} time", "",
                    note=f"capture {capture * 1e3:.1f} ms, step {step_s * 1e3:.1f} ms (medians)"))
    return rows


def eval_forward_cost(name: str, model: torch.nn.Module, src, tgt, repeats: int,
                      calls: int) -> Row:
    model.eval()

    def forward(weights: bool):
        def go():
            with torch.no_grad():
                for _ in range(calls):
                    model(src, tgt, output_attentions=weights)
        return go

    seconds = interleaved({"fused": forward(False), "explicit": forward(True)}, repeats)
    ratio = paired_ratio(seconds["explicit"], seconds["fused"])
    per_call = statistics.median(seconds["explicit"]) / calls * 1e3
    return Row(SECTION, f"{name}: eval forward with weights (explicit) vs fused",
               f"{per_call:.2f} ms/forward with weights", fmt_ratio(ratio),
               note="time ratio (>1: explicit slower)")


def run(quick: bool = False, context: dict | None = None) -> list[Row]:
    rows = history_cost(quick)
    repeats, calls = (1, 1) if quick else (9, 20)
    task, cfg = tiny_reverse(quick)
    mt.seed_everything(0)
    batch = next(iter(task.batches("valid", 64, shuffle=False)))
    rows.append(eval_forward_cost(f"tiny reverse, B{batch.batch_size} (padded)",
                                  mt.build_model(cfg), batch.src, batch.tgt_in, repeats, calls))
    spec = throughput.quick_spec(ENCDEC) if quick else ENCDEC
    src, tgt_in, _ = throughput.make_batches(spec, n=1)[0]
    rows.append(eval_forward_cost(f"{spec.name} config 1, B{spec.batch}",
                                  throughput.build_ours(spec), src, tgt_in, repeats,
                                  1 if quick else 5))
    return rows


def main(argv: list[str] | None = None) -> None:
    main_for(run, "The cost of recording attention", argv)


if __name__ == "__main__":
    sys.exit(main())
