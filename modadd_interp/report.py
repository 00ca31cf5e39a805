"""``render_report``: one self-contained, offline HTML page that tells the circuit's story in order.

Sections: the model and task; accuracy and losses; the embedding's circles and key
frequencies; the neurons (clusters, activations, spectra, trig fits); the attention
(grid patterns and circuitsvis views); the logit readout; the claims with the
interventions behind them; and, given a run, the progress measures with the phases.

At large p the heatmaps are reduced for display above :data:`modadd_interp.viz.figures.MAX_HEATMAP_SIDE`
cells a side (maps over the grid strided, spectra max-pooled; each figure's title says how); the
key-frequency evidence, the claims and every table keep their exact values. A p = 1009 report is about
11 MB (docs/performance.md).

Examples:
    >>> path = render_report(*mi.load(), "report/", run=mi.shipped_run())   # about a minute: not run  # doctest: +SKIP
    >>> path.name                                                            # doctest: +SKIP
    'index.html'
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import torch

from . import tl_adapter
from .analysis import given_analysis
from .causal import CircuitReport
from .causal.irrep_circuit import GroupCircuitReport
from .hook_names import hook_name
from .probes import GridCache, probe_attention
from .probes.irreps import neuron_irrep_shares
from .task import ModularTask
from .viz import AttentionView, Page
from .viz import figures as F


def attention_patterns(model, tokens: torch.Tensor, layer: int = 0) -> torch.Tensor:
    """``[n, heads, n_ctx, n_ctx]`` a layer's attention patterns for a few inputs (one hooked pass)."""
    store = {}
    hook = (hook_name("pattern", layer), lambda a: store.__setitem__("p", a.detach()))
    with torch.no_grad(), tl_adapter.hooked(model, [hook]):
        model(tokens)
    return store["p"]


