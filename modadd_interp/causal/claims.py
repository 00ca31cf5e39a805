"""``verify_circuit``: which algorithm the model runs, graded by how much of its behaviour it recovers, and every
claim of the Fourier-circuit story, tested by an intervention.

The verdict (:mod:`modadd_interp.causal.verdict`) names the algorithm (clock, pizza, mixed or none) and confirms it
from the hypothesis tests (:mod:`modadd_interp.causal.hypothesis_tests`: loss recovered) and the claims marked
``decides`` (faithfulness, resampling, completeness, minimality). The other claims are the supporting evidence
of the paper's story; each :class:`Claim` names its intervention, the metric before and after it, the threshold
and its own verdict. The thresholds are the named constants below, each with its reason. Claims about the key
frequencies fail when the model has none; a claim without meaning for an architecture is not applicable.

Examples:
    Skipped when the examples run (about 30 s at p = 113):

    >>> import modadd_interp as mi                          # doctest: +SKIP
    >>> report = verify_circuit(*mi.load())                 # doctest: +SKIP
    >>> report.passed, report.failed                        # doctest: +SKIP
    (True, [])
    >>> report.to_frame()[["name", "passed"]]               # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import pandas as pd
import torch

from ..display import Displayable, Summary
from ..errors import ModAddError
from ..fourier import n_freqs
from ..hypotheses import BUILT_IN, Hypothesis
from ..probes import (
    EmbeddingProbe,
    KeyFrequencies,
    LogitProbe,
    NeuronProbe,
    grid_cache,
    key_frequencies,
    probe_embedding,
    probe_logits,
    probe_neurons,
)
from ..probes.diagnostics import ZhongDiagnostics, zhong_diagnostics
from ..task import ModularTask
from .circles import CircleIsolation, isolate_circles
from .claim import (
    BROKEN_ACCURACY,
    BROKEN_ACCURACY_MARGIN,
    EMBED_KEY_FRACTION,
    KEEP_ACCURACY,
    LOSS_FLOOR,
    MINIMALITY_MARGIN,
    MINIMALITY_RATIO,
    MINIMALITY_SHARE,
    NEURON_KEY_VARIANCE,
    SUFFICIENT_LOSS_FACTOR,
    Claim,
    heads_claim,
    make_claim,
    not_applicable,
)
from .hypothesis_tests import HypothesisTest, hypothesis_tests_plan
from .interventions import embedding_frequency_hooks
from .irrep_circuit import GroupCircuitReport, verify_group_circuit
from .losses import FourierLosses, fourier_losses_plan, readout_neurons
from .measure import Measurement
from .patching import PATCH_RESTORED, PatchingResult, activation_patching
from .table import AblationTable, ablation_table_plan
from .verdict import CONFIRM_RECOVERED, CONFIRM_RECOVERED_MARGIN, Generalization, Verdict, decide

PATH_COMPONENTS = ("embed", "attention out", "all neurons", "MLP out")
"""The components on a one-layer model's path, patched at the last position (named with ``(=)`` or ``(b)``)."""


