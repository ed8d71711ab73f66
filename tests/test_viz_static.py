"""Static matplotlib figures: shapes of grids, token labels, thinning, errors, saving."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib._pylab_helpers import Gcf
from matplotlib.figure import Figure

import minitransformer as mt
from minitransformer.viz.inputs import MAX_TICK_LABELS, tick_indices


@pytest.fixture(autouse=True)
def _no_figures_left_open():
    """Figures are built without pyplot, so none stays open (and leaks) after a test."""
    yield
    assert Gcf.get_num_fig_managers() == 0


def random_attention(*shape: int, seed: int = 0) -> torch.Tensor:
    """Rows that sum to 1, like softmax output: shape (..., Tq, Tk)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(*shape, generator=generator), dim=-1)


def heatmap_axes(fig: Figure) -> list:
    """The axes that hold an attention image (not the colorbar)."""
    return [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]


def shown_labels(ax, axis: str) -> dict[int, str]:
    """{tick position: label text} for the labels that are actually drawn on `axis`."""
    ax.get_figure(root=True).canvas.draw()
    ticks = (ax.xaxis if axis == "x" else ax.yaxis).get_major_ticks()
    return {int(round(tick.get_loc())): tick.label1.get_text() for tick in ticks
            if tick.label1.get_visible() and tick.label1.get_text()}


def sinusoidal_table(n_positions: int, d_model: int) -> torch.Tensor:
    if hasattr(mt, "sinusoidal_encoding"):
        return mt.sinusoidal_encoding(n_positions, d_model)
    position = torch.arange(n_positions)[:, None].float()
    div = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
    table = torch.zeros(n_positions, d_model)
    table[:, 0::2], table[:, 1::2] = torch.sin(position * div), torch.cos(position * div)
    return table


# --------------------------------------------------------------------------- plot_attention


def test_plot_attention_labels_are_the_tokens():
    queries = ["<bos>", "die", "katze"]
    keys = ["the", "cat", "sat", "<eos>"]
    fig = mt.plot_attention(random_attention(3, 4), queries, keys, title="decoder layer 1 · head 3")
    assert isinstance(fig, Figure)
    (ax,) = heatmap_axes(fig)
    assert shown_labels(ax, "x") == dict(enumerate(keys))
    assert shown_labels(ax, "y") == dict(enumerate(queries))
    assert ax.get_title() == "decoder layer 1 · head 3"
    assert len(fig.axes) == 2  # the map and its colorbar


def test_plot_attention_annotates_small_maps_only():
    small = mt.plot_attention(random_attention(4, 4), list("abcd"), list("abcd"))
    assert len(heatmap_axes(small)[0].texts) == 16
    big = mt.plot_attention(random_attention(13, 13), list("abcdefghijklm"), list("abcdefghijklm"))
    assert len(heatmap_axes(big)[0].texts) == 0
    forced = mt.plot_attention(random_attention(13, 2), None, None, annotate=True)
    assert len(heatmap_axes(forced)[0].texts) == 26


def test_plot_attention_accepts_numpy_grad_and_half_tensors():
    weights = random_attention(3, 3).requires_grad_(True)
    mt.plot_attention(weights, list("abc"), list("abc"))
    mt.plot_attention(weights.detach().to(torch.bfloat16), list("abc"), list("abc"))
    mt.plot_attention(weights.detach().numpy(), list("abc"), list("abc"))


def test_plot_attention_draws_into_a_given_axes():
    fig = Figure()
    ax = fig.add_subplot()
    assert mt.plot_attention(random_attention(2, 2), ["a", "b"], ["c", "d"], ax=ax) is fig


def test_special_and_whitespace_tokens_shown_readably():
    tokens = ["<bos>", " ", "$x$", "a_b"]
    fig = mt.plot_attention(random_attention(4, 4), tokens, tokens)
    assert list(shown_labels(heatmap_axes(fig)[0], "x").values()) == ["<bos>", "␣", "$x$", "a_b"]


def test_label_thinning_keeps_every_shown_label_at_its_token():
    tokens = [f"tok{i}" for i in range(120)]
    fig = mt.plot_attention(random_attention(120, 120), tokens, tokens)
    ax = heatmap_axes(fig)[0]
    for axis in ("x", "y"):
        shown = shown_labels(ax, axis)
        assert 10 <= len(shown) <= MAX_TICK_LABELS
        assert all(label == tokens[position] for position, label in shown.items())
        assert 0 in shown  # the first token is always labelled


