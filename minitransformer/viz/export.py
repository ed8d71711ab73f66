"""Save figures to files, and a one-call standalone HTML report of an attention cache.

    export_figure(fig, "attention.html")   # plotly: standalone HTML, plotly.js embedded
    export_figure(fig, "attention.png")    # plotly: via kaleido + a local Chromium
    export_figure(mpl_fig, "curves.pdf")   # matplotlib: PNG / SVG / PDF (static.save_figure)
    attention_report(cache, "report.html") # every layer, kind and head, opens with no network

Nothing written here loads anything from the network: plotly.js is embedded (once per file),
never linked from a CDN. Files are written to a temporary name and renamed (no half files).
"""

from __future__ import annotations

import html
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

HTML_SUFFIXES = (".html", ".htm")
IMAGE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".webp")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
                  "chrome")
KALEIDO_HINT = "pip install 'kaleido>=1.0'  (or: pip install 'minitransformer[dev]')"


def _is_plotly(fig: Any) -> bool:
    try:
        from plotly.basedatatypes import BaseFigure
    except ImportError:  # pragma: no cover - plotly is a core dependency
        return False
    return isinstance(fig, BaseFigure)


def _is_matplotlib(fig: Any) -> bool:
    from matplotlib.figure import Figure

    return isinstance(fig, Figure)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call `write(temporary)`, then rename to `path`; parents created, no half files left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def find_chromium() -> str | None:
    """A local Chrome/Chromium for kaleido: $BROWSER_PATH, else the first on PATH, else None.
    Never downloads one."""
    configured = os.environ.get("BROWSER_PATH")
    if configured and Path(configured).exists():
        return configured
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def figure_html(fig: Any, *, include_plotlyjs: bool = True, full_html: bool = True) -> str:
    """A plotly figure as HTML; with `include_plotlyjs=True` plotly.js is embedded (never a CDN
    link), so the file works offline. `FigureWidget`s are exported as plain figures."""
    import plotly.graph_objects as go
    import plotly.io as pio

    if not _is_plotly(fig):
        raise TypeError(f"figure_html expects a plotly figure, got {type(fig).__name__}")
    figure = go.Figure(fig) if isinstance(fig, go.FigureWidget) else fig
    return pio.to_html(
        figure, include_plotlyjs=bool(include_plotlyjs), full_html=full_html,
        config={"displaylogo": False, "responsive": True},
    )


def export_figure(fig: Any, path: str | os.PathLike[str], *, scale: float = 2.0) -> Path:
    """Write a figure to `path`, the format chosen by the suffix. Returns the path.

    - matplotlib `Figure`: .png / .svg / .pdf (through `viz.static.save_figure`).
    - plotly `Figure` / `FigureWidget`: .html always works (standalone, plotly.js embedded,
      interactive, offline); .png / .svg / .pdf / .jpg / .webp need kaleido >= 1.0 and a local
      Chrome/Chromium (found on PATH or via $BROWSER_PATH; never downloaded).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if _is_matplotlib(fig):
        from .static import save_figure

        return save_figure(fig, path)
    if not _is_plotly(fig):
        raise TypeError(
            f"export_figure expects a matplotlib or plotly figure, got {type(fig).__name__}"
        )
    if suffix in HTML_SUFFIXES:
        text = figure_html(fig)
        return _atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
    if suffix not in IMAGE_SUFFIXES:
        allowed = ", ".join(HTML_SUFFIXES + IMAGE_SUFFIXES)
        raise ValueError(
            f"cannot export a plotly figure to {str(path)!r} (suffix {suffix!r}); "
            f"use one of {allowed}"
        )
    image = plotly_image_bytes(fig, suffix[1:], scale=scale)
    return _atomic_write(path, lambda p: p.write_bytes(image))


def plotly_image_bytes(fig: Any, fmt: str = "png", *, scale: float = 2.0) -> bytes:
    """Render a plotly figure to PNG/SVG/PDF bytes with kaleido and a local Chromium."""
    import plotly.graph_objects as go
    import plotly.io as pio

    try:
        import kaleido  # noqa: F401
    except ImportError as error:
        raise RuntimeError(
            f"exporting a plotly figure as {fmt.upper()} needs kaleido, which is not "
            f"installed: {KALEIDO_HINT}. HTML export needs nothing extra: "
            "export_figure(fig, 'figure.html')"
        ) from error
    browser = find_chromium()
    if browser is None:
        raise RuntimeError(
            f"exporting a plotly figure as {fmt.upper()} needs Chrome or Chromium (kaleido "
            f"drives it); none found on PATH ({', '.join(CHROMIUM_NAMES)}) and BROWSER_PATH "
            "is not set. Install one (e.g. apt install chromium) or set BROWSER_PATH; "
            "or export HTML instead: export_figure(fig, 'figure.html')"
        )
    os.environ.setdefault("BROWSER_PATH", browser)
    figure = go.Figure(fig) if isinstance(fig, go.FigureWidget) else fig
    return pio.to_image(figure, format=fmt, scale=scale)


# --------------------------------------------------------------------------- report


_REPORT_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px;
       color: #222; max-width: 1400px; }
h1 { font-size: 28px; } h2 { font-size: 22px; margin-top: 36px; } h3 { font-size: 17px; }
table.stats { border-collapse: collapse; margin: 8px 0 20px; font-size: 14px; }
table.stats th, table.stats td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
table.stats th { background: #f3f3f3; }
p.note, span.note { color: #555; font-size: 14px; font-weight: normal; }
nav a { margin-right: 14px; }
"""


