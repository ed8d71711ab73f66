"""HeadAblationExplorer: switch attention heads off one by one and watch what breaks.

    mt.HeadAblationExplorer(model, task)          # a probe batch of the task's valid split
    mt.HeadAblationExplorer(model, batch, tokenizer=task.tgt_tokenizer)

One toggle per head (green = on). Switching a head off zeroes its output before the layer's
output projection (`minitransformer.analysis.ablate_heads`), then the loss, the accuracies and
the greedy decodes of the batch are computed again and shown next to the intact model's.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
import torch
import torch.nn.functional as F

from ...analysis import ablate_heads, attention_modules
from ...decoding import greedy_decode
from ...recorder import eval_mode, model_device
from ._base import Explorer

Key = tuple[str, int, str]


def _batch_parts(batch: Any) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    if hasattr(batch, "tgt_in") and hasattr(batch, "tgt_out"):
        return batch.src, batch.tgt_in, batch.tgt_out
    if isinstance(batch, (tuple, list)) and len(batch) == 3:
        return batch[0], batch[1], batch[2]
    raise TypeError("HeadAblationExplorer needs a Task, a Batch or a tuple "
                    f"(src or None, tgt_in, tgt_out); got {type(batch).__name__}")


class HeadAblationExplorer(Explorer):
    """Toggles per head; `metrics` (loss, token_acc, seq_acc) and `decoded` (texts) follow.

    Attributes: `toggles[(stack, layer, kind)][head]` (ToggleButton, value True = on),
    `restore_button`, `metrics_html`, `outputs_html`; `baseline` and `metrics` dicts;
    `ablated()` -> the {key: [heads]} switched off now.
    """

    def __init__(self, model: torch.nn.Module, task_or_batch: Any, *, n: int = 8,
                 split: str = "valid", tokenizer: Any = None, show: int = 4,
                 large: bool = False):
        self.model = model
        self.pad_id = int(getattr(model.config, "pad_id", 0))
        self.show = show
        if hasattr(task_or_batch, "probe_batch"):
            probe = task_or_batch.probe_batch(n=n, split=split)
            batch = probe.batch
            self.tokenizer = tokenizer or task_or_batch.tgt_tokenizer
            self.sources = [ex.src for ex in probe.examples]
        else:
            batch = task_or_batch
            self.tokenizer = tokenizer
            self.sources = None
        self.src, self.tgt_in, self.tgt_out = _batch_parts(batch)
        self.modules = attention_modules(model)
        font = "18px" if large else "13px"
        self.toggles: dict[Key, list[widgets.ToggleButton]] = {}
        rows = []
        for key, module in self.modules.items():
            stack, layer, kind = key
            buttons = [
                widgets.ToggleButton(value=True, description=f"h{h}", button_style="success",
                                     tooltip=f"{stack} layer {layer} {kind}-attention, head {h}",
                                     layout=widgets.Layout(width="auto"))
                for h in range(module.n_heads)
            ]
            for button in buttons:
                button.observe(self._on_toggle, names="value")
            self.toggles[key] = buttons
            label = widgets.HTML(f"<span style='font-size:{font}'>{stack} {kind} · layer "
                                 f"{layer}</span>", layout=widgets.Layout(width="210px"))
            rows.append(widgets.HBox([label, *buttons]))
        self.restore_button = widgets.Button(description="all heads on", icon="undo")
        self.restore_button.on_click(lambda _: self.restore())
        self.metrics_html = widgets.HTML()
        self.outputs_html = widgets.HTML()
        self.baseline = self.evaluate({})
        self.metrics = dict(self.baseline)
        self.decoded: list[str] = []
        self.widget = widgets.VBox([*rows, self.restore_button, self.metrics_html,
                                    self.outputs_html])
        self.update()

    # ---- state -------------------------------------------------------------------------------
    def ablated(self) -> dict[Key, list[int]]:
        """{(stack, layer, kind): [heads switched off]} (keys with none off are left out)."""
        off = {key: [h for h, b in enumerate(buttons) if not b.value]
               for key, buttons in self.toggles.items()}
        return {key: heads for key, heads in off.items() if heads}

    def restore(self) -> None:
        """Switch every head back on (one update at the end)."""
        self._holding = True
        try:
            for buttons in self.toggles.values():
                for button in buttons:
                    button.value = True
        finally:
            self._holding = False
        self.update()

    def _on_toggle(self, change: dict[str, Any]) -> None:
        button = change["owner"]
        button.button_style = "success" if change["new"] else "danger"
        if not getattr(self, "_holding", False):
            self.update()

    # ---- numbers -----------------------------------------------------------------------------
    def evaluate(self, heads: dict[Key, list[int]]) -> dict[str, float]:
        """Loss (nats / token), token accuracy and sequence accuracy with `heads` off
        (teacher forcing, eval mode, no grad)."""
        device = model_device(self.model)
        src = None if self.src is None else self.src.to(device)
        tgt_in, tgt_out = self.tgt_in.to(device), self.tgt_out.to(device)
        with ablate_heads(self.model, heads), eval_mode(self.model):
            logits = self.model(src, tgt_in).logits  # (B, T, V)
        real = tgt_out != self.pad_id  # (B, T)
        loss = F.cross_entropy(logits.float().flatten(0, 1), tgt_out.flatten(),
                               ignore_index=self.pad_id)
        right = (logits.argmax(-1) == tgt_out) & real
        return {
            "loss": float(loss),
            "token_acc": float(right.sum() / real.sum().clamp(min=1)),
            "seq_acc": float((right == real).all(dim=1).float().mean()),
        }

    def decode(self, heads: dict[Key, list[int]]) -> list[str]:
        """Greedy decodes of the first `show` rows with `heads` off (texts, or ids)."""
        rows = slice(0, self.show)
        device = model_device(self.model)
        limit = int(self.tgt_out.size(1)) + 4
        with ablate_heads(self.model, heads):
            if self.src is not None:
                result = greedy_decode(self.model, self.src[rows].to(device),
                                       max_new_tokens=limit)
            else:  # a language model continues the first half of each sequence
                tgt_in = self.tgt_in[rows]
                lengths = (tgt_in != self.pad_id).sum(dim=1)
                keep = (lengths // 2).clamp(min=1)
                width = int(keep.max())
                prompt = tgt_in[:, :width].clone()
                prompt[torch.arange(width)[None, :] >= keep[:, None]] = self.pad_id
                result = greedy_decode(self.model, prompt=prompt.to(device),
                                       max_new_tokens=limit)
        if self.tokenizer is not None:
            return result.texts(self.tokenizer)
        return [" ".join(map(str, ids)) for ids in result.to_lists()]

    def update(self) -> None:
        heads = self.ablated()
        self.metrics = self.evaluate(heads)
        self.decoded = self.decode(heads)
        if not hasattr(self, "_baseline_decoded"):
            self._baseline_decoded = self.decoded if not heads else self.decode({})
        self.metrics_html.value = self._metrics_table(heads)
        self.outputs_html.value = self._outputs_table()

    # ---- drawing -----------------------------------------------------------------------------
    def _metrics_table(self, heads: dict[Key, list[int]]) -> str:
        n_off = sum(len(h) for h in heads.values())
        rows = "".join(
            f"<tr><td>{label}</td><td>{self.baseline[name]:{fmt}}</td>"
            f"<td><b>{self.metrics[name]:{fmt}}</b></td></tr>"
            for name, label, fmt in (("loss", "loss (nats / token)", ".3f"),
                                     ("token_acc", "token accuracy", ".1%"),
                                     ("seq_acc", "sequence accuracy", ".1%"))
        )
        return (f"<p>{n_off} head{'s' if n_off != 1 else ''} switched off</p>"
                "<table style='border-collapse:collapse'><tr><th></th><th>all heads</th>"
                f"<th>now</th></tr>{rows}</table>")

    def _outputs_table(self) -> str:
        rows = []
        for i, (now, before) in enumerate(zip(self.decoded, self._baseline_decoded,
                                              strict=False)):
            source = html.escape(self.sources[i]) if self.sources else ""
            mark = "✓ same" if now == before else "✗ changed"
            rows.append(f"<tr><td>{source}</td><td>{html.escape(before)}</td>"
                        f"<td><b>{html.escape(now)}</b></td><td>{mark}</td></tr>")
        return ("<table><tr><th>input</th><th>output, all heads</th><th>output now</th>"
                f"<th></th></tr>{''.join(rows)}</table>")
