"""Interactive (plotly) figures and export: hover data, menus, slider frames, gold overlay,
any number of layers and heads, clear errors, offline HTML (no CDN), the HTML report, PNG."""

from __future__ import annotations

import html
import importlib.util
import re
import sys

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from matplotlib.figure import Figure
from plotly.offline import get_plotlyjs

import minitransformer as mt
from minitransformer.history import AttentionHistory
from minitransformer.recorder import record
from minitransformer.viz.export import attention_report, export_figure, find_chromium
from minitransformer.viz.interactive import (
    alignment_figure,
    attention_figure,
    attention_heatmap,
    attention_over_training,
    plotly_label,
    positional_figure,
)
from tests.conftest import require_or_skip

PLOTLY_JS = get_plotlyjs()


def random_attention(*shape: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(*shape, generator=generator), dim=-1)


def tiny_model(arch: str = "encoder_decoder", n_heads: int = 2, n_layers: int = 2,
               seed: int = 0) -> mt.Transformer:
    mt.seed_everything(seed)
    cfg = mt.ModelConfig.tiny(vocab_size=12, arch=arch, d_model=4 * n_heads, n_heads=n_heads,
                              n_encoder_layers=n_layers, n_decoder_layers=n_layers,
                              d_ff=16, dropout=0.0, max_len=16)
    return mt.build_model(cfg)


SRC = torch.tensor([[4, 5, 6, 7, 2], [8, 9, 2, 0, 0]])  # second row padded
TGT = torch.tensor([[1, 7, 6, 5], [1, 9, 0, 0]])
SRC_TOKENS = [["a", "b", "c", "d", "<eos>"], ["e", "f", "<eos>", "<pad>", "<pad>"]]
TGT_TOKENS = [["<bos>", "D", "C", "B"], ["<bos>", "F", "<pad>", "<pad>"]]


def seq2seq_cache(n_heads: int = 2, n_layers: int = 2, seed: int = 0):
    return record(tiny_model("encoder_decoder", n_heads, n_layers, seed), SRC, TGT,
                  SRC_TOKENS, TGT_TOKENS)


def lm_cache():
    return record(tiny_model("decoder_only"), None, TGT, tgt_tokens=TGT_TOKENS)


def outside_plotly_js(text: str) -> str:
    """The HTML with the embedded plotly.js bundle removed (the bundle itself mentions URLs
    such as map tile servers in strings it never loads unless a map is drawn), and with the
    base64 array data removed (random letters may spell "cdn")."""
    return re.sub(r'"bdata":"[^"]*"', '"bdata":""', text.replace(PLOTLY_JS, ""))


def assert_offline(text: str) -> None:
    assert "<script src" not in text.lower()
    rest = outside_plotly_js(text).lower()
    assert "cdn" not in rest
    assert "https://" not in rest and "http://" not in rest


# --------------------------------------------------------------------------- one heatmap


def test_heatmap_hover_shows_query_key_and_weight():
    weights = random_attention(3, 4)
    queries, keys = ["<bos>", "die", "katze"], ["the", "cat", "sat", "<eos>"]
    fig = attention_heatmap(weights, queries, keys, title="one head")
    assert isinstance(fig, go.Figure)
    (trace,) = fig.data
    np.testing.assert_allclose(np.asarray(trace.z), weights.numpy(), rtol=1e-6)
    custom = np.asarray(trace.customdata)
    assert custom.shape == (3, 4, 2)
    for i, query in enumerate(queries):
        for j, key in enumerate(keys):
            assert list(custom[i, j]) == [plotly_label(query), plotly_label(key)]
    assert custom[0, 3].tolist() == ["&lt;bos&gt;", "&lt;eos&gt;"]  # not swallowed as tags
    for part in ("%{customdata[0]}", "%{customdata[1]}", "%{z"):
        assert part in trace.hovertemplate
    assert list(fig.layout.xaxis.ticktext) == [html.escape(k) for k in keys]
    assert list(fig.layout.yaxis.ticktext) == [html.escape(q) for q in queries]
    assert fig.layout.yaxis.autorange == "reversed"  # query 0 at the top, like the matrix


def test_heatmap_large_mode_uses_bigger_fonts():
    weights = random_attention(3, 3)
    small = attention_heatmap(weights, list("abc"), list("abc"))
    large = attention_heatmap(weights, list("abc"), list("abc"), large=True)
    assert large.layout.font.size >= 18 > small.layout.font.size
    assert large.layout.xaxis.tickfont.size > small.layout.xaxis.tickfont.size


