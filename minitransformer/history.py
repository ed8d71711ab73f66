"""Attention over training: snapshots of a fixed probe batch, in bounded memory.

    history = AttentionHistory.from_task(task, n=4, every=50)   # or (probe_src, probe_tgt, ...)
    history.attach(trainer)           # captures step 0 now, then every `every` steps
    # (or trainer.add_callback(history), and history.capture(model, step) by hand)
    trainer.run(2000)
    history.summary()   # "33 snapshots, steps 0..2000, 0.4 MiB of 32.0 MiB budget (float16)"
    history.snapshots[-1].cache[("decoder", 0, "cross")]

Each snapshot runs the probe batch through the model in eval mode with weights asked for
(`record`): not the training forward pass, which has dropout and the fused path. Snapshots are
stored as float16 by default (half the memory; reading a cache still gives float32, within
about 1e-3 of the float32 weights). When more than `max_snapshots` are held, or more than
`max_bytes`, the spacing of the kept ones doubles (every 50 steps, then every 100, ...), so the
timeline spans the whole run evenly with between half and all of `max_snapshots`; the first and
the latest snapshot are always kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .recorder import AttentionCache, Key, record


@dataclass
class Snapshot:
    """The probe batch's attention after `step` updates; `loss` is the training loss reported
    at that step (None when captured by hand without one)."""

    step: int
    loss: float | None
    cache: AttentionCache


def _format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class AttentionHistory:
    """A trainer callback keeping attention snapshots of a probe batch every `every` steps.

    probe_src: (B, S) ids or None (decoder-only); probe_tgt: (B, T) decoder input ids;
    src_tokens / tgt_tokens: tokenizers or token strings, as for `record`. Memory is bounded by
    `max_snapshots` and `max_bytes` (`budget_bytes`); `nbytes` is what is held now.
    """

    def __init__(
        self,
        probe_src: Tensor | None,
        probe_tgt: Tensor,
        src_tokens: Any = None,
        tgt_tokens: Any = None,
        *,
        every: int = 50,
        max_snapshots: int = 64,
        max_bytes: int = 32 * 2**20,
        dtype: torch.dtype = torch.float16,
    ):
        for name, value, low in (("every", every, 1), ("max_snapshots", max_snapshots, 2),
                                 ("max_bytes", max_bytes, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"AttentionHistory {name} must be an integer >= {low}, "
                                 f"got {value!r}")
        if dtype not in (torch.float16, torch.bfloat16, torch.float32):
            raise ValueError(f"AttentionHistory dtype must be float16, bfloat16 or float32, "
                             f"got {dtype}")
        self.probe_src = None if probe_src is None else probe_src.detach().cpu()
        self.probe_tgt = probe_tgt.detach().cpu()
        self.src_tokens = src_tokens
        self.tgt_tokens = tgt_tokens
        self.every = every
        self.max_snapshots = max_snapshots
        self.max_bytes = max_bytes
        self.dtype = dtype
        self.snapshots: list[Snapshot] = []
        self._stride = 1  # kept snapshots sit at multiples of every * _stride
        self._provisional = False  # the latest snapshot is a stand-in, replaced by the next

    @classmethod
    def from_batch(cls, batch: Any, src_tokens: Any = None, tgt_tokens: Any = None,
                   **options: Any) -> AttentionHistory:
        """From a Batch (its `src` and `tgt_in`)."""
        return cls(batch.src, batch.tgt_in, src_tokens, tgt_tokens, **options)

    @classmethod
    def from_task(cls, task: Any, n: int = 4, split: str = "valid",
                  **options: Any) -> AttentionHistory:
        """Probe with `task.probe_batch(n, split)`: its first n examples and their tokens."""
        probe = task.probe_batch(n=n, split=split)
        return cls.from_batch(probe.batch, probe.src_tokens, probe.tgt_in_tokens, **options)

    # ---- recording ---------------------------------------------------------------------------
    def capture(self, model: nn.Module, step: int, loss: float | None = None) -> Snapshot:
        """Record the probe batch now (eval mode, no grad; the model's mode is restored) and
        store it as the snapshot of `step`; thin old snapshots if over budget."""
        return self._capture(model, step, loss, scheduled=False)

    def _capture(self, model: nn.Module, step: int, loss: float | None,
                 scheduled: bool) -> Snapshot:
        if self.snapshots and step < self.snapshots[-1].step:
            raise ValueError(f"step {step} is before the latest snapshot's step "
                             f"{self.snapshots[-1].step}; snapshots must come in step order "
                             "(call clear() to start again)")
        cache = record(model, self.probe_src, self.probe_tgt, self.src_tokens,
                       self.tgt_tokens).to(self.dtype)
        if 2 * cache.nbytes > self.max_bytes:
            raise ValueError(
                f"one snapshot of this probe batch takes {_format_bytes(cache.nbytes)}, so "
                f"max_bytes={self.max_bytes} ({_format_bytes(self.max_bytes)}) cannot hold the "
                "two a timeline needs; use a smaller or shorter probe batch or raise max_bytes"
            )
        snapshot = Snapshot(int(step), None if loss is None else float(loss), cache)
        if self.snapshots and (self.snapshots[-1].step == snapshot.step or self._provisional):
            self.snapshots[-1] = snapshot  # same step again, or the stand-in latest: replace
        else:
            self.snapshots.append(snapshot)
        self._provisional = (scheduled and len(self.snapshots) > 1
                             and not self._on_grid(snapshot.step))
        self._thin()
        return snapshot

    def _on_grid(self, step: int) -> bool:
        return step % (self.every * self._stride) == 0

    def _over_budget(self) -> bool:
        return len(self.snapshots) > self.max_snapshots or self.nbytes > self.max_bytes

    def _thin(self) -> None:
        """While over budget, double the spacing of the kept snapshots: keep the first, the
        latest and those whose step is a multiple of every * stride. Scheduled snapshots
        between grid points only stand in as the latest until the next one arrives. Snapshots
        captured by hand off the grid that survive that are dropped one at a time where the
        timeline is densest."""
        while len(self.snapshots) > 2 and self._over_budget():
            self._stride *= 2
            last = len(self.snapshots) - 1
            kept = [s for i, s in enumerate(self.snapshots)
                    if i in (0, last) or self._on_grid(s.step)]
            if len(kept) < len(self.snapshots):
                self.snapshots = kept
                continue
            steps = self.steps
            gaps = [steps[i + 1] - steps[i - 1] for i in range(1, len(steps) - 1)]
            del self.snapshots[1 + gaps.index(min(gaps))]

    def clear(self) -> None:
        self.snapshots.clear()
        self._stride = 1
        self._provisional = False

    # ---- trainer callback --------------------------------------------------------------------
    def on_step_end(self, trainer: Any, metrics: dict[str, Any]) -> None:
        """Capture every `every` steps (by `trainer.state.step`, the number of updates done)."""
        step = int(trainer.state.step)
        if step % self.every == 0:
            self._capture(trainer.model, step, metrics.get("loss") if metrics else None, True)

    def attach(self, trainer: Any) -> AttentionHistory:
        """Register with `trainer` and, if nothing is recorded yet, capture its current state
        (step 0 for a fresh trainer) so the timeline starts before training."""
        if not self.snapshots:
            self.capture(trainer.model, int(trainer.state.step))
        trainer.add_callback(self)
        return self

    def on_run_end(self, trainer: Any) -> None:
        """Capture the final state if the last step was not a multiple of `every`."""
        step = int(trainer.state.step)
        if self.snapshots and self.snapshots[-1].step == step:
            return
        loss = None
        for metrics in reversed(getattr(trainer, "history", None) or []):
            if metrics.get("step") == step and "loss" in metrics:
                loss = metrics["loss"]
                break
        self._capture(trainer.model, step, loss, scheduled=True)

    # ---- reading -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.snapshots)

    def __getitem__(self, index: int) -> Snapshot:
        self._require_some()
        if not -len(self.snapshots) <= index < len(self.snapshots):
            raise IndexError(f"snapshot {index} is out of range; this history holds "
                             f"{len(self.snapshots)} (0..{len(self.snapshots) - 1})")
        return self.snapshots[index]

    @property
    def steps(self) -> list[int]:
        return [s.step for s in self.snapshots]

    @property
    def losses(self) -> list[float | None]:
        return [s.loss for s in self.snapshots]

    @property
    def nbytes(self) -> int:
        """Bytes of attention held by all snapshots."""
        return sum(s.cache.nbytes for s in self.snapshots)

    @property
    def budget_bytes(self) -> int:
        """The most bytes this history will hold (`max_bytes`)."""
        return self.max_bytes

    def at_step(self, step: int) -> Snapshot:
        """The snapshot whose step is closest to `step` (the earlier one on a tie)."""
        self._require_some()
        return min(self.snapshots, key=lambda s: (abs(s.step - step), s.step))

    def over_time(self, key: Key, example: int = 0, head: int | None = None) -> Tensor:
        """(N, H, Tq, Tk), or (N, Tq, Tk) for one head: `key`'s weights in every snapshot."""
        self._require_some()
        return torch.stack([s.cache.weights(key, example, head) for s in self.snapshots])

    def summary(self) -> str:
        """E.g. "33 snapshots, steps 0..2000, 0.4 MiB of 32.0 MiB budget (float16)"."""
        kind = str(self.dtype).replace("torch.", "")
        budget = (f"{_format_bytes(self.nbytes)} of {_format_bytes(self.budget_bytes)} "
                  f"budget ({kind})")
        if not self.snapshots:
            return f"0 snapshots, {budget}"
        steps = self.steps
        return f"{len(steps)} snapshots, steps {steps[0]}..{steps[-1]}, {budget}"

    def __repr__(self) -> str:
        return f"AttentionHistory({self.summary()}, every={self.every})"

    def _require_some(self) -> None:
        if not self.snapshots:
            raise ValueError("this AttentionHistory is empty: no snapshot yet; call "
                             "history.capture(model, step=0) or attach it to a trainer "
                             "(trainer.add_callback(history)) and train")
