"""``render_sweep_report``: one offline HTML page of a sweep's results (``modadd-interp sweep-report DIR``).

Sections: what was swept and how long it took; the phase diagram over two swept axes (Liu et al.'s
labels, majority over seeds); the time to grok; our phases beside the labels; the key frequencies
(how many per run, which recur across seeds); universality (per group and model, how often each irrep is key
across seeds, and the distinct sets of key irreps: :mod:`.universality`); the algorithm by attention rate;
failed cells; the whole table. Built with :class:`modadd_interp.viz.Page`: plotly.js inlined, nothing from the network.

Examples:
    >>> path = render_sweep_report("sweeps/wd_frac", "sweeps/wd_frac/report")   # a sweep's directory  # doctest: +SKIP
    >>> path.name                                                              # doctest: +SKIP
    'index.html'
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from ..viz import Page, export_figure
from . import figures as F
from . import universality as U
from .labels import ACCURACY_THRESHOLD, GROK_DELAY_FRACTION, LABELS
from .results import SPEC_JSON, read_results
from .spec import AXES, MODEL_AXES, format_value

#: Columns of the full table on the page (the CSV has them all).
PAGE_COLUMNS = ("cell", "status", "label", "train_threshold_step", "test_threshold_step", "test_accuracy",
                "key_frequencies", "key_irreps", "algorithm", "circuit_confirmed", "loss_recovered_clock",
                "loss_recovered_pizza", "memorization_end", "circuit_formation_end", "cleanup_end", "train_seconds")


def render_sweep_report(sweep_dir: str | Path, out_dir: str | Path | None = None, *, x: str | None = None,
                        y: str | None = None, png: str | Path | None = None) -> Path:
    """Write ``out_dir/index.html`` (default ``sweep_dir/report``) for the sweep in ``sweep_dir``; return its path.

    Args:
        sweep_dir: a directory written by :func:`modadd_interp.sweep`.
        x: the phase diagram's x axis (default: the first swept axis other than ``seed``).
        y: its y axis (default: the second).
        png: also export the phase diagram to this PNG (kaleido and a local Chromium;
            :func:`modadd_interp.viz.export_figure`).

    Raises:
        ModAddError: no results in ``sweep_dir``, or an axis that is not one of :data:`AXES`.
    """
    sweep_dir = Path(sweep_dir)
    frame = read_results(sweep_dir)
    x, y = F.choose_axes(frame, x, y)
    log = _read_log(sweep_dir)
    ok = frame[frame["status"] == "ok"]
    swept = F.swept_axes(frame)
    page = Page(f"Sweep: {len(frame)} runs", subtitle=f"{sweep_dir.resolve()} · swept: {', '.join(swept) or 'nothing'}")

    fixed = {a: format_value(frame[a].dropna().iloc[0]) for a in AXES
             if a not in swept and a not in _unread_axes(frame) and frame[a].notna().any() and frame[a].ne("").any()}
    settings = {k: v for k, v in log.get("spec", {}).items() if k not in AXES}
    page.section("What was swept", _summary_html(frame, ok, swept, fixed, settings, log))
    page.table(_label_counts(frame), caption="Runs per label (failed runs have no label)")

    diagram = F.phase_diagram(frame, x, y)
    rule = (f"Labels after Liu et al. 2022: the steps at which the training and the test accuracy first reach "
            f"{ACCURACY_THRESHOLD:.0%} (read at the checkpoints); both, with a delay of at most "
            f"{GROK_DELAY_FRACTION:.0%} of the step budget: comprehension; with a longer delay: grokking; "
            f"training only: memorization; neither: confusion.")
    page.section("Phase diagram", f"<p>{html.escape(rule)}</p>")
    page.figure(diagram, caption="Each cell: the majority label over its seeds (ties: the label listed first of "
                                 f"{', '.join(LABELS)}), and how many seeds had it")
    page.figure(F.time_to_grok(frame, x, y), caption="Median over the seeds that reached the test threshold; "
                                                     "hover for the median delay after the training threshold")

    page.section("Our phases beside the labels",
                 "<p>Memorization end, circuit formation end and cleanup end by "
                 "<code>progress_measures</code>' rule (99% thresholds and the test loss; see the progress "
                 "docs), medians over the runs of each label.</p>")
    page.table(_phases_by_label(ok), caption="Median step of each phase boundary; 'grokked' counts our rule's verdict")

    page.section("Key frequencies")
    page.figure(F.key_frequency_counts(frame))
    page.figure(F.recurring_frequencies(frame), caption="Rows: configurations (every axis but the seed); "
                                                         "cells: how many seeds' runs have that key frequency")
    _universality_section(page, frame)

    page.section("Algorithm")
    page.figure(F.algorithm_by_attention_rate(frame), caption="The graded verdict of analyze (clock, pizza, mixed, "
                                                              "none) per attention rate")
    page.table(_algorithm_table(ok), caption="Runs per algorithm, circuit confirmed, median loss recovered "
                                             "(each hypothesis's weakest causal test)")

    failed = frame[frame["status"] != "ok"]
    page.section("Failed cells", f"<p>{len(failed)} of {len(frame)} cells failed.</p>")
    if len(failed):
        page.table(_plain(failed[["cell", "error"]]))
    page.section("All runs", "<p>The full table is <code>results.csv</code>; the full analysis of every run is "
                             "in <code>results.jsonl</code>.</p>")
    page.table(_plain(frame[[*swept, *PAGE_COLUMNS]]), max_rows=500)
    path = page.write(out_dir if out_dir is not None else sweep_dir / "report")
    if png is not None:
        export_figure(diagram, png, width=900, height=diagram.layout.height or 450, scale=2)
    return path


def _universality_section(page: Page, frame: pd.DataFrame) -> None:
    """The universality panel (:mod:`.universality`): per group and model, how often each irrep is key across
    seeds, and the distinct sets of key irreps."""
    page.section("Universality: do seeds converge?",
                 "<p>After Chughtai et al. (2023): runs that differ only in their seed form a population (a group, a "
                 "model, and the other swept axes). For each, how often each irrep is key (the irreps "
                 "<code>analyze</code> names as the circuit's; the key frequencies of a cyclic group), and the "
                 "distinct sets of key irreps with how many seeds found each: one set for every seed means the seeds "
                 "converge; several sets mean the irreps a network uses are a matter of its seed.</p>")
    page.figure(U.irrep_frequency_figure(frame), caption="Bars: the share of a population's finished runs in which "
                                                         "the irrep is key (labels: runs of runs); irreps never key "
                                                         "in any run are not drawn")
    page.table(U.irrep_counts(frame), caption="Key irreps per population: in how many runs each is key")
    page.table(U.key_irrep_sets(frame), caption="Distinct sets of key irreps per population, most frequent first")


def _unread_axes(frame: pd.DataFrame) -> tuple[str, ...]:
    """The axes no run of the sweep reads (an MLP-only sweep's ``d_model``, a transformer-only sweep's ``d_embed``)."""
    models = set(frame["model"].dropna()) if "model" in frame else set()
    models = models or {"transformer"}
    read = {axis for model in models for axis in MODEL_AXES.get(model, ())}
    return tuple(axis for axes in MODEL_AXES.values() for axis in axes if axis not in read)


def _read_log(sweep_dir: Path) -> dict:
    try:
        return json.loads((sweep_dir / SPEC_JSON).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _summary_html(frame: pd.DataFrame, ok: pd.DataFrame, swept: list[str], fixed: dict, settings: dict,
                  log: dict) -> str:
    invocations = log.get("invocations", [])
    wall = sum(i.get("wall_seconds", 0) for i in invocations)
    train = pd.to_numeric(ok["train_seconds"], errors="coerce").sum()
    values = "; ".join(f"<b>{a}</b> ∈ {{{', '.join(format_value(v) for v in sorted(frame[a].dropna().unique()))}}}"
                       for a in swept)
    parts = [
        f"<p>{len(frame)} runs, {len(ok)} finished, {len(frame) - len(ok)} failed. Swept: {values or 'nothing'}.</p>",
        f"<p>Fixed: {html.escape(', '.join(f'{k}={v}' for k, v in fixed.items()))}"
        + (f"; settings: {html.escape(', '.join(f'{k}={v}' for k, v in settings.items()))}" if settings else "")
        + ".</p>",
    ]
    if invocations:
        parts.append(f"<p>Wall time: {wall:.0f} s over {len(invocations)} invocation(s) "
                     f"({html.escape(', '.join(sorted({i.get('executor', '?') for i in invocations})))}); "
                     f"training time summed over runs: {train:.0f} s.</p>")
    return "".join(parts)


def _label_counts(frame: pd.DataFrame) -> pd.DataFrame:
    counts = frame[frame["status"] == "ok"]["label"].value_counts()
    rows = [{"label": label, "runs": int(counts.get(label, 0))} for label in LABELS]
    rows.append({"label": "failed", "runs": int((frame["status"] != "ok").sum())})
    return pd.DataFrame(rows)


def _phases_by_label(ok: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for label in LABELS:
        runs = ok[ok["label"] == label]
        if not len(runs):
            continue
        row = {"label": label, "runs": len(runs)}
        for column in ("train_threshold_step", "test_threshold_step", "memorization_end", "circuit_formation_end",
                       "cleanup_end"):
            values = pd.to_numeric(runs[column], errors="coerce").dropna()
            row[column] = float(values.median()) if len(values) else None
        row["grokked (our rule)"] = int(runs["grokked"].fillna(False).astype(bool).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def _algorithm_table(ok: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for algorithm, runs in ok.groupby("algorithm"):
        rows.append({"algorithm": algorithm, "runs": len(runs),
                     "circuit confirmed": int(runs["circuit_confirmed"].fillna(False).astype(bool).sum()),
                     "loss recovered, clock (median)": pd.to_numeric(runs["loss_recovered_clock"]).median(),
                     "loss recovered, pizza (median)": pd.to_numeric(runs["loss_recovered_pizza"]).median()})
    return pd.DataFrame(rows)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Missing values as empty cells and lists as text, for :meth:`Page.table`."""
    out = frame.astype(object).where(frame.notna(), None)
    for column in ("key_frequencies", "key_irreps"):
        if column in out:
            out[column] = [" ".join(map(str, k)) if isinstance(k, list) else k for k in out[column]]
    return out.reset_index(drop=True)
