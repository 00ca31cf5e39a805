"""``render_report``: one self-contained, offline HTML page that tells the circuit's story in order.

Sections: the model and task; accuracy and losses; the embedding's circles and key
frequencies; the neurons (clusters, activations, spectra, trig fits); the attention
(grid patterns and circuitsvis views); the logit readout; the claims with the
interventions behind them; and, given a run, the progress measures with the phases.

Examples:
    >>> path = render_report(*mi.load(), "report/", run=mi.shipped_run())   # doctest: +SKIP
    >>> path.name
    'index.html'
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import torch

from . import tl_adapter
from .causal import verify_circuit
from .probes import grid_cache, probe_attention
from .probes.cache import PATTERN
from .task import ModularTask
from .viz import AttentionView, Page
from .viz import figures as F


def attention_patterns(model, tokens: torch.Tensor) -> torch.Tensor:
    """``[n, heads, n_ctx, n_ctx]`` attention patterns for a few inputs (one hooked pass)."""
    store = {}
    with torch.no_grad(), tl_adapter.hooked(model, [(PATTERN, lambda a: store.__setitem__("p", a.detach()))]):
        model(tokens)
    return store["p"]


def render_report(model, task: ModularTask, out_dir: str | Path, run: object = None,
                  title: str | None = None, llc: bool | dict = False) -> Path:
    """Analyze ``model`` and write ``out_dir/index.html``; return its path.

    Args:
        run: optionally the model's checkpoint series (anything :func:`mi.load_run` reads)
            for the progress-measures section.
        title: the page title; default names the task.
        llc: with a run, also estimate the LLC and degeneracy measures at every checkpoint
            (``progress_measures(..., llc=llc)``; slow: about 20 s per checkpoint) and add their panel.
    """
    cache = grid_cache(model, task)
    report = verify_circuit(model, task, cache=cache)
    kf, neurons, embedding, logits = report.key_frequencies, report.neurons, report.embedding, report.logits
    attention = probe_attention(model, task, cache=cache)
    full = report.losses.full
    cfg = cache.config
    verdict = "confirmed" if report.passed else "NOT confirmed (" + "; ".join(report.failed) + ")"
    page = Page(title or f"Modular addition mod {task.p}: the circuit",
                subtitle=f"key frequencies {list(kf.freqs) or 'none'} · circuit {verdict}")

    page.section("Model and task").table(pd.DataFrame([
        {"setting": k, "value": str(v)} for k, v in {**task.to_dict(), **cfg.to_dict(),
                                                      "backend": tl_adapter.backend_name(model)}.items()]))
    page.section("Accuracy and losses").table(pd.DataFrame([
        {"split": "train", "loss": full.train_loss, "accuracy": full.train_accuracy},
        {"split": "test", "loss": full.test_loss, "accuracy": full.test_accuracy},
        {"split": "all", "loss": full.loss, "accuracy": full.accuracy}]), caption="float64 cross-entropy at '='")

    page.section("The embedding: circles at the key frequencies",
                 f"<p>{html.escape(kf.reason)}.</p>")
    page.figure(kf.plot(), caption="Evidence per frequency; the rule is in probes/key_frequencies.py")
    page.figure(embedding.plot())
    if kf.freqs:
        page.figure(F.embedding_circle_figure(cache, kf.freqs))
    page.table(kf.to_frame().query("is_candidate or cluster_size > 0 or embed_share > 0.02").reset_index(drop=True),
               caption="Frequencies with any evidence")

    page.section("The neurons: clusters and trig fits")
    page.figure(neurons.plot())
    clusters = neurons.clusters()
    samples = [n for members in clusters.values() for n in members[:2]][:8] or list(range(4))
    page.figure(F.neuron_activation_figure(cache, samples), caption="Two neurons from each cluster")
    largest = max(clusters.values(), key=len) if clusters else samples
    page.figure(F.neuron_spectrum_figure(cache, largest[0]), caption="A neuron of the largest cluster")
    fits = neurons.to_frame().query("cluster > 0").groupby("cluster").agg(
        neurons=("neuron", "count"), mean_r2=("r2", "mean"),
        **{f"|{t}|": (t, lambda s: s.abs().mean()) for t in ("cos wa", "cos wb", "cos w(a+b)", "cos w(a-b)")})
    page.table(fits.reset_index(), caption="Degree-2 trig fit per cluster (mean |coefficient|, R^2)")

    page.section("The attention")
    page.figure(attention.plot())
    page.table(attention.to_frame())
    chosen = [(1, 2), (task.p // 3, task.p // 2), (task.p - 1, task.p - 2)]
    tokens = torch.tensor([[a, b, task.eq_token] for a, b in chosen])
    for (a, b), pattern in zip(chosen, attention_patterns(model, tokens), strict=True):
        page.attention(AttentionView(pattern, [str(a), str(b), "="], title=f"{a} + {b} ="),
                       caption=f"attention for {a} + {b} =")

    page.section("The logit readout: cos(w(a+b−c))")
    page.figure(logits.plot())
    page.figure(F.wl_fourier_figure(cache, kf.freqs))
    page.figure(F.logit_fit_figure(cache, logits))

    page.section("The claims, each tested by an intervention",
                 f"<p>Circuit <b>{html.escape(verdict)}</b>.</p>")
    page.table(report.to_frame()[["name", "passed", "after", "comparison", "threshold", "before", "metric",
                                  "intervention", "detail"]])
    page.figure(report.table.plot())
    page.figure(report.patching.plot())
    page.table(report.losses.to_frame(), caption="Restricted, excluded and cluster-ablation losses")

    if run is not None:
        from .progress import progress_measures

        frame = progress_measures(run, task=task, key_freqs=kf.freqs, progress=False, llc=llc)
        page.section("Progress over training", f"<p>{html.escape(frame.attrs['phases']['rule'])}.</p>")
        page.figure(F.progress_figure(frame))
        if llc:
            page.figure(F.llc_figure(frame), caption="Local learning coefficient (devinterp SGLD; open markers: "
                        "unhealthy estimates) and degeneracy measures")
        page.table(frame, caption="The measures at every checkpoint")
    return page.write(out_dir)