@dataclasses.dataclass(frozen=True, repr=False)
class CircuitReport(Displayable):
    """The verdict and every claim, plus the evidence they were computed from (probes included, for reuse).

    Attributes:
        verdict: the algorithm and whether it is confirmed (:class:`~modadd_interp.causal.verdict.Verdict`).
        hypotheses: ``{name: HypothesisTest}`` of every hypothesis tested.
        circles: the isolated circles of the key frequencies (None without key frequencies).
        diagnostics: Zhong et al.'s gradient symmetricity, distance irrelevance and circularity.
    """

    claims: list[Claim]
    losses: FourierLosses
    table: AblationTable
    patching: PatchingResult
    key_frequencies: KeyFrequencies
    neurons: NeuronProbe
    embedding: EmbeddingProbe
    logits: LogitProbe
    verdict: Verdict
    hypotheses: dict[str, HypothesisTest]
    circles: CircleIsolation | None
    diagnostics: ZhongDiagnostics

    @property
    def key_freqs(self) -> tuple[int, ...]:
        """The key frequencies the claims refer to."""
        return tuple(self.key_frequencies.freqs)

    @property
    def algorithm(self) -> str:
        """The winning hypothesis's name (``"clock"``, ``"pizza"``, ...), ``"mixed"`` or ``"none"``."""
        return self.verdict.algorithm

    @property
    def passed(self) -> bool:
        """The verdict: the algorithm is confirmed (``circuit_confirmed``)."""
        return self.verdict.confirmed

    @property
    def failed(self) -> list[str]:
        """Names of the applicable claims that failed."""
        return [c.name for c in self.claims if c.applicable and not c.passed]

    def to_frame(self) -> pd.DataFrame:
        """One row per claim."""
        return pd.DataFrame([c.to_dict() for c in self.claims])

    def to_dict(self) -> dict:
        """JSON-safe report."""
        return {"key_freqs": list(self.key_freqs), "passed": self.passed, "verdict": self.verdict.to_dict(),
                "failed": self.failed, "claims": [c.to_dict() for c in self.claims],
                "hypotheses": {k: v.to_dict() for k, v in self.hypotheses.items()},
                "circles": self.circles.to_dict() if self.circles else None,
                "diagnostics": self.diagnostics.to_dict(), "losses": self.losses.to_dict(),
                "ablation_table": self.table.to_dict(), "patching": self.patching.to_dict()}

    def plot(self):
        """The claims as a pass/fail chart of each metric against its threshold."""
        from ..viz.figures import claims_figure

        return claims_figure(self)

    def _summary(self) -> Summary:
        applicable = [c for c in self.claims if c.applicable]
        passed = sum(bool(c.passed) for c in applicable)
        failed = f"failed: {', '.join(self.failed)}" if self.failed else ""
        return Summary(self.verdict.line, status=self.passed,
                       details=[f"{passed} of {len(applicable)} applicable claims pass", failed],
                       rows=self.to_frame()[["name", "decides", "passed", "after", "comparison", "threshold"]],
                       table_caption="the claims (decides: the verdict rests on it)", max_rows=40)


