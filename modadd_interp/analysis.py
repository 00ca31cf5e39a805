"""``analyze``: every probe and check on one model, as one JSON-safe dict (the CLI's output).

Every task reports its group (``"group"``: name, order, whether abelian, where it came from) and its key irreps
(``"key_irreps"``). For the modular operations (the cyclic group ``Z/n``) the Fourier analysis decides and
``key_irreps`` names the key frequencies with their irrep evidence; for any other group the irrep analysis decides
(:mod:`modadd_interp.causal.irrep_circuit`) and ``key_frequencies`` is empty.

Examples:
    Skipped when the examples run: ``analyze`` verifies the circuit (about 30 s at p = 113).

    >>> import modadd_interp as mi                                    # doctest: +SKIP
    >>> result = analyze(*mi.load())                                  # doctest: +SKIP
    >>> result["key_frequencies"], result["circuit_confirmed"]        # doctest: +SKIP
    ([1, 5, 7, 29], True)
"""

from __future__ import annotations

from .causal import CircuitReport, verify_circuit
from .causal.irrep_circuit import GroupCircuitReport
from .errors import ModAddError
from .probes import GridCache, grid_cache, probe_attention
from .probes.irreps import irrep_spectrum
from .task import ModularTask

SPLIT_LOSSES = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")


def given_analysis(model, task: ModularTask, cache: GridCache | None, circuit: CircuitReport | None
                   ) -> tuple[GridCache, CircuitReport]:
    """``(cache, circuit report)`` of ``model`` on ``task``: those given, checked to belong to the task, or computed.

    Raises:
        ModAddError: ``cache`` or ``circuit`` belong to another task, or ``circuit`` comes without its ``cache``.
    """
    if cache is not None and cache.task.p != task.p:
        raise ModAddError(f"the grid cache is of p = {cache.task.p}, the task of p = {task.p}.")
    if circuit is not None and _report_p(circuit) != task.p:
        raise ModAddError(f"the circuit report is of p = {_report_p(circuit)}, the task of p = {task.p}.")
    if circuit is not None and cache is None:
        raise ModAddError("circuit= needs the cache= it was computed with (the figures and tables read the grid "
                          "cache).")
    cache = cache if cache is not None else grid_cache(model, task)
    return cache, circuit if circuit is not None else verify_circuit(model, task, cache=cache)


def _report_p(report) -> int:
    return report.key_irreps.spectrum.order if isinstance(report, GroupCircuitReport) else report.neurons.p


def analyze(model, task: ModularTask, *, cache: GridCache | None = None,
            circuit: CircuitReport | GroupCircuitReport | None = None) -> dict:
    """Run every probe on ``model`` from one grid pass; return the JSON keys listed in DESIGN.md, and more.

    Losses and accuracies are over the task's defined inputs; with the split unknown, the per-split figures
    are None and listed in ``"unavailable"``. Under ``mul``/``div`` the Fourier analysis reads the
    multiplicative group (the inputs without a zero operand); ``"outside_group"`` measures the rest.

    Args:
        cache, circuit: the model's :func:`~modadd_interp.probes.grid_cache` and its
            :func:`~modadd_interp.verify_circuit` result on that cache, when already computed (e.g. to render the
            HTML report from the same analysis: :func:`modadd_interp.render_report` takes both).

    Raises:
        ModAddError: ``cache`` or ``circuit`` belong to another task (:func:`given_analysis`).
    """
    cache, report = given_analysis(model, task, cache, circuit)
    result = _common(model, task, cache)
    if isinstance(report, GroupCircuitReport):
        result.update(_irrep_keys(report))
    else:
        result.update(_fourier_keys(model, task, cache, report))
    result["unavailable"] = [] if task.split_known else list(SPLIT_LOSSES)
    if not task.split_known:
        for key in SPLIT_LOSSES:
            result[key] = None
        result["restricted_loss"] = result["restricted"]["loss"]  # the full grid's: no held-out split to use
        result["notices"] = ["the split is unknown: train/test losses are unavailable; losses, the restricted "
                             "loss and the claims use the full grid, and 'excluded_loss' is over the full grid. "
                             "Set the split with --frac-train/--seed/--split."]
    return result


def _common(model, task: ModularTask, cache: GridCache) -> dict:
    """The keys every task has: the task, the architecture, the group, the losses, the attention."""
    whole, cfg, grid = cache.task_full, cache.config, cache.grid
    group = grid.group
    return {
        "p": task.p,
        "op": task.op,
        "op_source": task.op_source,
        "split_source": task.split_source,
        "task": task.to_dict(),
        "n_layers": cfg.n_layers,
        "architecture": {"act_fn": cfg.act_fn, "attn_rate": cfg.attn_rate, "attention_dir": cfg.attention_dir,
                         "layout": cfg.layout, "d_model": cfg.d_model, "n_heads": cfg.n_heads, "d_mlp": cfg.d_mlp,
                         "arch": cfg.arch, **({"d_embed": cfg.d_embed, "embed": cfg.embed,
                                              "shared_embed": cfg.shared_embed, "mlp_bias": cfg.mlp_bias}
                                             if cfg.arch == "mlp" else {})},
        "group": {"name": group.name, "order": grid.n, "abelian": group.abelian, "source": task.op_source,
                  "coordinate": grid.coords.coordinate, "readout": grid.coords.readout, "inputs": grid.n_inputs,
                  "outside_inputs": int(len(grid.outside_index))},
        "accuracy": whole.accuracy,
        "loss": whole.loss,
        "train_accuracy": whole.train_accuracy,
        "test_accuracy": whole.test_accuracy,
        "train_loss": whole.train_loss,
        "test_loss": whole.test_loss,
        "outside_group": cache.outside.to_dict() if cache.outside is not None else None,
        # an MLP has no attention: None (its claims about attention are marked not applicable)
        "attention": probe_attention(model, task, cache=cache).to_dict() if cfg.n_heads else None,
    }


