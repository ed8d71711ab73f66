"""TrainingDashboard: Train / Pause / Step / Reset, the main hyperparameters, a live loss curve
and the live attention of a fixed probe batch.

    dash = mt.TrainingDashboard(trainer)      # or mt.TrainingDashboard(task="reverse")
    dash                                     # last line of a cell: shows it

Training runs in a background thread, so the notebook stays usable: the thread calls
`trainer.step()` in a loop and checks a stop flag between steps, so Pause takes effect after
the current step (milliseconds for a classroom model). Figures are refreshed from that thread
at most every `refresh_s` seconds (ipywidgets sync from threads in ipykernel). Trainer
callbacks fire as usual (`on_step_end` every step, `on_run_end` when a Train session ends).

The model-shape settings (task, layers, heads, d_model, dropout, positional encoding) and the
optimisation settings (learning rate, warmup, label smoothing) take effect on Reset, which
rebuilds model and trainer from the controls (same seed, so the same settings give the same
run). Callbacks of the old trainer are not carried over (their probe batch belongs to the old
run).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from ...config import POS_ENCODINGS, ModelConfig, TrainConfig
from ...model import build_model
from ...recorder import record
from ...tasks import get_task, list_tasks
from ...trainer import Trainer
from ...utils import seed_everything
from ..interactive import cache_layers, cache_maps, get_plotly_style
from ._base import (
    SECTION_NAMES,
    AttentionPanel,
    Explorer,
    head_options,
    pick_head,
    sections_of,
    status_html,
)

D_MODELS = (16, 32, 64, 128, 256)
HEADS = (1, 2, 4, 8)
PAUSE_JOIN_S = 5.0  # how long Reset waits for a running step to finish


def default_trainer(task: str | Any = "reverse", **model_overrides: Any) -> Trainer:
    """A classroom trainer: a tiny model for `task` (a name or a Task) with
    `TrainConfig.classroom()`; seeded, so the same call gives the same run."""
    task = get_task(task) if isinstance(task, str) else task
    arch = "decoder_only" if task.kind == "lm" else "encoder_decoder"
    options = dict(src_vocab_size=task.src_vocab_size, max_len=max(32, task.max_len + 2))
    options.update(model_overrides)
    config = TrainConfig.classroom(progress=False)
    seed_everything(config.seed)
    model = build_model(ModelConfig.tiny(vocab_size=task.tgt_vocab_size, arch=arch, **options))
    return Trainer(model, task, config)


class TrainingDashboard(Explorer):
    """Widgets around a `Trainer` (built for `task` when none is given).

    Attributes for scripting and tests: `train_button`, `pause_button`, `step_button`,
    `reset_button`; settings `task`, `layers`, `heads`, `d_model`, `dropout`, `pos_encoding`,
    `lr`, `warmup`, `label_smoothing`, `steps`; `progress`, `status`; figures `loss_figure`
    and `attention_figure`; `trainer` (replaced by Reset); `is_training`.
    """

    def __init__(self, trainer: Trainer | None = None, *, task: str | Any = "reverse",
                 steps: int = 300, probe_examples: int = 4, large: bool = False,
                 refresh_s: float = 0.3):
        self.trainer = trainer if trainer is not None else default_trainer(task)
        self.refresh_s = float(refresh_s)
        self.probe_examples = probe_examples
        self.style = get_plotly_style(large)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._last_refresh = 0.0
        self._last_cache: Any = None
        self._session = (0, 0)  # (steps done, steps asked) in the current Train session
        self._error: str | None = None  # shown in the status line until the next action

        self._build_controls(steps)
        self.loss_figure = go.FigureWidget(
            data=[go.Scatter(x=[], y=[], mode="lines", name="train loss",
                             line=dict(width=1, color="#9ab")),
                  go.Scatter(x=[], y=[], mode="lines", name="smoothed",
                             line=dict(width=3, color="#1f77b4")),
                  go.Scatter(x=[], y=[], mode="markers+lines", name="valid loss",
                             marker=dict(size=8, color="#d62728"))],
            layout=dict(title=dict(text="loss", font=dict(size=self.style.title)),
                        template="plotly_white", font=dict(size=self.style.font),
                        width=820 if large else 450, height=560 if large else 440,
                        xaxis=dict(title=dict(text="step")),
                        yaxis=dict(title=dict(text="cross-entropy (nats / token)")),
                        legend=dict(orientation="h", y=-0.2),
                        margin=dict(l=70, r=20, t=60, b=60)),
        )
        self.panel = AttentionPanel(large=large, title="attention of the probe batch",
                                    width=None if large else 490, height=None if large else 460)
        self.attention_figure = self.panel.figure
        self.widget = widgets.VBox([
            widgets.HBox([self.task, self.layers, self.heads, self.d_model]),
            widgets.HBox([self.dropout, self.pos_encoding, self.label_smoothing]),
            widgets.HBox([self.lr, self.warmup, self.steps]),
            widgets.HBox([self.train_button, self.pause_button, self.step_button,
                          self.reset_button, self.progress]),
            self.status,
            widgets.HBox([self.view_attention, self.view_layer, self.view_head]),
            (widgets.VBox if large else widgets.HBox)([self.loss_figure, self.attention_figure]),
        ])
        self._start_run()

    # ---- controls ----------------------------------------------------------------------------
    def _build_controls(self, steps: int) -> None:
        model_cfg, train_cfg = self.trainer.model.config, self.trainer.config
        task_name = getattr(self.trainer.task, "name", "custom")
        names = list_tasks()
        self._own_task_name = task_name if task_name not in names else None
        task_options = ([(f"{task_name} (this trainer's)", task_name)]
                        if self._own_task_name else []) + [(n, n) for n in names]
        layers = model_cfg.n_decoder_layers
        wide = {"description_width": "initial"}
        self.task = widgets.Dropdown(options=task_options, value=task_name, description="task")
        self.layers = widgets.IntSlider(value=min(layers, 6), min=1, max=max(6, layers),
                                        description="layers")
        self.heads = widgets.Dropdown(options=sorted({*HEADS, model_cfg.n_heads}),
                                      value=model_cfg.n_heads, description="heads")
        self.d_model = widgets.Dropdown(options=sorted({*D_MODELS, model_cfg.d_model}),
                                        value=model_cfg.d_model, description="d_model")
        self.dropout = widgets.FloatSlider(value=model_cfg.dropout, min=0.0, max=0.5, step=0.05,
                                           description="dropout")
        self.pos_encoding = widgets.Dropdown(options=list(POS_ENCODINGS),
                                             value=model_cfg.pos_encoding,
                                             description="positions")
        self._noam = train_cfg.schedule == "noam"
        lr_value = train_cfg.lr_scale if self._noam else train_cfg.lr
        self.lr = widgets.FloatLogSlider(
            value=lr_value, base=10, min=-2 if self._noam else -5, max=1 if self._noam else -1,
            step=0.01, readout_format=".2g", style=wide,
            description="lr scale (noam)" if self._noam else "learning rate")
        self.warmup = widgets.IntSlider(value=train_cfg.warmup_steps, min=1 if self._noam else 0,
                                        max=max(2000, train_cfg.warmup_steps), step=10,
                                        description="warmup")
        self.label_smoothing = widgets.FloatSlider(
            value=train_cfg.label_smoothing, min=0.0, max=0.3, step=0.01, style=wide,
            description="label smoothing")
        self.steps = widgets.BoundedIntText(value=steps, min=1, max=1_000_000,
                                            description="steps")
        self.train_button = widgets.Button(description="Train", icon="play",
                                           button_style="success")
        self.pause_button = widgets.Button(description="Pause", icon="pause", disabled=True)
        self.step_button = widgets.Button(description="Step", icon="step-forward")
        self.reset_button = widgets.Button(description="Reset", icon="refresh",
                                           button_style="warning")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="0 / 0")
        self.status = widgets.HTML()
        self.view_attention = widgets.Dropdown(description="attention")
        self.view_layer = widgets.IntSlider(min=0, max=0, description="layer")
        self.view_head = widgets.Dropdown(description="head")

        self.train_button.on_click(lambda _: self.train())
        self.pause_button.on_click(lambda _: self.pause())
        self.step_button.on_click(lambda _: self.step())
        self.reset_button.on_click(lambda _: self.reset())
        for control in self._settings_controls():
            control.observe(self._on_setting, names="value")
        for control in (self.view_attention, self.view_layer, self.view_head):
            control.observe(self._on_view, names="value")

    def _settings_controls(self) -> list[widgets.Widget]:
        return [self.task, self.layers, self.heads, self.d_model, self.dropout,
                self.pos_encoding, self.lr, self.warmup, self.label_smoothing]

    def _settings(self) -> tuple:
        return tuple(c.value for c in self._settings_controls())

    def _settings_changed(self) -> bool:
        """True when a control differs from what the current run was built with. Floats
        compare within 3%: the browser's log slider snaps values to its steps."""
        for now, then in zip(self._settings(), self._applied, strict=True):
            if isinstance(now, float) and isinstance(then, float):
                if not math.isclose(now, then, rel_tol=0.03, abs_tol=1e-9):
                    return True
            elif now != then:
                return True
        return False

    def _on_setting(self, _change: dict[str, Any]) -> None:
        self._refresh(force=True)

    # ---- a run's set-up ----------------------------------------------------------------------
    def _start_run(self) -> None:
        """Probe batch and attention selectors for the current trainer; draw everything."""
        self._applied = self._settings()
        self._last_cache = None
        self._probe = None
        probe = getattr(self.trainer.task, "probe_batch", None)
        if probe is not None:
            self._probe = probe(n=self.probe_examples)
        cache = self._record()
        with self._lock:
            if cache is not None:
                sections = sections_of(cache)
                self.view_attention.options = [(SECTION_NAMES[p], p) for p in sections]
                self.view_attention.value = ("decoder", "cross") if ("decoder", "cross") in \
                    sections else sections[0]
                self.view_head.options = head_options(int(cache.n_heads), with_all=False)
                self.view_head.value = 0
                self._fit_layer_slider(cache)
        self._refresh(force=True)

    def _fit_layer_slider(self, cache: Any) -> None:
        n_layers = len(cache_layers(cache, *self.view_attention.value))
        with self.view_layer.hold_trait_notifications():
            self.view_layer.value = min(self.view_layer.value, n_layers - 1)
            self.view_layer.max = n_layers - 1

    def _record(self) -> Any:
        """Record the probe batch's attention now (eval mode; the model's mode is restored)."""
        if self._probe is None:
            return None
        batch = self._probe.batch
        self._last_cache = record(self.trainer.model, batch.src, batch.tgt_in,
                                  self._probe.src_tokens, self._probe.tgt_in_tokens)
        return self._last_cache

    # ---- actions -----------------------------------------------------------------------------
    @property
    def is_training(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def train(self, steps: int | None = None) -> None:
        """Start training `steps` (default: the steps box) in a background thread; returns at
        once. Does nothing while already training."""
        if self.is_training:
            return
        n = int(steps if steps is not None else self.steps.value)
        self._error = None
        self._stop.clear()
        self._session = (0, n)
        self._set_running(True)
        self._thread = threading.Thread(target=self._train_loop, args=(n,), daemon=True,
                                        name="TrainingDashboard")
        self._thread.start()

    def pause(self, wait: bool = False) -> None:
        """Stop after the current step. With `wait`, block until the thread has finished."""
        self._stop.set()
        thread = self._thread
        if wait and thread is not None:
            thread.join(PAUSE_JOIN_S)

    def step(self) -> None:
        """One update, now (ignored while training in the background)."""
        if self.is_training:
            return
        self._error = None
        try:
            self.trainer.step()
        except Exception as error:  # shown to the student, not raised into the widget
            self._show_error(error)
            return
        self._record()
        self._refresh(force=True)

    def reset(self) -> None:
        """Stop training, rebuild model and trainer from the controls, start again at step 0."""
        self.pause(wait=True)
        if self.is_training:  # a very slow step is still running: do not swap the trainer
            self._show_error(RuntimeError("still finishing the current step; press Reset "
                                          "again in a moment"))
            return
        self._error = None
        try:
            self.trainer = self._build_trainer()
        except (ValueError, TypeError) as error:
            self._show_error(error)
            return
        self._session = (0, 0)
        with self._lock:
            for trace in self.loss_figure.data:
                trace.x, trace.y = [], []
        self._start_run()

    def _build_trainer(self) -> Trainer:
        name = self.task.value
        task = self.trainer.task if name == getattr(self.trainer.task, "name", None) \
            else get_task(name)
        arch = "decoder_only" if task.kind == "lm" else "encoder_decoder"
        old = self.trainer.model.config
        d_model = int(self.d_model.value)
        config = old.replace(
            arch=arch, tgt_vocab_size=task.tgt_vocab_size,
            src_vocab_size=task.src_vocab_size if arch == "encoder_decoder"
            else task.tgt_vocab_size,
            d_model=d_model, n_heads=int(self.heads.value), d_ff=4 * d_model,
            n_encoder_layers=int(self.layers.value), n_decoder_layers=int(self.layers.value),
            dropout=float(self.dropout.value), pos_encoding=self.pos_encoding.value,
            max_len=max(old.max_len, task.max_len + 2),
        )
        rate = {"lr_scale": float(self.lr.value)} if self._noam else {"lr": float(self.lr.value)}
        train_config = self.trainer.config.replace(
            warmup_steps=int(self.warmup.value), label_smoothing=float(self.label_smoothing.value),
            progress=False, **rate)
        seed_everything(train_config.seed)
        return Trainer(build_model(config), task, train_config)

    # ---- the background loop -----------------------------------------------------------------
    def _train_loop(self, n: int) -> None:
        done = 0
        try:
            while done < n and not self._stop.is_set():
                self.trainer.step()
                done += 1
                self._session = (done, n)
                if time.monotonic() - self._last_refresh >= self.refresh_s:
                    self._record()
                    self._refresh(force=True)
        except Exception as error:  # e.g. a non-finite loss: shown, and training stops
            self._show_error(error)
        finally:
            try:
                for callback in list(self.trainer.callbacks):
                    handler = getattr(callback, "on_run_end", None)
                    if handler is not None:
                        handler(self.trainer)
            finally:
                self._set_running(False)
                if done:
                    self._record()
                self._refresh(force=True)

    def _set_running(self, running: bool) -> None:
        self.train_button.disabled = running
        self.step_button.disabled = running
        self.pause_button.disabled = not running

    def _show_error(self, error: BaseException) -> None:
        self._error = f"{type(error).__name__}: {error}"
        self.status.value = status_html(self._error, "error")

    # ---- drawing -----------------------------------------------------------------------------
    def _on_view(self, change: dict[str, Any]) -> None:
        if change["owner"] is self.view_attention and self._last_cache is not None:
            self._fit_layer_slider(self._last_cache)
        if not self.is_training:
            self._draw_attention()

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_refresh < self.refresh_s:
            return
        self._last_refresh = now
        with self._lock:
            self._draw_progress()
            self._draw_loss()
            self._draw_attention()

    def _draw_progress(self) -> None:
        done, asked = self._session
        self.progress.max = max(asked, 1)
        self.progress.value = min(done, self.progress.max)
        self.progress.description = f"{done} / {asked}"
        if self._error:
            self.status.value = status_html(self._error, "error")
            return
        last = next((m for m in reversed(self.trainer.history) if "loss" in m), None)
        parts = [f"step {self.trainer.state.step}"]
        if last is not None:
            parts += [f"loss {last['loss']:.3f}", f"{last['tokens_per_s']:,.0f} tokens/s"]
        parts.append("training…" if self.is_training and not self._stop.is_set() else "paused")
        text = " · ".join(parts)
        if self._settings_changed():
            text += " · <b>settings changed: press Reset to apply them</b>"
        self.status.value = status_html(text)

    def _draw_loss(self) -> None:
        train = [(m["step"], m["loss"]) for m in self.trainer.history if "loss" in m]
        valid = [(m["step"], m["valid_loss"]) for m in self.trainer.history
                 if "valid_loss" in m]
        steps = np.array([s for s, _ in train], dtype=float)
        losses = np.array([v for _, v in train], dtype=float)
        with self.loss_figure.batch_update():
            raw, smooth, val = self.loss_figure.data
            raw.x, raw.y = steps, losses
            smooth.x, smooth.y = steps, _ema(losses, 0.9)
            val.x = [s for s, _ in valid]
            val.y = [v for _, v in valid]

    def _draw_attention(self) -> None:
        cache = self._last_cache
        if cache is None or self.view_attention.value is None or self.view_head.value is None:
            return
        stack, kind = self.view_attention.value
        maps, queries, keys = cache_maps(cache, stack, kind, 0)
        layer = min(self.view_layer.value, maps.shape[0] - 1)
        head = self.view_head.value
        name = f"head {head}" if isinstance(head, int) else "mean of heads"
        self.panel.show(pick_head(maps[layer], head), queries, keys,
                        title=f"{stack} {kind}-attention, layer {layer}, {name} · "
                              f"step {self.trainer.state.step}")


def _ema(values: np.ndarray, decay: float) -> np.ndarray:
    """Exponential moving average with bias correction (like TensorBoard's smoothing)."""
    out = np.empty_like(values)
    average = 0.0
    for i, value in enumerate(values):
        average = decay * average + (1 - decay) * value
        out[i] = average / (1 - decay ** (i + 1))
    return out
