"""Training throughput against peers, same sizes, same run; plus bf16 autocast, the explicit
attention path, the Trainer's own overhead and torch.compile.

A training step is: forward, cross-entropy, backward, AdamW step. Contenders are interleaved
(see `common.interleaved`), each repeat runs `steps` steps; throughput is target tokens/s.

    python -m benchmarks.throughput            # full sizes (minutes)
    python -m benchmarks.throughput --quick    # tiny sizes, one repeat (seconds)
    python -m benchmarks.throughput --profile  # where the time goes: top ops, ours vs peer
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from unittest import mock

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import minitransformer as mt
from benchmarks.common import (
    Row,
    Stat,
    fmt_rate,
    fmt_ratio,
    format_table,
    interleaved,
    machine_header,
    paired_ratio,
    rates,
    run_worker,
    set_threads,
    summary_line,
)
from benchmarks.peers import NanoGPTStyle, TorchSeq2Seq
from minitransformer.precision import choose_precision

SECTION = "throughput"


@dataclass(frozen=True)
class Spec:
    """A model size and a batch shape."""

    name: str
    arch: str
    vocab: int
    d_model: int
    n_heads: int
    n_encoder_layers: int
    n_decoder_layers: int
    d_ff: int
    dropout: float
    max_len: int
    batch: int
    src_len: int  # 0 for decoder-only
    tgt_len: int
    attention_dropout: float = 0.0  # ours only (the peers drop attention weights at `dropout`)

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.tgt_len


# Config 1: the encoder-decoder against torch.nn.Transformer.
ENCDEC = Spec("enc-dec", "encoder_decoder", vocab=1000, d_model=256, n_heads=4,
              n_encoder_layers=2, n_decoder_layers=2, d_ff=1024, dropout=0.1, max_len=64,
              batch=64, src_len=32, tgt_len=32)
# Config 2: the decoder-only model against the nanoGPT-style reference.
DECONLY = Spec("dec-only", "decoder_only", vocab=65, d_model=128, n_heads=4,
               n_encoder_layers=0, n_decoder_layers=4, d_ff=512, dropout=0.1, max_len=64,
               batch=32, src_len=0, tgt_len=64)


# The classroom's tiny model (ModelConfig.tiny) on reverse-sized batches: where bf16 does not pay.
TINY = Spec("tiny", "encoder_decoder", vocab=32, d_model=64, n_heads=4, n_encoder_layers=2,
            n_decoder_layers=2, d_ff=256, dropout=0.1, max_len=64, batch=64, src_len=12,
            tgt_len=13)


def quick_spec(spec: Spec) -> Spec:
    """Tiny sizes of the same shape, for --quick."""
    return replace(spec, vocab=min(spec.vocab, 50), d_model=32, n_heads=2,
                   n_encoder_layers=min(spec.n_encoder_layers, 1), n_decoder_layers=1, d_ff=64,
                   max_len=16, batch=4, src_len=min(spec.src_len, 8), tgt_len=8)


@dataclass(frozen=True)
class Plan:
    repeats: int
    steps: int  # per repeat
    warmup_steps: int


# Many short repeats rather than a few long ones: each pair of contenders runs seconds apart,
# so the per-repeat ratios cancel a shared machine's bursts of load.
FULL = Plan(repeats=36, steps=5, warmup_steps=3)
SHORT = Plan(repeats=12, steps=4, warmup_steps=2)  # the precision / path / trainer variants
QUICK = Plan(repeats=1, steps=1, warmup_steps=1)


# ---- models and data -------------------------------------------------------------------------
def model_config(spec: Spec) -> mt.ModelConfig:
    """Our config for `spec`. The decoder-only one is built like the nanoGPT-style peer
    (learned positions, pre-norm, GELU), so the comparison is of implementations, not designs."""
    common = dict(arch=spec.arch, tgt_vocab_size=spec.vocab, d_model=spec.d_model,
                  n_heads=spec.n_heads, n_decoder_layers=spec.n_decoder_layers, d_ff=spec.d_ff,
                  dropout=spec.dropout, attention_dropout=spec.attention_dropout,
                  max_len=spec.max_len)
    if spec.arch == "encoder_decoder":
        return mt.ModelConfig(**common, n_encoder_layers=spec.n_encoder_layers)
    return mt.ModelConfig(**common, n_encoder_layers=0, pos_encoding="learned", norm_first=True,
                          activation="gelu")


def build_ours(spec: Spec, seed: int = 0) -> mt.Transformer:
    mt.seed_everything(seed)
    return mt.build_model(model_config(spec))


def build_peer(spec: Spec, seed: int = 0) -> nn.Module:
    mt.seed_everything(seed)
    if spec.arch == "encoder_decoder":
        return TorchSeq2Seq(spec.vocab, spec.d_model, spec.n_heads, spec.n_encoder_layers,
                            spec.n_decoder_layers, spec.d_ff, spec.dropout, spec.max_len)
    return NanoGPTStyle(spec.vocab, spec.d_model, spec.n_heads, spec.n_decoder_layers,
                        spec.d_ff, spec.dropout, spec.max_len)


def make_batches(spec: Spec, n: int = 4, seed: int = 1) -> list[tuple[Tensor | None, Tensor,
                                                                        Tensor]]:
    """`n` (src, tgt_in, tgt_out) batches of random real tokens (ids 4..V-1, no padding), so
    both contenders take their no-padding fast paths."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        src = (torch.randint(4, spec.vocab, (spec.batch, spec.src_len), generator=g)
               if spec.src_len else None)
        tgt = torch.randint(4, spec.vocab, (spec.batch, spec.tgt_len + 1), generator=g)
        tgt[:, 0] = mt.BOS_ID
        out.append((src, tgt[:, :-1].contiguous(), tgt[:, 1:].contiguous()))
    return out