STAT_NOTES = {
    "entropy": "mean row entropy in nats (0 = one key only; log n = uniform over n keys)",
    "distance": "mean distance |query position - key position| weighted by attention",
    "special": "share of attention on <bos> / <eos> / <pad> (the usual attention sinks)",
    "max_weight": "mean of each row's largest weight (1 = hard attention)",
}


def _stats_tables(cache: Any, stack: str, kind: str) -> str:
    """Per-head statistics as HTML tables, when `minitransformer.analysis.head_stats` exists
    (computed over every example of the batch, padding excluded)."""
    try:
        from ..analysis import head_stats
    except ImportError:
        return ""
    try:
        stats = head_stats(cache)
    except Exception as error:  # a report should still be written without the stats
        return f'<p class="note">per-head statistics unavailable: {html.escape(str(error))}</p>'
    values = stats.get((stack, kind)) if isinstance(stats, dict) else None
    if not values:
        return ""
    parts = []
    for name, table in values.items():
        if not hasattr(table, "shape") or len(table.shape) != 2:
            continue
        rows, cols = table.shape
        header = "".join(f"<th>head {h}</th>" for h in range(cols))
        body = "".join(
            f"<tr><th>layer {i}</th>"
            + "".join(f"<td>{float(table[i][j]):.3f}</td>" for j in range(cols)) + "</tr>"
            for i in range(rows)
        )
        note = STAT_NOTES.get(str(name), "")
        note = f" <span class='note'>{html.escape(note)}</span>" if note else ""
        parts.append(f"<h3>{html.escape(str(name))}{note}</h3><table class='stats'>"
                     f"<tr><th></th>{header}</tr>{body}</table>")
    return "".join(parts)


