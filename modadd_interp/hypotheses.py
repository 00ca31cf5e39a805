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
  whether each circle *needs* the ``x - y`` envelope (:func:`modadd_interp.causal.isolate_circles`).
* :class:`Custom`: your own envelopes and classes (two functions of ``(x, y, n, k)`` / ``(x, y, n)``), and
  optionally a circle signature and the words for its classes.

**What the verdict needs of a hypothesis** (:mod:`modadd_interp.causal.verdict`): the verdict ranges over the
hypotheses it is given (default :data:`BUILT_IN`). Each key frequency's circle is isolated
(:func:`modadd_interp.causal.isolate_circles`) and handed to every hypothesis's :meth:`Hypothesis.circle_signature`:
how strongly the circle shows what this hypothesis adds to the simplest reading, in units of a pure instance
(1 for a circle that is exactly this hypothesis). The clock is that simplest reading (its signature is ``None``: it
is the *baseline*): a circle is the clock's unless another hypothesis's signature reaches
:data:`modadd_interp.causal.circles.CIRCLE_SIGNATURE`, the highest one winning. The pizza's signature is its
*pizzaness*, the ``x - y`` modulation of the circle's amplitude beyond a constant, as a fraction of a pure
pizza's. A hypothesis with a new name can name the algorithm: give it a signature, or make it the baseline by
giving none.

A hypothesis made without frequencies (``Clock()``) is stated at the model's key frequencies when it is tested
(:meth:`Hypothesis.at`).

Examples:
    >>> clock = Clock((1, 5, 7, 29))
    >>> x, y = torch.tensor([3, 4]), torch.tensor([5, 4])
    >>> clock.classes(x, y, 113).tolist()              # both have x + y = 8
    [8, 8]
    >>> Pizza((3,)).envelopes(x, y, 59, 3).shape       # [m, 3]
    torch.Size([2, 3])
    >>> Clock().at((1, 5)).describe()
    'clock at k = [1, 5]'
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from typing import ClassVar

import torch

from .errors import ModAddError

DTYPE = torch.float64


PIZZA_ENVELOPE_CONST = 8 / math.pi**2
"""The constant's share of a pure pizza envelope ``|cos(w d / 2)|`` (``d`` uniform over the circle)."""


@dataclasses.dataclass(frozen=True)
class Circle:
    """One key frequency's logit component with only that circle left in the embedding, as a hypothesis reads it.

    Attributes:
        k: the frequency; ``n`` the group order.
        x, y: ``[m]`` int64 group coordinates of the inputs run.
        demod: ``[m]`` complex128 the component ``D_k(x, y)`` (:func:`modadd_interp.readout.demodulate`).
        shares: ``{"const", "sum", "diff"}``: the shares of ``sum |D_k|^2`` explained by a constant, by a function
            of ``x + y`` and by a function of ``x - y`` (:func:`modadd_interp.readout.amplitude_shares`).
    """

    k: int
    n: int
    x: torch.Tensor
    y: torch.Tensor
    demod: torch.Tensor
    shares: dict[str, float]


