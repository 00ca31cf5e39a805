"""The graded verdict: which algorithm a model runs, whether it generalizes, and how much of its held-out behaviour
that algorithm recovers.

The rule, on the evidence :func:`modadd_interp.verify_circuit` gathers (docs/verdicts.md measures it on a labelled
population and justifies each threshold and its margin there):

1. **Key frequencies.** Without key frequencies found with high confidence the algorithm is ``"none"`` and the
   circuit is not confirmed (the reason is the key-frequency rule's).
2. **Which algorithm.** The verdict ranges over the hypotheses tested (default: the clock and the pizza). Each key
   frequency's circle is isolated and labelled with one of them (:func:`modadd_interp.causal.isolate_circles`).
   Weighted by the frequencies' shares of the logits, the algorithm is the hypothesis whose circles carry at least
   :data:`ALGORITHM_SHARE` of the key frequencies' logit energy, else ``"mixed"`` (none does).
3. **Generalization.** An algorithm explains what a model does on pairs it never trained on. The model
   *generalizes* when it answers at least :data:`GENERALIZES_ACCURACY` of its held-out pairs (of the whole grid when
   the split is unknown). A model that does not is reported as a *partial* circuit beside memorized answers, never
   confirmed.
4. **Confirmed** when the model generalizes, the algorithm's hypothesis (for ``"mixed"``: the one whose worst test
   recovers most) recovers at least :data:`CONFIRM_RECOVERED` of the **held-out** loss in each causal test — the
   logits replaced by its readout, the readout layer's MLP output replaced by its fit, and that output resampled
   within the hypothesis's classes (:mod:`modadd_interp.causal.hypothesis_tests`) — and the key frequencies are
   complete (removing them all breaks the model) and minimal (each one is necessary): the claims marked
   ``decides``.
5. **Margins.** Every deciding threshold has a margin. A deciding figure within it makes the verdict
   ``confidence="borderline"`` (else ``"clear"``), and the line says which figure is near which threshold: the
   verdict is still the threshold's, but a small change of the model could flip it.

Examples:
    Skipped when the examples run: :func:`~modadd_interp.verify_circuit` takes about 30 s at p = 113.

    >>> import modadd_interp as mi                                           # doctest: +SKIP
    >>> verdict = mi.verify_circuit(*mi.load()).verdict                      # doctest: +SKIP
    >>> verdict.line                                                         # doctest: +SKIP
    'clock at k = [1, 5, 7, 29]: 100.0% of the held-out loss recovered (circuit confirmed)'
    >>> held_out = verdict.loss_recovered_by_split["held_out"]["logits"]     # doctest: +SKIP
    >>> verdict.generalizes, verdict.confidence, round(held_out, 3)          # doctest: +SKIP
    (True, 'clear', 1.0)
"""

from __future__ import annotations

import dataclasses

from ..display import Displayable, Summary
from ..probes.key_frequencies import within_margin

ALGORITHM_SHARE = 0.75
"""One kind of circle must carry three quarters of the key frequencies' logit energy to name the algorithm.
Measured: Zhong et al.'s Model A 100% pizza, Model B 97% clock, the shipped model 90% clock, wd_10-1 90%, the
zoo's 1-layer clocks 85-97%."""

ALGORITHM_SHARE_MARGIN = 0.05
"""A winning share within 5 points of :data:`ALGORITHM_SHARE` (70-80%) is borderline."""

CIRCLE_SIGNATURE_MARGIN = 0.05
"""A circle whose signature is within 0.05 of :data:`modadd_interp.causal.circles.CIRCLE_SIGNATURE` (0.45-0.55) is
borderline when relabelling it would change the algorithm. Measured on the labelled population (docs/verdicts.md):
the clock circles that carry most of a model's logits reach 0.41, pizza circles start at 0.9."""

GENERALIZES_ACCURACY = 0.98
"""The model generalizes when it answers 98% of its held-out pairs. Measured on the labelled population
(docs/verdicts.md): the trained models that finished grokking answer 98.96-100% of theirs, those still forming
(grokking under way, or memorizing beside a partial circuit) at most 96.6%."""

