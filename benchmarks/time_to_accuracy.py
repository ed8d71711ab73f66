"""Time to accuracy: how long the default recipes take to reach their classroom targets.

    python -m benchmarks.time_to_accuracy                 # both targets, seed 0
    python -m benchmarks.time_to_accuracy --seeds 0 1 2   # steps-to-target over seeds
    python -m benchmarks.time_to_accuracy --only reverse --threads 1

Targets (on a 2-core laptop-class CPU):
- reverse (strings of length <= 12): >= 99% sequence accuracy on the valid split within 20 s of
  training wall time;
- numbers_en_de: >= 95% exact match (sequence accuracy) on the test split within 5 minutes.

Training stops as soon as the metric, evaluated every `eval_every` steps, reaches the target.
"Train s" counts only the training steps; evaluations are reported separately. Wall-clock
seconds depend on the machine and on whatever else runs on it (see the load average in the
header); steps-to-target is the stable number to compare recipes by, and with one thread
(`--threads 1`) the CPU seconds of training are close to the wall time on an idle machine.
Sequence accuracy with teacher forcing is exactly greedy decoding's exact match (see
`Trainer.evaluate`).

The recipes here are the defaults the command line and the notebooks use: change them together.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

import minitransformer as mt

try:  # run as `python -m benchmarks.time_to_accuracy` (or `run_all`)
    from benchmarks.common import Row, format_table, machine_header, summary_line
except ImportError:  # run as a file: python benchmarks/time_to_accuracy.py
    from common import Row, format_table, machine_header, summary_line  # type: ignore


@dataclass(frozen=True)
class Recipe:
    """A task, a model, a training config, and the target to reach."""

    name: str
    task: str
    task_options: dict[str, Any]
    model: Callable[[mt.Task], mt.ModelConfig]
    train: mt.TrainConfig
    split: str  # where the target metric is measured
    target_acc: float  # sequence accuracy to reach
    budget_s: float  # training seconds allowed
    eval_every: int
    max_steps: int  # give up after this many steps even on a fast machine


def reverse_model(task: mt.Task) -> mt.ModelConfig:
    return mt.ModelConfig.tiny(vocab_size=task.tgt_vocab_size, max_len=task.max_len + 2,
                               dropout=0.0)


def numbers_model(task: mt.Task) -> mt.ModelConfig:
    return mt.ModelConfig.tiny(vocab_size=task.tgt_vocab_size,
                               src_vocab_size=task.src_vocab_size,
                               max_len=task.max_len + 8, dropout=0.1)


# Measured steps to target (seeds 0, 1, 2; evaluation every `eval_every` steps):
# reverse 350 / 300 / 450, numbers_en_de 80 / 80 / 80.
RECIPES = {
    "reverse": Recipe(
        name="reverse", task="reverse", task_options={}, model=reverse_model,
        train=mt.TrainConfig.classroom(lr=5e-3, batch_size=64, schedule="cosine",
                                       warmup_steps=50, total_steps=300),
        split="valid", target_acc=0.99, budget_s=20.0, eval_every=50, max_steps=1500,
    ),
    "numbers_en_de": Recipe(
        name="numbers_en_de", task="numbers_en_de", task_options={}, model=numbers_model,
        train=mt.TrainConfig.classroom(lr=3e-3, batch_size=64),
        split="test", target_acc=0.95, budget_s=300.0, eval_every=20, max_steps=3000,
    ),
}


@dataclass
class Outcome:
    """What one training run to a target gave."""

    recipe: str
    seed: int
    reached: bool
    steps: int
    train_s: float
    train_cpu_s: float  # CPU seconds of the training steps: less sensitive to a busy machine
    eval_s: float
    accuracy: float
    curve: list[tuple[int, float]]


def train_to_target(recipe: Recipe, seed: int, max_steps: int | None = None) -> Outcome:
    """Train a fresh model (weights and trainer seeded with `seed`) until the target or the
    step cap; evaluate every `eval_every` steps on `recipe.split`."""
    task = mt.get_task(recipe.task, **recipe.task_options)
    mt.seed_everything(seed)
    model = mt.build_model(recipe.model(task))
    trainer = mt.Trainer(model, task, recipe.train.replace(seed=seed, progress=False,
                                                            device="cpu", eval_every=0))
    cap = max_steps or recipe.max_steps
    train_s = train_cpu_s = eval_s = 0.0
    curve: list[tuple[int, float]] = []
    accuracy = 0.0
    while trainer.state.step < cap:
        started, cpu_started = time.perf_counter(), time.process_time()
        trainer.run(min(recipe.eval_every, cap - trainer.state.step))
        train_s += time.perf_counter() - started
        train_cpu_s += time.process_time() - cpu_started
        started = time.perf_counter()
        accuracy = trainer.evaluate(recipe.split)[f"{recipe.split}_seq_acc"]
        eval_s += time.perf_counter() - started
        curve.append((trainer.state.step, accuracy))
        if accuracy >= recipe.target_acc:
            break
    return Outcome(recipe.name, seed, accuracy >= recipe.target_acc, trainer.state.step,
                   train_s, train_cpu_s, eval_s, accuracy, curve)


def run(quick: bool, context: dict, seeds: Sequence[int] = (0,),
        only: Sequence[str] | None = None) -> list[Row]:
    """One row per recipe and seed, plus a summary row per recipe when there are several seeds.
    `quick` caps training at a few steps: it proves the code runs; its numbers mean nothing."""
    rows: list[Row] = []
    for name in only or list(RECIPES):
        recipe = RECIPES[name]
        outcomes = []
        for seed in seeds:
            outcome = train_to_target(recipe, seed, max_steps=4 if quick else None)
            outcomes.append(outcome)
            within = outcome.reached and outcome.train_s <= recipe.budget_s
            rows.append(Row(
                section="time to accuracy",
                name=f"{name} (seed {seed}): {recipe.split} seq acc >= {recipe.target_acc:.0%}",
                value=(f"{outcome.steps} steps, {outcome.train_s:.1f} s train "
                       f"(+{outcome.eval_s:.1f} s eval), acc {outcome.accuracy:.3f}"),
                ratio=f"{outcome.train_s / recipe.budget_s:.2f}x of budget",
                target=f"<= {recipe.budget_s:.0f} s",
                passed=None if quick else within,
                note=("" if outcome.reached else "target not reached; ")
                + f"{1000 * outcome.train_s / max(outcome.steps, 1):.0f} ms/step; "
                f"CPU {outcome.train_cpu_s:.1f} s",
            ))
        if len(outcomes) > 1:
            steps = [o.steps for o in outcomes if o.reached]
            rows.append(Row(
                section="time to accuracy",
                name=f"{name}: steps to target over seeds {list(seeds)}",
                value=(f"median {statistics.median(steps):.0f} [{min(steps)}-{max(steps)}]"
                       if steps else "never reached"),
                note=f"{len(steps)}/{len(outcomes)} seeds reached it",
            ))
    return rows


def main(argv: Sequence[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a few steps only: proves the code runs; numbers mean nothing")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--only", choices=sorted(RECIPES), nargs="+", default=None)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice, usually the core count)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(machine_header(), flush=True)
    rows = run(args.quick, {}, seeds=args.seeds, only=args.only)
    print(format_table(rows))
    print(summary_line(rows))
    return rows


if __name__ == "__main__":
    main()