def verify_circuit(model, task: ModularTask, cache=None, hypotheses: Sequence[Hypothesis] | None = None
                   ) -> CircuitReport | GroupCircuitReport:
    """Decide which algorithm ``model`` runs and test every claim of the circuit (see the module docstring).

    A task whose group is not ``Z/n`` (``op="S5"``, ...) is read through its irreps instead: the representation
    clock and its claims (:func:`modadd_interp.causal.irrep_circuit.verify_group_circuit`, a
    :class:`~modadd_interp.causal.irrep_circuit.GroupCircuitReport`).

    Args:
        hypotheses: the hypotheses to test; the verdict ranges over them (default
            :data:`~modadd_interp.hypotheses.BUILT_IN`, the clock and the pizza). One made without frequencies is
            stated at the key frequencies. Add yours to the built-in ones with ``[*BUILT_IN, mine]``; their tests
            are in ``report.hypotheses``.

    Examples:
        Skipped when the examples run (about 30 s on the shipped p = 113 model):

        >>> import modadd_interp as mi                      # doctest: +SKIP
        >>> report = verify_circuit(*mi.load())             # doctest: +SKIP
        >>> report.verdict.line                             # doctest: +SKIP
        'clock at k = [1, 5, 7, 29]: 100.0% of the held-out loss recovered (circuit confirmed)'
    """
    if not task.grid.coords.cyclic:
        if hypotheses is not None:
            raise ModAddError(f"hypotheses are stated in the Fourier basis of Z/n; a {task.group.name} task is tested "
                              "for the representation clock (leave hypotheses=None).")
        return verify_group_circuit(model, task, cache)
    cache = cache or grid_cache(model, task)
    kf = key_frequencies(model, task, cache=cache)
    key = tuple(kf.freqs)
    neurons = probe_neurons(model, task, cache=cache)
    embedding = probe_embedding(model, task, key_freqs=key, cache=cache)
    logit_probe = probe_logits(model, task, key_freqs=key, cache=cache)
    readout = readout_neurons(neurons, cache)
    hypotheses = [h.at(key) for h in _checked_hypotheses(hypotheses)] if key else []
    # the Fourier losses, the ablation table and the hypothesis tests measured in one sweep of the grid
    losses, table, tests = cache.measure_plans([fourier_losses_plan(cache, key, readout),
                                                ablation_table_plan(cache, key, readout),
                                                hypothesis_tests_plan(cache, hypotheses)])
    clusters = {k: v for k, v in readout.clusters().items() if k in key}
    patching = activation_patching(model, task, clusters=clusters)
    layer_note = "" if cache.config.n_layers == 1 else f" (readout layer {cache.last_layer})"
    readout = task.grid.coords.readout.replace("cos(w(", "cos(w_k(")
    full = losses.full
    keeps = max(SUFFICIENT_LOSS_FACTOR * full.test_loss, LOSS_FLOOR)
    claims = [
        make_claim("the embedding is sparse in the Fourier basis", "none: W_E read in the Fourier basis",
               "fraction of W_E's squared norm in the key frequencies", None, embedding.fraction_in_key,
               EMBED_KEY_FRACTION, ">=", f"{len(key)} of {n_freqs(task.p)} frequencies; Gini {embedding.gini:.2f}",
               needs_key=key),
        _neuron_claim(neurons, key),
        make_claim("the neurons compute with their key-frequency components" + layer_note,
               "every neuron's activation replaced by its mean + key-frequency 3x3 blocks", "accuracy",
               full.accuracy, losses.key_only_neurons.accuracy, KEEP_ACCURACY, ">=",
               f"test loss {full.test_loss:.3g} -> {losses.key_only_neurons.test_loss:.3g}", needs_key=key),
        make_claim(f"the logits are carried by {readout}", f"logits replaced by the fit sum_k alpha_k {readout}",
               "test loss",
               full.test_loss, logit_probe.fit.test_loss, keeps, "<=",
               f"alphas {[round(a, 2) for a in logit_probe.alpha.tolist()]}; FVE {logit_probe.fve:.2f}", needs_key=key),
        make_claim("the key frequencies suffice (restricted loss)",
               "logits restricted to the mean + key cos/sin(w_k s) components", "test loss",
               full.test_loss, losses.restricted.test_loss, keeps, "<=",
               f"train {losses.restricted.train_loss:.3g}, all {losses.restricted.loss:.3g}", needs_key=key),
        _minimality_claim(cache, key),
        make_claim("completeness: removing all key frequencies breaks the model (excluded loss)",
               "key cos/sin(w_k s) components removed from the logits", "accuracy",
               full.accuracy, losses.excluded_all.accuracy, BROKEN_ACCURACY, "<=",
               f"training loss {full.train_loss:.3g} -> {losses.excluded_all.train_loss:.3g}", needs_key=key,
               decides=True, margin=BROKEN_ACCURACY_MARGIN, margin_kind="points"),
        _nonkey_claim(model, task, key, full, cache),
        heads_claim(cache.config.n_heads, full.accuracy, table.rows["all heads zero-ablated"].accuracy),
        _patching_claim(patching, cache.config),
    ]
    diagnostics = zhong_diagnostics(model, task, cache=cache)
    circles = isolate_circles(model, task, key, hypotheses, cache=cache) if key else None
    verdict = decide(kf, circles, tests, [c for c in claims if c.decides], accuracy=full.accuracy,
                     held_out=generalization(cache))
    claims += _hypothesis_claims(verdict, tests, {h.name: h for h in hypotheses}, task)
    return CircuitReport(claims, losses, table, patching, kf, neurons, embedding, logit_probe, verdict, tests,
                         circles, diagnostics)


def generalization(cache) -> Generalization:
    """How well the model answers its held-out pairs (every defined input of the task; the grid when the split is
    unknown)."""
    task, whole = cache.task, cache.task_full
    count = int((task.test_mask & task.valid_mask).sum())
    return Generalization(whole.test_accuracy if task.split_known else whole.accuracy, count, task.split_known)


