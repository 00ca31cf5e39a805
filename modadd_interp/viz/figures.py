"""Plotly figures for every probe result (the ``.plot()`` of each result).

Each function takes a result (or a :class:`GridCache`) and returns a ``plotly.graph_objects.Figure``.
Key frequencies are marked in one colour throughout.

**Large p.** A heatmap draws at most :data:`MAX_HEATMAP_SIDE` x :data:`MAX_HEATMAP_SIDE` cells (at p = 1009 a
full grid would be a million cells per panel: tens of MB of page and seconds of drawing). Above that size it is
reduced for display, and its title says how; bars, lines, tables and every number the analysis reports stay
exact. Two reductions, chosen by what the heatmap shows:

* **maps over the input grid** (neuron activations, attention over ``(x, y)``, the correct logit over
  ``(x + y, x - y)``) are **strided**: every ``s``-th row and column, ``s = ceil(n / MAX_HEATMAP_SIDE)``, the same
  on both axes (:func:`stride_grid`). The cells shown hold exact values, and a function of ``x + y`` (or
  ``x - y``) stays a function of ``i + j`` (``i - j``), so a clock's diagonal stripes stay diagonal stripes
  (their apparent spacing aliases). Block averaging would instead low-pass the map: averaging ``s`` cells
  multiplies a wave of frequency ``k`` by ``|sin(pi k s / n) / (s sin(pi k / n))|``, which is 0 near ``k = n / s``,
  so the high key frequencies would fade to a flat grey.
* **spectra and per-frequency maps** (a neuron's 2D Fourier spectrum, the neuron-by-frequency shares, W_L in the
  Fourier basis) are **max-pooled** over blocks of consecutive rows/columns (:func:`max_pool`): they are sparse,
  and a block's maximum keeps every key frequency's peak at its height, where striding could skip it and
  averaging would dilute it. Pooled rows are labelled with the range they cover.

Heatmap values are sent as float32 arrays (plotly's typed-array encoding: 4 bytes a cell before base64, not a
decimal string).

Examples:
    >>> import modadd_interp as mi
    >>> from modadd_interp.probes import probe_embedding
    >>> fig = embedding_figure(probe_embedding(*mi.load()))
    >>> fig.show()                                             # draws it: not run  # doctest: +SKIP
    >>> len(fig.data) > 0, fig.layout.title.text
    (True, 'Embedding norms per frequency (key in red: [1, 5, 7, 29]; 93% of W_E in key)')
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..fourier import basis_names, fourier_transform, fourier_transform_2d

KEY_COLOR = "#d62728"
OTHER_COLOR = "#8c9db5"
TEMPLATE = "plotly_white"

MAX_HEATMAP_SIDE = 256
"""Heatmaps larger than this many cells per side (in total: more than its square) are reduced for display."""

LABELLED_POINTS = 128
"""The embedding-circle panels label each number's point with its value up to this many numbers."""

GROUPED_BAR_FREQS = 100
"""Above this many frequencies the key-frequency evidence is drawn as markers: three bars per frequency would be
thinner than a pixel (at p = 1009, 504 frequencies) and vanish. The values are the same."""


def display_stride(n: int, limit: int = MAX_HEATMAP_SIDE) -> int:
    """The stride (or pooling factor) that brings ``n`` cells to at most ``limit``: ``ceil(n / limit)``.

    Examples:
        >>> display_stride(113), display_stride(257), display_stride(1009)
        (1, 2, 4)
    """
    return max(1, math.ceil(n / limit))


def stride_grid(z: torch.Tensor, limit: int = MAX_HEATMAP_SIDE) -> tuple[torch.Tensor, int]:
    """Every ``s``-th row and column of a square map ``z`` ``[n, n, ...]`` (``s = display_stride(n)``); and ``s``.

    Examples:
        >>> z, s = stride_grid(torch.zeros(1009, 1009))
        >>> tuple(z.shape), s
        ((253, 253), 4)
    """
    s = display_stride(z.shape[0], limit)
    return (z[::s, ::s], s) if s > 1 else (z, 1)


def grid_indices(n: int, limit: int = MAX_HEATMAP_SIDE) -> tuple[torch.Tensor, int]:
    """The flat grid indices ``x * n + y`` of the strided rows and columns (``[m * m]``, row-major), and the stride.

    Examples:
        >>> index, s = grid_indices(5, limit=3)
        >>> index.tolist(), s
        ([0, 2, 4, 10, 12, 14, 20, 22, 24], 2)
    """
    s = display_stride(n, limit)
    kept = torch.arange(0, n, s)
    return (kept[:, None] * n + kept[None, :]).flatten(), s


