"""Checkpoints as a directory: weights in safetensors, everything else in JSON, written atomically.

    run/
      model.safetensors      weights (no pickle)
      config.json            model config, train config, task name and options
      src_tokenizer.json     tokenizers (JSON)
      tgt_tokenizer.json
      metrics.json           the training history
      trainer_state.pt       optimizer + RNG + step (tensors and numbers: loaded weights_only=True)

The whole directory is written under a temporary name and renamed into place, so a crash
mid-save never leaves a half-written checkpoint behind the final name.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_model, save_model
from torch import nn

from .config import ModelConfig, TrainConfig
from .model import Transformer, build_model

FORMAT = "minitransformer-checkpoint"
VERSION = 1
WEIGHTS, CONFIG, METRICS, TRAINER_STATE = (
    "model.safetensors", "config.json", "metrics.json", "trainer_state.pt")
SRC_TOKENIZER, TGT_TOKENIZER = "src_tokenizer.json", "tgt_tokenizer.json"
REQUIRED = (WEIGHTS, CONFIG)


@dataclass
class Checkpoint:
    """What `load(directory)` gives back."""

    path: Path
    model: Transformer
    src_tokenizer: Any = None
    tgt_tokenizer: Any = None
    history: list[dict[str, Any]] = field(default_factory=list)
    train_config: TrainConfig | None = None
    task: dict[str, Any] | None = None  # {"name", "options", "seed"}
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> ModelConfig:
        return self.model.config


def save(model: Transformer, directory: str | os.PathLike, *, src_tokenizer: Any = None,
         tgt_tokenizer: Any = None, history: list | None = None,
         train_config: TrainConfig | None = None, task: Any = None,
         trainer_state: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint directory atomically; returns its path."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        save_model(model, str(tmp / WEIGHTS))
        meta = {
            "format": FORMAT, "version": VERSION,
            "model": model.config.to_dict(),
            "train": train_config.to_dict() if train_config is not None else None,
            "task": _task_info(task),
            "extra": extra or {},
        }
        _write_json(tmp / CONFIG, meta)
        _write_json(tmp / METRICS, history or [])
        if src_tokenizer is not None:
            src_tokenizer.save(tmp / SRC_TOKENIZER)
        if tgt_tokenizer is not None:
            tgt_tokenizer.save(tmp / TGT_TOKENIZER)
        if trainer_state is not None:
            torch.save(trainer_state, tmp / TRAINER_STATE)
        _make_readable(tmp)
        _swap_into_place(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def load(directory: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint directory written by `save` / `Trainer.save`. Never unpickles code."""
    from .tokenizer import load_tokenizer

    directory = _check_directory(directory)
    meta = json.loads((directory / CONFIG).read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{directory / CONFIG} is not a minitransformer checkpoint config")
    model = build_model(ModelConfig.from_dict(_upgrade_model_config(meta["model"])))
    load_weights(model, directory)
    model.to(device)
    tokenizers = {name: load_tokenizer(directory / name) if (directory / name).is_file() else None
                  for name in (SRC_TOKENIZER, TGT_TOKENIZER)}
    metrics = directory / METRICS
    return Checkpoint(
        path=directory, model=model,
        src_tokenizer=tokenizers[SRC_TOKENIZER], tgt_tokenizer=tokenizers[TGT_TOKENIZER],
        history=json.loads(metrics.read_text(encoding="utf-8")) if metrics.is_file() else [],
        train_config=TrainConfig.from_dict(meta["train"]) if meta.get("train") else None,
        task=meta.get("task"), extra=meta.get("extra") or {},
    )


def _upgrade_model_config(fields: dict) -> dict:
    """Fill in fields added since the checkpoint was written, as they behaved then."""
    # Before `attention_dropout` existed, attention weights were dropped at the `dropout` rate.
    return {"attention_dropout": fields.get("dropout", 0.0), **fields}


def load_weights(model: nn.Module, directory: str | os.PathLike) -> None:
    """Load a checkpoint's weights into `model`; a shape or name mismatch is a ValueError that
    names the tensors (e.g. a checkpoint trained with another d_model or vocabulary)."""
    directory = _check_directory(directory)
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    with safe_open(str(directory / WEIGHTS), framework="pt") as f:
        stored = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
    wrong = [f"{n}: checkpoint {stored[n]} vs model {expected[n]}"
             for n in stored if n in expected and stored[n] != expected[n]]
    unknown = sorted(set(stored) - set(expected))
    if wrong or unknown:
        lines = wrong[:5] + [f"{n}: in the checkpoint but not in the model" for n in unknown[:5]]
        raise ValueError(f"checkpoint {directory} does not fit this model "
                         f"({len(wrong)} shape mismatches, {len(unknown)} unknown tensors):\n  "
                         + "\n  ".join(lines))
    missing, unexpected = load_model(model, str(directory / WEIGHTS), strict=False)
    if missing:  # tied weights are stored once; anything else missing is an error
        tied = {n for n in missing if _is_tied(model, n)}
        if set(missing) - tied:
            raise ValueError(f"checkpoint {directory} lacks tensors {sorted(set(missing) - tied)}")


def load_trainer_state(directory: str | os.PathLike) -> dict[str, Any]:
    """The optimizer/RNG/step state, read with `weights_only=True` (no arbitrary code)."""
    path = _check_directory(directory) / TRAINER_STATE
    if not path.is_file():
        raise ValueError(f"checkpoint {directory} has no {TRAINER_STATE}: it holds weights "
                         f"only and cannot resume training; use mt.load() for the model")
    return torch.load(path, map_location="cpu", weights_only=True)


# ---- helpers ---------------------------------------------------------------------------------
def _check_directory(directory: str | os.PathLike) -> Path:
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint directory {str(directory)!r} does not exist")
    missing = [name for name in REQUIRED if not (directory / name).is_file()]
    if missing:
        present = sorted(p.name for p in directory.iterdir())
        raise ValueError(f"checkpoint directory {str(directory)!r} is incomplete: missing "
                         f"{missing}; it holds {present}")
    return directory


def _task_info(task: Any) -> dict[str, Any] | None:
    if task is None:
        return None
    return {"name": getattr(task, "name", None), "options": dict(getattr(task, "options", {})),
            "seed": getattr(task, "seed", 0)}


def _is_tied(model: nn.Module, name: str) -> bool:
    state = model.state_dict()
    ptr = state[name].data_ptr()
    return any(other != name and t.data_ptr() == ptr for other, t in state.items())


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=_jsonable) + "\n", encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _make_readable(directory: Path) -> None:
    """mkdtemp/mkstemp create owner-only entries; a checkpoint is shared like any file."""
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)