GENERALIZES_MARGIN = 0.005
"""A held-out accuracy within half a point of :data:`GENERALIZES_ACCURACY` (97.5-98.5%) is borderline."""

CONFIRM_RECOVERED = 0.95
"""Each causal test of the algorithm's hypothesis must recover 95% of the held-out loss. Measured on the grokked
checkpoints (paper, Clock-and-Pizza, shipped): 0.995-1.0."""

CONFIRM_RECOVERED_MARGIN = 0.02
"""A share of loss recovered within 2 points of :data:`CONFIRM_RECOVERED` (93-97%) is borderline."""


@dataclasses.dataclass(frozen=True)
class Generalization:
    """How well a model answers the pairs it never trained on.

    Attributes:
        accuracy: its accuracy on the held-out pairs (on the whole grid when the split is unknown).
        count: how many pairs that was measured on.
        split_known: False when the split is unknown (then the figure is the whole grid's).
    """

    accuracy: float
    count: int
    split_known: bool = True

    @property
    def generalizes(self) -> bool:
        """At least :data:`GENERALIZES_ACCURACY` of them answered."""
        return self.accuracy >= GENERALIZES_ACCURACY

    @property
    def basis(self) -> str:
        """What the accuracy was measured on, in words."""
        return "held-out pairs" if self.split_known else "the grid (split unknown)"

    def margin(self) -> float:
        """:data:`GENERALIZES_MARGIN`."""
        return GENERALIZES_MARGIN


@dataclasses.dataclass(frozen=True, repr=False)
class Verdict(Displayable):
    """Which algorithm, at which frequencies, how much of the held-out loss it recovers, and whether that confirms it.

    Attributes:
        algorithm: the winning hypothesis's name (``"clock"``, ``"pizza"``, a hypothesis of yours), ``"mixed"`` or
            ``"none"``.
        key_freqs: the key frequencies.
        shares: ``{hypothesis name: f}`` logit-energy shares of the circles each hypothesis claims.
        hypothesis: the name of the hypothesis the confirmation rests on (None for ``"none"``).
        loss_recovered: that hypothesis's ``{"logits", "mlp_out", "resampling"}`` shares of loss recovered over the
            whole grid.
        confirmed: the verdict.
        reason: why, in one sentence.
        generalizes: the model answers at least :data:`GENERALIZES_ACCURACY` of its held-out pairs.
        held_out_accuracy: its accuracy there (the grid's when the split is unknown).
        basis: ``"held-out pairs"`` or ``"the grid (split unknown)"``: what the decisive figures are measured on.
        loss_recovered_by_split: ``{"train": {...}, "held_out": {...}}`` of the same tests on each split (None when
            the split is unknown: then only the whole grid's, ``loss_recovered``, exists).
        confidence: ``"clear"``, or ``"borderline"`` when a deciding figure is within its threshold's margin.
        borderline: which figures, in words.
        held_out_losses: ``{"model", "readout", "baseline"}``: on the held-out pairs (the grid when the split is
            unknown), the model's loss, that of the hypothesis's readout (the logits test) and that of the grid's mean
            logits (its baseline). A share of loss recovered is undefined where the model does no better than the
            baseline (a memorizer answering its held-out pairs wrongly and confidently): the line then gives these.
    """

    algorithm: str
    key_freqs: tuple[int, ...]
    shares: dict[str, float]
    hypothesis: str | None
    loss_recovered: dict[str, float]
    confirmed: bool
    reason: str
    generalizes: bool = True
    held_out_accuracy: float = float("nan")
    basis: str = "held-out pairs"
    loss_recovered_by_split: dict[str, dict[str, float] | None] = dataclasses.field(default_factory=dict)
    confidence: str = "clear"
    borderline: tuple[str, ...] = ()
    held_out_losses: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def decisive_recovered(self) -> dict[str, float]:
        """The loss recovered the verdict rests on: held-out where the split is known, else the whole grid's."""
        return self.loss_recovered_by_split.get("held_out") or self.loss_recovered

    @property
    def line(self) -> str:
        """The verdict in one line, e.g. ``"clock at k = [1, 5]: 99.7% of the held-out loss recovered (circuit
        confirmed)"``, ``"partial clock at k = [4, 9]: recovers 80% of the loss on held-out pairs; the model answers
        62% of them (NOT confirmed: ...)"``; a borderline verdict names the figure and the threshold it is near."""
        near = f"; borderline: {'; '.join(self.borderline)}" if self.borderline else ""
        if self.algorithm == "none":
            return f"not confirmed: {self.reason}" + (f" (borderline: {'; '.join(self.borderline)})" if near else "")
        recovered = self.decisive_recovered
        worst = min(recovered.values()) if recovered else float("nan")
        held = "held-out " if self.basis == "held-out pairs" else ""
        where = list(self.key_freqs)
        if not self.generalizes:
            pairs = "held-out pairs" if held else "the grid"
            answers = "of them" if held else "of the grid"
            if worst == worst:
                beats = " (its readout beats the model there)" if worst > 1 else ""
                figure = f"recovers {worst:.0%} of the loss on {pairs}{beats}"
            else:
                losses = self.held_out_losses
                figure = (f"on {pairs} its readout's loss is {losses.get('readout', float('nan')):.3g} nats, the "
                          f"model's {losses.get('model', float('nan')):.3g}, its mean logits' "
                          f"{losses.get('baseline', float('nan')):.3g} (no share of loss recovered: the model does no "
                          "better than its mean logits there)")
            return (f"partial {self.algorithm} at k = {where}: {figure}; the model answers "
                    f"{self.held_out_accuracy:.1%} {answers} (NOT confirmed: {self.reason}{near})")
        status = "circuit confirmed" if self.confirmed else f"NOT confirmed: {self.reason}"
        return f"{self.algorithm} at k = {where}: {worst:.1%} of the {held}loss recovered ({status}{near})"

    def to_dict(self) -> dict:
        """JSON-safe fields plus the line."""
        return {**dataclasses.asdict(self), "key_freqs": list(self.key_freqs), "borderline": list(self.borderline),
                "line": self.line}

    def _summary(self) -> Summary:
        rows = {f"{self.hypothesis}: loss recovered ({test}, {self.basis})": v
                for test, v in self.decisive_recovered.items()}
        rows.update({f"{kind} circles' share of the key logit energy": v for kind, v in self.shares.items()})
        rows[f"accuracy on {self.basis}"] = self.held_out_accuracy
        return Summary(self.line, status=self.confirmed, details=[self.reason, *self.borderline], rows=rows)