def _checked_hypotheses(hypotheses: Sequence[Hypothesis] | None) -> list[Hypothesis]:
    """The hypotheses to test: the built-in ones by default; a clear error for anything that is not one."""
    if hypotheses is None:
        return list(BUILT_IN)
    given = list(hypotheses)
    for h in given:
        if not isinstance(h, Hypothesis):
            hint = f" (an instance, e.g. {h.__name__}())" if isinstance(h, type) else ""
            raise ModAddError(f"hypotheses must be Hypothesis objects{hint}, got {h!r}.")
    if not given:
        raise ModAddError("verify_circuit needs at least one hypothesis to decide among (default: the clock and "
                          "the pizza, modadd_interp.hypotheses.BUILT_IN).")
    return given


def _hypothesis_claims(verdict: Verdict, tests: dict, hypotheses: dict[str, Hypothesis], task) -> list[Claim]:
    """The verdict's causal tests as claims (they decide it)."""
    held = verdict.basis == "held-out pairs"
    metric = "share of held-out loss recovered" if held else "share of loss recovered"
    names = {"logits": ("faithfulness: the readout recovers the loss (logits)",
                        "logits replaced by the hypothesis's fitted readout; baseline: the grid's mean logits"),
             "mlp_out": ("faithfulness: the MLP output's fit recovers the loss",
                         "readout-layer MLP output replaced by its fit in the hypothesis's functions; baseline: "
                         "its mean"),
             "resampling": ("resampling within the hypothesis's classes recovers the loss",
                            "readout-layer MLP output taken from another input of the same class; baseline: its mean")}
    if verdict.hypothesis is None:
        return [make_claim(name, intervention, metric, None, float("nan"), CONFIRM_RECOVERED, ">=",
                       needs_key=(), decides=True) for name, intervention in names.values()]
    test = tests[verdict.hypothesis]
    sum_words = f"{task.grid.coords.axes[0]} + {task.grid.coords.axes[1]}"
    by_split = test.loss_recovered_by_split
    out = []
    for key, (name, intervention) in names.items():
        detail = f"{verdict.hypothesis} at k = {list(test.freqs)}; FVE of the logits {test.fve:.3f}"
        if held:
            detail += f"; training pairs {by_split['train'][key]:.4f}, whole grid {test.loss_recovered[key]:.4f}"
        if key == "resampling":
            detail += f"; classes: {hypotheses[verdict.hypothesis].describe_classes(sum_words)}"
        value = by_split["held_out"][key] if held else test.loss_recovered[key]
        out.append(make_claim(f"{name} ({verdict.hypothesis})", intervention, metric, None, value, CONFIRM_RECOVERED,
                          ">=", detail, decides=True, margin=CONFIRM_RECOVERED_MARGIN, margin_kind="points"))
    return out


def _neuron_claim(neurons, key: tuple[int, ...]) -> Claim:
    """Over every layer's neurons: the variance-weighted share of neuron variance in the key frequencies."""
    weights = neurons.variance
    in_key = neurons.shares[:, [k - 1 for k in key]].sum(1) if key else torch.zeros_like(weights)
    fraction = float((in_key * weights).sum() / weights.sum()) if float(weights.sum()) else 0.0
    sizes = neurons.cluster_sizes() if len(neurons.layers) == 1 else neurons.per_layer()
    return make_claim("the neurons cluster by the key frequencies", "none: 2D Fourier transform of each neuron",
                  "variance-weighted fraction of neuron variance in key-frequency blocks", None, fraction,
                  NEURON_KEY_VARIANCE, ">=", f"clusters at threshold {neurons.threshold}: {sizes}", needs_key=key)