def max_pool(z: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Block maxima of ``z`` ``[R, C]`` over blocks of ``rows`` x ``cols`` cells (the last blocks may be short).

    Examples:
        >>> max_pool(torch.arange(12.0).reshape(3, 4), 2, 2).tolist()
        [[5.0, 7.0], [9.0, 11.0]]
    """
    if rows == 1 and cols == 1:
        return z
    r, c = z.shape
    padded = torch.full((math.ceil(r / rows) * rows, math.ceil(c / cols) * cols), -math.inf, dtype=z.dtype)
    padded[:r, :c] = z
    return padded.reshape(padded.shape[0] // rows, rows, padded.shape[1] // cols, cols).amax(dim=(1, 3))


def pool_factors(shape: tuple[int, int], limit: int = MAX_HEATMAP_SIDE) -> tuple[int, int]:
    """Per-axis pooling factors for a ``[R, C]`` heatmap: 1 while ``R * C <= limit**2``, else ``ceil(side / limit)``.

    Examples:
        >>> pool_factors((113, 512)), pool_factors((1009, 512))
        ((1, 1), (4, 2))
    """
    if shape[0] * shape[1] <= limit * limit:
        return 1, 1
    return display_stride(shape[0], limit), display_stride(shape[1], limit)


def pooled_labels(labels: list[str], factor: int) -> list[str]:
    """Labels of pooled rows: the first and last label each block covers.

    Examples:
        >>> pooled_labels(["const", "cos 1", "sin 1", "cos 2", "sin 2"], 2)
        ['const – cos 1', 'sin 1 – cos 2', 'sin 2']
    """
    if factor == 1:
        return list(labels)
    blocks = [labels[i : i + factor] for i in range(0, len(labels), factor)]
    return [b[0] if len(b) == 1 else f"{b[0]} – {b[-1]}" for b in blocks]


def _strided_note(s: int, n: int) -> str:
    """A title's second line saying the map is strided (empty when it is drawn whole)."""
    return f"<br><sup>[display: every {s}th row and column of {n}]</sup>" if s > 1 else ""


def _pooled_note(rows: int, cols: int) -> str:
    """A title's second line saying the map is max-pooled (empty when it is drawn whole)."""
    return f"<br><sup>[display: max over blocks of {rows}×{cols} cells]</sup>" if rows * cols > 1 else ""


def _z(values: torch.Tensor) -> np.ndarray:
    """Heatmap values as a float32 array (sent as a typed array, not as decimal text)."""
    return values.detach().to(torch.float32).cpu().numpy()


def _bar_colors(n: int, key: tuple[int, ...]) -> list[str]:
    return [KEY_COLOR if k in key else OTHER_COLOR for k in range(1, n + 1)]


def _layout(fig: go.Figure, title: str, **kw) -> go.Figure:
    kw.setdefault("margin", dict(l=60, r=20, t=85 if "<br>" in title else 60, b=50))
    fig.update_layout(title=title, template=TEMPLATE, **kw)
    return fig


def embedding_figure(probe) -> go.Figure:
    """W_E and W_U Fourier norms per frequency, key frequencies in red."""
    n = len(probe.we_energy)
    freqs = list(range(1, n + 1))
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("W_E (embedding)", "W_U (unembedding)"))
    fig.add_bar(x=freqs, y=probe.we_norms.tolist(), marker_color=_bar_colors(n, probe.key_freqs),
                name="W_E", row=1, col=1)
    fig.add_bar(x=freqs, y=probe.wu_energy.sqrt().tolist(), marker_color=_bar_colors(n, probe.key_freqs),
                name="W_U", row=2, col=1)
    fig.update_xaxes(title_text="frequency k", row=2, col=1)
    fig.update_yaxes(title_text="Fourier norm")
    return _layout(fig, f"Embedding norms per frequency (key in red: {list(probe.key_freqs)}; "
                        f"{probe.fraction_in_key:.0%} of W_E in key)", showlegend=False, height=520)


def neuron_heatmap_figure(probe) -> go.Figure:
    """Neuron x frequency share of variance, neurons sorted by cluster then share."""
    cluster = probe.cluster_of
    order = sorted(range(len(cluster)), key=lambda i: (cluster[i] == 0, int(cluster[i]),
                                                       -float(probe.frac_explained[i])))
    shares = probe.shares[order].T  # [n//2, neurons]
    labels = [f"n{i} (k={int(cluster[i])})" if cluster[i] else f"n{i}" for i in order]
    freqs = list(range(1, shares.shape[0] + 1))
    rows, cols = pool_factors(tuple(shares.shape))
    fig = go.Figure(go.Heatmap(z=_z(max_pool(shares, rows, cols)), x=pooled_labels(labels, cols),
                               y=freqs if rows == 1 else pooled_labels([str(k) for k in freqs], rows),
                               colorscale="Blues", zmin=0, zmax=1, colorbar=dict(title="share")))
    fig.update_xaxes(title_text="neuron (sorted by cluster)", showticklabels=False)
    fig.update_yaxes(title_text="frequency k")
    sizes = probe.cluster_sizes()
    return _layout(fig, f"Neuron variance by frequency (threshold {probe.threshold:.2f}; clusters {sizes})"
                        f"{_pooled_note(rows, cols)}", height=480)