def decide(key_frequencies, circles, tests: dict, deciding_claims: list, accuracy: float = 1.0,
           held_out: Generalization | None = None) -> Verdict:
    """The verdict from the key frequencies, the isolated circles, the hypothesis tests ``{name: HypothesisTest}`` (in
    the order the hypotheses were given; the verdict ranges over them), the deciding claims and how well the model
    answers its held-out pairs (``held_out``; without it, ``accuracy`` over the grid with the split unknown).

    Examples:
        >>> decide(kf, circles, tests, claims, held_out=Generalization(0.629, 385)).line     # doctest: +SKIP
        'partial clock at k = [...]: recovers ...% of the loss on held-out pairs; the model answers 62.9% of them ...'
    """
    from .circles import CIRCLE_SIGNATURE

    gen = held_out if held_out is not None else Generalization(accuracy, 0, split_known=False)
    near = list(key_frequencies.borderline())
    if within_margin(gen.accuracy, GENERALIZES_ACCURACY, gen.margin(), "points"):
        near.append(f"the model answers {gen.accuracy:.2%} of {gen.basis}, within {gen.margin():.1%} of the "
                    f"{GENERALIZES_ACCURACY:.0%} that says it generalizes")
    memorizing = f"it does not generalize ({gen.accuracy:.1%} of {gen.basis} answered, < {GENERALIZES_ACCURACY:.0%})"
    common = {"generalizes": gen.generalizes, "held_out_accuracy": gen.accuracy, "basis": gen.basis}
    key = tuple(key_frequencies.freqs)
    if not key:
        reason = key_frequencies.reason or "no key frequencies were found"
        return Verdict("none", (), {}, None, {}, False, reason, **common,
                       confidence="borderline" if near else "clear", borderline=tuple(near))
    share = {k: float(key_frequencies.evidence["logit_share"][k - 1]) for k in key}
    labels = dict(circles.labels)
    algorithm, shares = _algorithm(share, labels, tests)
    if within_margin(max(shares.values()), ALGORITHM_SHARE, ALGORITHM_SHARE_MARGIN, "points"):
        best = max(shares, key=shares.get)
        near.append(f"the {best} circles carry {shares[best]:.0%} of the key logit energy, near the "
                    f"{ALGORITHM_SHARE:.0%} that names the algorithm")
    for k, signatures in circles.signatures.items():
        for name, value in signatures.items():
            owner = circles.signature_owners.get(name)
            if not within_margin(value, CIRCLE_SIGNATURE, CIRCLE_SIGNATURE_MARGIN, "points") or owner is None:
                continue
            flipped = dict(labels)
            flipped[k] = next((h for h in tests if h != labels[k]), labels[k]) if labels[k] == owner else owner
            if _algorithm(share, flipped, tests)[0] != algorithm:
                near.append(f"circle {k}'s {name} {value:.2f} is near the {CIRCLE_SIGNATURE:g} that labels it, and "
                            "relabelling it would change the algorithm")
    if algorithm == "mixed":
        name = max(tests, key=lambda h: min(tests[h].loss_recovered.values()))
    else:
        name = algorithm
    by_split = tests[name].loss_recovered_by_split if gen.split_known else {"train": None, "held_out": None}
    recovered = by_split["held_out"] or tests[name].loss_recovered
    field = "test_loss" if gen.split_known else "loss"
    test = tests[name]
    held_out_losses = {"model": getattr(test.full, field), "readout": getattr(test.logits, field),
                       "baseline": getattr(test.logits_baseline, field)}
    short = [f"{test} {value:.1%}" if value == value else f"{test} undefined" for test, value in recovered.items()
             if not value >= CONFIRM_RECOVERED]
    near += [f"{name}'s {test} test recovers {value:.1%} of the {'held-out ' if gen.split_known else ''}loss, near the "
             f"{CONFIRM_RECOVERED:.0%} required" for test, value in recovered.items()
             if within_margin(value, CONFIRM_RECOVERED, CONFIRM_RECOVERED_MARGIN, "points")]
    failed = [c.name for c in deciding_claims if not c.passed]
    near += [f"{c.name}: {c.after:.3g} is near its threshold {c.threshold:.3g}" for c in deciding_claims
             if getattr(c, "margin", None) and within_margin(c.after, c.threshold, c.margin, c.margin_kind)]
    if not gen.generalizes:
        failed.insert(0, memorizing)
    confirmed = gen.generalizes and not short and not failed
    if confirmed:
        reason = (f"the model generalizes ({gen.accuracy:.1%} of {gen.basis}); the {name} hypothesis recovers >= "
                  f"{CONFIRM_RECOVERED:.0%} of the {'held-out ' if gen.split_known else ''}loss in every test; the key "
                  "frequencies are complete and minimal")
    else:
        parts = ([f"the {name} hypothesis recovers only " + ", ".join(short)] if short else []) + failed
        reason = "; ".join(parts)
    return Verdict(algorithm, key, shares, name, tests[name].loss_recovered, confirmed, reason, **common,
                   loss_recovered_by_split=by_split, confidence="borderline" if near else "clear",
                   borderline=tuple(near), held_out_losses=held_out_losses)


def _algorithm(share: dict[int, float], labels: dict[int, str], tests: dict) -> tuple[str, dict[str, float]]:
    """``(algorithm, {hypothesis: share of the key logit energy its circles carry})``."""
    total = sum(share.values()) or 1.0
    shares = {name: sum(v for k, v in share.items() if labels[k] == name) / total for name in tests}
    return next((name for name, v in shares.items() if v >= ALGORITHM_SHARE), "mixed"), shares
