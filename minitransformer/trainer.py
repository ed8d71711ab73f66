"""A trainer you can step, pause and resume -- inside a notebook.

    trainer = Trainer(model, mt.get_task("reverse"), TrainConfig.classroom())
    trainer.run(300)          # a progress bar; the notebook's stop button ends it cleanly
    trainer.evaluate()        # loss, token accuracy, sequence accuracy (+ BLEU for translation)
    trainer.run(300)          # continues: optimizer, schedule, data order, RNG, step count

`run(a); run(b)` gives exactly the losses of `run(a + b)`: the data order is a function of
(seed, epoch) and the dropout RNG stream belongs to the trainer, untouched by other cells.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .batching import Batch
from .config import TrainConfig
from .distributed import all_reduce_sum, shard, world
from .precision import choose_precision
from .schedules import constant_lr, cosine_lr, noam_lr
from .utils import choose_device

CALLBACK_EVENTS = ("on_step_end", "on_eval_end", "on_run_end")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; no update was applied for that step."""


@dataclass
class TrainState:
    """Where training stands: enough, with the weights and optimizer, to resume exactly."""

    step: int = 0  # updates applied
    epoch: int = 0  # passes over the training split started
    batch_in_epoch: int = 0  # batches of the current epoch consumed
    tokens_seen: int = 0  # non-pad target tokens trained on


