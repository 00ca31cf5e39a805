"""Figures of a sweep's results table (plotly): phase diagrams, time to grok, key frequencies, algorithms.

Every figure takes the table of :func:`modadd_interp.sweep.results.read_results` (one row per run,
``key_frequencies`` as lists). Runs that differ only in ``seed`` are pooled: a phase-diagram cell shows
the **majority** label over its seeds (ties go to the label listed first in
:data:`~modadd_interp.sweep.labels.LABELS`: comprehension, grokking, memorization, confusion), and the
time to grok is the **median** over the seeds that reached the test threshold. Axes beyond the two
drawn are shown as one panel per combination of their values.

Examples:
    >>> frame = read_results("sweeps/wd_frac")       # a finished sweep's directory: not run  # doctest: +SKIP
    >>> phase_diagram(frame, "weight_decay", "frac_train").show()      # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..errors import ModAddError
from .labels import ACCURACY_THRESHOLD, LABELS
from .spec import AXES, format_value

#: One colour per label (and for cells whose every run failed).
LABEL_COLORS = {"comprehension": "#2b8cbe", "grokking": "#31a354", "memorization": "#fd8d3c",
                "confusion": "#bdbdbd", "failed": "#e31a1c"}
ALGORITHM_COLORS = {"clock": "#3182bd", "pizza": "#e6550d", "mixed": "#756bb1", "none": "#bdbdbd"}
#: Panels drawn at most (one per combination of the axes beyond x and y).
MAX_PANELS = 12
_CATEGORIES = (*LABELS, "failed")


def swept_axes(frame: pd.DataFrame) -> list[str]:
    """The axes with more than one value in the table, in :data:`~modadd_interp.sweep.spec.AXES` order."""
    return [axis for axis in AXES if axis in frame and frame[axis].nunique(dropna=True) > 1]


def choose_axes(frame: pd.DataFrame, x: str | None = None, y: str | None = None) -> tuple[str | None, str | None]:
    """The phase diagram's axes: the given ones, else the first two swept axes other than ``seed``.

    Raises:
        ModAddError: an axis that is not one of the sweep's axes, or x equal to y.
    """
    for name, axis in (("x", x), ("y", y)):
        if axis is not None and axis not in AXES:
            raise ModAddError(f"--{name} {axis!r} is not an axis; use one of {', '.join(AXES)}.")
    if x is not None and x == y:
        raise ModAddError(f"--x and --y are both {x!r}; choose two different axes.")
    free = [a for a in swept_axes(frame) if a != "seed" and a not in (x, y)]
    if x is None:
        x = free.pop(0) if free else None
    if y is None:
        y = free.pop(0) if free else None
    return x, y


def panel_axes(frame: pd.DataFrame, x: str | None, y: str | None) -> list[str]:
    """Swept axes, other than x, y and seed, that split the diagram into panels."""
    return [a for a in swept_axes(frame) if a not in (x, y, "seed")]


def majority_label(labels: list[str]) -> str | None:
    """The most common label (ties: the one first in LABELS); None for no labels."""
    if not labels:
        return None
    counts = Counter(labels)
    return max(LABELS, key=lambda label: (counts.get(label, 0), -LABELS.index(label)))


def _values(frame: pd.DataFrame, axis: str | None) -> list[Any]:
    if axis is None:
        return [None]
    return sorted(frame[axis].dropna().unique().tolist(), key=lambda v: (isinstance(v, str), v))


def _ticks(values: list[Any]) -> list[str]:
    return [format_value(v) if v is not None else "" for v in values]


def _panels(frame: pd.DataFrame, x: str | None, y: str | None) -> list[tuple[str, pd.DataFrame]]:
    by = panel_axes(frame, x, y)
    if not by:
        return [("", frame)]
    groups = []
    for key, sub in frame.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        groups.append((", ".join(f"{a}={format_value(v)}" for a, v in zip(by, key, strict=True)), sub))
    return groups[:MAX_PANELS]


def _select(frame: pd.DataFrame, axis: str | None, value: Any) -> pd.Series:
    return pd.Series(True, index=frame.index) if axis is None else frame[axis] == value


def _grid_figure(frame: pd.DataFrame, x: str | None, y: str | None, cell_fn, title: str,
                 heatmap_kwargs: dict, dark_high: bool = False) -> go.Figure:
    """A heatmap per panel, on one colour scale; ``cell_fn(runs)`` gives each grid cell's ``(z, text, hover)``.

    ``dark_high``: the colour scale is dark at high values, so the text there is drawn white.
    """
    panels = _panels(frame, x, y)
    xs, ys = _values(frame, x), _values(frame, y)
    cols = min(len(panels), 3)
    rows = math.ceil(len(panels) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[name for name, _ in panels] if len(panels) > 1 else None,
                        horizontal_spacing=0.08, vertical_spacing=0.14)
    grids = []
    for _, sub in panels:
        z = np.full((len(ys), len(xs)), np.nan)
        text = [["" for _ in xs] for _ in ys]
        hover = [["" for _ in xs] for _ in ys]
        for i, yv in enumerate(ys):
            for j, xv in enumerate(xs):
                runs = sub[_select(sub, x, xv) & _select(sub, y, yv)]
                if len(runs):
                    z[i, j], text[i][j], hover[i][j] = cell_fn(runs)
        grids.append((z, text, hover))
    finite = np.concatenate([z[np.isfinite(z)] for z, _, _ in grids])
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    scale = {"zmin": low, "zmax": high if high > low else low + 1, **heatmap_kwargs}
    for index, (z, text, hover) in enumerate(grids):
        where = {"row": index // cols + 1, "col": index % cols + 1}
        fig.add_trace(go.Heatmap(z=z, x=_ticks(xs), y=_ticks(ys), customdata=hover, xgap=2, ygap=2,
                                 hovertemplate="%{customdata}<extra></extra>", showscale=index == 0, **scale), **where)
        # the cell texts as their own trace: a heatmap draws no text where z is missing ("never" cells)
        cells = [(tx, ty, text[i][j], _text_color(z[i, j], scale, dark_high))
                 for i, ty in enumerate(_ticks(ys)) for j, tx in enumerate(_ticks(xs)) if text[i][j]]
        if cells:
            fig.add_trace(go.Scatter(x=[c[0] for c in cells], y=[c[1] for c in cells], text=[c[2] for c in cells],
                                     mode="text", hoverinfo="skip", showlegend=False,
                                     textfont={"size": 12, "color": [c[3] for c in cells]}), **where)
    fig.update_xaxes(type="category", title_text=x or "")
    fig.update_yaxes(type="category", title_text=y or "")
    fig.update_layout(title=title, height=max(360, 330 * rows), margin={"t": 80})
    return fig


def _text_color(value: float, scale: dict, dark_high: bool) -> str:
    """White on the dark half of a scale that is dark at high values, else near-black."""
    if dark_high and math.isfinite(value):
        if (value - scale["zmin"]) / (scale["zmax"] - scale["zmin"]) > 0.5:
            return "white"
    return "#1d2330"


def phase_diagram(frame: pd.DataFrame, x: str | None = None, y: str | None = None) -> go.Figure:
    """Cells coloured by the majority Liu et al. label over seeds; the text gives its share of the seeds."""
    x, y = choose_axes(frame, x, y)
    n = len(_CATEGORIES)
    scale = []
    for i, category in enumerate(_CATEGORIES):
        scale += [[i / n, LABEL_COLORS[category]], [(i + 1) / n, LABEL_COLORS[category]]]

    def cell(runs: pd.DataFrame) -> tuple[float, str, str]:
        ok = runs[runs["status"] == "ok"]
        counts = Counter(ok["label"])
        label = majority_label(list(ok["label"]))
        detail = "<br>".join(f"{lab}: {counts[lab]}" for lab in LABELS if counts.get(lab))
        failed = len(runs) - len(ok)
        if failed:
            detail += f"<br>failed: {failed}"
        if label is None:
            return _CATEGORIES.index("failed"), f"failed {failed}/{len(runs)}", detail
        return _CATEGORIES.index(label), f"{label}<br>{counts[label]}/{len(runs)}", detail

    return _grid_figure(frame, x, y, cell, "Phase diagram: majority label over seeds",
                        {"colorscale": scale, "zmin": -0.5, "zmax": n - 0.5,
                         "colorbar": {"tickvals": list(range(n)), "ticktext": list(_CATEGORIES)}})


def time_to_grok(frame: pd.DataFrame, x: str | None = None, y: str | None = None) -> go.Figure:
    """Median steps to reach the test-accuracy threshold over the seeds that reached it (text: how many did)."""
    x, y = choose_axes(frame, x, y)

    def cell(runs: pd.DataFrame) -> tuple[float, str, str]:
        ok = runs[runs["status"] == "ok"]
        reached = ok["test_threshold_step"].dropna().astype(float)
        if not len(reached):
            return math.nan, f"never<br>0/{len(runs)}", "no seed reached the test threshold"
        median = float(reached.median())
        delays = ok["grok_delay"].dropna().astype(float)
        hover = f"median {median:g} steps; delay after train: median {float(delays.median()):g}"
        return median, f"{median:g}<br>{len(reached)}/{len(runs)}", hover

    return _grid_figure(frame, x, y, cell,
                        f"Time to grok: median steps to {ACCURACY_THRESHOLD:.0%} test accuracy (reached / seeds)",
                        {"colorscale": "Viridis", "reversescale": True,
                         "colorbar": {"title": {"text": "steps"}}}, dark_high=True)


def key_frequency_counts(frame: pd.DataFrame) -> go.Figure:
    """How many key frequencies each run has, stacked by label."""
    return _stacked_run_counts(frame, "n_key_frequencies", "label", {k: LABEL_COLORS[k] for k in LABELS},
                               "Number of key frequencies per run", "key frequencies", lambda n: str(int(n)))


def config_name(row: pd.Series, axes: list[str]) -> str:
    """A run's configuration without its seed, e.g. ``weight_decay=1, frac_train=0.5``."""
    return ", ".join(f"{a}={format_value(row[a])}" for a in axes) or "all runs"