def neuron_activation_figure(cache, neurons: list[int], cols: int = 4) -> go.Figure:
    """Readout-layer activations over the grid (in the operation's coordinates) for the given neurons.

    Above :data:`MAX_HEATMAP_SIDE` numbers only the strided rows and columns are run (:func:`grid_indices`),
    exact, in one small pass: no sweep of the whole grid.
    """
    rows = max(1, -(-len(neurons) // cols))
    # ~70 px between rows: each panel's axis title and the title of the panel below it both fit
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"neuron {n}" for n in neurons],
                        horizontal_spacing=0.04, vertical_spacing=min(0.3, 70 / (260 * rows)))
    n = cache.grid.n
    index, s = grid_indices(n)
    if s > 1:
        grid = cache.neurons_of(index)[:, neurons].reshape(-1, len(range(0, n, s)), len(neurons))
    else:
        grid = cache.neuron_grid(neurons)
    shown = list(range(0, n, s))
    for i in range(len(neurons)):
        fig.add_trace(go.Heatmap(z=_z(grid[:, :, i]), x=shown, y=shown, colorscale="Viridis", showscale=False),
                      row=i // cols + 1, col=i % cols + 1)
    x, y, _ = cache.grid.coords.axes
    fig.update_xaxes(title_text=y, showticklabels=False)
    fig.update_yaxes(title_text=x, showticklabels=False, autorange="reversed")
    return _layout(fig, f"Neuron activations over the ({x}, {y}) grid{_strided_note(s, n)}", height=260 * rows)


def neuron_spectrum_figure(cache, neuron: int) -> go.Figure:
    """The 2D Fourier spectrum (|coefficient|) of one neuron's centered activation."""
    acts = cache.neuron_grid([neuron])[:, :, 0].double()
    coeffs = fourier_transform_2d(acts - acts.mean()).abs()
    names = basis_names(cache.grid.n)
    x, y, _ = cache.grid.coords.axes
    rows, cols = pool_factors(tuple(coeffs.shape))
    fig = go.Figure(go.Heatmap(z=_z(max_pool(coeffs, rows, cols)), x=pooled_labels(names, cols),
                               y=pooled_labels(names, rows), colorscale="Blues", colorbar=dict(title="|coef|")))
    fig.update_xaxes(title_text=f"{y} component")
    fig.update_yaxes(title_text=f"{x} component", autorange="reversed")
    return _layout(fig, f"2D Fourier spectrum of neuron {neuron}{_pooled_note(rows, cols)}", height=560)


def attention_figure(probe) -> go.Figure:
    """Attention from the last position to a over the grid, one panel per (layer, head)."""
    rows_n = probe.to_a.shape[0]
    layers = len(set(probe.layer.tolist()))
    cols = rows_n // layers
    titles = [(f"L{lay} " if layers > 1 else "") + (f"head {h}: constant" if flat else f"head {h}: k={k}, FVE {f:.2f}")
              for lay, h, k, f, flat in zip(probe.layer.tolist(), probe.head.tolist(), probe.dominant_freq, probe.fve,
                                            probe.constant, strict=True)]
    fig = make_subplots(rows=layers, cols=cols, subplot_titles=titles, horizontal_spacing=0.03,
                        vertical_spacing=0.12)
    top = float(probe.to_a.max()) if rows_n else 1.0
    n = probe.to_a.shape[-1]
    s = display_stride(n)
    shown = list(range(0, n, s))
    for i in range(rows_n):
        fig.add_trace(go.Heatmap(z=_z(stride_grid(probe.to_a[i])[0]), x=shown, y=shown, colorscale="Viridis", zmin=0,
                                 zmax=max(1.0, top), showscale=i == cols - 1, colorbar=dict(title="to a")),
                      row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    return _layout(fig, f"Attention from the last position to a, over the grid (rows x, columns y)"
                        f"{_strided_note(s, n)}", height=80 + 250 * layers)


def logit_figure(probe) -> go.Figure:
    """W_L's Fourier norm per frequency, with the fitted alphas."""
    n = len(probe.wl_energy)
    fig = go.Figure(go.Bar(x=list(range(1, n + 1)), y=probe.wl_energy.sqrt().tolist(),
                           marker_color=_bar_colors(n, probe.key_freqs), name="W_L norm"))
    fig.update_xaxes(title_text="frequency k (over the answer c)")
    fig.update_yaxes(title_text="Fourier norm of W_L")
    alphas = ", ".join(f"α{k}={a:.2f}" for k, a in zip(probe.key_freqs, probe.alpha.tolist(), strict=True))
    return _layout(fig, f"W_L = W_out·W_U by frequency; logits ≈ Σ α_k {probe.readout}: {alphas} "
                        f"(FVE {probe.fve:.2f})", showlegend=False, height=380)


def wl_fourier_figure(cache, key_freqs: tuple[int, ...] = ()) -> go.Figure:
    """W_L in the Fourier basis over the answers: neurons x basis rows (|coef|)."""
    coeffs = fourier_transform(cache.w_logit[:, : cache.grid.n], dim=1).abs()
    names = basis_names(cache.grid.n)
    order = torch.argsort(coeffs.argmax(1))
    z = coeffs[order].T  # [basis rows, neurons]
    rows, cols = pool_factors(tuple(z.shape))
    fig = go.Figure(go.Heatmap(z=_z(max_pool(z, rows, cols)), y=pooled_labels(names, rows), colorscale="Blues",
                               colorbar=dict(title="|coef|")))
    fig.update_xaxes(title_text="neuron (sorted by strongest component)", showticklabels=False)
    fig.update_yaxes(title_text="basis row over c", autorange="reversed")
    marked = f" (key: {list(key_freqs)})" if key_freqs else ""
    return _layout(fig, f"W_L in the Fourier basis{marked}{_pooled_note(rows, cols)}", height=560)


def logit_fit_figure(cache, probe, pairs: list[tuple[int, int]] | None = None) -> go.Figure:
    """Logits over the answers for a few inputs, beside the fit Σ α_k cos(w_k(x+y−z)) (the operation's readout).

    Args:
        pairs: inputs as group coordinates ``(x, y)`` (for add: ``(a, b)``); answers are plotted by coordinate z.
    """
    grid = cache.grid
    n, coords = grid.n, grid.coords
    pairs = pairs or [(1, 2), (n // 3, n // 2), (n - 1, n - 1)]
    x = torch.tensor([a for a, _ in pairs])
    y = torch.tensor([b for _, b in pairs])
    operands = torch.stack([coords.a_tokens[x], coords.b_tokens[y]], 1)
    logits = cache.answer_logits_at(operands)[:, :n]
    z = torch.arange(n, dtype=torch.float64)
    titles = [f"a={int(a)}, b={int(b)}" for a, b in operands]
    fig = make_subplots(rows=1, cols=len(pairs), subplot_titles=titles)
    for i, (xi, yi) in enumerate(pairs):
        row = logits[i]
        fit = sum(alpha * torch.cos(2 * torch.pi * k * (xi + yi - z) / n)
                  for k, alpha in zip(probe.key_freqs, probe.alpha.tolist(), strict=True))
        fit = fit + row.mean() if probe.key_freqs else torch.full_like(z, float(row.mean()))
        fig.add_scatter(x=z.tolist(), y=row.tolist(), mode="lines", name="model", line=dict(color="#1f77b4"),
                        showlegend=i == 0, row=1, col=i + 1)
        fig.add_scatter(x=z.tolist(), y=fit.tolist(), mode="lines", name=f"Σ α {probe.readout}",
                        line=dict(color=KEY_COLOR, dash="dot"), showlegend=i == 0, row=1, col=i + 1)
    fig.update_xaxes(title_text=f"answer ({coords.axes[2]})")
    fig.update_yaxes(title_text="logit", row=1, col=1)
    return _layout(fig, "The readout: logits peak at the answer by constructive interference", height=360)


def key_frequency_figure(kf) -> go.Figure:
    """Evidence per frequency: logit, W_L and embedding shares; key frequencies marked."""
    ev = kf.evidence
    n = len(ev["logit_share"])
    freqs = list(range(1, n + 1))
    fig = go.Figure()
    kinds = (("logit_share", KEY_COLOR, "circle"), ("wl_share", "#ff7f0e", "diamond"),
             ("embed_share", "#1f77b4", "square"))
    for name, color, symbol in kinds:
        if n > GROUPED_BAR_FREQS:
            fig.add_scatter(x=freqs, y=ev[name].tolist(), name=name, mode="markers",
                            marker=dict(color=color, symbol=symbol, size=7, opacity=0.8))
        else:
            fig.add_bar(x=freqs, y=ev[name].tolist(), name=name, marker_color=color)
    for k in kf.freqs:
        fig.add_vline(x=k, line=dict(color="#444", width=1, dash="dot"))
    fig.update_xaxes(title_text="frequency k")
    fig.update_yaxes(title_text="share of energy")
    return _layout(fig, f"Key-frequency evidence: {list(kf.freqs) or 'none'} ({kf.confidence} confidence)",
                   barmode="group", height=380)


def ablation_figure(table) -> go.Figure:
    """Test loss under each intervention of the paper's ablation table (log scale)."""
    frame = table.to_frame()
    colors = [KEY_COLOR if loss > table.uniform_loss else "#2ca02c" if loss <= 2 * frame.test_loss[0] + 1e-3
              else OTHER_COLOR for loss in frame.test_loss]
    fig = go.Figure(go.Bar(x=frame.test_loss.clip(lower=1e-12).tolist(), y=frame.intervention.tolist(),
                           orientation="h", marker_color=colors,
                           customdata=frame[["accuracy", "description"]].values.tolist(),
                           hovertemplate="%{y}<br>test loss %{x:.3g}<br>accuracy %{customdata[0]:.4f}"
                                         "<br>%{customdata[1]}<extra></extra>"))
    fig.add_vline(x=table.uniform_loss, line=dict(color="#444", dash="dash"),
                  annotation_text=f"uniform guess (log p = {table.uniform_loss:.2f})")
    fig.update_xaxes(type="log", title_text="test loss (float64 cross-entropy)")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "The ablation table: loss under each intervention", height=120 + 32 * len(frame),
                   margin=dict(l=280, r=20, t=60, b=50))


def patching_figure(result) -> go.Figure:
    """Fraction of the logit difference restored by patching each component."""
    frame = result.to_frame()
    fig = go.Figure()
    for corrupt, color in (("a", "#1f77b4"), ("b", "#ff7f0e")):
        fig.add_bar(x=frame.component.tolist(), y=frame[corrupt].tolist(), name=f"corrupt {corrupt} → {corrupt}'",
                    marker_color=color)
    fig.add_hline(y=1.0, line=dict(color="#444", dash="dot"))
    fig.update_yaxes(title_text="fraction of logit difference restored")
    return _layout(fig, f"Activation patching ({result.n_pairs} input pairs per corruption)", barmode="group",
                   height=400)


def claims_figure(report) -> go.Figure:
    """Each claim's verdict as a coloured table."""
    frame = report.to_frame()
    colors = [["#e8f5e9" if ok else "#fdecea" for ok in frame.passed]] * 5
    fig = go.Figure(go.Table(
        header=dict(values=["claim", "intervention", "after", "threshold", "verdict"], fill_color="#eee",
                    align="left"),
        cells=dict(values=[frame.name, frame.intervention, [f"{v:.3g}" for v in frame.after],
                           [f"{c} {t:.3g}" for c, t in zip(frame.comparison, frame.threshold, strict=True)],
                           ["PASS" if ok else "FAIL" for ok in frame.passed]],
                   fill_color=colors, align="left")))
    return _layout(fig, f"Circuit claims: {'confirmed' if report.passed else 'NOT confirmed'}",
                   height=120 + 45 * len(frame))


def embedding_circle_figure(cache, freqs: tuple[int, ...]) -> go.Figure:
    """Each number's embedding projected on the plane of frequency ``k``: a circle, one panel per ``k``.

    The plane is spanned by the two directions of W_E's ``cos k`` and ``sin k`` Fourier components.
    """
    w_e = cache.number_embeddings()[:, : cache.config.d_model]  # a's table, by coordinate
    coeffs = fourier_transform(w_e, dim=0)  # [n, d_model]
    freqs = tuple(freqs) or (1,)
    fig = make_subplots(rows=1, cols=len(freqs), subplot_titles=[f"k = {k}" for k in freqs])
    numbers = cache.grid.coords.a_tokens.tolist()
    for i, k in enumerate(freqs):
        plane = coeffs[2 * k - 1 : 2 * k + 1]  # [2, d_model]
        plane = plane / plane.norm(dim=1, keepdim=True).clamp_min(1e-12)
        xy = w_e @ plane.T
        fig.add_scatter(x=xy[:, 0].tolist(), y=xy[:, 1].tolist(),
                        mode="markers+text" if len(numbers) <= LABELLED_POINTS else "markers", text=numbers,
                        textposition="top center", textfont=dict(size=8), showlegend=False,
                        marker=dict(color=list(range(len(numbers))), colorscale="HSV", size=7), row=1, col=i + 1)
        fig.update_yaxes(scaleanchor=f"x{i + 1 if i else ''}", row=1, col=i + 1)
    order = "" if cache.grid.coords.is_identity else f" (frequencies over {cache.grid.coords.axes[0]})"
    return _layout(fig, f"The embedding places the numbers on circles (W_E on each key frequency's cos/sin plane)"
                        f"{order}", height=380)


PHASE_COLORS = {"memorization": "rgba(31,119,180,0.10)", "circuit formation": "rgba(255,127,14,0.12)",
                "cleanup": "rgba(44,160,44,0.12)"}


PHASE_LABEL_SHIFT = 26
"""Pixels between the top panels and the phase labels: above the subplot titles, below the figure's title."""
PHASES_MARGIN = dict(l=60, r=20, t=110, b=50)
"""The margins of a figure with phase labels (:func:`_shade_phases`): room for them between title and panels."""


def _shade_phases(fig: go.Figure, frame) -> None:
    """Shade and label the phases in ``frame.attrs["phases"]`` on every panel; label the step axis."""
    phases = frame.attrs.get("phases", {})
    bounds = [("memorization", frame["step"].iloc[0], phases.get("memorization_end")),
              ("circuit formation", phases.get("memorization_end"), phases.get("circuit_formation_end")),
              ("cleanup", phases.get("circuit_formation_end"), phases.get("cleanup_end"))]
    for name, start, end in bounds:
        if start is not None and end is not None:
            fig.add_vrect(x0=start, x1=end, fillcolor=PHASE_COLORS[name], line_width=0, row="all", col="all")
            fig.add_annotation(x=(start + end) / 2, y=1.0, yshift=PHASE_LABEL_SHIFT, yanchor="bottom", xref="x",
                               yref="paper", text=name, showarrow=False, font=dict(size=11))
    fig.update_xaxes(title_text="step", row=2)


def progress_figure(frame) -> go.Figure:
    """Progress measures over training with the detected phases shaded."""
    steps = frame["step"].tolist()
    fig = make_subplots(rows=2, cols=2, shared_xaxes=True, vertical_spacing=0.12, horizontal_spacing=0.08,
                        subplot_titles=("losses (float64)", "Gini of Fourier norms",
                                        "total sum of squared weights", "clustered neurons per key frequency"))
    for column, color in (("train_loss", "#1f77b4"), ("test_loss", "#d62728"),
                          ("restricted_loss", "#2ca02c"), ("excluded_loss", "#9467bd")):
        fig.add_scatter(x=steps, y=frame[column].clip(lower=1e-12).tolist(), name=column, mode="lines",
                        line=dict(color=color), row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.add_scatter(x=steps, y=frame["gini_we"].tolist(), name="Gini W_E", mode="lines", row=1, col=2)
    fig.add_scatter(x=steps, y=frame["gini_wl"].tolist(), name="Gini W_L", mode="lines", row=1, col=2)
    fig.add_scatter(x=steps, y=frame["total_sq_weights"].tolist(), name="Σ w²", mode="lines", row=2, col=1)
    for column in [c for c in frame.columns if c.startswith("clustered_")]:
        fig.add_scatter(x=steps, y=frame[column].tolist(), name=f"k = {column.split('_')[1]}", mode="lines",
                        row=2, col=2)
    _shade_phases(fig, frame)
    verdict = "grokked" if frame.attrs.get("phases", {}).get("grokked") else "no grokking detected"
    return _layout(fig, f"Progress measures over training ({verdict}; key frequencies {frame.attrs.get('key_freqs')})",
                   height=680, margin=PHASES_MARGIN)


def llc_figure(frame) -> go.Figure:
    """The LLC and the degeneracy measures over training (``progress_measures(run, llc=True)``), phases shaded.

    The LLC panel is log-scaled when every value is positive (it spans decades over a grokking run).
    Unhealthy LLC estimates are drawn as open markers; hovering a point shows its step pair and tries.
    With a calibrated LLC, the single-step estimates before extrapolation are there too (hidden: click
    their legend entries). With ``llc="components"`` the panel draws one curve per component
    (``frame.attrs["llc_components"]``; heads dashed), each calibrated on its own.

    Examples:
        >>> llc_figure(progress_measures(mi.shipped_run(), llc=True)).show()  # minutes; slt extra  # doctest: +SKIP
        >>> llc_figure(progress_measures(mi.shipped_run(), llc="components")).show()  # minutes  # doctest: +SKIP
    """
    steps = frame["step"].tolist()
    components = frame.attrs.get("llc_components", [])
    fig = make_subplots(rows=2, cols=2, shared_xaxes=True, vertical_spacing=0.12, horizontal_spacing=0.08,
                        subplot_titles=("local learning coefficient (± std over chains)" if not components else
                                        "LLC per component (weight-restricted, ± std over chains)",
                                        "dead / nearly-dead neurons", "effective rank",
                                        "weights carrying 99% of Σ w²"))
    plotted = []
    if "llc_mean" in frame.columns:
        healthy = frame["llc_healthy"].astype(bool).tolist()
        hover = [f"step {s}<br>LLC %{{y:.3g}} ± {sd:.2g}<br>{'healthy' if h else 'UNHEALTHY'}" for s, sd, h in
                 zip(steps, frame["llc_std"].tolist(), healthy, strict=True)]
        if "llc_lr" in frame.columns:
            hover = [f"{text}<br>lr {lr:.3g}" + ("" if math.isnan(lr2) else f" and {lr2:.3g}") + f", {tries} tries"
                     for text, lr, lr2, tries in zip(hover, frame["llc_lr"], frame["llc_lr2"], frame["llc_tries"],
                                                     strict=True)]
        fig.add_scatter(x=steps, y=frame["llc_mean"].tolist(), name="LLC", mode="lines+markers",
                        error_y=dict(type="data", array=frame["llc_std"].tolist(), visible=True),
                        marker=dict(symbol=["circle" if h else "circle-open" for h in healthy], size=7),
                        line=dict(color="#1f77b4"), hovertext=hover, hoverinfo="text", row=1, col=1)
        if "llc_at_lr2" in frame.columns and frame["llc_at_lr2"].notna().any():
            for column, name, dash in (("llc_at_lr", "LLC at the larger step", "dot"),
                                       ("llc_at_lr2", "LLC at the smaller step", "dash")):
                fig.add_scatter(x=steps, y=frame[column].tolist(), name=name, mode="lines", visible="legendonly",
                                line=dict(color="#1f77b4", dash=dash, width=1), row=1, col=1)
        plotted.append(frame["llc_mean"])
    for i, component in enumerate(components):
        plotted.append(_component_llc_trace(fig, frame, component, COMPONENT_COLORS[i % len(COMPONENT_COLORS)]))
    values = pd.concat(plotted) if plotted else pd.Series(dtype=float)
    if len(values) and values.notna().all() and (values > 0).all():
        fig.update_yaxes(type="log", dtick=1, title_text="LLC (log scale)", row=1, col=1)
    fig.add_scatter(x=steps, y=frame["dead_neurons"].tolist(), name="dead neurons", mode="lines", row=1, col=2)
    fig.add_scatter(x=steps, y=frame["nearly_dead_neurons"].tolist(), name="nearly dead (< 1%)", mode="lines",
                    row=1, col=2)
    fig.add_scatter(x=steps, y=frame["erank_wl"].tolist(), name="erank W_L", mode="lines", row=2, col=1)
    fig.add_scatter(x=steps, y=frame["erank_we"].tolist(), name="erank W_E[:p]", mode="lines", row=2, col=1)
    fig.add_scatter(x=steps, y=frame["weights_needed"].tolist(), name="weights needed", mode="lines", row=2, col=2)
    _shade_phases(fig, frame)
    return _layout(fig, "The singular-learning-theory lens: " + ("the LLC per component" if components else "LLC")
                   + " and degeneracy over training", height=680 if not components else 760, margin=PHASES_MARGIN)


COMPONENT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                    "#bcbd22", "#17becf")


def _component_llc_trace(fig: go.Figure, frame, component: str, color: str):
    """One component's LLC curve (``progress_measures(..., llc="components")`` columns) in the LLC panel."""
    from ..slt import column_name

    c = column_name(component)
    steps, healthy = frame["step"].tolist(), frame[f"{c}_healthy"].astype(bool).tolist()
    hover = [f"{component}, step {s}<br>LLC %{{y:.3g}} ± {sd:.2g}<br>lr {lr:.3g}"
             + ("" if math.isnan(lr2) else f" and {lr2:.3g}") + ("" if h else f"<br>UNHEALTHY: {why}")
             for s, sd, lr, lr2, h, why in zip(steps, frame[f"{c}_std"], frame[f"{c}_lr"], frame[f"{c}_lr2"],
                                               healthy, frame[f"{c}_reasons"], strict=True)]
    head = component[:1] == "l" and "h" in component and " " not in component
    fig.add_scatter(x=steps, y=frame[c].tolist(), name=component, mode="lines+markers",
                    error_y=dict(type="data", array=frame[f"{c}_std"].tolist(), visible=True, thickness=1),
                    marker=dict(symbol=["circle" if h else "circle-open" for h in healthy], size=5),
                    line=dict(color=color, dash="dash" if head else "solid", width=1.5), hovertext=hover,
                    hoverinfo="text", row=1, col=1)
    return frame[c]


def loss_kernel_figure(kernel, eigenvectors: int = 4) -> go.Figure:
    """The loss kernel (:func:`modadd_interp.slt.loss_kernel`): where its top eigenvectors lie, its spectrum, and
    the top eigenvectors drawn over the grid.

    Top left: per frequency ``k``, the share of the top ``m`` eigenvectors' energy in ``cos/sin(w_k z)``
    (``z = x + y``; key frequencies in red; the kernel's :attr:`~modadd_interp.slt.LossKernel.statistic`, the other
    statistic's as diamonds) on a log scale, against the share a random direction pair has (``2 / N``, dashed).
    Top right: the kernel's top eigenvalues (over ``N``). Bottom: the top eigenvectors over the ``(x, y)`` grid (a
    function of ``x + y`` alone is constant along the anti-diagonals; frequencies near ``n / 2`` alias into
    patterns along the diagonals on screen).

    Examples:
        >>> loss_kernel_figure(slt.loss_kernel(*mi.load())).show()    # doctest: +SKIP
    """
    n = kernel.n
    shown = min(4, eigenvectors, kernel.eigenvectors.shape[1])
    fig = make_subplots(rows=2, cols=4, specs=[[{"colspan": 2}, None, {"colspan": 2}, None], [{}, {}, {}, {}]],
                        row_heights=[0.55, 0.45], vertical_spacing=0.16, horizontal_spacing=0.05,
                        subplot_titles=(f"share of the top {kernel.top} eigenvectors per frequency of z = x + y",
                                        "top eigenvalues / N", *[f"eigenvector {i + 1}" for i in range(shown)]))
    frame = kernel.to_frame()
    fig.add_bar(x=frame["k"].tolist(), y=frame[kernel.statistic].clip(lower=1e-7).tolist(),
                name=f"share per frequency ({kernel.statistic})",
                marker_color=_bar_colors(len(frame), tuple(kernel.key_freqs)), row=1, col=1)
    for other in [name for name in kernel.readings if name != kernel.statistic]:
        fig.add_scatter(x=frame["k"].tolist(), y=frame[other].clip(lower=1e-7).tolist(), mode="markers",
                        name=f"{other} (the same draws)", marker=dict(symbol="diamond", size=5, color="#1d2330"),
                        row=1, col=1)
    fig.add_scatter(x=[0.5, len(frame) + 0.5], y=[frame["random"].iloc[0]] * 2, mode="lines",
                    name="random direction pair (2 / N)", line=dict(dash="dash", color="#555"), row=1, col=1)
    fig.update_yaxes(type="log", title_text="share", row=1, col=1)
    fig.update_xaxes(title_text="frequency k", row=1, col=1)
    top = kernel.eigenvalues[:24]
    fig.add_bar(x=list(range(1, len(top) + 1)), y=top.tolist(), name="eigenvalue / N", marker_color=OTHER_COLOR,
                row=1, col=3)
    fig.update_xaxes(title_text="eigenvector", row=1, col=3)
    for i in range(shown):
        grid, s = stride_grid(torch.from_numpy(kernel.eigenvectors[:, i]).reshape(n, n))
        fig.add_trace(go.Heatmap(z=_z(grid), x=list(range(0, n, s)), y=list(range(0, n, s)), colorscale="RdBu",
                                 zmid=0, showscale=False), row=2, col=i + 1)
        fig.update_xaxes(title_text="y", showticklabels=False, row=2, col=i + 1)
        fig.update_yaxes(title_text="x" if i == 0 else None, showticklabels=False, autorange="reversed",
                         row=2, col=i + 1)
    s = display_stride(n)
    title = (f"The loss kernel ({kernel.statistic})<br><sup>{kernel.fourier_share:.1%} of its top {kernel.top} "
             f"eigenvectors lie in the key frequencies' span {list(kernel.key_freqs)}; random subspaces: "
             f"{kernel.random_share:.2%}" + (f"; eigenvectors: every {s}th row and column" if s > 1 else "")
             + "</sup>")
    return _layout(fig, title, height=780, showlegend=True, legend=dict(orientation="h", y=-0.08))


def clock_pizza_figure(report, cache) -> go.Figure:
    """Clock or pizza: the model on Zhong et al.'s two diagnostics, its correct-answer logits by ``(x+y, x-y)``,
    and each hypothesis's share of loss recovered per causal test."""
    diag, n = report.diagnostics, cache.grid.n
    # the spacing leaves room for the heatmap's colorbar between the second and third panels
    fig = make_subplots(rows=1, cols=3, column_widths=[0.3, 0.35, 0.35], horizontal_spacing=0.13,
                        subplot_titles=("Zhong et al.'s diagnostics",
                                        "correct-answer logit by (x+y, x−y)", "share of loss recovered"))
    fig.add_scatter(x=[diag.distance_irrelevance], y=[diag.gradient_symmetricity], mode="markers+text",
                    text=[report.verdict.algorithm], textposition="top center", marker=dict(size=14, color=KEY_COLOR),
                    showlegend=False, row=1, col=1)
    for x0, x1, y0, y1, name in ((0, 0.5, 0.5, 1.0, "pizza-like"), (0.5, 1.0, 0, 0.5, "clock-like")):
        fig.add_shape(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, fillcolor="rgba(140,157,181,0.12)", line_width=0,
                      row=1, col=1)
        fig.add_annotation(x=(x0 + x1) / 2, y=y0 + 0.05, text=name, showarrow=False, font=dict(size=10),
                           row=1, col=1)
    fig.update_xaxes(range=[0, 1.05], title_text="distance irrelevance", row=1, col=1)
    fig.update_yaxes(range=[0, 1.15], title_text="gradient symmetricity", row=1, col=1)
    x = torch.arange(n).repeat_interleave(n)
    y = torch.arange(n).repeat(n)
    cell = ((x + y) % n) * n + (x - y) % n
    count = torch.bincount(cell, minlength=n * n).double()
    total = torch.zeros(n * n, dtype=torch.float64).index_add_(0, cell, cache.correct_logits)
    grid = torch.where(count > 0, total / count.clamp_min(1), float("nan")).reshape(n, n)  # even n: half the cells
    grid, s = stride_grid(grid)
    shown = list(range(0, n, s))
    fig.add_trace(go.Heatmap(z=_z(grid), x=shown, y=shown, colorscale="Reds_r",
                             colorbar=dict(title="logit", x=0.62, xanchor="left", len=0.9, thickness=10)), row=1, col=2)
    shown_note = f" [display: every {s}th of {n}]" if s > 1 else ""
    fig.update_xaxes(title_text=f"x − y{shown_note}", row=1, col=2)
    fig.update_yaxes(title_text=f"x + y{shown_note}", autorange="reversed", row=1, col=2)
    tests = report.hypotheses
    for i, (name, test) in enumerate(tests.items()):
        recovered = test.loss_recovered
        fig.add_bar(x=list(recovered), y=list(recovered.values()), name=name, row=1, col=3,
                    marker_color=[KEY_COLOR, "#1f77b4", "#2ca02c", "#9467bd"][i % 4])
    fig.add_hline(y=0.95, line_dash="dot", line_color="#444", row=1, col=3)
    return _layout(fig, f"Clock or pizza<br><sup>{report.verdict.line}</sup>", height=470,
                   legend=dict(orientation="h", x=1.0, y=-0.15, xanchor="right"))


def circles_figure(circles) -> go.Figure:
    """Each key frequency's isolated circle: how much of its logit component a constant, ``x + y`` and ``x − y``
    explain, and each hypothesis's signature (the pizza's pizzaness)."""
    from ..causal.circles import CIRCLE_SIGNATURE

    frame = circles.to_frame()
    labels = [f"k={k} ({label})" for k, label in zip(frame["freq"], frame["label"], strict=True)]
    signed = list(circles.signature_owners)
    fig = go.Figure()
    colors = ["#ff7f0e", "#9467bd", "#2ca02c", "#8c564b"]
    columns = [("const", "#8c9db5"), ("sum", "#1f77b4"), ("diff", KEY_COLOR)]
    columns += [(name, colors[i % len(colors)]) for i, name in enumerate(signed)]
    for column, color in columns:
        fig.add_bar(x=labels, y=frame[column].tolist(), name=column, marker_color=color)
    fig.add_hline(y=CIRCLE_SIGNATURE, line_dash="dot", line_color="#444",
                  annotation_text=" / ".join(f"{circles.signature_owners[c]} circle at {c} ≥ {CIRCLE_SIGNATURE:g}"
                                             for c in signed))
    fig.update_yaxes(title_text="share of the isolated component's energy")
    return _layout(fig, "Each circle on its own (other frequencies removed from the embedding)", barmode="group",
                   height=380)


def irrep_spectrum_figure(spectrum, key: tuple[str, ...] = ()) -> go.Figure:
    """A group's real irreps: the shares of the logits, ``W_E``, ``W_U`` and the neurons in each (bars), and the
    logit trace similarity with ``χ_ρ(x ∘ y ∘ z⁻¹)`` (points; key irreps marked)."""
    frame = spectrum.to_frame().iloc[1:]  # the trivial irrep carries no share
    names = [f"{r.irrep} (d={r.dim})" for r in frame.itertuples()]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.7, 0.3],
                        subplot_titles=["share of each irrep (trivial excluded)", "logit trace similarity"])
    for column, color in (("logit_share", KEY_COLOR), ("embed_share", "#1f77b4"), ("unembed_share", "#9467bd"),
                          ("neuron_share", "#2ca02c")):
        fig.add_bar(x=names, y=frame[column].tolist(), name=column, marker_color=color, row=1, col=1)
    colors = [KEY_COLOR if name in key else "#7f7f7f" for name in frame["irrep"]]
    fig.add_scatter(x=names, y=frame["trace_similarity"].tolist(), mode="markers", marker=dict(size=11, color=colors),
                    name="trace similarity (red: key)", row=1, col=2)
    fig.update_layout(barmode="group")
    return _layout(fig, f"{spectrum.group}: where the model lives among the irreps", height=420,
                   legend=dict(orientation="h", x=1.0, y=-0.25, xanchor="right"))


def neuron_irrep_figure(shares: torch.Tensor, names: tuple[str, ...]) -> go.Figure:
    """``[d_mlp, n_irreps]`` each readout-layer neuron's share of its variance in each irrep's blocks (neurons sorted
    by their largest irrep)."""
    order = torch.argsort(shares.argmax(1) * 10 - shares.max(1).values, stable=True)
    z = shares[order].T
    fig = go.Figure(go.Heatmap(z=_z(z), x=list(range(z.shape[1])), y=list(names), colorscale="Viridis", zmin=0, zmax=1,
                               colorbar=dict(title="share")))
    fig.update_xaxes(title_text="neuron (sorted by irrep)")
    return _layout(fig, "The neurons by irrep (ρ⊗1, 1⊗ρ and ρ⊗ρ blocks of each neuron's variance)", height=360)