def test_heatmap_thins_labels_of_long_sequences():
    fig = attention_heatmap(random_attention(100, 100), None, [f"t{i}" for i in range(100)])
    ticks = list(fig.layout.xaxis.tickvals)
    assert len(ticks) <= 40
    assert [fig.layout.xaxis.ticktext[n] for n in range(len(ticks))] == [f"t{i}" for i in ticks]


def test_heatmap_rejects_mismatched_tokens_and_shapes():
    with pytest.raises(ValueError, match="3 query tokens for a 4-row"):
        attention_heatmap(random_attention(4, 2), list("abc"), list("xy"))
    with pytest.raises(ValueError, match="1 key tokens for a 2-column"):
        attention_heatmap(random_attention(4, 2), list("abcd"), ["x"])
    with pytest.raises(ValueError, match=r"2-D \(Tq, Tk\); got shape \(2, 4, 2\)"):
        attention_heatmap(random_attention(2, 4, 2), None, None)


# --------------------------------------------------------------------------- menus


def apply_head(fig: go.Figure, label: str) -> None:
    """Do what clicking a head-menu button does in the browser (a restyle of z)."""
    menu = fig.layout.updatemenus[1]
    (button,) = [b for b in menu.buttons if b.label == label]
    changes, traces = button.args
    for z, index in zip(changes["z"], traces, strict=True):
        fig.data[index].z = z


@pytest.mark.parametrize("n_heads", range(1, 9))
def test_attention_figure_any_number_of_heads(n_heads):
    cache = seq2seq_cache(n_heads=n_heads)
    fig = attention_figure(cache, "decoder", "cross", example=0)
    layer_menu, head_menu = fig.layout.updatemenus
    assert len(fig.data) == 2 and len(layer_menu.buttons) == 2
    labels = [b.label for b in head_menu.buttons]
    assert labels[:n_heads] == [f"head {h}" for h in range(n_heads)]
    assert len(labels) == n_heads + (1 if n_heads > 1 else 0)  # + "mean of heads"
    last = n_heads - 1
    apply_head(fig, f"head {last}")
    for layer in range(2):
        expected = cache.weights(("decoder", layer, "cross"), 0, last).numpy()
        np.testing.assert_allclose(np.asarray(fig.data[layer].z, dtype=float), expected,
                                   rtol=1e-6)


@pytest.mark.parametrize("n_layers", range(1, 7))
def test_attention_figure_any_number_of_layers(n_layers):
    cache = seq2seq_cache(n_layers=n_layers)
    fig = attention_figure(cache, "encoder", "self", layer=n_layers - 1, head=1)
    layer_menu = fig.layout.updatemenus[0]
    assert [b.label for b in layer_menu.buttons] == [f"layer {i}" for i in range(n_layers)]
    assert [t.visible for t in fig.data] == [i == n_layers - 1 for i in range(n_layers)]
    last = layer_menu.buttons[-1].args[0]["visible"]
    assert last == [i == n_layers - 1 for i in range(n_layers)]
    expected = cache.weights(("encoder", n_layers - 1, "self"), 0, 1).numpy()
    np.testing.assert_allclose(np.asarray(fig.data[-1].z, dtype=float), expected, rtol=1e-6)


def test_attention_figure_trims_padding_and_labels_tokens():
    cache = seq2seq_cache()
    fig = attention_figure(cache, "decoder", "cross", example=1)
    assert np.asarray(fig.data[0].z).shape == (2, 3)  # <bos> F  x  e f <eos>
    custom = np.asarray(fig.data[0].customdata)
    assert custom[1, 2].tolist() == ["F", "&lt;eos&gt;"]
    apply_head(fig, "mean of heads")
    mean = cache.weights(("decoder", 0, "cross"), 1).mean(0).numpy()
    np.testing.assert_allclose(np.asarray(fig.data[0].z, dtype=float), mean, rtol=1e-5)


def test_attention_figure_decoder_only_and_errors():
    cache = lm_cache()
    fig = attention_figure(cache, "decoder", "self")
    assert np.asarray(fig.data[0].z).shape == (4, 4)
    with pytest.raises(ValueError, match=r"no \('decoder', layer, 'cross'\).*holds.*"
                                         r"decoder-only"):
        attention_figure(cache, "decoder", "cross")
    seq = seq2seq_cache()
    with pytest.raises(ValueError, match=r"layer 5 is out of range.*2 layers \(0\.\.1\)"):
        attention_figure(seq, "encoder", "self", layer=5)
    with pytest.raises(ValueError, match=r"head 2 is out of range.*2 heads \(0\.\.1\)"):
        attention_figure(seq, "encoder", "self", head=2)
    with pytest.raises(ValueError, match=r"example 7 is out of range.*2 examples"):
        attention_figure(seq, "encoder", "self", example=7)
    with pytest.raises(ValueError, match="stack must be one of"):
        attention_figure(seq, "middle", "self")