@dataclasses.dataclass(frozen=True)
class Hypothesis:
    """A claim about the algorithm: a readout (envelopes per key frequency) and a dependence (input classes).

    Attributes:
        freqs: the key frequencies it is stated at (None: the model's, see :meth:`at`).
        name: its name; the verdict's algorithm when it wins.
        signature_name: the column under which the circle table shows :meth:`circle_signature` (None for a
            baseline).
    """

    freqs: tuple[int, ...] | None = None
    name: str = "hypothesis"
    signature_name: ClassVar[str | None] = None

    def envelopes(self, x: torch.Tensor, y: torch.Tensor, n: int, k: int) -> torch.Tensor:
        """``[m, E]`` the envelopes ``g_e(x, y)`` of frequency ``k`` at inputs ``(x, y)``."""
        raise NotImplementedError

    def classes(self, x: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
        """``[m]`` int64: inputs with equal values are interchangeable for the readout layer's MLP output."""
        raise NotImplementedError

    def circle_signature(self, circle: Circle) -> float | None:  # noqa: ARG002 - the baseline reads nothing
        """What this hypothesis adds to the baseline's reading of an isolated circle, in units of a pure instance
        (1: the circle is exactly this hypothesis); None for the baseline itself (module docstring)."""
        return None

    def describe_classes(self, sum_words: str) -> str:  # noqa: ARG002 - the default names no sum
        """The classes in words, for the resampling claim (``sum_words`` is e.g. ``"a + b"``)."""
        return "its own"

    def at(self, freqs) -> Hypothesis:
        """This hypothesis at ``freqs`` when it was made without frequencies, else itself."""
        if self.freqs is not None:
            return self
        out = copy.copy(self)
        object.__setattr__(out, "freqs", tuple(int(k) for k in freqs))
        return out

    def describe(self) -> str:
        """The hypothesis in one line."""
        where = "the key frequencies" if self.freqs is None else list(self.freqs)
        return f"{self.name} at k = {where}"


@dataclasses.dataclass(frozen=True)
class Clock(Hypothesis):
    """Nanda et al.'s clock: logits ``sum_k alpha_k cos(w_k(x+y-z))``; the MLP output depends on ``x + y`` only."""

    name: str = "clock"

    def envelopes(self, x, y, n, k):  # noqa: ARG002 - the clock's envelope is constant
        return torch.ones(len(x), 1, dtype=DTYPE)

    def classes(self, x, y, n):
        return (x + y) % n

    def describe_classes(self, sum_words: str) -> str:
        return f"the same {sum_words}"


@dataclasses.dataclass(frozen=True)
class Pizza(Hypothesis):
    """Zhong et al.'s pizza: logits ``|cos(w_k(x-y)/2)| cos(w_k(x+y-z))`` (with the accompanying pizza
    ``cos(w_k(x-y)) cos(w_k(x+y-z))``); the MLP output depends on ``x + y`` and, symmetrically, ``x - y``."""

    name: str = "pizza"
    signature_name: ClassVar[str | None] = "pizzaness"

    def envelopes(self, x, y, n, k):
        d = 2 * math.pi * k * (x - y).to(DTYPE) / n
        return torch.stack([torch.cos(d / 2).abs(), torch.cos(d), torch.ones_like(d)], dim=1)

    def classes(self, x, y, n):
        d = (x - y) % n
        return ((x + y) % n) * n + torch.minimum(d, (-d) % n)

    def circle_signature(self, circle: Circle) -> float:
        """Pizzaness: ``(diff - const) / (1 - 8/pi^2)``, the share of the circle's energy that ``x - y`` explains
        beyond a constant, as a fraction of a pure pizza's (whose constant explains only ``(E|cos|)^2 / E cos^2 =
        8/pi^2 ~ 0.81``). Measured (p = 59 and 113): every circle of Zhong et al.'s Model A 0.95-1.2; the main
        circles of clock models <= 0.4 (the shipped model 0.005-0.06)."""
        return (circle.shares["diff"] - circle.shares["const"]) / (1 - PIZZA_ENVELOPE_CONST)

    def describe_classes(self, sum_words: str) -> str:
        return f"the same {sum_words} and the same +-(x - y)"


@dataclasses.dataclass(frozen=True)
class Custom(Hypothesis):
    """Your own hypothesis: ``envelopes(x, y, n, k) -> [m, E]`` and ``classes(x, y, n) -> [m]`` (int64); optionally
    ``signature(circle) -> float`` (:meth:`Hypothesis.circle_signature`; without it, a baseline) and the words for
    its classes.

    Examples:
        >>> linear = Custom((3,), "linear in d", envelopes=lambda x, y, n, k: torch.stack(
        ...     [torch.ones(len(x)), ((x - y) % n).double()], 1), classes=lambda x, y, n: x * n + y)
        >>> linear.describe()
        'linear in d at k = [3]'
    """

    name: str = "custom"
    envelope_fn: Callable | None = dataclasses.field(default=None, repr=False)
    class_fn: Callable | None = dataclasses.field(default=None, repr=False)
    signature_fn: Callable | None = dataclasses.field(default=None, repr=False)
    classes_words: str = "its own"

    def __init__(self, freqs=None, name: str = "custom", envelopes: Callable | None = None,
                 classes: Callable | None = None, signature: Callable | None = None,
                 classes_words: str = "its own") -> None:
        if envelopes is None or classes is None:
            raise ModAddError("a custom hypothesis needs envelopes(x, y, n, k) and classes(x, y, n).")
        object.__setattr__(self, "freqs", None if freqs is None else tuple(freqs))
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "envelope_fn", envelopes)
        object.__setattr__(self, "class_fn", classes)
        object.__setattr__(self, "signature_fn", signature)
        object.__setattr__(self, "classes_words", classes_words)

    @property
    def signature_name(self) -> str | None:  # type: ignore[override]
        return f"{self.name} signature" if self.signature_fn is not None else None

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

    def circle_signature(self, circle: Circle) -> float | None:
        return None if self.signature_fn is None else float(self.signature_fn(circle))

    def describe_classes(self, sum_words: str) -> str:  # noqa: ARG002 - your words, as given
        return self.classes_words


BUILT_IN: tuple[Hypothesis, ...] = (Clock(), Pizza())
"""The hypotheses :func:`modadd_interp.verify_circuit` tests when given none, at the model's key frequencies."""
