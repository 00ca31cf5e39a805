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
"""Removing a key frequency must raise the training loss at least 10x (plus 1e-9 nats): it
contributes. One frequency's removal seldom flips answers, as the rest still peak at a+b."""

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
               decides=False) -> Claim:
    """Build a claim; ``needs_key=()`` (an empty key set) fails it with the reason in ``detail``."""
    ok = after >= threshold if comparison == ">=" else after <= threshold
    if math.isnan(float(after)):
        ok = False
    if needs_key is not None and not needs_key:
        ok, detail = False, "no key frequencies were found"
    return Claim(name, intervention, metric, before, float(after), float(threshold), comparison, bool(ok), detail,
                 decides=decides)