def test_tick_indices_thin_evenly():
    assert tick_indices(10) == list(range(10))
    assert tick_indices(120) == list(range(0, 120, 3))
    assert len(tick_indices(1000)) <= MAX_TICK_LABELS


def test_large_mode_uses_bigger_fonts():
    weights, tokens = random_attention(3, 3), list("abc")
    normal = heatmap_axes(mt.plot_attention(weights, tokens, tokens, title="t"))[0]
    large = heatmap_axes(mt.plot_attention(weights, tokens, tokens, title="t", large=True))[0]
    assert large.xaxis.label.get_fontsize() >= 16
    assert large.get_xticklabels()[0].get_fontsize() >= 16
    assert large.title.get_fontsize() > normal.title.get_fontsize()


@pytest.mark.parametrize(
    ("weights", "queries", "keys", "message"),
    [
        (random_attention(5, 4), list("abc"), list("abcd"), "3 query tokens for a 5-row"),
        (random_attention(3, 6), list("abc"), list("abcd"), "4 key tokens for a 6-column"),
        (random_attention(2, 3, 3), list("abc"), list("abc"), r"2-D \(Tq, Tk\); got shape"),
        (random_attention(3, 3), "abc", list("abc"), "list of token strings"),
    ],
)
def test_plot_attention_bad_inputs(weights, queries, keys, message):
    with pytest.raises(ValueError, match=message):
        mt.plot_attention(weights, queries, keys)


# --------------------------------------------------------------------------- plot_attention_grid


@pytest.mark.parametrize(("n_layers", "n_heads"), [(1, 1), (2, 3), (6, 8), (1, 8), (6, 1)])
def test_grid_has_one_panel_per_layer_and_head(n_layers, n_heads):
    tokens = ["<bos>", "a", "b", "c", "<eos>"]
    attentions = tuple(random_attention(2, n_heads, 5, 5, seed=i) for i in range(n_layers))
    fig = mt.plot_attention_grid(attentions, tokens, tokens, example=1, title="encoder")
    panels = heatmap_axes(fig)
    assert len(panels) == n_layers * n_heads
    grid = np.array(panels, dtype=object).reshape(n_layers, n_heads)
    assert [ax.get_title() for ax in grid[0]] == [f"head {h}" for h in range(n_heads)]
    assert [ax.get_ylabel() for ax in grid[:, 0]] == [f"layer {i}" for i in range(n_layers)]
    # token labels on the outer axes only
    assert shown_labels(grid[-1, 0], "x") == dict(enumerate(tokens))
    assert shown_labels(grid[0, 0], "y") == dict(enumerate(tokens))
    if n_layers > 1:
        assert shown_labels(grid[0, 0], "x") == {}
    if n_heads > 1:
        assert shown_labels(grid[0, -1], "y") == {}
    # one shared colour scale 0..1 and the right data in each panel
    assert all(ax.images[0].get_clim() == (0.0, 1.0) for ax in panels)
    last = attentions[-1][1, -1].numpy()
    np.testing.assert_allclose(grid[-1, -1].images[0].get_array(), last, rtol=1e-6)


def test_grid_cross_attention_and_subsets():
    queries, keys = ["<bos>", "x", "y"], ["a", "b", "c", "d", "<eos>"]
    stacked = random_attention(4, 3, 3, 5)  # (L, H, Tq, Tk)
    fig = mt.plot_attention_grid(stacked, queries, keys, layers=[1, 3], heads=[2])
    panels = heatmap_axes(fig)
    assert len(panels) == 2
    assert panels[0].get_title() == "head 2"
    assert [ax.get_ylabel() for ax in panels] == ["layer 1", "layer 3"]
    np.testing.assert_allclose(panels[1].images[0].get_array(), stacked[3, 2].numpy(), rtol=1e-6)
    assert shown_labels(panels[1], "x") == dict(enumerate(keys))


