"""Training past one machine with PyTorch's own engine (DistributedDataParallel).

    torchrun --nproc_per_node=2 -m minitransformer train --task reverse --steps 500 --out runs/r

Every rank draws the same global batch (batch_size x world_size rows, same seed) and keeps its
own contiguous slice; gradients are averaged by DDP. Losses are normalised by the global count
of target tokens, so the update equals a single process training on the combined batch.
Only rank 0 shows progress and writes checkpoints. NCCL on GPUs, Gloo on CPUs.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from .batching import Batch


def world() -> tuple[int, int]:
    """(rank, world_size); (0, 1) when not running distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return world()[0] == 0


def init_from_env() -> torch.device | None:
    """Join the process group torchrun describes (env WORLD_SIZE > 1); returns this rank's
    device, or None when not launched by torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    use_cuda = torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def shard(batch: Batch, rank: int, world_size: int, pad_id: int = 0) -> Batch:
    """This rank's contiguous slice of a global batch (rows rank*B .. (rank+1)*B - 1)."""
    per_rank = batch.batch_size // world_size
    rows = slice(rank * per_rank, (rank + 1) * per_rank)
    tgt_out = batch.tgt_out[rows]
    n_tokens = int((tgt_out != pad_id).sum())
    src = None if batch.src is None else batch.src[rows]
    return Batch(src, batch.tgt_in[rows], tgt_out, n_tokens)


def all_reduce_sum(*values: float, device: torch.device) -> list[float]:
    """Sum numbers over ranks (identity when not distributed)."""
    if world()[1] == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()
