"""Circle isolation: what each key frequency computes on its own (Zhong et al.'s test, in the Fourier basis).

For each key frequency ``k``, every other frequency is removed from the embedding
(:func:`modadd_interp.causal.remove_embedding_frequencies`, an intervention), the model is run, and its
logit component at answer frequency ``k`` is demodulated (:func:`modadd_interp.readout.demodulate`). How that
component's amplitude varies tells the algorithms apart (:func:`modadd_interp.readout.amplitude_shares`):

* a **clock** circle multiplies the two angles: its component depends on the input only through ``x + y``;
* a **pizza** circle averages the two points: its amplitude is ``|cos(w_k(x-y)/2)|``, so it depends on ``x - y``.

Each hypothesis reads the isolated circle (:class:`modadd_interp.hypotheses.Circle`) through its
:meth:`~modadd_interp.hypotheses.Hypothesis.circle_signature`. A circle is labelled with the hypothesis whose
signature is highest and reaches :data:`CIRCLE_SIGNATURE`, else with the baseline (the first hypothesis without a
signature: the clock among the built-in ones), else, with no baseline among them, with the highest signature.

The isolated model is run on :data:`ISOLATION_ROWS` evenly spaced rows ``x`` of the grid (every column ``y``,
so every ``x + y`` and ``x - y`` class appears), which bounds the cost to a fraction of a grid pass per circle.

Examples:
    >>> import modadd_interp as mi
    >>> from modadd_interp.hypotheses import Clock, Pizza
    >>> model, task = mi.load()                       # a clock model; its circle k = 1 alone is a pizza's
    >>> circles = isolate_circles(model, task, (1, 5, 7, 29), [Clock(), Pizza()])
    >>> circles.labels
    {1: 'pizza', 5: 'clock', 7: 'clock', 29: 'clock'}
    >>> {k: round(s["pizzaness"], 2) for k, s in circles.signatures.items()}
    {1: 1.08, 5: 0.01, 7: 0.06, 29: 0.01}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pandas as pd
import torch

from ..display import Displayable, Summary
from ..fourier import n_freqs
from ..hypotheses import Circle, Hypothesis
from ..probes import GridCache, grid_cache
from ..readout import accuracy as answer_accuracy
from ..readout import amplitude_shares, demodulate
from ..task import ModularTask
from .interventions import remove_embedding_frequencies

CIRCLE_SIGNATURE = 0.5
"""A hypothesis claims a circle that shows at least half a pure instance's signature (for the pizza: half a pure
pizza's ``x - y`` modulation)."""

ISOLATION_ROWS = 24


@dataclasses.dataclass(frozen=True, repr=False)
class CircleIsolation(Displayable):
    """Each key frequency's logit component with only that circle left in the embedding, read by each hypothesis.

    Attributes:
        freqs: the key frequencies.
        shares: ``{k: {"const", "sum", "diff"}}`` shares of the component's energy (see the module docstring).
        signatures: ``{k: {signature name: value}}`` of every hypothesis with a signature (``"pizzaness"``).
        signature_owners: ``{signature name: hypothesis name}``.
        labels: ``{k: hypothesis name}`` (the module docstring's rule).
        accuracy: ``{k: float}`` the isolated model's accuracy on the rows it ran.
        rows: how many rows ``x`` of the grid were run.
    """

    freqs: tuple[int, ...]
    shares: dict[int, dict[str, float]]
    signatures: dict[int, dict[str, float]]
    signature_owners: dict[str, str]
    labels: dict[int, str]
    accuracy: dict[int, float]
    rows: int

    def to_frame(self) -> pd.DataFrame:
        """One row per key frequency."""
        return pd.DataFrame([{"freq": k, **self.shares[k], **self.signatures[k], "label": self.labels[k],
                              "isolated_accuracy": self.accuracy[k]} for k in self.freqs])

    def to_dict(self) -> dict:
        """JSON-safe."""
        return {"rows": self.rows, "circles": self.to_frame().to_dict(orient="records")}

    def _summary(self) -> Summary:
        kinds = list(self.labels.values())
        counts = " and ".join(f"{kinds.count(name)} {name}" for name in dict.fromkeys(kinds))
        claimed = ", ".join(f"{owner} at {name} >= {CIRCLE_SIGNATURE}" for name, owner in self.signature_owners.items())
        return Summary(f"{counts or 'no'} circle(s): "
                       + (", ".join(f"k={k} {label}" for k, label in self.labels.items()) or "none"),
                       details=[f"each circle alone in the embedding, run on {self.rows} rows of the grid"
                                + (f"; claimed at {claimed}" if claimed else "")], rows=self.to_frame())


def label_circle(circle: Circle, hypotheses: Sequence[Hypothesis]) -> tuple[str, dict[str, float]]:
    """``(label, {signature name: value})`` of one isolated circle among ``hypotheses`` (the module's rule)."""
    signed = [(h.name, h.signature_name, h.circle_signature(circle)) for h in hypotheses]
    signatures = {column: float(value) for _, column, value in signed if value is not None}
    scored = [(value, name) for name, _, value in signed if value is not None]
    baseline = next((name for name, _, value in signed if value is None), None)
    best = max(scored, key=lambda pair: pair[0], default=None)
    if best is not None and (best[0] >= CIRCLE_SIGNATURE or baseline is None):
        return best[1], signatures
    return baseline, signatures


def isolate_circles(model, task: ModularTask, freqs, hypotheses: Sequence[Hypothesis], cache: GridCache | None = None,
                    rows: int = ISOLATION_ROWS) -> CircleIsolation:
    """Isolate each frequency of ``freqs`` in the embedding, read its logit component and label it among
    ``hypotheses`` (module docstring)."""
    cache = cache or grid_cache(model, task)
    grid = cache.grid
    n = grid.n
    picked = torch.linspace(0, n - 1, min(n, rows)).round().long().unique()
    x = picked.repeat_interleave(n)
    y = torch.arange(n).repeat(len(picked))
    pairs = torch.stack([grid.coords.a_tokens[x], grid.coords.b_tokens[y]], 1)
    answers = (x + y) % n
    shares, signatures, labels, accuracy = {}, {}, {}, {}
    for k in freqs:
        others = [j for j in range(1, n_freqs(n) + 1) if j != k]
        with remove_embedding_frequencies(model, others, task):
            logits = cache.answer_logits_at(pairs)
        demod = demodulate(logits, answers, [k], n)[:, 0]
        circle = Circle(k, n, x, y, demod, amplitude_shares(demod, x, y, n))
        shares[k] = circle.shares
        labels[k], signatures[k] = label_circle(circle, hypotheses)
        accuracy[k] = answer_accuracy(logits, answers)
    owners = {h.signature_name: h.name for h in hypotheses if h.signature_name is not None}
    return CircleIsolation(tuple(freqs), shares, signatures, owners, labels, accuracy, len(picked))