def recurring_frequencies(frame: pd.DataFrame) -> go.Figure:
    """For each configuration (all axes but the seed), how many seeds found each key frequency."""
    ok = frame[(frame["status"] == "ok") & (frame["n_key_frequencies"].fillna(0) > 0)]
    axes = [a for a in swept_axes(frame) if a != "seed"]
    if not len(ok):
        return _empty("Key frequencies across seeds", "no run found key frequencies")
    names = ok.apply(lambda row: config_name(row, axes), axis=1)
    max_k = int(max(max(ks) for ks in ok["key_frequencies"]))
    configs = list(dict.fromkeys(names))
    z = np.zeros((len(configs), max_k))
    seeds = Counter(names)
    for name, ks in zip(names, ok["key_frequencies"], strict=True):
        for k in ks:
            z[configs.index(name), int(k) - 1] += 1
    text = [[f"{int(v)}" if v else "" for v in row] for row in z]
    hover = [[f"{c}: frequency {k + 1} in {int(z[i, k])} of {seeds[c]} runs" for k in range(max_k)]
             for i, c in enumerate(configs)]
    fig = go.Figure(go.Heatmap(z=np.where(z > 0, z, np.nan), x=[str(k) for k in range(1, max_k + 1)], y=configs,
                               text=text, texttemplate="%{text}", customdata=hover, xgap=1, ygap=1,
                               hovertemplate="%{customdata}<extra></extra>", colorscale="Blues", zmin=0,
                               colorbar={"title": {"text": "runs"}}))
    fig.update_layout(title="Which key frequencies recur across seeds (runs with any key frequency)",
                      xaxis={"title": "frequency k", "type": "category"}, yaxis={"type": "category"},
                      height=max(320, 26 * len(configs) + 160), margin={"l": 40 + 6 * max(map(len, configs))})
    return fig