def render_report(model, task: ModularTask, out_dir: str | Path, run: object = None,
                  title: str | None = None, llc: bool | dict | str = False, *, cache: GridCache | None = None,
                  circuit: CircuitReport | None = None) -> Path:
    """Analyze ``model`` and write ``out_dir/index.html``; return its path.

    Args:
        run: optionally the model's checkpoint series (anything :func:`mi.load_run` reads)
            for the progress-measures section.
        title: the page title; default names the task.
        llc: with a run, also estimate the LLC and degeneracy measures at every checkpoint
            (``progress_measures(..., llc=llc)``; slow: about 20 s per checkpoint; ``"components"``: the LLC of
            each component, about 5x that) and add their panel. With or without a run, also add the model's
            loss kernel (:func:`modadd_interp.slt.loss_kernel`, minutes at p = 113; a dict's sampler settings
            apply to it too).
        cache: the model's :func:`~modadd_interp.probes.grid_cache`, when already made (saves the grid pass).
        circuit: the model's :func:`~modadd_interp.verify_circuit` result, when already computed with ``cache``
            (saves the analysis: at p = 1009 most of the report's time).

    Raises:
        ModAddError: ``cache`` or ``circuit`` belong to another task.
    """
    cache, report = given_analysis(model, task, cache, circuit)
    if isinstance(report, GroupCircuitReport):
        return _group_report(model, task, cache, report, out_dir, title)
    kf, neurons, embedding, logits = report.key_frequencies, report.neurons, report.embedding, report.logits
    attention = probe_attention(model, task, cache=cache) if cache.config.n_heads else None
    full = report.losses.full
    cfg = cache.config
    verdict = report.verdict.line
    page = Page(title or f"{task.operation.formula.replace('p', str(task.p))}: the circuit",
                subtitle=f"{task.describe()} · {verdict}")

    reduced = "" if cache.grid.n <= F.MAX_HEATMAP_SIDE else (
        f"<p>The heatmaps are reduced for display (at most {F.MAX_HEATMAP_SIDE}×{F.MAX_HEATMAP_SIDE} cells: maps "
        f"over the grid strided, spectra max-pooled; each figure's title says how). Everything else (bars, points, "
        f"lines, the claims, the tables) shows every value exactly.</p>")
    page.section("Model and task", f"<p><b>{html.escape(verdict)}</b></p>{reduced}").table(pd.DataFrame([
        {"setting": k, "value": str(v)} for k, v in {**task.to_dict(), **cfg.to_dict(),
                                                      "backend": tl_adapter.backend_name(model)}.items()]))
    splits = [{"split": "train", "loss": full.train_loss, "accuracy": full.train_accuracy},
              {"split": "test", "loss": full.test_loss, "accuracy": full.test_accuracy}] if task.split_known else []
    at = "'='" if cfg.has_eq else "b"
    page.section("Accuracy and losses").table(pd.DataFrame(
        splits + [{"split": "all", "loss": full.loss, "accuracy": full.accuracy}]),
        caption=f"float64 cross-entropy of the answer at the last position ({at})"
                + ("" if task.split_known else "; the split is unknown, so there are no train and test rows"))

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
    clusters = neurons.select(cfg.n_layers - 1).clusters()  # the figures read the readout layer's neurons
    samples = [n for members in clusters.values() for n in members[:2]][:8] or list(range(4))
    page.figure(F.neuron_activation_figure(cache, samples), caption="Two neurons from each cluster of the "
                "readout layer" if cfg.n_layers > 1 else "Two neurons from each cluster")
    largest = max(clusters.values(), key=len) if clusters else samples
    page.figure(F.neuron_spectrum_figure(cache, largest[0]), caption="A neuron of the largest cluster")
    fits = neurons.to_frame().query("cluster > 0").groupby("cluster").agg(
        neurons=("neuron", "count"), mean_r2=("r2", "mean"),
        **{f"|{t}|": (t, lambda s: s.abs().mean()) for t in ("cos wa", "cos wb", "cos w(a+b)", "cos w(a-b)")})
    page.table(fits.reset_index(), caption="Degree-2 trig fit per cluster (mean |coefficient|, R^2)")

    if attention is not None:
        page.section("The attention")
        page.figure(attention.plot())
        page.table(attention.to_frame())
        _attention_views(page, model, task, cache)

    page.section(f"The logit readout: {task.grid.coords.readout}")
    page.figure(logits.plot())
    page.figure(F.wl_fourier_figure(cache, kf.freqs))
    page.figure(F.logit_fit_figure(cache, logits))

    page.section("Clock or pizza: the algorithm, graded",
                 f"<p>{html.escape(verdict)}. Circles labelled by isolation: "
                 f"{html.escape(str(report.circles.labels if report.circles else {}))}.</p>")
    page.figure(F.clock_pizza_figure(report, cache),
                caption="Zhong et al.'s diagnostics (their pizza: high symmetricity, low distance irrelevance), the "
                        "correct logit by (x+y, x−y) (flat rows: a clock; x−y structure: a pizza), and the share of "
                        "loss each hypothesis recovers in each causal test (dotted: the 95% the verdict needs)")
    if report.circles is not None:
        page.figure(F.circles_figure(report.circles))
        page.table(report.circles.to_frame(), caption="Isolated circles")

    page.section("The claims, each tested by an intervention",
                 f"<p>{html.escape(verdict)}. Claims marked decides=True decide it.</p>")
    page.table(report.to_frame()[["name", "decides", "passed", "after", "comparison", "threshold", "before", "metric",
                                  "intervention", "detail", "applicable"]])
    page.figure(report.table.plot())
    page.figure(report.patching.plot())
    page.table(report.losses.to_frame(), caption="Restricted, excluded and cluster-ablation losses")

    if run is not None:
        from .progress import progress_measures

        frame = progress_measures(run, task=task, key_freqs=kf.freqs, progress=False, llc=llc)
        page.section("Progress over training", f"<p>{html.escape(frame.attrs['phases']['rule'])}.</p>")
        page.figure(F.progress_figure(frame))
        if llc:
            what = ("The LLC of each component, weight-restricted, each calibrated on its own (dashed: single heads)"
                    if "llc_components" in frame.attrs else "Local learning coefficient")
            page.figure(F.llc_figure(frame), caption=f"{what} (devinterp SGLD; open markers: unhealthy estimates) "
                        "and degeneracy measures")
        page.table(frame, caption="The measures at every checkpoint")
    if llc:
        _loss_kernel_section(page, model, task, kf.freqs, llc)
    return page.write(out_dir)


