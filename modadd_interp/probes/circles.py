"""Circle isolation: what each key frequency computes on its own (Zhong et al.'s test, in the Fourier basis).

For each key frequency ``k``, every other frequency is removed from the embedding
(:func:`modadd_interp.causal.remove_embedding_frequencies`, an intervention), the model is run, and its
logit component at answer frequency ``k`` is demodulated (:func:`modadd_interp.readout.demodulate`). How that
component's amplitude varies tells the algorithms apart (:func:`modadd_interp.readout.amplitude_shares`):

* a **clock** circle multiplies the two angles: its component depends on the input only through ``x + y``;
* a **pizza** circle averages the two points: its amplitude is ``|cos(w_k(x-y)/2)|``, so it depends on ``x - y``,
  and a constant explains only ``(E|cos|)^2 / E cos^2 = (2/pi)^2 / (1/2) = 8/pi^2 ~ 0.81`` of its energy.

``pizzaness = (diff - const) / (1 - 8/pi^2)``: the share of the energy that ``x - y`` explains beyond a
constant, as a fraction of a pure pizza's. A circle is labelled ``"pizza"`` when it reaches
:data:`PIZZA_CIRCLE`, else ``"clock"``. Measured (p = 59 and 113): every circle of Zhong et al.'s Model A
0.95-1.2; the main circles of clock models <= 0.4 (the shipped model 0.005-0.06), while most clock models
also carry one or two weak pizza circles.

The isolated model is run on :data:`ISOLATION_ROWS` evenly spaced rows ``x`` of the grid (every column ``y``,
so every ``x + y`` and ``x - y`` class appears), which bounds the cost to a fraction of a grid pass per circle.

Examples:
    >>> circles = isolate_circles(model, task, (3, 15, 17))     # doctest: +SKIP
    >>> circles.labels, circles.pizzaness
"""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import torch

from ..display import Displayable, Summary
from ..fourier import n_freqs
from ..readout import accuracy as answer_accuracy
from ..readout import amplitude_shares, demodulate
from ..task import ModularTask
from .cache import GridCache, grid_cache

PIZZA_ENVELOPE_CONST = 8 / math.pi**2
"""The constant's share of a pure pizza envelope ``|cos(w d / 2)|`` (``d`` uniform over the circle)."""

PIZZA_CIRCLE = 0.5
"""A circle with at least half a pure pizza's ``x - y`` modulation is a pizza circle."""

ISOLATION_ROWS = 24


@dataclasses.dataclass(frozen=True, repr=False)
class CircleIsolation(Displayable):
    """Each key frequency's logit component with only that circle left in the embedding.

    Attributes:
        freqs: the key frequencies.
        shares: ``{k: {"const", "sum", "diff"}}`` shares of the component's energy (see the module docstring).
        pizzaness: ``{k: float}``.
        accuracy: ``{k: float}`` the isolated model's accuracy on the rows it ran.
        rows: how many rows ``x`` of the grid were run.
    """

    freqs: tuple[int, ...]
    shares: dict[int, dict[str, float]]
    pizzaness: dict[int, float]
    accuracy: dict[int, float]
    rows: int

    @property
    def labels(self) -> dict[int, str]:
        """``{k: "clock" | "pizza"}``."""
        return {k: "pizza" if v >= PIZZA_CIRCLE else "clock" for k, v in self.pizzaness.items()}

    def to_frame(self) -> pd.DataFrame:
        """One row per key frequency."""
        return pd.DataFrame([{"freq": k, **self.shares[k], "pizzaness": self.pizzaness[k], "label": self.labels[k],
                              "isolated_accuracy": self.accuracy[k]} for k in self.freqs])

    def to_dict(self) -> dict:
        """JSON-safe."""
        return {"rows": self.rows, "circles": self.to_frame().to_dict(orient="records")}

    def _summary(self) -> Summary:
        kinds = list(self.labels.values())
        return Summary(f"{kinds.count('clock')} clock and {kinds.count('pizza')} pizza circle(s): "
                       + (", ".join(f"k={k} {label}" for k, label in self.labels.items()) or "none"),
                       details=[f"each circle alone in the embedding, run on {self.rows} rows of the grid; "
                                f"pizza at pizzaness >= {PIZZA_CIRCLE}"], rows=self.to_frame())


def isolate_circles(model, task: ModularTask, freqs, cache: GridCache | None = None,
                    rows: int = ISOLATION_ROWS) -> CircleIsolation:
    """Isolate each frequency of ``freqs`` in the embedding and read its logit component (module docstring)."""
    from ..causal.interventions import remove_embedding_frequencies

    cache = cache or grid_cache(model, task)
    grid = cache.grid
    n = grid.n
    picked = torch.linspace(0, n - 1, min(n, rows)).round().long().unique()
    x = picked.repeat_interleave(n)
    y = torch.arange(n).repeat(len(picked))
    pairs = torch.stack([grid.coords.a_tokens[x], grid.coords.b_tokens[y]], 1)
    labels = (x + y) % n
    shares, pizzaness, accuracy = {}, {}, {}
    for k in freqs:
        others = [j for j in range(1, n_freqs(n) + 1) if j != k]
        with remove_embedding_frequencies(model, others, task):
            logits = cache.answer_logits_at(pairs)
        part = amplitude_shares(demodulate(logits, labels, [k], n)[:, 0], x, y, n)
        shares[k] = part
        pizzaness[k] = (part["diff"] - part["const"]) / (1 - PIZZA_ENVELOPE_CONST)
        accuracy[k] = answer_accuracy(logits, labels)
    return CircleIsolation(tuple(freqs), shares, pizzaness, accuracy, len(picked))
