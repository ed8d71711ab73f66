"""One-GPU check, under 4 minutes: correctness against the CPU, then speed at the paper's sizes.

    bash benchmarks/gpu_check.sh            # prints a table; paste it into benchmarks/RESULTS.md

1. Correctness: the same tiny training (reverse task, dropout 0, fp32, 30 steps) on CPU and on
   the GPU gives loss curves within 2e-3 (kernels differ in summation order; TF32 is off).
2. Speed: training steps of paper_base and paper_big (vocab 37000, length 64, bf16 autocast,
   fused attention, fused Adam) -> target tokens/s and MFU.
   FLOPs per step = 6 x matmul parameters x tokens + attention terms (forward + backward:
   12 x layers x d_model x T_q x T_k per sequence for every attention block), counted for both
   encoder and decoder tokens. MFU = achieved FLOP/s / peak, with the peak both measured here
   (best bf16 8192^3 matmul) and taken from the spec sheet (H100/H200 SXM: 989 TFLOP/s dense bf16).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import minitransformer as mt  # noqa: E402

SPEC_PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def loss_curve(device: str, steps: int = 30) -> list[float]:
    task = mt.get_task("reverse", n_train=512, n_valid=32, n_test=32)
    mt.seed_everything(0)
    model = mt.build_model(mt.ModelConfig.tiny(vocab_size=task.tgt_vocab_size, dropout=0.0))
    cfg = mt.TrainConfig.classroom(batch_size=32, progress=False, device=device, precision="fp32")
    trainer = mt.Trainer(model, task, cfg)
    return [m["loss"] for m in trainer.run(steps)]


def matmul_peak(n: int = 8192, repeats: int = 10) -> float:
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    best = float("inf")
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ b
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def step_flops(cfg: mt.ModelConfig, batch: int, length: int) -> float:
    """6 x matmul params x tokens + attention score/value matmuls (forward + backward)."""
    d, v = cfg.d_model, cfg.tgt_vocab_size
    per_enc = 4 * d * d + 2 * d * cfg.d_ff
    per_dec = 8 * d * d + 2 * d * cfg.d_ff
    matmul_params_enc = cfg.n_encoder_layers * per_enc
    matmul_params_dec = cfg.n_decoder_layers * per_dec + d * v  # + output projection
    tokens = batch * length
    dense = 6 * tokens * (matmul_params_enc + matmul_params_dec)
    attn_blocks = cfg.n_encoder_layers + 2 * cfg.n_decoder_layers
    attention = 12 * attn_blocks * d * length * length * batch
    return dense + attention


def throughput(cfg: mt.ModelConfig, batch: int, length: int, steps: int = 15) -> float:
    model = mt.build_model(cfg).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9, fused=True)
    src = torch.randint(4, cfg.tgt_vocab_size, (batch, length), device="cuda")
    tgt = torch.randint(4, cfg.tgt_vocab_size, (batch, length + 1), device="cuda")
    times = []
    for i in range(steps + 3):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(src, tgt[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), tgt[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def main() -> None:
    if not torch.cuda.is_available():
        sys.exit("no CUDA GPU visible; this check needs one")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    name = torch.cuda.get_device_name()
    print(f"# GPU check: {name}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    cpu, gpu = loss_curve("cpu"), loss_curve("cuda")
    worst = max(abs(a - b) for a, b in zip(cpu, gpu, strict=True))
    print(f"correctness: 30-step loss curves CPU vs GPU, max |diff| = {worst:.2e} "
          f"(tolerance 2e-3): {'PASS' if worst < 2e-3 else 'FAIL'}")
    measured = matmul_peak()
    spec = next((p for key, p in SPEC_PEAK_BF16.items() if key in name), None)
    print(f"bf16 matmul peak measured: {measured / 1e12:.0f} TFLOP/s; spec sheet: "
          f"{spec / 1e12:.0f} TFLOP/s" if spec else "(no spec-sheet figure for this GPU)")
    print("| model | params | batch x length | step ms | target tok/s | TFLOP/s | "
          "MFU (measured peak) | MFU (spec) |")
    print("|---|---|---|---|---|---|---|---|")
    for preset, batch in (("paper_base", 128), ("paper_big", 64)):
        cfg = getattr(mt.ModelConfig, preset)(vocab_size=37000)
        length = 64
        seconds = throughput(cfg, batch, length)
        flops = step_flops(cfg, batch, length) / seconds
        params = mt.count_parameters(mt.build_model(cfg))
        spec_mfu = f"{flops / spec:.1%}" if spec else "-"
        print(f"| {preset} | {params / 1e6:.0f}M | {batch} x {length} | {seconds * 1e3:.1f} | "
              f"{batch * length / seconds:,.0f} | {flops / 1e12:.0f} | {flops / measured:.1%} | "
              f"{spec_mfu} |")
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