# --------------------------------------------------------------------------- over training


def make_history(n_snapshots: int = 4) -> tuple[AttentionHistory, torch.nn.Module]:
    model = tiny_model()
    history = AttentionHistory(SRC, TGT, SRC_TOKENS, TGT_TOKENS, every=10)
    for i in range(n_snapshots):
        with torch.no_grad():  # a stand-in for training: the weights change between snapshots
            for p in model.parameters():
                p.add_(0.3 * torch.randn_like(p))
        history.capture(model, step=10 * i, loss=None if i == 0 else 3.0 / i)
    return history, model


def test_attention_over_training_has_one_frame_per_snapshot():
    history, _ = make_history(4)
    fig = attention_over_training(history, "decoder", "cross", layer=1, head=0)
    assert [f.name for f in fig.frames] == ["0", "10", "20", "30"]
    (slider,) = fig.layout.sliders
    assert [s.label for s in slider.steps] == ["0", "10", "20", "30"]
    assert slider.active == 3
    for frame, snapshot in zip(fig.frames, history.snapshots, strict=True):
        expected = snapshot.cache.weights(("decoder", 1, "cross"), 0, 0).numpy()
        np.testing.assert_allclose(np.asarray(frame.data[0].z, dtype=float), expected,
                                   atol=1e-6)
    frames = [np.asarray(f.data[0].z, dtype=float) for f in fig.frames]
    assert not np.allclose(frames[0], frames[-1])  # the frames really differ
    assert "loss 1.000" in fig.frames[3].layout.title.text
    assert "play" in fig.layout.updatemenus[0].buttons[0].label


def test_attention_over_training_errors():
    empty = AttentionHistory(SRC, TGT, SRC_TOKENS, TGT_TOKENS)
    with pytest.raises(ValueError, match="history is empty"):
        attention_over_training(empty, "decoder", "cross", 0, 0)
    history, _ = make_history(2)
    with pytest.raises(ValueError, match=r"head 9 is out of range.*2 heads"):
        attention_over_training(history, "decoder", "self", 0, 9)


# --------------------------------------------------------------------------- alignment


def test_alignment_figure_marks_gold_cells_and_scores_argmax():
    weights = torch.full((3, 4), 0.05)
    weights[0, 0] = weights[1, 2] = weights[2, 1] = 0.85
    gold = torch.zeros(3, 4)
    gold[0, 0] = gold[1, 2] = gold[2, 3] = 1  # row 2 attends to the wrong source
    fig = alignment_figure(weights, ["a", "b", "c", "<eos>"], ["<bos>", "x", "y"], gold)
    heat, marks, argmax = fig.data
    assert marks.name == "gold alignment"
    assert sorted(zip(marks.y, marks.x, strict=True)) == [(0, 0), (1, 2), (2, 3)]
    assert list(argmax.x) == [0, 2, 1]
    assert "67%" in fig.layout.title.text
    assert np.asarray(heat.customdata)[2, 3].tolist() == ["y", "&lt;eos&gt;"]
    with pytest.raises(ValueError, match=r"gold alignment has shape \(3, 3\).*\(3, 4\)"):
        alignment_figure(weights, list("abcd"), list("xyz"), torch.zeros(3, 3))


def test_positional_figure_shows_table_and_similarity():
    table = mt.sinusoidal_encoding(12, 8)
    fig = positional_figure(table)
    values, similarity = fig.data
    np.testing.assert_allclose(np.asarray(values.z, dtype=float), table.numpy(), rtol=1e-6)
    np.testing.assert_allclose(np.diag(np.asarray(similarity.z, dtype=float)), 1.0, rtol=1e-6)
    assert len(positional_figure(table, similarity=False).data) == 1


# --------------------------------------------------------------------------- export


def test_exported_html_is_standalone_and_offline(tmp_path):
    fig = attention_figure(seq2seq_cache(), "decoder", "cross")
    path = export_figure(fig, tmp_path / "sub" / "figure.html")
    text = path.read_text(encoding="utf-8")
    assert text.count(PLOTLY_JS) == 1  # embedded, so it opens with no network
    assert_offline(text)
    assert "&lt;eos&gt;" in text
    assert not list(path.parent.glob(".*.tmp"))


