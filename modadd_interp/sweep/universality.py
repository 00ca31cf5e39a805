"""The universality panel of a sweep report: do seeds converge on the same key irreps?

Chughtai et al. (2023, "A Toy Model of Universality") trained many seeds on one group and asked whether they
learn the same representations: the algorithm is universal (every network composes through irreps), the
irreps it picks are not (seeds differ). This panel answers that question for a sweep: runs that differ only in
their seed form a *population* (one per group, model and other swept axes); for each population it counts

* how often each irrep is key across its runs (:func:`irrep_counts`, drawn by :func:`irrep_frequency_figure`), and
* the distinct sets of key irreps and how many runs found each (:func:`key_irrep_sets`).

Every function takes the table of :func:`~modadd_interp.sweep.results.read_results` (``key_irreps`` as lists of
names, as ``mi.analyze`` gives them: ``(3,1)``, ``sign``, ... for S_n; the frequency ``k`` for a cyclic group).
Only finished runs count; a run with no key irrep counts as the set ``none``.

Examples:
    >>> frame = pd.DataFrame({"status": ["ok"] * 3, "group": ["S4"] * 3, "model": ["mlp"] * 3, "p": [24] * 3,
    ...                       "op": ["S4"] * 3, "seed": [0, 1, 2], "test_accuracy": [1.0, 1.0, 0.99],
    ...                       "key_irreps": [["(3,1)"], ["(3,1)", "(2,1,1)"], ["(3,1)"]]})
    >>> irrep_counts(frame)[["population", "irrep", "runs_key", "runs"]].values.tolist()
    [['S4 · mlp', '(3,1)', 3, 3], ['S4 · mlp', '(2,1,1)', 1, 3]]
    >>> key_irrep_sets(frame)[["key irreps", "runs", "generalized", "seeds"]].values.tolist()
    [['(3,1)', 2, 2, '0, 2'], ['(2,1,1) + (3,1)', 1, 1, '1']]
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from .figures import config_name, swept_axes
from .labels import ACCURACY_THRESHOLD
from .spec import MODEL_AXES, format_value

#: One colour per population in the bar chart (repeats past ten populations).
COLORS = ("#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363", "#fd8d3c", "#9e9ac8", "#74c476", "#6baed6", "#e7969c")
#: How a run with no key irrep is listed among the sets.
NO_KEY = "none"


def population(row: pd.Series, axes: list[str]) -> str:
    """The population of a run: its group (or ``p=23 add`` for a modular task), its model, and the given axes
    (those that tell this group and model's populations apart), e.g. ``S4 · mlp`` or ``S4 · transformer · lr=0.01``.
    """
    group = row.get("group") or f"p={format_value(row['p'])} {row['op']}"
    parts = [str(group), str(row.get("model") or "transformer")]
    if axes:
        parts.append(config_name(row, axes))
    return " · ".join(parts)


def _finished(frame: pd.DataFrame) -> pd.DataFrame:
    """The finished runs with a ``population`` column, in table order.

    A population's name holds the axes that vary among the runs of its group and model (but the seed, and the
    axes its model does not read): an MLP sweep and a transformer sweep of other widths read ``S4 · mlp`` and
    ``S4 · transformer``.
    """
    ok = frame[frame["status"] == "ok"].copy()
    ok["key_irreps"] = [list(k) if isinstance(k, (list, tuple)) else [] for k in ok["key_irreps"]]
    if not len(ok):
        return ok.assign(population=[])
    base = [(str(r.get("group") or f"{r['p']}{r['op']}"), str(r.get("model") or "transformer"))
            for _, r in ok.iterrows()]
    ok["_base"] = base
    names = {}
    for key, runs in ok.groupby("_base", sort=False):
        unread = MODEL_AXES["mlp" if key[1] == "transformer" else "transformer"]
        varying = [a for a in swept_axes(runs) if a not in ("group", "model", "p", "op", "seed", *unread)]
        for index, row in runs.iterrows():
            names[index] = population(row, varying)
    ok["population"] = [names[i] for i in ok.index]
    return ok.drop(columns="_base")


def irrep_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (population, irrep key in at least one of its runs): ``runs_key`` of ``runs`` and ``share``.

    Rows are ordered by population (first appearance), then by ``runs_key`` (most often key first).
    """
    ok = _finished(frame)
    rows = []
    for name, runs in ok.groupby("population", sort=False):
        counts: dict[str, int] = {}
        for irreps in runs["key_irreps"]:
            for irrep in dict.fromkeys(irreps):
                counts[irrep] = counts.get(irrep, 0) + 1
        for irrep, n in sorted(counts.items(), key=lambda item: -item[1]):
            rows.append({"population": name, "irrep": irrep, "runs_key": n, "runs": len(runs),
                         "share": n / len(runs)})
    return pd.DataFrame(rows, columns=["population", "irrep", "runs_key", "runs", "share"])