def test_grid_accepts_stacked_batches_and_model_output():
    tokens = list("abcd")
    stacked = random_attention(2, 3, 2, 4, 4)  # (L, B, H, Tq, Tk)
    fig = mt.plot_attention_grid(stacked, tokens, tokens, example=2)
    np.testing.assert_allclose(heatmap_axes(fig)[0].images[0].get_array(),
                               stacked[0, 2, 0].numpy(), rtol=1e-6)
    if hasattr(mt, "build_model"):
        mt.seed_everything(0)
        model = mt.build_model(mt.ModelConfig.tiny(vocab_size=12)).eval()
        src, tgt = torch.randint(4, 12, (2, 4)), torch.randint(4, 12, (2, 3))
        out = model(src, tgt, output_attentions=True)
        fig = mt.plot_attention_grid(out.cross_attentions, list("xyz"), list("abcd"))
        n_layers, n_heads = len(out.cross_attentions), out.cross_attentions[0].shape[1]
        assert len(heatmap_axes(fig)) == n_layers * n_heads


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"example": 2}, r"example 2 is out of range .* 2 examples \(0\.\.1\)"),
        ({"layers": [3]}, r"layer 3 is out of range: there are 3 layers \(0\.\.2\)"),
        ({"heads": 4}, r"head 4 is out of range: there are 4 heads \(0\.\.3\)"),
        ({"heads": []}, "no heads selected"),
    ],
)
def test_grid_index_errors_name_what_exists(kwargs, message):
    attentions = tuple(random_attention(2, 4, 3, 3) for _ in range(3))
    with pytest.raises(ValueError, match=message):
        mt.plot_attention_grid(attentions, list("abc"), list("abc"), **kwargs)


def test_grid_shape_errors():
    tokens = list("abc")
    with pytest.raises(ValueError, match="output_attentions=True"):
        mt.plot_attention_grid(None, tokens, tokens)
    with pytest.raises(ValueError, match="4 key tokens for a 3-column"):
        mt.plot_attention_grid((random_attention(1, 2, 3, 3),), tokens, list("abcd"))
    with pytest.raises(ValueError, match=r"4-D \(L, H, Tq, Tk\)"):
        mt.plot_attention_grid(random_attention(3, 3), tokens, tokens)
    with pytest.raises(ValueError, match="differ in shape"):
        mt.plot_attention_grid((random_attention(1, 2, 3, 3), random_attention(1, 3, 3, 3)),
                               tokens, tokens)


# --------------------------------------------------------------------------- positions


def test_positional_encoding_heatmap():
    table = sinusoidal_table(50, 64)
    fig = mt.plot_positional_encoding(table)
    (ax,) = heatmap_axes(fig)
    assert ax.images[0].get_array().shape == (50, 64)
    assert ax.images[0].get_clim() == (-1.0, 1.0)
    assert ax.get_xlabel().startswith("dimension") and ax.get_ylabel() == "position"


@pytest.mark.parametrize("plot", ["plot_positional_encoding", "plot_position_similarity",
                                  "plot_encoding_curves"])
def test_small_position_tables_get_whole_number_ticks(plot):
    """A 4-position table: matplotlib would tick 0.5, 1.5, ...; positions are whole numbers."""
    fig = getattr(mt, plot)(sinusoidal_table(4, 10), **({"dims": (0, 1)}
                                                       if plot == "plot_encoding_curves" else {}))
    ax = fig.axes[0]
    fig.canvas.draw()
    axes = [ax.xaxis] if plot == "plot_encoding_curves" else [ax.xaxis, ax.yaxis]
    for axis in axes:
        ticks = [t for t in axis.get_majorticklocs() if axis.get_view_interval().min() <= t
                 <= axis.get_view_interval().max()]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_encoding_curves_one_line_per_dim():
    table = sinusoidal_table(50, 64)
    fig = mt.plot_encoding_curves(table, dims=(0, 1, 10, 63))
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["dim 0", "dim 1", "dim 10", "dim 63"]
    np.testing.assert_allclose(ax.get_lines()[2].get_ydata(), table[:, 10].numpy(), rtol=1e-6)
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "dim 0"
    with pytest.raises(ValueError, match=r"dimension 64 is out of range: there are 64"):
        mt.plot_encoding_curves(table, dims=(64,))


def test_position_similarity_is_cosine():
    table = sinusoidal_table(50, 64)
    fig = mt.plot_position_similarity(table)
    similarity = heatmap_axes(fig)[0].images[0].get_array()
    assert similarity.shape == (50, 50)
    np.testing.assert_allclose(np.diag(similarity), 1.0, rtol=1e-6)
    np.testing.assert_allclose(similarity, similarity.T, atol=1e-9)
    assert similarity[0, 1] > similarity[0, 25]  # nearby positions look more alike


