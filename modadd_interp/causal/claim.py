"""A claim of a circuit story and its verdict, and the thresholds the claims share.

Every analysis that tests claims by interventions (the Fourier circuit, :mod:`modadd_interp.causal.claims`; a group's
representation clock, :mod:`modadd_interp.causal.irrep_circuit`) builds them here, against the named thresholds below,
each with its reason.

Examples:
    >>> c = make_claim("a claim", "an intervention", "accuracy", 1.0, 0.2, BROKEN_ACCURACY, "<=")
    >>> c.passed, c.threshold
    (True, 0.5)
"""

from __future__ import annotations

import dataclasses
import math

from ..display import Displayable, Summary

EMBED_KEY_FRACTION = 0.5
"""The key frequencies hold at least half of W_E's squared norm: 'sparse' means most of the
embedding lives on a few circles (a uniform spread puts |key|/(p//2), e.g. 9% for 5 of 56)."""

NEURON_KEY_VARIANCE = 0.5
"""At least half of all neuron variance lies in the key frequencies' 3x3 blocks."""

SUFFICIENT_LOSS_FACTOR = 2.0
LOSS_FLOOR = 1e-3
"""The paper's loss comparisons (restricted loss, the cos readout) pass when the test loss is at
most 2x the full model's, or below 1e-3 nats (a model at 1e-8 is not failed for reaching 2e-8)."""

NECESSARY_LOSS_FACTOR = 10.0
"""A group's key irrep is necessary when removing it raises the training loss at least 10x (plus 1e-9 nats)
(:mod:`modadd_interp.causal.irrep_circuit`); the Fourier circuit states minimality in loss-recovered terms
(:data:`MINIMALITY_RATIO`, :data:`MINIMALITY_SHARE`)."""

MINIMALITY_RATIO = 10.0
MINIMALITY_SHARE = 0.02
"""Minimality, in terms of the loss the key frequencies' readout recovers (their restricted logits): removing any one
key frequency must multiply the loss the readout leaves unrecovered by at least 10 (the paper's factor: what tells a
weak key frequency of a grokked model at 1e-8 nats), or cost at least 2% of the loss of knowing nothing (the mean
logits; what tells a frequency of a soft model, whose loss cannot rise ten-fold past that of a uniform guess: the
planted p = 1009 pizza at 1.0 nats). On held-out or on training pairs. Removing one frequency seldom flips answers, as
the rest still peak at a+b, so the test is on losses. Measured (docs/verdicts.md): the weakest key frequency of every
generalizing model of the labelled population scores 1.1-2e9 (1 is the threshold); the redundant frequencies of
planted models with four equal circles, 0.2."""

MINIMALITY_MARGIN = 2.0
"""A weakest score within a factor 2 of the threshold (0.5 to 2) is borderline."""

BROKEN_ACCURACY_MARGIN = 0.1
"""An accuracy after removing every key frequency within 10 points of :data:`BROKEN_ACCURACY` is borderline."""

KEEP_ACCURACY = 0.99
"""Removing what the circuit does not use must keep >= 99% of the grid answered correctly."""

BROKEN_ACCURACY = 0.5
"""An intervention 'breaks the model' when accuracy on the full grid falls below 50%."""


@dataclasses.dataclass(frozen=True, repr=False)
class Claim(Displayable):
    """One claim and its verdict.

    Attributes:
        name: the claim.
        intervention: what was done to test it.
        metric: what was measured.
        before: the metric on the unmodified model (None for claims read off weights).
        after: the metric under the intervention (or the measured value).
        threshold: the bound ``after`` must meet.
        comparison: ``">="`` or ``"<="``.
        passed: the verdict (None when the claim is not applicable).
        detail: the numbers behind it, in words (for a claim that is not applicable: why).
        applicable: False when the claim has no meaning for this architecture (e.g. a single path
            through a deeper model); it then neither passes nor fails.
        decides: True for the claims the verdict rests on (see :mod:`modadd_interp.causal.verdict`).
        margin: the threshold's margin: a metric within it is borderline (a factor for ``margin_kind="ratio"``,
            an absolute distance for ``"points"``); None when the claim does not decide the verdict.
        margin_kind: ``"ratio"`` or ``"points"``.
    """

    name: str
    intervention: str
    metric: str
    before: float | None
    after: float
    threshold: float
    comparison: str
    passed: bool | None
    detail: str = ""
    applicable: bool = True
    decides: bool = False
    margin: float | None = None
    margin_kind: str = "ratio"

    def to_dict(self) -> dict:
        """JSON-safe fields."""
        return dataclasses.asdict(self)

    def _summary(self) -> Summary:
        if not self.applicable:
            return Summary(f"N/A: {self.name}", details=[self.detail])
        verdict = "PASS" if self.passed else "FAIL"
        return Summary(f"{verdict}: {self.name} ({self.after:.3g} {self.comparison} {self.threshold:.3g})",
                       status=bool(self.passed), details=[self.detail],
                       rows={"intervention": self.intervention, "metric": self.metric, "before": self.before,
                             "after": self.after, "threshold": f"{self.comparison} {self.threshold:.4g}",
                             "decides the verdict": self.decides})


def not_applicable(name: str, intervention: str, metric: str, why: str) -> Claim:
    """A claim that has no meaning for this model, with the reason."""
    return Claim(name, intervention, metric, None, float("nan"), float("nan"), ">=", None, why, applicable=False)


def make_claim(name, intervention, metric, before, after, threshold, comparison, detail="", needs_key=None,
               decides=False, margin=None, margin_kind="ratio") -> Claim:
    """Build a claim; ``needs_key=()`` (an empty key set) fails it with the reason in ``detail``."""
    ok = after >= threshold if comparison == ">=" else after <= threshold
    if math.isnan(float(after)):
        ok = False
    if needs_key is not None and not needs_key:
        ok, detail = False, "no key frequencies were found"
    return Claim(name, intervention, metric, before, float(after), float(threshold), comparison, bool(ok), detail,
                 decides=decides, margin=margin, margin_kind=margin_kind)


def heads_claim(n_heads: int, before: float, after: float) -> Claim:
    """"The attention heads are necessary": every head's output zero-ablated must break the model (accuracy
    ``after`` <= :data:`BROKEN_ACCURACY`); not applicable to a model without attention (an MLP)."""
    name, intervention, metric = "the attention heads are necessary", "every head's output zero-ablated", "accuracy"
    if not n_heads:
        return not_applicable(name, intervention, metric, "the model has no attention (an MLP)")
    return make_claim(name, intervention, metric, before, after, BROKEN_ACCURACY, "<=")