Forward = Callable[[Tensor | None, Tensor], Tensor]


def ours_forward(model: mt.Transformer, output_attentions: bool = False) -> Forward:
    return lambda src, tgt: model(src, tgt, output_attentions=output_attentions).logits


def peer_forward(model: nn.Module) -> Forward:
    return lambda src, tgt: model(src, tgt)


class TrainLoop:
    """The benchmark's training step, the same code for every contender."""

    def __init__(self, model: nn.Module, forward: Forward, batches, autocast: torch.dtype | None
                 = None, lr: float = 3e-4):
        self.model = model.train()
        self.forward = forward
        self.batches = batches
        self.autocast = autocast
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
        self.i = 0

    def step(self) -> None:
        src, tgt_in, tgt_out = self.batches[self.i % len(self.batches)]
        self.i += 1
        ctx = (torch.autocast("cpu", dtype=self.autocast) if self.autocast is not None
               else contextlib.nullcontext())
        with ctx:
            logits = self.forward(src, tgt_in)  # (B, T, V)
        loss = F.cross_entropy(logits.float().flatten(0, 1), tgt_out.flatten(), ignore_index=0)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()


def race(loops: dict, plan: Plan) -> dict[str, list[float]]:
    """Warm every loop up, then time them interleaved: seconds per repeat of plan.steps."""
    started = time.perf_counter()
    for loop in loops.values():
        loop.run(plan.warmup_steps)
    seconds = interleaved({name: (lambda lp=loop: lp.run(plan.steps)) for name, loop in
                           loops.items()}, plan.repeats, warmup=0)
    print(f"  [{', '.join(loops)}: {time.perf_counter() - started:.0f} s]", file=sys.stderr,
          flush=True)
    return seconds


