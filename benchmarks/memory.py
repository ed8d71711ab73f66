"""Peak memory of a classroom training run with the attention history.

Each measurement runs in a fresh subprocess (peak resident memory is per process): the tiny
reverse model trained with `TrainConfig.classroom()` for 2,000 steps with
`mt.AttentionHistory(every=50)` attached, and the same run without the history. Reported:
the peak RSS before and after training (VmHWM on Linux; `ru_maxrss` is shown too, but in a
subprocess it includes the launching process's peak, see `_peak_rss_bytes`), and the history's
own `nbytes` against its budget.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

from benchmarks.common import Row, fmt_bytes, machine_header, run_worker, set_threads

SECTION = "memory"
STEPS = 2000
EVERY = 50


def _ru_maxrss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _peak_rss_bytes() -> int:
    """This process's peak resident memory. On Linux, VmHWM from /proc/self/status: unlike
    ru_maxrss it starts afresh at exec, whereas ru_maxrss of a child started with
    fork/vfork + exec keeps the launching process's peak (a 750 MiB parent made every worker
    report 750 MiB). Elsewhere, ru_maxrss."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return _ru_maxrss_bytes()


def worker(steps: int, with_history: bool, quick: bool) -> None:
    """Train in this process and print one JSON line of measurements."""
    set_threads(quick)
    import minitransformer as mt
    from benchmarks.looking import tiny_reverse

    task, cfg = tiny_reverse(quick)
    mt.seed_everything(0)
    trainer = mt.Trainer(mt.build_model(cfg), task,
                         mt.TrainConfig.classroom(device="cpu", progress=False))
    history = None
    if with_history:
        history = mt.AttentionHistory.from_task(task, n=4, every=EVERY if not quick else 10)
        history.attach(trainer)
    before = _peak_rss_bytes()
    started = time.perf_counter()
    trainer.run(steps)
    print(json.dumps({
        "peak_rss_before": before, "peak_rss_after": _peak_rss_bytes(),
        "ru_maxrss_after": _ru_maxrss_bytes(),
        "seconds": time.perf_counter() - started,
        "history_nbytes": history.nbytes if history else 0,
        "history_budget": history.budget_bytes if history else 0,
        "snapshots": len(history) if history else 0,
        "final_loss": trainer.history[-1]["loss"],
    }))


def run(quick: bool = False, context: dict | None = None) -> list[Row]:
    steps = 50 if quick else STEPS
    extra = ["--quick"] if quick else []
    results = {}
    for label, flag in (("with", ["--with-history"]), ("without", [])):
        results[label] = run_worker("benchmarks.memory",
                                    ["--worker", "--steps", str(steps), *flag, *extra],
                                    timeout=1800)
    w, wo = results["with"], results["without"]
    return [
        Row(SECTION, f"peak RSS, {steps}-step classroom training + AttentionHistory(every="
            f"{EVERY if not quick else 10})", fmt_bytes(w["peak_rss_after"]),
            note=f"{fmt_bytes(w['peak_rss_before'])} before training; {w['seconds']:.0f} s; "
            f"final loss {w['final_loss']:.3f}; ru_maxrss {fmt_bytes(w['ru_maxrss_after'])} "
            "(includes the parent's peak)"),
        Row(SECTION, "peak RSS, same training without the history",
            fmt_bytes(wo["peak_rss_after"]),
            f"{w['peak_rss_after'] / wo['peak_rss_after']:.3f}x",
            note=f"{fmt_bytes(wo['peak_rss_before'])} before training; ratio = with / without"),
        Row(SECTION, "AttentionHistory.nbytes after the run", f"{w['history_nbytes']:,} B "
            f"({fmt_bytes(w['history_nbytes'])})",
            note=f"{w['snapshots']} snapshots; budget {fmt_bytes(w['history_budget'])}"),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Peak memory of a classroom training run")
    parser.add_argument("--quick", action="store_true", help="50 steps, tiny sizes")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--with-history", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.steps, args.with_history, args.quick)
        return
    from benchmarks.common import format_table, summary_line

    set_threads(args.quick)
    print(machine_header(), flush=True)
    rows = run(quick=args.quick)
    print(format_table(rows))
    print(summary_line(rows))


if __name__ == "__main__":
    sys.exit(main())