def key_irrep_sets(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (population, distinct set of key irreps): how many runs found it, how many of those generalized
    (test accuracy at least :data:`~modadd_interp.sweep.labels.ACCURACY_THRESHOLD`, 90%), their seeds, and their
    median test accuracy; the most frequent set first within each population.

    The set is written as its irreps' names sorted and joined by `` + `` (``none`` for no key irrep).
    """
    ok = _finished(frame)
    rows = []
    for name, runs in ok.groupby("population", sort=False):
        sets = [" + ".join(sorted(set(k))) or NO_KEY for k in runs["key_irreps"]]
        runs = runs.assign(key_set=sets)
        found = []
        for key_set, members in runs.groupby("key_set", sort=False):
            accuracy = pd.to_numeric(members.get("test_accuracy"), errors="coerce")
            found.append({"population": name, "key irreps": key_set, "runs": len(members),
                          "of runs": len(runs), "generalized": int((accuracy >= ACCURACY_THRESHOLD).sum()),
                          "seeds": ", ".join(format_value(s) for s in members["seed"]),
                          "median test accuracy": float(accuracy.median()) if accuracy.notna().any() else None})
        rows.extend(sorted(found, key=lambda r: -r["runs"]))
    return pd.DataFrame(rows, columns=["population", "key irreps", "runs", "of runs", "generalized", "seeds",
                                       "median test accuracy"])


def irrep_frequency_figure(frame: pd.DataFrame) -> go.Figure:
    """Grouped bars: for each population (one colour), the share of its runs in which each irrep is key.

    x: the irreps key in at least one run (in order of first appearance); y: the share of the population's
    finished runs; hover: the count (``3 of 8 runs``).
    """
    counts = irrep_counts(frame)
    title = "How often each irrep is key across seeds"
    fig = go.Figure()
    if not len(counts):
        fig.add_trace(go.Scatter(x=[0], y=[0], mode="text", text=["no finished run has a key irrep"]))
        fig.update_layout(title=title, height=260, xaxis={"visible": False}, yaxis={"visible": False})
        return fig
    irreps = list(dict.fromkeys(counts["irrep"]))
    for i, (name, rows) in enumerate(counts.groupby("population", sort=False)):
        by_irrep = rows.set_index("irrep")
        runs = int(rows["runs"].iloc[0])
        share = [float(by_irrep["share"].get(r, 0.0)) for r in irreps]
        hover = [f"{name}: {r} key in {int(by_irrep['runs_key'].get(r, 0))} of {runs} runs" for r in irreps]
        fig.add_trace(go.Bar(x=irreps, y=share, name=f"{name} ({runs} runs)", marker_color=COLORS[i % len(COLORS)],
                             customdata=hover, hovertemplate="%{customdata}<extra></extra>",
                             text=[f"{int(by_irrep['runs_key'].get(r, 0))}/{runs}" for r in irreps],
                             textposition="outside"))
    fig.update_layout(title=title, barmode="group", height=460, showlegend=True,
                      legend={"title": {"text": "population"}, "orientation": "h", "yanchor": "top", "y": -0.22},
                      xaxis={"title": "irrep", "type": "category"},
                      yaxis={"title": "share of runs", "range": [0, 1.12], "tickformat": ".0%"})
    return fig
