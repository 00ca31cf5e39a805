"""Causal tests of an algorithm hypothesis (:mod:`modadd_interp.hypotheses`): how much of the model's behaviour it
recovers.

Each test replaces part of the model by what the hypothesis says it is and measures the loss over the grid (the
group's inputs). The **share of loss recovered** is ``(L_baseline - L_test) / (L_baseline - L_clean)``, with the
baseline a mean ablation of the same part (Wang et al.'s faithfulness; loss recovered as in causal scrubbing):
1 when the hypothesis loses nothing, 0 when it is no better than knowing nothing about the input.

* **logits**: the logits replaced by the hypothesis's fitted readout (each input's mean logit plus
  ``sum_{k,e} beta_{k,e} g_e(x, y) cos(w_k(x+y-z))``, least squares over the grid); baseline: every input gets
  the grid's mean logits.
* **MLP output**: the readout (last) layer's MLP output at the last position replaced by its least-squares fit in
  the functions the hypothesis allows there, ``{1} + {g_e(x, y) cos(w_k s), g_e(x, y) sin(w_k s)}``; baseline:
  its grid mean. Exact: nothing but the unembedding follows it.
* **resampling**: the same MLP output taken from another input of the same class
  (:meth:`~modadd_interp.hypotheses.Hypothesis.classes`: same ``x + y`` for the clock), drawn with a seeded
  generator; baseline: its grid mean.

Measured on the real checkpoints (docs/concepts.md): resampling the whole MLP output within ``x + y`` classes
recovers 100% of the loss in clock *and* pizza models alike (their logits have a nearly constant amplitude: the
pizzas' ``x - y`` modulation is cancelled by the accompanying pizzas), so it confirms a sum-only readout but does
not tell the two apart. :func:`modadd_interp.causal.isolate_circles` does.

Examples:
    >>> import modadd_interp as mi
    >>> from modadd_interp.hypotheses import Clock
    >>> result = evaluate_hypothesis(*mi.load(), Clock((1, 5, 7, 29)))      # the shipped p = 113 model
    >>> {test: round(share, 3) for test, share in result.loss_recovered.items()}
    {'logits': 1.0, 'mlp_out': 1.0, 'resampling': 1.0}
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import torch

from ..display import Displayable, Summary
from ..hypotheses import Hypothesis
from ..probes import GridCache, grid_cache
from ..probes.cache import GridChunk, SweepPlan
from ..readout import DTYPE, Measurement, demodulate, envelope_fit, solve_normal
from ..task import ModularTask

RESAMPLE_SEED = 0


@dataclasses.dataclass(frozen=True, repr=False)
class HypothesisTest(Displayable):
    """A hypothesis fitted to a model and tested by interventions.

    Attributes:
        name: the hypothesis's name; ``freqs`` its key frequencies.
        coefficients: ``{k: [beta_e]}`` of the fitted readout.
        fve: fraction of the (output-centered) logit variance over the grid the fitted readout explains.
        full, logits, mlp_out, resampled: the model's losses clean and under each test.
        logits_baseline, mlp_baseline: the mean ablations the shares are measured against.
    """

    name: str
    freqs: tuple[int, ...]
    coefficients: dict[int, list[float]]
    fve: float
    full: Measurement
    logits: Measurement
    mlp_out: Measurement
    resampled: Measurement
    logits_baseline: Measurement
    mlp_baseline: Measurement

    @property
    def loss_recovered(self) -> dict[str, float]:
        """``{"logits", "mlp_out", "resampling"}``: the share of loss each test recovers over the whole grid."""
        return self._recovered("loss")

    @property
    def loss_recovered_by_split(self) -> dict[str, dict[str, float]]:
        """``{"train": {...}, "held_out": {...}}``: the same shares on the training and the held-out (test) pairs
        (both the whole grid's when the split is unknown). An algorithm explains what a model does on pairs it
        never trained on: the verdict rests on ``"held_out"``."""
        return {"train": self._recovered("train_loss"), "held_out": self._recovered("test_loss")}

    def _recovered(self, split: str) -> dict[str, float]:
        return {"logits": recovered(self.logits, self.logits_baseline, self.full, split),
                "mlp_out": recovered(self.mlp_out, self.mlp_baseline, self.full, split),
                "resampling": recovered(self.resampled, self.mlp_baseline, self.full, split)}

    def to_dict(self) -> dict:
        """JSON-safe summary."""
        return {"name": self.name, "freqs": list(self.freqs), "fve": self.fve,
                "coefficients": {str(k): v for k, v in self.coefficients.items()},
                "loss_recovered": self.loss_recovered, "loss_recovered_by_split": self.loss_recovered_by_split,
                "losses": {name: getattr(self, name).loss for name in
                           ("full", "logits", "mlp_out", "resampled", "logits_baseline", "mlp_baseline")}}

    def _summary(self) -> Summary:
        from .verdict import CONFIRM_RECOVERED

        recovered_ = self.loss_recovered
        worst = min(recovered_.values())
        runs = (("logits", self.logits, self.logits_baseline), ("mlp_out", self.mlp_out, self.mlp_baseline),
                ("resampling", self.resampled, self.mlp_baseline))
        return Summary(f"{self.name} at k = {list(self.freqs)}: {worst:.1%} of the loss recovered in its worst test",
                       status=worst >= CONFIRM_RECOVERED,
                       details=[f"the fitted readout explains {self.fve:.3f} of the logit variance; the model's own "
                                f"loss {self.full.loss:.3g}"],
                       rows=[{"test": name, "loss": m.loss, "baseline loss": base.loss,
                              "loss recovered": recovered_[name]} for name, m, base in runs])


def recovered(test: Measurement, baseline: Measurement, full: Measurement, split: str = "loss") -> float:
    """``(L_baseline - L_test) / (L_baseline - L_clean)`` on the whole grid, or on a split (``split``: the
    :class:`~modadd_interp.readout.Measurement` field, ``"train_loss"`` or ``"test_loss"``); NaN when the baseline costs
    nothing. Above 1 when the test does better than the model itself (a readout without the model's noise).

    Examples:
        >>> recovered(test, baseline, full, "test_loss")          # doctest: +SKIP
        0.998
    """
    lb, lt, lf = (getattr(m, split) for m in (baseline, test, full))
    span = lb - lf
    return (lb - lt) / span if span > 0 else float("nan")


def evaluate_hypothesis(model, task: ModularTask, hypothesis: Hypothesis, cache: GridCache | None = None
                        ) -> HypothesisTest:
    """Fit ``hypothesis`` to ``model`` and run its three tests (module docstring); see :func:`evaluate_hypotheses`."""
    return evaluate_hypotheses(model, task, [hypothesis], cache=cache)[hypothesis.name]


def evaluate_hypotheses(model, task: ModularTask, hypotheses: Sequence[Hypothesis], cache: GridCache | None = None
                        ) -> dict[str, HypothesisTest]:
    """Fit every hypothesis and run their tests together: ``{name: HypothesisTest}``, in the order given.

    Two sweeps of the grid whatever the number of hypotheses: one for every fit (the logits' demodulated
    components, :func:`modadd_interp.readout.demodulate`, and the MLP output's normal equations), one for every test
    and the two shared baselines (the resampling partners gathered or replayed from the kept grid, or run).

    Raises:
        ValueError: two hypotheses share a name.

    Examples:
        >>> import modadd_interp as mi
        >>> from modadd_interp.hypotheses import Clock, Pizza
        >>> model, task = mi.load()
        >>> key = (1, 5, 7, 29)
        >>> tests = evaluate_hypotheses(model, task, [Clock(key), Pizza(key)])
        >>> {name: round(t.loss_recovered["resampling"], 3) for name, t in tests.items()}   # module docstring: alike
        {'clock': 1.0, 'pizza': 1.0}
    """
    cache = cache or grid_cache(model, task)
    return cache.measure_plans([hypothesis_tests_plan(cache, hypotheses)])[0]


def hypothesis_tests_plan(cache: GridCache, hypotheses: Sequence[Hypothesis]) -> SweepPlan:
    """The fits of :func:`evaluate_hypotheses` (one sweep, now) and its tests as edits, to measure in one sweep with
    other analyses' (:meth:`GridCache.measure_plans`).

    Raises:
        ValueError: two hypotheses share a name.
    """
    names = [h.name for h in hypotheses]
    if len(set(names)) != len(names):
        raise ValueError(f"hypotheses need distinct names to be told apart, got {names}")
    grid, n = cache.grid, cache.grid.n
    x_all, y_all = grid.xy
    demods, thetas = _fitting_sweep(cache, hypotheses)
    fitted = {h.name: _logit_fit(demods[tuple(h.freqs)], h, grid) for h in hypotheses}
    partners = {h.name: _partners(h, x_all, y_all, n) for h in hypotheses}
    mean_logits = cache.residue_logits.mean(0).float()
    last = f"blocks.{cache.last_layer}.mlp"  # every neuron at its grid mean: a constant MLP output
    mean_mlp_out = cache.neuron_mean.float() @ cache.weights[f"{last}.W_out"] + cache.weights[f"{last}.b_out"]
    z = torch.arange(n, dtype=DTYPE)
    answer_trig = {k: (torch.cos(2 * math.pi * k * z / n), torch.sin(2 * math.pi * k * z / n))
                   for h in hypotheses for k in h.freqs}  # cos / sin(w_k z) over the answers, once

    def logits_fit(piece: GridChunk, h: Hypothesis) -> torch.Tensor:
        # sum_k A_k(x, y) cos(w_k (s - z)) = sum_k A_k cos(w_k s) cos(w_k z) + A_k sin(w_k s) sin(w_k z): one matmul
        x, y = _coords(piece, n)
        out = piece.logits.mean(-1, keepdim=True).expand_as(piece.logits).clone()
        left, right = [], []
        for k, beta in fitted[h.name][0].items():
            amplitude = h.envelopes(x, y, n, k) @ torch.tensor(beta, dtype=DTYPE)  # [m]
            angle_s = 2 * math.pi * k * (x + y).to(DTYPE) / n
            left += [amplitude * torch.cos(angle_s), amplitude * torch.sin(angle_s)]
            right += answer_trig[k]
        if left:  # float32, like the logits
            out[:, :n] += torch.stack(left, 1).float() @ torch.stack(right, 0).float()
        return out

    fit_logits = {name: cache.mlp_out_logits(theta) for name, theta in thetas.items()}  # [F, p] each

    def mlp_fit(piece: GridChunk, h: Hypothesis) -> torch.Tensor:  # unembed(resid_mid + features theta)
        x, y = _coords(piece, n)
        return cache.direct_logits(piece) + _mlp_features(h, tuple(h.freqs), x, y, n).float() @ fit_logits[h.name]

    def resampled(piece: GridChunk, h: Hypothesis) -> torch.Tensor:
        return cache.logits_with_neurons(piece, cache.neurons_of(partners[h.name][piece.rows]))

    edits = {
        "logits_baseline": lambda piece: mean_logits.expand(len(piece.labels), -1),
        "mlp_baseline": lambda piece: cache.logits_with_mlp_out(piece, mean_mlp_out),
    }
    for h in hypotheses:
        edits.update({(h.name, "logits"): functools.partial(logits_fit, h=h),
                      (h.name, "mlp_out"): functools.partial(mlp_fit, h=h),
                      (h.name, "resampled"): functools.partial(resampled, h=h)})

    def build(measured: dict) -> dict[str, HypothesisTest]:
        out = {}
        for h in hypotheses:
            coefficients, energy = fitted[h.name]
            fve = energy / cache.centered_sq if cache.centered_sq else 0.0
            out[h.name] = HypothesisTest(h.name, tuple(h.freqs), coefficients, fve, cache.full,
                                         logits=measured[h.name, "logits"], mlp_out=measured[h.name, "mlp_out"],
                                         resampled=measured[h.name, "resampled"],
                                         logits_baseline=measured["logits_baseline"],
                                         mlp_baseline=measured["mlp_baseline"])
        return out

    return SweepPlan(edits, build)


def _logit_fit(demod: torch.Tensor, hypothesis: Hypothesis, grid) -> tuple[dict[int, list[float]], float]:
    """``({k: [beta_e]}, fitted energy)``: the readout's least-squares envelope coefficients per key frequency, from
    the grid's demodulated components ``demod`` ``[n*n, K]`` at the hypothesis's frequencies."""
    n, (x_all, y_all) = grid.n, grid.xy
    coefficients, fitted_energy = {}, 0.0
    for j, k in enumerate(hypothesis.freqs):
        beta, energy = envelope_fit(demod[:, j], hypothesis.envelopes(x_all, y_all, n, k), n, nyquist=2 * k == n)
        coefficients[k], fitted_energy = beta.tolist(), fitted_energy + energy
    return coefficients, fitted_energy


def _coords(piece: GridChunk, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    j = torch.arange(piece.rows.start, piece.rows.stop)
    return j // n, j % n


def _mlp_features(hypothesis: Hypothesis, freqs, x: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
    """``[m, F]``: ``1`` and ``g_e(x, y) cos / sin(w_k (x + y))`` for every key frequency and envelope."""
    parts = [torch.ones(len(x), 1, dtype=DTYPE)]
    for k in freqs:
        g = hypothesis.envelopes(x, y, n, k)
        angle = (2 * math.pi * k * (x + y).to(DTYPE) / n)[:, None]
        parts += [g * torch.cos(angle), g * torch.sin(angle)]
    return torch.cat(parts, dim=1)


def _fitting_sweep(cache: GridCache, hypotheses: Sequence[Hypothesis]
                   ) -> tuple[dict[tuple[int, ...], torch.Tensor], dict[str, torch.Tensor]]:
    """One sweep for every fit: ``({freqs: [n*n, K] complex128 demodulated logit components}, {name: [F, d_model]
    least-squares coefficients of the readout layer's MLP output on the hypothesis's features})``."""
    n, inputs = cache.grid.n, cache.grid.n_inputs
    freq_sets = list(dict.fromkeys(tuple(h.freqs) for h in hypotheses))
    demods = {freqs: torch.zeros(inputs, len(freqs), dtype=torch.complex128) for freqs in freq_sets}
    gram: dict[str, torch.Tensor | float] = dict.fromkeys((h.name for h in hypotheses), 0.0)
    target: dict[str, torch.Tensor | float] = dict.fromkeys((h.name for h in hypotheses), 0.0)
    for piece in cache.chunks():
        for freqs in freq_sets:
            if freqs:
                demods[freqs][piece.rows] = demodulate(piece.logits, piece.labels, freqs, n)
        x, y = _coords(piece, n)
        m = cache.mlp_out(piece)
        for h in hypotheses:
            f = _mlp_features(h, tuple(h.freqs), x, y, n)
            gram[h.name] = gram[h.name] + f.T @ f
            target[h.name] = target[h.name] + f.T @ m
    return demods, {h.name: solve_normal(gram[h.name], target[h.name]) for h in hypotheses}


def _partners(hypothesis: Hypothesis, x: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
    """``[n*n]`` grid index of a random input of each input's class (itself when alone in it; seeded)."""
    classes = hypothesis.classes(x, y, n)
    order = torch.argsort(classes, stable=True)
    sorted_classes = classes[order]
    starts = torch.searchsorted(sorted_classes, sorted_classes, right=False)
    ends = torch.searchsorted(sorted_classes, sorted_classes, right=True)
    generator = torch.Generator().manual_seed(RESAMPLE_SEED)
    offset = (torch.rand(len(order), generator=generator, dtype=DTYPE) * (ends - starts)).long()
    partner = torch.empty_like(order)
    partner[order] = order[starts + offset]
    return partner
