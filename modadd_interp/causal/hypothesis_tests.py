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
not tell the two apart. :func:`modadd_interp.probes.isolate_circles` does.

Examples:
    >>> result = evaluate_hypothesis(model, task, Clock((1, 5, 7, 29)))      # doctest: +SKIP
    >>> result.loss_recovered
    {'logits': 0.9999, 'mlp_out': 0.9998, 'resampling': 1.0}
"""

from __future__ import annotations

import dataclasses
import math

import torch

from ..display import Displayable, Summary
from ..hypotheses import Hypothesis
from ..probes import GridCache, grid_cache
from ..probes.cache import GridChunk
from ..readout import DTYPE, Measurement, envelope_fit, solve_normal
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
        """``{"logits", "mlp_out", "resampling"}``: the share of loss each test recovers."""
        return {"logits": recovered(self.logits, self.logits_baseline, self.full),
                "mlp_out": recovered(self.mlp_out, self.mlp_baseline, self.full),
                "resampling": recovered(self.resampled, self.mlp_baseline, self.full)}

    def to_dict(self) -> dict:
        """JSON-safe summary."""
        return {"name": self.name, "freqs": list(self.freqs), "fve": self.fve,
                "coefficients": {str(k): v for k, v in self.coefficients.items()},
                "loss_recovered": self.loss_recovered,
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


def recovered(test: Measurement, baseline: Measurement, full: Measurement) -> float:
    """``(L_baseline - L_test) / (L_baseline - L_clean)`` on the whole grid (NaN when the baseline costs nothing)."""
    span = baseline.loss - full.loss
    return (baseline.loss - test.loss) / span if span > 0 else float("nan")


def evaluate_hypothesis(model, task: ModularTask, hypothesis: Hypothesis, cache: GridCache | None = None
                        ) -> HypothesisTest:
    """Fit ``hypothesis`` to ``model`` and run its three tests (module docstring): a sweep for the MLP output's
    fit, a sweep for the tests (the resampling partners gathered or replayed from the kept grid, or run)."""
    cache = cache or grid_cache(model, task)
    grid, n = cache.grid, cache.grid.n
    freqs = tuple(hypothesis.freqs)
    x_all, y_all = grid.xy
    coefficients, fitted_energy = {}, 0.0
    demod = cache.demodulated(freqs)
    for j, k in enumerate(freqs):
        beta, energy = envelope_fit(demod[:, j], hypothesis.envelopes(x_all, y_all, n, k), n, nyquist=2 * k == n)
        coefficients[k], fitted_energy = beta.tolist(), fitted_energy + energy
    theta = _mlp_fit(cache, hypothesis, freqs)
    partners = _partners(hypothesis, x_all, y_all, n)
    mean_logits = cache.residue_logits.mean(0)
    mean_neurons = cache.neuron_mean.float()

    def logits_fit(piece: GridChunk) -> torch.Tensor:
        x, y = _coords(piece, n)
        out = piece.logits.mean(-1, keepdim=True).expand_as(piece.logits).clone()
        z = torch.arange(n, dtype=DTYPE)
        for k in freqs:
            amplitude = hypothesis.envelopes(x, y, n, k) @ torch.tensor(coefficients[k], dtype=DTYPE)  # [m]
            out[:, :n] += amplitude[:, None] * torch.cos(2 * math.pi * k * ((x + y)[:, None] - z[None]) / n)
        return out

    def mlp_fit(piece: GridChunk) -> torch.Tensor:
        x, y = _coords(piece, n)
        return cache.logits_with_mlp_out(piece, _mlp_features(hypothesis, freqs, x, y, n) @ theta)

    def resampled(piece: GridChunk) -> torch.Tensor:
        return cache.logits_with_neurons(piece, cache.neurons_of(partners[piece.rows]))

    measured = cache.measure({
        "logits": logits_fit, "mlp_out": mlp_fit, "resampled": resampled,
        "logits_baseline": lambda piece: mean_logits.expand(len(piece.labels), -1),
        "mlp_baseline": lambda piece: cache.logits_with_neurons(piece, mean_neurons.expand_as(piece.neurons)),
    })
    fve = fitted_energy / cache.centered_sq if cache.centered_sq else 0.0
    return HypothesisTest(hypothesis.name, freqs, coefficients, fve, cache.full, **measured)


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


def _mlp_fit(cache: GridCache, hypothesis: Hypothesis, freqs) -> torch.Tensor:
    """``[F, d_model]`` least-squares coefficients of the readout layer's MLP output on the features (one sweep)."""
    n, gram, target = cache.grid.n, None, None
    for piece in cache.chunks():
        x, y = _coords(piece, n)
        f = _mlp_features(hypothesis, freqs, x, y, n)
        m = cache.mlp_out(piece)
        gram = f.T @ f if gram is None else gram + f.T @ f
        target = f.T @ m if target is None else target + f.T @ m
    return solve_normal(gram, target)


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