# ---- the measurements --------------------------------------------------------------------------
def versus_peer(spec: Spec, plan: Plan, peer_name: str, target: float | None,
                context: dict) -> list[Row]:
    batches = make_batches(spec)
    ours_model, peer_model = build_ours(spec), build_peer(spec)
    ours = TrainLoop(ours_model, ours_forward(ours_model), batches)
    peer = TrainLoop(peer_model, peer_forward(peer_model), batches)
    seconds = race({"ours": ours, "peer": peer}, plan)
    work = spec.tokens_per_step * plan.steps
    ours_rate, peer_rate = rates(seconds["ours"], work), rates(seconds["peer"], work)
    ratio = paired_ratio(seconds["peer"], seconds["ours"])  # ours' speed / peer's speed
    best = min(seconds["peer"]) / min(seconds["ours"])
    context[spec.name] = {"spec": spec, "ours_tokens_per_s": ours_rate,
                          "peer_tokens_per_s": peer_rate}
    shape = (f"B{spec.batch} x T{spec.tgt_len}" + (f" (S{spec.src_len})" if spec.src_len else ""))
    return [
        Row(SECTION, f"{spec.name} ours, train step, {shape}", fmt_rate(ours_rate)),
        Row(SECTION, f"{spec.name} {peer_name}, same sizes", fmt_rate(peer_rate)),
        Row(SECTION, f"{spec.name} ours vs {peer_name}", "", fmt_ratio(ratio),
            "" if target is None else f">= {target:.2f}x",
            None if target is None else ratio.median >= target,
            f"speed ratio; {plan.repeats} x {plan.steps} steps each, interleaved; "
            f"best vs best {best:.2f}x"),
    ]


@contextlib.contextmanager
def sdpa_in_bf16():
    """Make our attention use SDPA under CPU bf16 too (the rule picks the explicit path there):
    the alternative the rule turned down, for comparison."""
    with mock.patch("minitransformer.attention._explicit_is_faster", return_value=False):
        yield


def _with(context: Callable[[], contextlib.AbstractContextManager], forward: Forward) -> Forward:
    def wrapped(src: Tensor | None, tgt: Tensor) -> Tensor:
        with context():
            return forward(src, tgt)
    return wrapped


def precision_and_path(spec: Spec, plan: Plan) -> list[Row]:
    """Ours in fp32 and bf16 autocast, with the attention path the rule picks per dtype (fused
    SDPA in fp32, explicit in CPU bf16) against the other path; and what precision="auto" picks
    here, checked against the measured ratio."""
    batches = make_batches(spec)
    contenders = {  # name: (autocast dtype, forward maker)
        "fp32": (None, ours_forward),
        "fp32 explicit (weights)": (None, lambda m: ours_forward(m, output_attentions=True)),
        "bf16": (torch.bfloat16, ours_forward),
        "bf16 SDPA": (torch.bfloat16, lambda m: _with(sdpa_in_bf16, ours_forward(m))),
    }
    loops = {}
    for name, (dtype, make_forward) in contenders.items():
        model = build_ours(spec)
        loops[name] = TrainLoop(model, make_forward(model), batches, autocast=dtype)
    seconds = race(loops, plan)
    work = spec.tokens_per_step * plan.steps

    def row(name: str, slower: str, faster: str, note: str, target: str = "",
            passed: bool | None = None) -> Row:
        ratio = paired_ratio(seconds[slower], seconds[faster])
        return Row(SECTION, f"{spec.name} {name}", fmt_rate(rates(seconds[faster], work)),
                   fmt_ratio(ratio), target, passed, note)

    bf16_speedup = paired_ratio(seconds["fp32"], seconds["bf16"]).median
    auto_dtype, reason = choose_precision("auto", torch.device("cpu"), spec.d_model)
    auto_is_bf16 = auto_dtype is not None
    return [
        row("bf16 autocast vs fp32", "fp32", "bf16",
            "speed ratio (>1: bf16 faster); attention path as the rule picks"),
        row("bf16: explicit attention (the rule's pick) vs SDPA", "bf16 SDPA", "bf16",
            "speed ratio (>1: explicit faster)"),
        row("fp32: explicit path with weights vs fused", "fp32", "fp32 explicit (weights)",
            "speed ratio (<1: explicit slower)"),
        Row(SECTION, f"{spec.name} precision='auto' picks", "bf16" if auto_is_bf16 else "fp32",
            f"{bf16_speedup:.2f}x", "the faster one",
            auto_is_bf16 == (bf16_speedup > 1.0),
            f"{reason}; ratio = bf16 speed / fp32 speed measured above"),
    ]