def _group_report(model, task: ModularTask, cache: GridCache, report: GroupCircuitReport, out_dir: str | Path,
                  title: str | None) -> Path:
    """The report of a group that is not ``Z/n``: the group and its characters, where the model lives among its
    irreps, the neurons by irrep, the attention and the claims (:mod:`modadd_interp.causal.irrep_circuit`)."""
    key, full, cfg = report.key_irreps, cache.full, cache.config
    spectrum, group, verdict = key.spectrum, cache.grid.group, report.verdict.line
    page = Page(title or f"composition in {group.name}: the circuit", subtitle=f"{task.describe()} · {verdict}")
    page.section("Model and task", f"<p><b>{html.escape(verdict)}</b></p>").table(pd.DataFrame([
        {"setting": k, "value": str(v)} for k, v in {**task.to_dict(), **cfg.to_dict(),
                                                      "backend": tl_adapter.backend_name(model)}.items()]))
    splits = [{"split": "train", "loss": full.train_loss, "accuracy": full.train_accuracy},
              {"split": "test", "loss": full.test_loss, "accuracy": full.test_accuracy}] if task.split_known else []
    page.section("Accuracy and losses").table(pd.DataFrame(
        splits + [{"split": "all", "loss": full.loss, "accuracy": full.accuracy}]))

    classes = ", ".join(str(int(size)) for size in spectrum.class_sizes)
    page.section(f"The group {group.name}: its irreducible representations",
                 f"<p>Order {group.order}, {len(spectrum.class_sizes)} conjugacy classes (sizes {classes}); the "
                 "character table is computed from the Cayley table alone (Burnside–Dixon), and complex pairs are "
                 "combined into real irreps (docs/groups.md).</p>")
    page.table(_character_frame(spectrum), caption="The character table (rows: complex irreps; columns: classes)")
    page.section("The key irreps", f"<p>{html.escape(key.reason)}.</p>")
    page.figure(F.irrep_spectrum_figure(spectrum, key.names),
                caption="The logits' energy along x ∘ y, W_E, W_U and the neurons' variance per irrep; the trace "
                        "similarity is Chughtai et al.'s (the cosine of the centred logits with χ_ρ(x∘y∘z⁻¹))")
    page.table(key.to_frame(), caption="The evidence per irrep")
    page.section("The neurons by irrep")
    page.figure(F.neuron_irrep_figure(neuron_irrep_shares(cache), spectrum.names))
    if cache.config.n_heads:
        page.section("The attention")
        _attention_views(page, model, task, cache)
    page.section("The claims, each tested by an intervention",
                 f"<p>{html.escape(verdict)}. Claims marked decides=True decide it; the pizza and Zhong et al.'s "
                 "diagnostics are not applicable to a non-abelian group.</p>")
    page.table(report.to_frame()[["name", "decides", "passed", "after", "comparison", "threshold", "before",
                                  "metric", "intervention", "detail"]])
    page.table(pd.DataFrame([{"intervention": name, **m.to_dict()} for name, m in report.measurements.items()]),
               caption="Every intervention's losses")
    return page.write(out_dir)