def _layer_grid(maps: Any, queries: list[str], keys: list[str], title: str, large: bool,
                heads_per_row: int) -> Any:
    """All heads of one layer, (H, Tq, Tk), as a grid of hoverable heatmaps on one 0..1 scale."""
    import numpy as np
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from .inputs import tick_indices
    from .interactive import HOVER_TEMPLATE, get_plotly_style, hover_data, plotly_label

    style = get_plotly_style(large)
    n_heads, n_queries, n_keys = maps.shape
    cols = min(n_heads, heads_per_row)
    rows = -(-n_heads // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"head {h}" for h in
                                                               range(n_heads)],
                        horizontal_spacing=0.04, vertical_spacing=0.12 / max(1, rows - 1) + 0.04)
    hover = hover_data(queries, keys)
    for h in range(n_heads):
        fig.add_trace(go.Heatmap(
            z=np.asarray(maps[h]), customdata=hover, hovertemplate=HOVER_TEMPLATE,
            colorscale="Viridis", zmin=0.0, zmax=1.0, showscale=h == 0,
            colorbar=dict(title=dict(text="weight")),
        ), row=h // cols + 1, col=h % cols + 1)
    key_ticks = tick_indices(n_keys, 20)
    query_ticks = tick_indices(n_queries, 20)
    fig.update_xaxes(tickmode="array", tickvals=key_ticks,
                     ticktext=[plotly_label(keys[i]) for i in key_ticks],
                     tickfont=dict(size=style.ticks - 2))
    fig.update_yaxes(tickmode="array", tickvals=query_ticks,
                     ticktext=[plotly_label(queries[i]) for i in query_ticks],
                     tickfont=dict(size=style.ticks - 2), autorange="reversed")
    panel = max(170, min(320, 18 * max(n_queries, n_keys)))
    fig.update_layout(
        title=dict(text=title, font=dict(size=style.title)), template="plotly_white",
        width=cols * panel + 180, height=rows * (panel + 50) + 130,
        margin=dict(l=80, r=40, t=90, b=60), font=dict(size=style.font),
    )
    return fig


def attention_report(
    cache: Any,
    path: str | os.PathLike[str],
    *,
    title: str = "Attention report",
    example: int = 0,
    large: bool = False,
    heads_per_row: int = 4,
) -> Path:
    """Write a standalone HTML report of an AttentionCache: for every (stack, kind) and layer,
    all heads of one example as hoverable heatmaps (queries down, keys across, with their
    tokens), plus per-head statistics when `minitransformer.analysis.head_stats` is available.

    The file opens in any browser with no kernel and no network: plotly.js is embedded once at
    the top and every figure uses it. Returns the path.
    """
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    from .interactive import KINDS, STACKS, cache_maps

    if heads_per_row < 1:
        raise ValueError(f"heads_per_row must be at least 1, got {heads_per_row!r}")
    present = {(k[0], k[2]) for k in cache.keys()}
    sections = [(s, k) for s in STACKS for k in KINDS if (s, k) in present]
    if not sections:
        raise ValueError("the cache holds no attention maps; record some with mt.record(...)")
    body: list[str] = []
    nav: list[str] = []
    config = {"displaylogo": False, "responsive": False}
    for stack, kind in sections:
        maps, queries, keys = cache_maps(cache, stack, kind, example)  # (L, H, Tq, Tk)
        anchor = f"{stack}-{kind}"
        nav.append(f'<a href="#{anchor}">{stack} {kind}-attention</a>')
        body.append(f'<h2 id="{anchor}">{stack} {kind}-attention</h2>')
        body.append(
            f'<p class="note">{maps.shape[0]} layers x {maps.shape[1]} heads; queries '
            f"({len(queries)}): {html.escape(' '.join(queries))}<br>keys ({len(keys)}): "
            f"{html.escape(' '.join(keys))}</p>"
        )
        body.append(_stats_tables(cache, stack, kind))
        for layer in range(maps.shape[0]):
            fig = _layer_grid(maps[layer], queries, keys, f"{stack} {kind}-attention, "
                              f"layer {layer}", large, heads_per_row)
            body.append(pio.to_html(fig, include_plotlyjs=False, full_html=False,
                                    config=config))
    safe_title = html.escape(title)
    batch = getattr(cache, "batch_size", "?")
    document = (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>{safe_title}</title>\n<style>{_REPORT_CSS}</style>\n"
        f"<script type='text/javascript'>{get_plotlyjs()}</script>\n</head>\n<body>\n"
        f"<h1>{safe_title}</h1>\n"
        f"<p class='note'>Example {example} of a batch of {batch}. Rows are queries (the token "
        "attending), columns are keys (the token attended to); hover a cell for the tokens "
        "and the weight. Colour scale 0..1 everywhere. Per-head statistics (when shown) are "
        "over every example of the batch.</p>\n"
        f"<nav>{''.join(nav)}</nav>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
    return _atomic_write(Path(path), lambda p: p.write_text(document, encoding="utf-8"))


__all__ = ["attention_report", "export_figure", "figure_html", "find_chromium"]