class _FakeTask:
    """Just enough of a Task for mt.Trainer: fixed random batches, no padding."""

    kind = "seq2seq"

    def __init__(self, batches):
        self._batches = [mt.Batch(src, tgt_in, tgt_out, int(tgt_out.numel()))
                         for src, tgt_in, tgt_out in batches]

    def batches(self, split: str, batch_size: int, **options):
        return iter(self._batches)


class _TrainerSteps:
    """A Trainer behind TrainLoop's `run(steps)`."""

    def __init__(self, trainer: mt.Trainer):
        self.trainer = trainer

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.trainer.step()


def trainer_overhead(spec: Spec, plan: Plan) -> list[Row]:
    """mt.Trainer.step (grad clipping, its own RNG stream, metrics) against the bare step,
    both in fp32 (precision="auto" would train this size in bf16 on some CPUs)."""
    batches = make_batches(spec)
    bare_model = build_ours(spec)
    bare = TrainLoop(bare_model, ours_forward(bare_model), batches)
    trainer = mt.Trainer(build_ours(spec), _FakeTask(batches),
                         mt.TrainConfig.classroom(device="cpu", progress=False,
                                                  batch_size=spec.batch, precision="fp32"))

    seconds = race({"bare": bare, "trainer": _TrainerSteps(trainer)}, plan)
    ratio = paired_ratio(seconds["bare"], seconds["trainer"])
    rate = rates(seconds["trainer"], spec.tokens_per_step * plan.steps)
    return [Row(SECTION, f"{spec.name} mt.Trainer.step vs the bare step, fp32", fmt_rate(rate),
                fmt_ratio(ratio), note="speed ratio; Trainer adds grad clipping, RNG, metrics")]


# ---- torch.compile (in a subprocess, with a time limit) --------------------------------------
COMPILE_TIMEOUT_S = 480


