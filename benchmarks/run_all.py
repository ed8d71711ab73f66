"""Every benchmark in one run, printed as one table (`make bench`).

    python -m benchmarks.run_all                       # full sizes (tens of minutes on 2 cores)
    python -m benchmarks.run_all --quick               # tiny sizes: proves everything runs
    python -m benchmarks.run_all --only throughput mfu # some sections
    python -m benchmarks.run_all --wait-for-load 2.5 --output /tmp/bench.md

Each line compares contenders measured in this same run (interleaved), so the ratios hold on
a busy machine even when the absolute numbers do not. Targets print PASS or MISS; a miss is
never hidden.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable

from benchmarks import generation, looking, memory, mfu, precision, throughput
from benchmarks.common import (
    REPO_ROOT,
    Row,
    format_table,
    load_average,
    machine_header,
    n_cores,
    set_threads,
    summary_line,
)

TIME_TO_ACCURACY = "benchmarks.time_to_accuracy"


def time_to_accuracy(quick: bool = False, context: dict | None = None) -> list[Row]:
    """Hook for benchmarks/time_to_accuracy.py (written by someone else).

    If that module has `run(quick=..., context=...)` returning rows, they join the table;
    otherwise it runs as `python -m benchmarks.time_to_accuracy [--quick]` and its own output
    is printed under the table."""
    if importlib.util.find_spec(TIME_TO_ACCURACY) is None:
        return [Row("time to accuracy", "benchmarks/time_to_accuracy.py", "not available",
                    note="module missing; hook: benchmarks.run_all.time_to_accuracy")]
    module = importlib.import_module(TIME_TO_ACCURACY)
    run = getattr(module, "run", None)
    if callable(run):
        try:
            rows = run(quick=quick, context=context if context is not None else {})
        except TypeError:
            rows = None  # another signature: fall back to running it as a script
        if isinstance(rows, list) and all(isinstance(r, Row) for r in rows):
            return rows
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run([sys.executable, "-m", TIME_TO_ACCURACY, *(["--quick"] if quick else [])],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:160]
        return [Row("time to accuracy", "python -m benchmarks.time_to_accuracy", "failed",
                    note=f"exit {proc.returncode}: {tail}")]
    context = context if context is not None else {}
    context.setdefault("raw_outputs", []).append(("time to accuracy", proc.stdout.strip()))
    return [Row("time to accuracy", "python -m benchmarks.time_to_accuracy", "see below",
                note="its own table is printed after this one")]


SECTIONS: dict[str, Callable[..., list[Row]]] = {
    "throughput": throughput.run,
    "compile": throughput.run_compile,
    "mfu": mfu.run,  # after throughput: reuses its measurements
    "bf16": precision.run,
    "looking": looking.run,
    "generation": generation.run,
    "memory": memory.run,
    "time_to_accuracy": time_to_accuracy,
}


def wait_for_load(limit: float, max_minutes: float) -> None:
    """Sleep until the 1-minute load average is below `limit` (or `max_minutes` pass)."""
    deadline = time.monotonic() + 60 * max_minutes
    while os.getloadavg()[0] >= limit and time.monotonic() < deadline:
        print(f"waiting: load average {load_average()} (want 1-min < {limit})", flush=True)
        time.sleep(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark; print one table")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, one repeat: proves the code runs; numbers mean nothing")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), metavar="SECTION",
                        help=f"run only these sections: {', '.join(SECTIONS)}")
    parser.add_argument("--output", help="also write the header and table (Markdown) here")
    parser.add_argument("--wait-for-load", type=float, metavar="LOAD",
                        help="first wait until the 1-min load average is below LOAD")
    parser.add_argument("--wait-max-minutes", type=float, default=40.0)
    args = parser.parse_args(argv)
    if args.wait_for_load:
        wait_for_load(args.wait_for_load, args.wait_max_minutes)
    set_threads(args.quick)
    header = machine_header()
    print(header, flush=True)
    context: dict = {}
    rows: list[Row] = []
    started = time.perf_counter()
    for name in args.only or list(SECTIONS):
        t0 = time.perf_counter()
        section_rows = SECTIONS[name](quick=args.quick, context=context)
        rows += section_rows
        print(f"\n## {name} ({time.perf_counter() - t0:.0f} s, load {load_average()})")
        print(format_table(section_rows), flush=True)
    footer = (f"total {time.perf_counter() - started:.0f} s; load avg 1/5/15 min at the end: "
              f"{load_average()}; {n_cores()} cores" + (" (--quick: numbers mean nothing)"
                                                         if args.quick else ""))
    text = "\n".join([header, "", format_table(rows), "", summary_line(rows), footer])
    for title, raw in context.get("raw_outputs", []):
        text += f"\n\n### {title}\n\n{raw}"
    print("\n# all results\n" + text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
