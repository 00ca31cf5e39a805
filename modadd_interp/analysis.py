"""``analyze``: every probe and check on one model, as one JSON-safe dict (the CLI's output).

Examples:
    >>> result = analyze(*mi.load())          # doctest: +SKIP
    >>> result["key_frequencies"], result["circuit_confirmed"]
"""

from __future__ import annotations

from .causal import verify_circuit
from .probes import (
    grid_cache,
    probe_attention,
)
from .task import ModularTask


def analyze(model, task: ModularTask) -> dict:
    """Run every probe on ``model`` from one grid pass; return the JSON keys listed in DESIGN.md."""
    cache = grid_cache(model, task)
    full = cache.full
    report = verify_circuit(model, task, cache=cache)
    kf, neurons = report.key_frequencies, report.neurons
    result: dict = {
        "p": task.p,
        "op": task.op,
        "task": task.to_dict(),
        "accuracy": full.accuracy,
        "train_accuracy": full.train_accuracy,
        "test_accuracy": full.test_accuracy,
        "train_loss": full.train_loss,
        "test_loss": full.test_loss,
        "key_frequencies": list(kf.freqs),
        "key_frequency_detection": kf.to_dict(),
        "neuron_clusters": neurons.cluster_sizes(),
        "neurons": neurons.to_dict(),
        "embedding": report.embedding.to_dict(),
        "attention": probe_attention(model, task, cache=cache).to_dict(),
        "logits": report.logits.to_dict(),
    }
    losses = report.losses
    result.update({
        "restricted_loss": losses.restricted.test_loss,
        "restricted": losses.restricted.to_dict(),
        "excluded_loss": {str(k): m.train_loss for k, m in losses.excluded.items()},
        "excluded_all": losses.excluded_all.to_dict(),
        # DESIGN.md's keys: "metric" is the measured value (Claim.after); "metric_name" says what it is
        "claims": [{"name": c.name, "passed": c.passed, "metric": c.after, "threshold": c.threshold,
                    "comparison": c.comparison, "metric_name": c.metric, "intervention": c.intervention,
                    "before": c.before, "detail": c.detail} for c in report.claims],
        "circuit_confirmed": report.passed,
        "ablation_table": report.table.to_dict()["rows"],
        "patching": report.patching.to_dict(),
    })
    return result