class Trainer:
    """Trains `model` on `task` with `config`; see the module docstring."""

    def __init__(self, model: nn.Module, task: Any, config: TrainConfig | None = None):
        self.config = config if config is not None else TrainConfig()
        self.task = task
        self.device = choose_device(self.config.device)
        self.model = model.to(self.device)
        self.rank, self.world_size = world()
        self._forward_model = self.model  # DistributedDataParallel wrapper when distributed
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self._forward_model = DistributedDataParallel(self.model)
        if self.config.compile:
            self._forward_model = torch.compile(self._forward_model, dynamic=True)
        self.state = TrainState()
        self.history: list[dict[str, Any]] = []
        self.callbacks: list[Any] = []
        self.optimizer = self._make_optimizer()
        d_model = getattr(getattr(model, "config", None), "d_model", None)
        self._autocast_dtype, self.precision_reason = choose_precision(
            self.config.precision, self.device, d_model)
        self._batches: Iterator[Batch] | None = None
        self._rng_state = self._initial_rng_state()
        self._stop = threading.Event()
        self._set_lr(self.lr_at(1))

    # ---- set-up --------------------------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        params = [p for p in self.model.parameters() if p.requires_grad]
        kind = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
        extra = {"fused": True} if self.device.type == "cuda" else {}
        return kind(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                    weight_decay=cfg.weight_decay, **extra)

    @property
    def precision(self) -> str:
        """"bf16" (autocast) or "fp32": what `config.precision` resolved to on this machine;
        `precision_reason` says why."""
        return "fp32" if self._autocast_dtype is None else "bf16"

    def _initial_rng_state(self) -> dict[str, Tensor | None]:
        with torch.random.fork_rng(devices=self._rng_devices()):
            torch.manual_seed(self.config.seed)
            return self._capture_rng()

    def _rng_devices(self) -> list[torch.device]:
        return [self.device] if self.device.type == "cuda" else []

    def _capture_rng(self) -> dict[str, Tensor | None]:
        cuda = torch.cuda.get_rng_state(self.device) if self._rng_devices() else None
        return {"cpu": torch.get_rng_state(), "cuda": cuda}

    # ---- callbacks -----------------------------------------------------------------------------
    def add_callback(self, callback: Any) -> Any:
        """Register an object with any of on_step_end(trainer, metrics),
        on_eval_end(trainer, metrics), on_run_end(trainer); a plain function is on_step_end."""
        if not any(hasattr(callback, e) for e in CALLBACK_EVENTS):
            if not callable(callback):
                raise TypeError(f"a callback needs one of {CALLBACK_EVENTS} or to be callable; "
                                f"got {callback!r}")
            callback = _FunctionCallback(callback)
        self.callbacks.append(callback)
        return callback

    def _fire(self, event: str, *args: Any) -> None:
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, *args)

    # ---- learning rate -------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        """Learning rate of update number `step` (1-based)."""
        cfg = self.config
        if cfg.schedule == "noam":
            return noam_lr(step, self.model.config.d_model, cfg.warmup_steps, cfg.lr_scale)
        if cfg.schedule == "cosine":
            return cosine_lr(step, cfg.lr, cfg.warmup_steps, cfg.total_steps)
        return constant_lr(step, cfg.lr, cfg.warmup_steps)

    def _set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    # ---- data --------------------------------------------------------------------------------
    def _epoch_batches(self, epoch: int) -> Iterator[Batch]:
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        global_batch = self.config.batch_size * self.world_size  # every rank draws the same
        return iter(self.task.batches("train", global_batch, generator=generator,
                                      shuffle=True, drop_last=self.world_size > 1))

    def _next_batch(self) -> Batch:
        if self._batches is None:  # first call, or resumed from a checkpoint
            self._batches = self._epoch_batches(self.state.epoch)
            for _ in range(self.state.batch_in_epoch):
                next(self._batches, None)
        batch = next(self._batches, None)
        if batch is None:
            self.state.epoch += 1
            self.state.batch_in_epoch = 0
            self._batches = self._epoch_batches(self.state.epoch)
            batch = next(self._batches, None)
            if batch is None:
                raise ValueError(f"the task's train split gave no batch of size "
                                 f"{self.config.batch_size}; is it empty?")
        self.state.batch_in_epoch += 1
        if self.world_size > 1:
            batch = shard(batch, self.rank, self.world_size, self.model.config.pad_id)
        if self.device.type == "cuda":
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch.to(self.device)

    @contextlib.contextmanager
    def _own_rng(self):
        """Run with the trainer's own RNG stream (dropout), leaving the global one untouched."""
        with torch.random.fork_rng(devices=self._rng_devices()):
            torch.set_rng_state(self._rng_state["cpu"])
            if self._rng_state["cuda"] is not None:
                torch.cuda.set_rng_state(self._rng_state["cuda"], self.device)
            yield
            self._rng_state = self._capture_rng()

    def _autocast(self):
        if self._autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self._autocast_dtype)

    # ---- training ------------------------------------------------------------------------------
    def step(self) -> dict[str, Any]:
        """One update on the next training batch; returns its metrics (also in `history`)."""
        started = time.perf_counter()
        step = self.state.step + 1
        lr = self.lr_at(step)
        batch = self._next_batch()
        self.model.train()
        with self._own_rng():
            with self._autocast():
                logits = self._forward_model(batch.src, batch.tgt_in).logits  # (B, T, V)
            loss, value, n_tokens = self._loss(logits, batch)
            if not math.isfinite(value):
                self.optimizer.zero_grad(set_to_none=True)
                raise NonFiniteLossError(
                    f"the loss became {value} at step {step} (lr {lr:.3g}); no update was "
                    f"applied. Lower the learning rate or raise warmup_steps, then run() again.")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = None
            if self.config.grad_clip is not None:
                grad_norm = float(nn.utils.clip_grad_norm_(self.model.parameters(),
                                                           self.config.grad_clip))
            if grad_norm is not None and not math.isfinite(grad_norm):
                self.optimizer.zero_grad(set_to_none=True)
                raise NonFiniteLossError(
                    f"the gradients became {grad_norm} at step {step} (loss {value:.4g}); no "
                    f"update was applied. Lower the learning rate, then run() again.")
            self._set_lr(lr)
            self.optimizer.step()
        self.state.step = step
        self.state.tokens_seen += n_tokens
        seconds = time.perf_counter() - started
        metrics = {"step": step, "loss": value, "lr": lr, "grad_norm": grad_norm,
                   "tokens": n_tokens, "tokens_per_s": n_tokens / seconds, "seconds": seconds}
        self.history.append(metrics)
        self._fire("on_step_end", metrics)
        if self.config.eval_every and step % self.config.eval_every == 0:
            self.evaluate()
        return metrics

    def _loss(self, logits: Tensor, batch: Batch) -> tuple[Tensor, float, int]:
        """(loss to backpropagate, mean loss per target token, target tokens) of the global
        batch. Distributed: each rank's sum is divided by the global token count (times the
        world size, which DDP's gradient averaging divides out again)."""
        total = F.cross_entropy(logits.float().flatten(0, 1), batch.tgt_out.flatten(),
                                ignore_index=self.model.config.pad_id, reduction="sum",
                                label_smoothing=self.config.label_smoothing)
        if self.world_size == 1:
            return total / batch.n_tokens, total.item() / batch.n_tokens, batch.n_tokens
        loss_sum, n_tokens = all_reduce_sum(total.item(), batch.n_tokens, device=self.device)
        return total * (self.world_size / n_tokens), loss_sum / n_tokens, int(n_tokens)

    def run(self, steps: int, progress: bool | None = None) -> list[dict[str, Any]]:
        """Train `steps` more updates (callable again: it continues). Returns their metrics.

        Ctrl-C / the notebook's stop button, or `request_stop()` from another thread, ends the
        run after the current step, with model and optimizer consistent and resumable."""
        if not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0:
            raise ValueError(f"run(steps) needs a positive integer number of steps, got {steps!r}")
        show = (self.config.progress if progress is None else progress) and self.rank == 0
        self._stop.clear()
        done: list[dict[str, Any]] = []
        bar = _progress_bar(steps, self.state.step, self.precision, show)
        last_refresh = 0.0
        try:
            with _stop_on_interrupt(self._stop):
                for _ in range(steps):
                    if self._stop.is_set():
                        break
                    metrics = self.step()
                    done.append(metrics)
                    bar.update(1)
                    if time.monotonic() - last_refresh > 0.25:
                        last_refresh = time.monotonic()
                        bar.set_postfix(loss=f"{metrics['loss']:.3f}",
                                        tok_s=f"{metrics['tokens_per_s']:,.0f}", refresh=False)
        finally:
            bar.close()
        if self._stop.is_set() and len(done) < steps:
            print(f"stopped after step {self.state.step}; call run() again to continue")
        self._fire("on_run_end")
        return done

    def request_stop(self) -> None:
        """Ask a running `run()` (e.g. in a background thread) to return after this step."""
        self._stop.set()

    # ---- evaluation ----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, split: str = "valid", max_examples: int | None = None) -> dict[str, Any]:
        """Loss (no smoothing), token accuracy and sequence accuracy with teacher forcing.

        Sequence accuracy counts rows whose every target token (and EOS) is the argmax; such a
        row is exactly what greedy decoding would produce, so this is greedy exact match.
        Translation tasks also get corpus BLEU (sacrebleu) of greedy decodes."""
        was_training = self.model.training
        self.model.eval()
        totals = {"loss": 0.0, "tokens": 0, "correct": 0, "rows": 0, "rows_correct": 0}
        pad = self.model.config.pad_id
        try:
            for batch in self._eval_batches(split, max_examples):
                with self._autocast():
                    logits = self.model(batch.src, batch.tgt_in).logits
                real = batch.tgt_out != pad  # (B, T)
                loss = F.cross_entropy(logits.float().flatten(0, 1), batch.tgt_out.flatten(),
                                       ignore_index=pad, reduction="sum")
                right = (logits.argmax(-1) == batch.tgt_out) & real
                totals["loss"] += float(loss)
                totals["tokens"] += int(real.sum())
                totals["correct"] += int(right.sum())
                totals["rows"] += batch.batch_size
                totals["rows_correct"] += int((right == real).all(dim=1).sum())
            metrics: dict[str, Any] = {
                "step": self.state.step, "split": split,
                f"{split}_loss": totals["loss"] / max(totals["tokens"], 1),
                f"{split}_token_acc": totals["correct"] / max(totals["tokens"], 1),
                f"{split}_seq_acc": totals["rows_correct"] / max(totals["rows"], 1),
            }
            if getattr(self.task, "is_translation", False):
                metrics[f"{split}_bleu"] = self._bleu(split, max_examples)
        finally:
            self.model.train(was_training)
        self.history.append(metrics)
        self._fire("on_eval_end", metrics)
        return metrics

    def _eval_batches(self, split: str, max_examples: int | None) -> Iterator[Batch]:
        seen = 0
        for batch in self.task.batches(split, self.config.eval_batch_size, shuffle=False):
            if max_examples is not None and seen >= max_examples:
                return
            if max_examples is not None and seen + batch.batch_size > max_examples:
                batch = _first_rows(batch, max_examples - seen, self.model.config.pad_id)
            seen += batch.batch_size
            yield batch.to(self.device)

    def _bleu(self, split: str, max_examples: int | None) -> float:
        import sacrebleu

        from .decoding import greedy_decode

        tokenizer = self.task.tgt_tokenizer
        hypotheses, references = [], []
        for batch in self._eval_batches(split, max_examples):
            result = greedy_decode(self.model, batch.src,
                                   max_new_tokens=batch.tgt_out.size(1) + 8)
            hypotheses += [tokenizer.decode(row.tolist()) for row in result.tokens]
            references += [tokenizer.decode(row.tolist()) for row in batch.tgt_out]
        return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)

    # ---- checkpoints -------------------------------------------------------------------------
    def save(self, directory: str):
        """Write a resumable checkpoint directory (atomically); see `minitransformer.checkpoint`."""
        from .checkpoint import save_trainer

        if self.rank != 0:  # one writer; the others wait so no rank reads a half-written dir
            torch.distributed.barrier()
            return directory
        path = save_trainer(self, directory)
        if self.world_size > 1:
            torch.distributed.barrier()
        return path

    @classmethod
    def from_checkpoint(cls, directory: str, task: Any = None, **config_changes: Any) -> Trainer:
        """Resume training from `directory`; the task is rebuilt by name unless given."""
        from .checkpoint import load_trainer

        return load_trainer(directory, task=task, **config_changes)

    # state a checkpoint needs beyond weights and optimizer
    def _extra_state(self) -> dict[str, Any]:
        return {"state": asdict(self.state), "rng_state": self._rng_state}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self.state = TrainState(**extra["state"])
        saved = extra["rng_state"]
        # a CUDA RNG state saved on a GPU means nothing on a CPU: keep the one this trainer has
        cuda = saved.get("cuda") if self._rng_devices() else None
        self._rng_state = {"cpu": saved["cpu"],
                           "cuda": cuda if cuda is not None else self._rng_state["cuda"]}
        self._batches = None


def _first_rows(batch: Batch, n: int, pad_id: int) -> Batch:
    """The first `n` rows of `batch` (padding columns may remain; they are masked anyway)."""
    src = None if batch.src is None else batch.src[:n]
    tgt_out = batch.tgt_out[:n]
    return Batch(src, batch.tgt_in[:n], tgt_out, int((tgt_out != pad_id).sum()))


class _FunctionCallback:
    def __init__(self, fn: Callable[[Trainer, dict[str, Any]], None]):
        self.fn = fn

    def on_step_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self.fn(trainer, metrics)


def _progress_bar(total: int, initial_step: int, precision: str, show: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not show,
                desc=f"training ({precision}) from step {initial_step}", unit="step",
                dynamic_ncols=True)


@contextlib.contextmanager
def _stop_on_interrupt(stop: threading.Event):
    """First Ctrl-C (or the notebook's stop button) sets `stop`; a second one interrupts now.

    Only the main thread can install signal handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