def test_position_plots_reject_wrong_rank():
    with pytest.raises(ValueError, match=r"table must be 2-D \(positions, d_model\)"):
        mt.plot_positional_encoding(torch.zeros(1, 5, 8))


# --------------------------------------------------------------------------- training curves


def make_history() -> list[dict]:
    history = [{"step": s, "loss": 3.0 / s, "lr": 1e-3 * min(1.0, s / 5)} for s in range(1, 21)]
    history += [{"step": s, "valid_loss": 3.5 / s} for s in (5, 10, 15, 20)]
    return history


def test_training_curves_loss_valid_and_lr():
    fig = mt.plot_training_curves(make_history())
    loss_ax, lr_ax = fig.axes
    assert [line.get_label() for line in loss_ax.get_lines()] == ["loss", "valid_loss"]
    np.testing.assert_allclose(loss_ax.get_lines()[1].get_xdata(), [5, 10, 15, 20])
    assert lr_ax.get_ylabel() == "learning rate"
    assert len(lr_ax.get_lines()[0].get_xdata()) == 20


def test_training_curves_without_lr_has_one_panel():
    history = [{"step": s, "loss": 1.0 / s} for s in range(1, 6)]
    assert len(mt.plot_training_curves(history, large=True).axes) == 1


def test_training_curves_y_label_names_what_is_plotted():
    history = [{"step": s, "loss": 1.0 / s, "token_acc": s / 5} for s in range(1, 6)]
    assert mt.plot_training_curves(history).axes[0].get_ylabel() == "loss"
    assert mt.plot_training_curves(history, keys=("token_acc",)).axes[0].get_ylabel() == \
        "token acc"
    assert mt.plot_training_curves(history, keys=("loss", "token_acc")).axes[0].get_ylabel() \
        == "value"
    fig = mt.plot_training_curves(history, keys=("loss", "token_acc"), ylabel="nats or share")
    assert fig.axes[0].get_ylabel() == "nats or share"


def test_training_curves_errors():
    with pytest.raises(ValueError, match=r"no values for keys \['accuracy'\]; keys present"):
        mt.plot_training_curves(make_history(), keys=("accuracy",))
    with pytest.raises(ValueError, match="list of dicts"):
        mt.plot_training_curves({"step": 1, "loss": 2.0})


# --------------------------------------------------------------------------- head stats, saving


@pytest.mark.parametrize(("n_layers", "n_heads"), [(1, 1), (2, 3), (6, 8)])
def test_head_stats_numbers_in_cells(n_layers, n_heads):
    values = torch.arange(n_layers * n_heads, dtype=torch.float32).reshape(n_layers, n_heads)
    fig = mt.plot_head_stats(values, title="mean attention distance", fmt=".1f")
    (ax,) = heatmap_axes(fig)
    texts = [text.get_text() for text in ax.texts]
    assert texts == [f"{v:.1f}" for v in values.flatten().tolist()]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"layer {i}" for i in range(n_layers)]
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"head {j}" for j in range(n_heads)]
    assert ax.get_title() == "mean attention distance"


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_save_figure_writes_files(tmp_path, suffix):
    fig = mt.plot_attention(random_attention(3, 3), list("abc"), list("abc"))
    path = mt.save_figure(fig, tmp_path / "nested" / "dir" / f"map{suffix}")
    assert path.exists() and path.stat().st_size > 1000
    assert sorted(p.name for p in path.parent.iterdir()) == [f"map{suffix}"]  # no temp left
    head = path.read_bytes()[:8]
    assert {".png": head.startswith(b"\x89PNG"), ".svg": b"<?xml" in head or b"<svg" in head,
            ".pdf": head.startswith(b"%PDF")}[suffix]


def test_save_figure_rejects_unknown_suffix(tmp_path):
    fig = mt.plot_attention(random_attention(2, 2), list("ab"), list("ab"))
    with pytest.raises(ValueError, match=r"\.png, \.svg, \.pdf; got .*'\.jpg'"):
        mt.save_figure(fig, tmp_path / "map.jpg")


def test_figures_render_inline_as_png():
    fig = mt.plot_attention(random_attention(2, 2), list("ab"), list("ab"))
    assert fig._repr_png_().startswith(b"\x89PNG")