def compile_rows(quick: bool) -> list[Row]:
    section = "compile"  # its own section in run_all
    if quick:
        return [Row(section, "torch.compile on/off", "skipped", note="not run with --quick")]
    rows = []
    for spec in (ENCDEC, DECONLY):
        started = time.perf_counter()
        try:
            result = run_worker("benchmarks.throughput", ["--compile-worker", spec.name],
                                timeout=COMPILE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            rows.append(Row(section, f"{spec.name} torch.compile vs eager, train step",
                            "not measured", note=f"compile + timing took over "
                            f"{COMPILE_TIMEOUT_S} s here"))
            continue
        except RuntimeError as error:
            rows.append(Row(section, f"{spec.name} torch.compile vs eager, train step",
                            "failed", note=str(error).splitlines()[-1][:160]))
            continue
        ratio = Stat(*result["ratio"])
        rate = Stat(*result["compiled_tokens_per_s"])
        worker_s = time.perf_counter() - started
        rows.append(Row(section, f"{spec.name} torch.compile vs eager, train step",
                        fmt_rate(rate), fmt_ratio(ratio),
                        note=f"speed ratio; compiling took {result['compile_s']:.0f} s "
                        f"(whole worker {worker_s:.0f} s)"))
    return rows


def compile_worker(spec_name: str) -> None:
    """Eager vs torch.compile(model), interleaved; prints one JSON line."""
    set_threads()
    spec = {s.name: s for s in (ENCDEC, DECONLY)}[spec_name]
    plan = SHORT
    batches = make_batches(spec)
    eager_model = build_ours(spec)
    eager = TrainLoop(eager_model, ours_forward(eager_model), batches)
    model = build_ours(spec)
    compiled_model = torch.compile(model)
    compiled = TrainLoop(model, lambda s, t: compiled_model(s, t).logits, batches)
    started = time.perf_counter()
    compiled.run(2)  # compiles forward and backward
    compile_s = time.perf_counter() - started
    seconds = race({"eager": eager, "compiled": compiled}, plan)
    ratio = paired_ratio(seconds["eager"], seconds["compiled"])
    rate = rates(seconds["compiled"], spec.tokens_per_step * plan.steps)
    print(json.dumps({"ratio": [ratio.median, ratio.low, ratio.high],
                      "compiled_tokens_per_s": [rate.median, rate.low, rate.high],
                      "compile_s": compile_s}))


# ---- profile: where does the time go? --------------------------------------------------------
def profile(spec: Spec, steps: int = 5, rows: int = 25) -> None:
    """Print the top ops by self CPU time for ours and the peer (same batches)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    batches = make_batches(spec)
    ours_model, peer_model = build_ours(spec), build_peer(spec)
    for name, loop in (("ours", TrainLoop(ours_model, ours_forward(ours_model), batches)),
                       ("peer", TrainLoop(peer_model, peer_forward(peer_model), batches))):
        loop.run(2)
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            loop.run(steps)
        print(f"\n=== {spec.name} {name}: {steps} train steps ===")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


# ---- entry points ----------------------------------------------------------------------------
def run(quick: bool = False, context: dict | None = None) -> list[Row]:
    context = {} if context is None else context
    main_plan, short_plan = (QUICK, QUICK) if quick else (FULL, SHORT)
    encdec, deconly = (quick_spec(ENCDEC), quick_spec(DECONLY)) if quick else (ENCDEC, DECONLY)
    # Each model with its own dropout placement at P_drop 0.1: ours where the paper puts it
    # (sub-layer outputs, embeddings); nn.Transformer also inside the feed-forward and on the
    # attention weights; nanoGPT also on the attention weights. Then the same work each way.
    rows = versus_peer(encdec, main_plan, "nn.Transformer", 1.10, context)
    rows += versus_peer(deconly, main_plan, "nanoGPT-style", 1.00, context)
    rows += versus_peer(replace(encdec, name="enc-dec dropout 0 (same work)", dropout=0.0),
                        short_plan, "nn.Transformer", None, context)
    rows += versus_peer(replace(deconly, name="dec-only dropout 0 (same work)", dropout=0.0),
                        short_plan, "nanoGPT-style", None, context)
    rows += versus_peer(replace(deconly, name="dec-only attention dropout 0.1 (same work)",
                                attention_dropout=deconly.dropout),
                        short_plan, "nanoGPT-style", None, context)
    for spec in (quick_spec(TINY) if quick else TINY, encdec, deconly):
        rows += precision_and_path(spec, short_plan)
    rows += trainer_overhead(encdec, short_plan)
    return rows


def run_compile(quick: bool = False, context: dict | None = None) -> list[Row]:
    """torch.compile on/off (its own section in run_all: it takes minutes)."""
    return compile_rows(quick)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat")
    parser.add_argument("--profile", action="store_true", help="top ops, ours vs peer")
    parser.add_argument("--compile-worker", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.compile_worker:
        compile_worker(args.compile_worker)
        return
    set_threads(args.quick)
    print(machine_header(), flush=True)
    if args.profile:
        for spec in (ENCDEC, DECONLY):
            profile(quick_spec(spec) if args.quick else spec)
        return
    rows = run(quick=args.quick) + run_compile(quick=args.quick)
    print(format_table(rows))
    print(summary_line(rows))


if __name__ == "__main__":
    sys.exit(main())