def minimality_scores(cache, key: tuple[int, ...]) -> dict[int, dict[str, float]]:
    """``{k: {"held_out": score, "train": score}}``: what removing ``k`` from the key frequencies' readout (their
    restricted logits) costs on each split, in units of the threshold (>= 1: necessary; see :data:`MINIMALITY_RATIO`):
    ``max(L(K - k) / (MINIMALITY_RATIO L(K)), (L(K - k) - L(K)) / (MINIMALITY_SHARE L()))`` with ``L()`` the loss of the
    constant (mean) logits. Exact from the residue means, O(n p) each.

    Examples:
        >>> minimality_scores(cache, (14, 15))[15]              # doctest: +SKIP
        {'held_out': 1.3e+04, 'train': 1.2e+04}
    """
    splits = {"held_out": "test_loss", "train": "train_loss"}
    with_all = cache.restricted(list(key))
    nothing = cache.restricted([])
    out = {}
    for k in key:
        without = cache.restricted([j for j in key if j != k])
        out[k] = {}
        for split, field in splits.items():
            lk, lw, l0 = getattr(with_all, field), getattr(without, field), getattr(nothing, field)
            ratio = lw / (MINIMALITY_RATIO * lk) if lk > 0 else math.inf
            out[k][split] = max(ratio, (lw - lk) / (MINIMALITY_SHARE * l0) if l0 > 0 else 0.0)
    return out


def _minimality_claim(cache, key: tuple[int, ...]) -> Claim:
    """Minimality in terms of loss recovered (:data:`MINIMALITY_RATIO`): the weakest key frequency's score."""
    name = "minimality: each key frequency is necessary"
    intervention = "one key frequency removed from the key frequencies' readout (restricted logits), each in turn"
    metric = "weakest key frequency's score (removing it multiplies the unrecovered loss, or costs loss recovered)"
    if not key:
        return make_claim(name, intervention, metric, None, float("nan"), 1.0, ">=", "no key frequencies were found",
                      decides=True)
    scores = minimality_scores(cache, key)
    best = {k: max(v.values()) for k, v in scores.items()}
    weakest = min(best, key=best.get)
    detail = (f">= 1 when removing it multiplies the readout's held-out or training loss by {MINIMALITY_RATIO:g} or "
              f"raises it by {MINIMALITY_SHARE:.0%} of the mean logits' loss; per frequency (held-out, training): "
              + ", ".join(f"{k}: {v['held_out']:.3g}, {v['train']:.3g}" for k, v in scores.items()))
    return make_claim(name, intervention, metric, None, best[weakest], 1.0, ">=", detail, decides=True,
                  margin=MINIMALITY_MARGIN)


def _nonkey_claim(model, task, key, full: Measurement, cache) -> Claim:
    others = [k for k in range(1, n_freqs(task.grid.n) + 1) if k not in key]
    if not key:
        return make_claim("the non-key frequencies are unnecessary", "non-key frequencies removed from the embedding",
                      "accuracy", full.accuracy, float("nan"), KEEP_ACCURACY, ">=", "no key frequencies were found")
    after = cache.measure_hooked(embedding_frequency_hooks(model, others, task))
    return make_claim("the non-key frequencies are unnecessary",
                  f"all {len(others)} non-key frequencies removed from the embedding", "accuracy",
                  full.accuracy, after.accuracy, KEEP_ACCURACY, ">=",
                  f"test loss {full.test_loss:.3g} -> {after.test_loss:.3g}")


def _patching_claim(result: PatchingResult, config) -> Claim:
    name, intervention = ("patching each component on the path restores the answer",
                          "clean activations patched into corrupted runs (a' and b')")
    metric = "smallest fraction of logit difference restored on the path"
    if config.n_layers > 1:
        return not_applicable(name, intervention, metric,
                               f"a {config.n_layers}-layer model has no single path: the answer can travel through "
                               "any layer; the per-layer patching scores are in the patching table")
    at = "=" if config.has_eq else "b"
    on_path = PATH_COMPONENTS if config.n_heads else [c for c in PATH_COMPONENTS if c != "attention out"]
    path = [c if c == "embed" else f"{c} ({at})" for c in on_path]
    worst = min((result.restored[c][name], f"{name} ({c}')") for c in result.restored for name in path)
    return make_claim(name, intervention, metric, None, worst[0], PATCH_RESTORED, ">=",
                  f"weakest: {worst[1]}; path: {', '.join(path)}")