def _swap_into_place(tmp: Path, directory: Path) -> None:
    """Rename the finished temporary directory to `directory`, replacing an older one."""
    old = None
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
        os.replace(directory, old)
    os.replace(tmp, directory)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---- trainers ------------------------------------------------------------------------------
def save_trainer(trainer: Any, directory: str | os.PathLike) -> Path:
    """Everything needed to resume `trainer` exactly (used by `Trainer.save`)."""
    task = trainer.task
    return save(trainer.model, directory,
                src_tokenizer=getattr(task, "src_tokenizer", None),
                tgt_tokenizer=getattr(task, "tgt_tokenizer", None),
                history=trainer.history, train_config=trainer.config, task=task,
                trainer_state={"optimizer": trainer.optimizer.state_dict(),
                               **trainer._extra_state()})


def load_trainer(directory: str | os.PathLike, task: Any = None, **config_changes: Any) -> Any:
    """A Trainer that continues from `directory` (used by `Trainer.from_checkpoint`)."""
    from .trainer import Trainer

    state = load_trainer_state(directory)
    ckpt = load(directory)
    if task is None:
        task = _rebuild_task(ckpt)
    train_config = (ckpt.train_config or TrainConfig()).replace(**config_changes)
    trainer = Trainer(ckpt.model, task, train_config)
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer._load_extra_state(state)
    trainer.history = list(ckpt.history)
    return trainer


def _rebuild_task(ckpt: Checkpoint) -> Any:
    from .tasks import get_task, list_tasks

    info = ckpt.task or {}
    name = info.get("name")
    if name not in list_tasks():
        raise ValueError(f"checkpoint {ckpt.path} was trained on task {name!r}, which is not a "
                         f"built-in task; pass the task: Trainer.from_checkpoint(dir, task=...)")
    return get_task(name, seed=info.get("seed", 0), **info.get("options", {}))