def _attention_views(page: Page, model, task: ModularTask, cache: GridCache) -> None:
    """The last layer's attention for three inputs of the grid (circuitsvis views)."""
    cfg, n = cache.config, cache.grid.n
    chosen = cache.grid.pairs[torch.tensor([n + 2, n * (n // 3) + n // 2, n * n - 2]) % (n * n)]
    tokens = cfg.encode(chosen)
    symbol = task.operation.formula.split()[1]
    names = ["a", "b", "="][: cfg.seq_len]
    for (a, b), pattern in zip(chosen.tolist(), attention_patterns(model, tokens, cfg.n_layers - 1), strict=True):
        labels = [str(a), str(b), "="][: cfg.seq_len]
        page.attention(AttentionView(pattern, labels, title=f"{a} {symbol} {b}"),
                       caption=f"last layer's attention for {a} {symbol} {b} (positions {', '.join(names)})")


def _character_frame(spectrum) -> pd.DataFrame:
    """The character table as text: a real value as a number, a complex one as ``a+bi``."""
    def text(v: complex) -> str:
        re, im = round(v.real, 4) + 0.0, round(v.imag, 4) + 0.0
        return f"{re:g}" if abs(im) < 1e-9 else f"{re:g}{im:+g}i"

    table = spectrum.character_table
    sizes = [int(s) for s in spectrum.class_sizes]
    names = [f"{n} (×2: χ, χ̄)" if fs == 0 and spectrum.real_dims[i] == 2 * spectrum.dims[i] else n
             for i, (n, fs) in enumerate(zip(spectrum.names, spectrum.frobenius_schur, strict=True))]
    rows = []
    row_names = [name for name, fs in zip(names, spectrum.frobenius_schur, strict=True) for _ in range(2 if fs == 0
                                                                                                       else 1)]
    for name, values in zip(row_names, table.tolist(), strict=True):
        rows.append({"irrep": name, **{f"class {j} (size {sizes[j]})": text(complex(v)) for j, v in
                                        enumerate(values)}})
    return pd.DataFrame(rows)


def _loss_kernel_section(page: Page, model, task: ModularTask, key_freqs: tuple[int, ...], llc: bool | dict | str):
    """The loss kernel's figure and numbers (``render_report(..., llc=...)``)."""
    import inspect

    from . import slt

    if not key_freqs:
        page.section("The loss kernel", "<p>No key frequencies were found: the kernel has nothing to be read at.</p>")
        return
    accepted = inspect.signature(slt.loss_kernel).parameters
    settings = {k: v for k, v in llc.items() if k in accepted} if isinstance(llc, dict) else {}
    kernel = slt.loss_kernel(model, task, key_freqs, **settings)
    health = "" if kernel.healthy else f" (UNHEALTHY: {html.escape('; '.join(kernel.reasons))})"
    page.section("The loss kernel", f"<p>{kernel.fourier_share:.1%} of the top {kernel.top} eigenvectors lie in the "
                 f"key frequencies' span (random subspaces of the same dimension: {kernel.random_share:.2%}){health}. "
                 "The loss kernel is the correlation of the per-input losses over SGLD draws from the local posterior "
                 "(Adam, Furman &amp; Hoogland 2025), read here in the Fourier basis of the answer's coordinate "
                 "(docs/concepts.md, \"The loss kernel\").</p>")
    page.figure(kernel.plot(), caption="The loss kernel's top eigenvectors: their share per frequency of x + y "
                "(key frequencies in red) against a random direction pair, the spectrum, and the top eigenvectors "
                "over the grid")
    page.table(pd.DataFrame([{"statistic": name, **{k: getattr(r, k) for k in (
        "fourier_share", "random_share", "random_share_std", "ratio", "sum_share", "constant_share")}}
        for name, r in kernel.readings.items()]),
        caption=f"The loss kernel's readings, from the same {kernel.n_draws} draws (top {kernel.top} eigenvectors; "
                f"the run's LLC {kernel.estimate.mean:.3g}, {kernel.seconds:.0f} s; settings "
                f"{html.escape(str(kernel.hyperparameters))})")