def algorithm_by_attention_rate(frame: pd.DataFrame) -> go.Figure:
    """The algorithm verdict (clock / pizza / mixed / none) of the runs at each attention rate."""
    return _stacked_run_counts(frame, "attn_rate", "algorithm", ALGORITHM_COLORS, "Algorithm by attention rate",
                               "attention rate", lambda a: format_value(float(a)))


def _stacked_run_counts(frame: pd.DataFrame, by: str, stack: str, colors: dict[str, str], title: str,
                        x_title: str, x_text) -> go.Figure:
    """Bars of the finished runs counted by column ``by`` (x, as ``x_text(value)``), stacked by column ``stack``
    in the order and colours of ``colors``."""
    ok = frame[frame["status"] == "ok"]
    if not len(ok):
        return _empty(title, "no run finished")
    counts = ok.groupby([by, stack]).size().unstack(fill_value=0)
    fig = go.Figure()
    for name, color in colors.items():
        if name in counts:
            fig.add_trace(go.Bar(x=[x_text(v) for v in counts.index], y=counts[name], name=name, marker_color=color))
    fig.update_layout(barmode="stack", title=title, height=380,
                      xaxis={"title": x_title, "type": "category"}, yaxis={"title": "runs"})
    return fig


def _empty(title: str, message: str) -> go.Figure:
    fig = go.Figure(go.Scatter(x=[0], y=[0], mode="text", text=[message]))
    fig.update_layout(title=title, height=260, xaxis={"visible": False}, yaxis={"visible": False})
    return fig
