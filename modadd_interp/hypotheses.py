"""Algorithm hypotheses as objects: the clock, the pizza, and your own.

Everything is in the operation's group coordinates (:class:`modadd_interp.task.AnalysisGrid`): inputs
``(x, y)``, answer ``z``, ``s = x + y``, ``d = x - y`` (mod n), ``w_k = 2 pi k / n``. A hypothesis claims

* **a readout**: at each key frequency ``k`` the logits are ``sum_e beta_{k,e} g_e(x, y) cos(w_k(s - z))``
  (plus a per-input constant, which softmax ignores) for its *envelopes* ``g_e``;
* **a dependence**: the readout layer's MLP output at the last position depends on the input only through
  its *class* (:meth:`Hypothesis.classes`): inputs of one class can be swapped for each other (the test of
  causal scrubbing).

Built in (Nanda et al. 2023; Zhong et al. 2023, "The Clock and the Pizza"):

* :class:`Clock`: envelope ``1`` (``logits = alpha_k cos(w_k(x+y-z))``); class ``s``: the MLP output depends on
  ``x + y`` only.
* :class:`Pizza`: envelopes ``|cos(w_k d / 2)|`` (the pizza: the mean of the two embedded points has that
  length), ``cos(w_k d)`` (the "accompanying pizza" that circles of frequency ``2 w_k`` add) and ``1``; class
  ``(s, +-d)``: the output also depends on ``x - y``, symmetrically in ``x`` and ``y``. It contains the clock
  (envelope ``1``, classes finer than ``s``), so it never fits or recovers less: what tells the two apart is
  whether each circle *needs* the ``x - y`` envelope (:func:`modadd_interp.probes.isolate_circles`).
* :class:`Custom`: your own envelopes and classes (two functions of ``(x, y, n, k)`` / ``(x, y, n)``).

A hypothesis is fitted to a model's logits from the grid's demodulated key-frequency components
(:func:`modadd_interp.readout.demodulate`, :func:`modadd_interp.readout.envelope_fit`) and tested causally
by :func:`modadd_interp.causal.evaluate_hypothesis`.

Examples:
    >>> clock = Clock((1, 5, 7, 29))
    >>> x, y = torch.tensor([3, 4]), torch.tensor([5, 4])
    >>> clock.classes(x, y, 113).tolist()              # both have x + y = 8
    [8, 8]
    >>> Pizza((3,)).envelopes(x, y, 59, 3).shape       # [m, 3]
    torch.Size([2, 3])
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from .errors import ModAddError

DTYPE = torch.float64


@dataclasses.dataclass(frozen=True)
class Hypothesis:
    """A claim about the algorithm: a readout (envelopes per key frequency) and a dependence (input classes).

    Attributes:
        freqs: the key frequencies it is stated at.
    """

    freqs: tuple[int, ...]
    name: str = "hypothesis"

    def envelopes(self, x: torch.Tensor, y: torch.Tensor, n: int, k: int) -> torch.Tensor:
        """``[m, E]`` the envelopes ``g_e(x, y)`` of frequency ``k`` at inputs ``(x, y)``."""
        raise NotImplementedError

    def classes(self, x: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
        """``[m]`` int64: inputs with equal values are interchangeable for the readout layer's MLP output."""
        raise NotImplementedError

    def describe(self) -> str:
        """The hypothesis in one line."""
        return f"{self.name} at k = {list(self.freqs)}"


@dataclasses.dataclass(frozen=True)
class Clock(Hypothesis):
    """Nanda et al.'s clock: logits ``sum_k alpha_k cos(w_k(x+y-z))``; the MLP output depends on ``x + y`` only."""

    name: str = "clock"

    def envelopes(self, x, y, n, k):  # noqa: ARG002 - the clock's envelope is constant
        return torch.ones(len(x), 1, dtype=DTYPE)

    def classes(self, x, y, n):
        return (x + y) % n


@dataclasses.dataclass(frozen=True)
class Pizza(Hypothesis):
    """Zhong et al.'s pizza: logits ``|cos(w_k(x-y)/2)| cos(w_k(x+y-z))`` (with the accompanying pizza
    ``cos(w_k(x-y)) cos(w_k(x+y-z))``); the MLP output depends on ``x + y`` and, symmetrically, ``x - y``."""

    name: str = "pizza"

    def envelopes(self, x, y, n, k):
        d = 2 * math.pi * k * (x - y).to(DTYPE) / n
        return torch.stack([torch.cos(d / 2).abs(), torch.cos(d), torch.ones_like(d)], dim=1)

    def classes(self, x, y, n):
        d = (x - y) % n
        return ((x + y) % n) * n + torch.minimum(d, (-d) % n)


@dataclasses.dataclass(frozen=True)
class Custom(Hypothesis):
    """Your own hypothesis: ``envelopes(x, y, n, k) -> [m, E]`` and ``classes(x, y, n) -> [m]`` (int64).

    Examples:
        >>> linear = Custom((3,), "linear in d", envelopes=lambda x, y, n, k: torch.stack(
        ...     [torch.ones(len(x)), ((x - y) % n).double()], 1), classes=lambda x, y, n: x * n + y)
    """

    name: str = "custom"
    envelope_fn: Callable | None = dataclasses.field(default=None, repr=False)
    class_fn: Callable | None = dataclasses.field(default=None, repr=False)

    def __init__(self, freqs, name: str = "custom", envelopes: Callable | None = None,
                 classes: Callable | None = None) -> None:
        if envelopes is None or classes is None:
            raise ModAddError("a custom hypothesis needs envelopes(x, y, n, k) and classes(x, y, n).")
        object.__setattr__(self, "freqs", tuple(freqs))
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "envelope_fn", envelopes)
        object.__setattr__(self, "class_fn", classes)

    def envelopes(self, x, y, n, k):
        out = torch.as_tensor(self.envelope_fn(x, y, n, k), dtype=DTYPE)
        if out.ndim != 2 or out.shape[0] != len(x):
            raise ModAddError(f"{self.name}: envelopes must return [m, E] for m = {len(x)} inputs, got "
                              f"{tuple(out.shape)}.")
        return out

    def classes(self, x, y, n):
        out = torch.as_tensor(self.class_fn(x, y, n))
        if out.shape != x.shape or out.dtype not in (torch.int64, torch.int32):
            raise ModAddError(f"{self.name}: classes must return [m] integers, got {tuple(out.shape)} {out.dtype}.")
        return out.long()


BUILT_IN: tuple[type[Hypothesis], ...] = (Clock, Pizza)
"""The hypotheses :func:`modadd_interp.verify_circuit` tests by default."""
