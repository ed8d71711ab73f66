"""Run by tests/test_distributed.py: a few training steps, under torchrun or alone.

    python -m torch.distributed.run --nproc_per_node=2 ddp_worker.py OUT 8    # 2 ranks x 8 rows
    python ddp_worker.py OUT 16                                                # 1 process, 16 rows
Each process saves its final weights and its losses to OUT/rank{R}.pt.
"""

import sys
from pathlib import Path

import torch

import minitransformer as mt
from minitransformer.distributed import init_from_env, world


def main(out: str, batch_size: int) -> None:
    torch.set_num_threads(1)
    device = init_from_env() or torch.device("cpu")
    task = mt.get_task("reverse", n_train=96, n_valid=8, n_test=8, max_len=6)
    mt.seed_everything(0)
    model = mt.build_model(mt.ModelConfig.tiny(vocab_size=task.tgt_vocab_size, d_model=32,
                                               n_heads=2, d_ff=64, dropout=0.0))
    config = mt.TrainConfig.classroom(batch_size=batch_size, progress=False, device=str(device))
    trainer = mt.Trainer(model, task, config)
    trainer.run(8)  # crosses an epoch boundary: 96 rows / 16 per step = 6 steps an epoch
    rank = world()[0]
    torch.save({"state": model.state_dict(), "losses": [m["loss"] for m in trainer.history]},
               Path(out) / f"rank{rank}.pt")
    if world()[1] > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
