"""Shared benchmark plumbing: threads, interleaved timing, statistics, the results table.

Every benchmark module has `run(quick: bool, context: dict) -> list[Row]` and a `main()` that
prints its rows as a table. `quick=True` uses tiny sizes and one repeat: it proves the code runs
(the smoke test), its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


# ---- machine ---------------------------------------------------------------------------------
def n_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def set_threads(quick: bool = False) -> int:
    """torch.set_num_threads(number of cores), or 1 for --quick (whose numbers mean nothing,
    and which must not crawl on a busy CI machine where spinning threads fight); returns it."""
    threads = 1 if quick else n_cores()
    torch.set_num_threads(threads)
    return threads


def cpu_model() -> str:
    """`lscpu`'s "Model name" (falls back to platform.processor())."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.strip().lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def machine_header() -> str:
    """One block naming date, machine, cores, torch version and the load (1/5/15 min)."""
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (f"date: {now} | CPU: {cpu_model()} | cores: {n_cores()} "
            f"(torch threads {torch.get_num_threads()}) | torch {torch.__version__} | "
            f"python {platform.python_version()} | load avg 1/5/15 min: {load_average()}")


# ---- timing ----------------------------------------------------------------------------------
def interleaved(contenders: dict[str, Callable[[], object]], repeats: int,
                warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each contender, `repeats` times, interleaved so that machine noise
    hits every contender alike: A B C, C B A, A B C, ... (the order flips every repeat, so a
    slow drift of the machine does not favour whoever runs first). `warmup` untimed calls of
    each contender come first."""
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            started = time.perf_counter()
            contenders[name]()
            seconds[name].append(time.perf_counter() - started)
    return seconds


@dataclass(frozen=True)
class Stat:
    """Median with min and max of repeated measurements."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        if not values:
            raise ValueError("Stat.of needs at least one value")
        return cls(statistics.median(values), min(values), max(values))

    def scaled(self, factor: float) -> Stat:
        return Stat(self.median * factor, self.low * factor, self.high * factor)


def rates(seconds: Sequence[float], work: float) -> Stat:
    """Work per second (e.g. tokens/s) of each repeat that did `work` units."""
    return Stat.of([work / s for s in seconds])


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> Stat:
    """Median, min and max of per-repeat ratios numerator[r] / denominator[r]: each pair ran
    back to back, so the ratio cancels most of the machine's slow noise."""
    if len(numerator) != len(denominator):
        raise ValueError(f"paired_ratio needs equal lengths, got {len(numerator)} and "
                         f"{len(denominator)}")
    return Stat.of([a / b for a, b in zip(numerator, denominator, strict=True)])


# ---- results ---------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the results table. `passed` is None for information-only lines."""

    section: str
    name: str
    value: str
    ratio: str = ""
    target: str = ""
    passed: bool | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        return "" if self.passed is None else ("PASS" if self.passed else "MISS")


def fmt_rate(stat: Stat, unit: str = "tok/s") -> str:
    return f"{stat.median:,.0f} {unit} [{stat.low:,.0f}-{stat.high:,.0f}]"


def fmt_ratio(stat: Stat) -> str:
    return f"{stat.median:.2f}x [{stat.low:.2f}-{stat.high:.2f}]"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown pipe table (readable in a terminal, pastes into RESULTS.md)."""
    header = ("section", "measurement", "value (median [min-max])", "ratio [min-max]",
              "target", "result", "note")
    body = [(r.section, r.name, r.value, r.ratio, r.target, r.verdict, r.note) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(cells) for cells in body]
    return "\n".join(out)


def summary_line(rows: Sequence[Row]) -> str:
    judged = [r for r in rows if r.passed is not None]
    misses = [r for r in judged if not r.passed]
    text = f"targets: {len(judged) - len(misses)} PASS, {len(misses)} MISS"
    if misses:
        text += " (MISS: " + "; ".join(f"{r.section}: {r.name}" for r in misses) + ")"
    return text


def parse_args(description: str, argv: Sequence[str] | None = None,
               extra: Callable[[argparse.ArgumentParser], None] | None = None
               ) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, one repeat: proves the code runs; numbers mean nothing")
    if extra is not None:
        extra(parser)
    return parser.parse_args(argv)


def main_for(run: Callable[..., list[Row]], description: str,
             argv: Sequence[str] | None = None) -> list[Row]:
    """The `main()` of a benchmark module: threads, header, its rows as a table."""
    args = parse_args(description, argv)
    set_threads(args.quick)
    print(machine_header(), flush=True)
    rows = run(quick=args.quick, context={})
    print(format_table(rows))
    print(summary_line(rows))
    return rows


# ---- subprocesses ------------------------------------------------------------------------------
def run_worker(module: str, args: Sequence[str], timeout: float) -> dict:
    """Run `python -m <module> <args>` from the repository root and parse the JSON object it
    prints on its last output line. Raises RuntimeError (with the tail of stderr) on failure
    and subprocess.TimeoutExpired on timeout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH"))
                                        if p)
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"`python -m {module} {' '.join(args)}` failed (exit "
                           f"{proc.returncode}): {proc.stderr.strip()[-1500:]}")
    return json.loads(lines[-1])