def test_figure_widgets_export_as_plain_figures(tmp_path):
    widget = go.FigureWidget(attention_heatmap(random_attention(2, 2), list("ab"), list("cd")))
    text = export_figure(widget, tmp_path / "w.html").read_text(encoding="utf-8")
    assert_offline(text)


def test_attention_report_covers_every_layer_with_plotly_js_once(tmp_path):
    cache = seq2seq_cache(n_heads=3, n_layers=2)
    path = attention_report(cache, tmp_path / "report.html", title="Reverse <task>")
    text = path.read_text(encoding="utf-8")
    assert text.count(PLOTLY_JS) == 1
    assert text.count("Plotly.newPlot(") == 6  # 3 (stack, kind) x 2 layers
    assert_offline(text)
    assert "Reverse &lt;task&gt;" in text
    for stack, kind in (("encoder", "self"), ("decoder", "self"), ("decoder", "cross")):
        for layer in range(2):
            assert f"{stack} {kind}-attention, layer {layer}" in text
    assert "head 2" in text
    assert "<h3>entropy" in text and "<h3>special" in text  # analysis.head_stats tables
    lm = attention_report(lm_cache(), tmp_path / "lm.html").read_text(encoding="utf-8")
    assert lm.count("Plotly.newPlot(") == 2 and "cross" not in lm.split("<body>")[1]


def test_export_matplotlib_goes_through_static_save(tmp_path):
    fig = mt.plot_attention(random_attention(2, 3), list("ab"), list("cde"))
    assert isinstance(fig, Figure)
    path = export_figure(fig, tmp_path / "map.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="suffix"):
        export_figure(fig, tmp_path / "map.html")


def test_export_rejects_unknown_things(tmp_path):
    fig = attention_heatmap(random_attention(2, 2), None, None)
    with pytest.raises(ValueError, match=r"suffix '\.txt'.*\.html"):
        export_figure(fig, tmp_path / "figure.txt")
    with pytest.raises(TypeError, match="got dict"):
        export_figure({"data": []}, tmp_path / "figure.html")


def test_image_export_without_kaleido_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "kaleido", None)  # import kaleido -> ImportError
    fig = attention_heatmap(random_attention(2, 2), None, None)
    with pytest.raises(RuntimeError, match=r"needs kaleido.*pip install 'kaleido>=1.0'"):
        export_figure(fig, tmp_path / "figure.png")
    assert not (tmp_path / "figure.png").exists()


def test_plotly_png_export_with_kaleido_and_chromium(tmp_path):
    require_or_skip(importlib.util.find_spec("kaleido") is not None, "kaleido (pip install "
                    "'kaleido>=1.0', in the dev extras)")
    require_or_skip(find_chromium() is not None, "Chromium at /usr/bin/chromium (for kaleido)")
    fig = attention_heatmap(random_attention(3, 3), list("abc"), list("xyz"), large=True)
    path = export_figure(fig, tmp_path / "figure.png", scale=1)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (fig.layout.width, fig.layout.height)


# --------------------------------------------------------------------------- package names


def test_names_are_exported_lazily():
    for name in ("attention_heatmap", "attention_figure", "attention_over_training",
                 "alignment_figure", "positional_figure", "export_figure", "attention_report"):
        assert name in dir(mt)
        assert callable(getattr(mt, name))
    assert mt.attention_figure is attention_figure


def test_jupyter_displays_figures_through_the_offline_mimetype():
    """In a kernel, plotly's default renderer is the mimetype one (the jupyterlab-plotly
    extension shipped in the plotly wheel draws it): no script, no CDN, in the output."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    code = (
        "import plotly.io as pio, torch, minitransformer as mt\n"
        "print(pio.renderers.default)\n"
        "mt.attention_heatmap(torch.eye(2), ['a', 'b'], ['c', 'd'])"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    outputs = notebook.cells[0].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert text.strip() == "plotly_mimetype"
    (shown,) = [o for o in outputs if o.output_type in ("execute_result", "display_data")]
    assert "application/vnd.plotly.v1+json" in shown.data
    dumped = str(shown.data).lower()
    assert "cdn" not in dumped and "<script src" not in dumped
    assert re.search(r"https?://", str(shown.data.get("text/html", ""))) is None