def _claims(report) -> list[dict]:
    # DESIGN.md's keys: "metric" is the measured value (Claim.after); "metric_name" says what it is
    return [{"name": c.name, "passed": c.passed, "applicable": c.applicable, "decides": c.decides, "metric": c.after,
             "threshold": c.threshold, "comparison": c.comparison, "metric_name": c.metric,
             "intervention": c.intervention, "before": c.before, "detail": c.detail, "margin": c.margin,
             "margin_kind": c.margin_kind} for c in report.claims]


def _fourier_keys(model, task: ModularTask, cache: GridCache, report: CircuitReport) -> dict:
    """The Fourier analysis of a modular operation (the cyclic group's irreps are its frequencies)."""
    kf, neurons, losses = report.key_frequencies, report.neurons, report.losses
    spectrum = irrep_spectrum(model, task, cache)
    return {
        "key_frequencies": list(kf.freqs),
        "key_irreps": spectrum.records(str(k) for k in kf.freqs),
        "key_frequency_detection": kf.to_dict(),
        "neuron_clusters": neurons.cluster_sizes(),
        "neurons": neurons.to_dict(),
        "embedding": report.embedding.to_dict(),
        "logits": report.logits.to_dict(),
        "restricted_loss": losses.restricted.test_loss,
        "restricted": losses.restricted.to_dict(),
        "excluded_loss": {str(k): m.train_loss for k, m in losses.excluded.items()},
        "excluded_all": losses.excluded_all.to_dict(),
        "claims": _claims(report),
        "circuit_confirmed": report.passed,
        "algorithm": report.verdict.algorithm,
        "verdict": report.verdict.to_dict(),
        # whether the model answers its held-out pairs (the grid's when the split is unknown); the verdict rests on it
        "generalizes": report.verdict.generalizes,
        "loss_recovered": {name: test.loss_recovered for name, test in report.hypotheses.items()},
        # the same shares on the training and the held-out pairs (None for both when the split is unknown)
        "loss_recovered_by_split": {name: test.loss_recovered_by_split if task.split_known
                                    else {"train": None, "held_out": None}
                                    for name, test in report.hypotheses.items()},
        "hypotheses": {name: test.to_dict() for name, test in report.hypotheses.items()},
        "circles": report.circles.to_dict() if report.circles else None,
        **{key: value for key, value in report.diagnostics.to_dict().items() if key != "sample"},
        "diagnostics_sample": report.diagnostics.sample,
        "ablation_table": report.table.to_dict()["rows"],
        "patching": report.patching.to_dict(),
    }


def _irrep_keys(report: GroupCircuitReport) -> dict:
    """The irrep analysis of a group's composition (:mod:`modadd_interp.causal.irrep_circuit`)."""
    key, measured = report.key_irreps, report.measurements
    spectrum = key.spectrum
    sizes = dict(zip(spectrum.names, spectrum.evidence["cluster_size"].tolist(), strict=True))
    clustered = {name: int(count) for name, count in sizes.items() if count}
    restricted = measured.get("restricted logits")
    excluded = {name: measured[f"logits without {name}"].train_loss for name in key.names}
    return {
        "key_frequencies": [],
        "key_irreps": key.records(),
        "key_irrep_detection": key.to_dict(),
        "irreps": spectrum.to_dict(),
        "character_table": spectrum.character_table_dict(),
        "neuron_clusters": {**clustered, "unclustered": int(spectrum.d_mlp - sum(clustered.values()))},
        "restricted_loss": restricted.test_loss if restricted is not None else None,
        "restricted": restricted.to_dict() if restricted is not None else {"loss": None},
        "excluded_loss": excluded,
        "excluded_all": (measured["logits without the key irreps"].to_dict()
                         if "logits without the key irreps" in measured else None),
        "claims": _claims(report),
        "circuit_confirmed": report.passed,
        "algorithm": report.verdict.algorithm,
        "verdict": report.verdict.to_dict(),
        "loss_recovered": {report.verdict.hypothesis: report.verdict.loss_recovered} if report.verdict.hypothesis
        else {},
        "clock_coefficients": report.clock_coefficients,
        "ablation_table": {name: measured[name].to_dict() for name in ("full model", "all heads zero-ablated",
                                                                         "MLP zero-ablated") if name in measured},
        "not_applicable": ["circles", "gradient_symmetricity", "distance_irrelevance", "circularity", "patching",
                           "the pizza (x - y has no meaning in a non-abelian group)"
                           if not report.key_irreps.spectrum.abelian else "the pizza"],
    }
