"""Small helpers: seeding, device choice, parameter counting."""

from __future__ import annotations

import os
import random

import numpy as np
import torch
from torch import nn

DEVICES = ("auto", "cpu", "cuda", "mps")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so runs repeat on the same machine."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def choose_device(device: str | torch.device | None = None) -> torch.device:
    """Resolve a device name. `None` reads the env var MT_DEVICE (default "auto").

    "auto" picks cuda, then mps, then cpu; asking for a device that is absent is an error.
    """
    if isinstance(device, torch.device):
        return device
    name = (device if device is not None else os.environ.get("MT_DEVICE", "auto")).lower()
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise ValueError(f"device {name!r} is not known; choose one of {', '.join(DEVICES)}")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is visible; use 'cpu'")
    if kind == "mps" and not _mps_available():
        raise ValueError("device 'mps' was asked for but Apple MPS is not available; use 'cpu'")
    return torch.device(name)


def _mps_available() -> bool:
    return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters; tied (shared) tensors are counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
