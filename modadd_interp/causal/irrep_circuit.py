"""``verify_circuit`` for a group that is not ``Z/n``: the representation clock, tested by interventions.

Chughtai, Chan & Nanda (2023): a network trained on a finite group's composition embeds each element through a few
**key irreps** ρ, its neurons compute products of ``R_ρ(x)`` and ``R_ρ(y)``, and the unembedding reads
``Σ_ρ χ_ρ(x ∘ y ∘ z⁻¹)``, which peaks at ``z = x ∘ y``. For ``Z/n`` this is the clock, read by the Fourier probes
(:mod:`modadd_interp.causal.claims`); here every piece is read through the group's irreps
(:mod:`modadd_interp.probes.irreps`, :mod:`modadd_interp.group_readout`). The pizza depends on ``x - y``, which means
nothing in a non-abelian group: it is not tested.

The claims, each an intervention measured over the grid (one sweep for all of them):

* **the key irreps suffice**: the logits restricted to each answer's mean plus the key irreps' components along
  ``s = x ∘ y`` (exact from the residue means) keep the test loss (within the Fourier claims' factor 2 or 1e-3 nats);
* **completeness** (decides): removing the key irreps' components from the logits breaks the model (accuracy < 50%);
* **minimality** (decides): removing any one of them raises the training loss at least 10x;
* **the neurons compute with the key irreps**: every readout-layer neuron replaced by its mean plus its key irreps'
  ``ρ(x ∘ y)`` components (its mean over each class ``s``, projected) keeps 99% of the grid answered; removing those
  components breaks the model;
* **faithfulness of the representation clock** (decides; :data:`~modadd_interp.causal.verdict.CONFIRM_RECOVERED` of
  the loss recovered, as the cyclic hypotheses' tests): the logits replaced by the fitted readout
  ``mean + Σ_ρ β_ρ χ_ρ(s ∘ z⁻¹)``; the readout layer's MLP output replaced by its least-squares fit in the key
  irreps' functions of ``s``; that output resampled from another input of the same ``s``;
* the embedding and the neurons live on the key irreps (half of ``W_E``'s energy, half of the neurons' variance), and
  the attention heads are necessary.

Examples:
    >>> import modadd_interp as mi
    >>> model, task = mi.load("tests/data/trained/group_S4.safetensors")  # not shipped: not run  # doctest: +SKIP
    >>> report = verify_circuit(model, task)       # a task with op="S4": this module's report  # doctest: +SKIP
    >>> report.verdict.line                        # doctest: +SKIP
    'clock at ρ = [(3,1)]: 100.0% of the loss recovered (circuit confirmed)'
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from ..display import Displayable, Summary
from ..group_readout import characters, project_classes, trace_readout_fit
from ..probes import GridCache, grid_cache
from ..probes.cache import GridChunk
from ..probes.irreps import KeyIrreps, excluded_shift, key_irreps, restricted_measurement
from ..readout import DTYPE, Measurement, solve_normal
from ..task import ModularTask
from .claim import (
    BROKEN_ACCURACY,
    EMBED_KEY_FRACTION,
    KEEP_ACCURACY,
    LOSS_FLOOR,
    NECESSARY_LOSS_FACTOR,
    NEURON_KEY_VARIANCE,
    SUFFICIENT_LOSS_FACTOR,
    Claim,
    heads_claim,
    make_claim,
)
from .hypothesis_tests import RESAMPLE_SEED, recovered
from .verdict import CONFIRM_RECOVERED, GENERALIZES_ACCURACY, Verdict

ALGORITHM = "clock"
"""The representation clock is the clock's reading for any group."""


@dataclasses.dataclass(frozen=True, repr=False)
class IrrepVerdict(Verdict):
    """A :class:`~modadd_interp.causal.verdict.Verdict` whose key set is irreps (named ``key_irreps``)."""

    key_irreps: tuple[str, ...] = ()

    @property
    def line(self) -> str:
        if self.algorithm == "none":
            return f"not confirmed: {self.reason}"
        worst = min(self.loss_recovered.values()) if self.loss_recovered else float("nan")
        status = "circuit confirmed" if self.confirmed else f"NOT confirmed: {self.reason}"
        return f"{self.algorithm} at ρ = [{', '.join(self.key_irreps)}]: {worst:.1%} of the loss recovered ({status})"


@dataclasses.dataclass(frozen=True, repr=False)
class GroupCircuitReport(Displayable):
    """The verdict and every claim for a group task (module docstring).

    Attributes:
        verdict: the algorithm and whether it is confirmed (:class:`IrrepVerdict`).
        key_irreps: the key irreps and their evidence (:class:`~modadd_interp.probes.irreps.KeyIrreps`).
        claims: every claim (:class:`~modadd_interp.causal.claim.Claim`).
        measurements: ``{name: Measurement}`` of every intervention.
        clock_coefficients: ``{irrep: beta}`` of the fitted readout.
    """

    verdict: IrrepVerdict
    key_irreps: KeyIrreps
    claims: list[Claim]
    measurements: dict[str, Measurement]
    clock_coefficients: dict[str, float]

    @property
    def algorithm(self) -> str:
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
        return {"verdict": self.verdict.to_dict(), "passed": self.passed, "failed": self.failed,
                "key_irreps": self.key_irreps.to_dict(), "claims": [c.to_dict() for c in self.claims],
                "measurements": {k: m.to_dict() for k, m in self.measurements.items()},
                "clock_coefficients": self.clock_coefficients}

    def _summary(self) -> Summary:
        applicable = [c for c in self.claims if c.applicable]
        passed = sum(bool(c.passed) for c in applicable)
        return Summary(self.verdict.line, status=self.passed,
                       details=[f"{passed} of {len(applicable)} applicable claims pass",
                                f"failed: {', '.join(self.failed)}" if self.failed else ""],
                       rows=self.to_frame()[["name", "decides", "passed", "after", "comparison", "threshold"]],
                       table_caption="the claims (decides: the verdict rests on it)", max_rows=40)


def verify_group_circuit(model, task: ModularTask, cache: GridCache | None = None) -> GroupCircuitReport:
    """Find the key irreps of ``model`` and test the representation clock on them (module docstring)."""
    cache = cache or grid_cache(model, task)
    key = key_irreps(model, task, cache)
    full = cache.full
    names, indices = key.names, list(key.indices)
    measured: dict[str, Measurement] = {"full model": full}
    coefficients: dict[str, float] = {}
    edits = {"MLP zero-ablated": cache.direct_logits}
    if cache.config.n_heads:  # an MLP has no heads to ablate
        edits["all heads zero-ablated"] = lambda piece: cache.logits_with_resid_mid(
            piece, -cache.head_outputs(piece).sum(1))
    if indices:
        measured["restricted logits"] = restricted_measurement(cache, indices)
        edits.update(_exclusion_edits(cache, indices, names))
        edits.update(_neuron_edits(cache, indices))
        clock_edits, coefficients = _clock_edits(cache, indices)
        edits.update(clock_edits)
    measured.update(cache.measure(edits))
    claims = _claims(key, measured, cache.config.n_heads)
    held_out = full.test_accuracy if task.split_known else full.accuracy
    verdict = _decide(key, measured, claims, held_out, task.split_known)
    claims += _clock_claims(verdict, indices)
    return GroupCircuitReport(verdict, key, claims, measured, coefficients)


def _exclusion_edits(cache: GridCache, indices: list[int], names: tuple[str, ...]) -> dict:
    """The logits without all key irreps' components along ``s``, and without each in turn."""
    def without(shift: torch.Tensor):
        return lambda piece: piece.logits - shift.index_select(0, piece.labels)

    out = {"logits without the key irreps": without(excluded_shift(cache, indices))}
    for i, name in zip(indices, names, strict=True):
        out[f"logits without {name}"] = without(excluded_shift(cache, [i]))
    return out


def _neuron_edits(cache: GridCache, indices: list[int]) -> dict:
    """The readout layer's neurons restricted to (or without) their key irreps' ``ρ(x ∘ y)`` components."""
    means = _class_means(cache)  # [n, d_mlp]: each neuron's mean over the inputs of class s
    key_part = project_classes(means, cache.grid.group, indices).float()  # [n, d_mlp]
    mean = cache.neuron_mean.float()

    def restricted(piece: GridChunk) -> torch.Tensor:
        return cache.logits_with_neurons(piece, mean + key_part.index_select(0, piece.labels))

    def without(piece: GridChunk) -> torch.Tensor:
        return cache.logits_with_neurons(piece, piece.neurons - key_part.index_select(0, piece.labels))

    return {"neurons restricted to the key irreps' ρ(x∘y)": restricted,
            "neurons without the key irreps' ρ(x∘y)": without}


def _class_means(cache: GridCache) -> torch.Tensor:
    """``[n, d_mlp]`` float64 each readout-layer neuron's mean over the inputs of each class ``s = x ∘ y``."""
    stats = cache.layers[-1]
    if hasattr(stats, "marginals"):
        return stats.marginals["xy"]
    n = cache.grid.n
    sums = torch.zeros(n, cache.config.d_mlp, dtype=DTYPE)
    for piece in cache.chunks():
        sums.index_add_(0, piece.labels, piece.neurons.double())
    return sums / n


def _clock_edits(cache: GridCache, indices: list[int]) -> tuple[dict, dict[str, float]]:
    """The representation clock's three tests as edits, with the fitted readout's coefficients."""
    grid, group = cache.grid, cache.grid.group
    n = grid.n
    chis = characters(group)[indices]
    beta, fitted = trace_readout_fit(cache.residue_logits, group, chis)  # [n, n] answer-centered
    fitted32 = fitted.float()
    # the MLP output's fit: least squares on {1} + the key irreps' basis functions of s, one sweep
    basis = group.basis()
    rows = torch.cat([torch.nonzero(group.irrep_of_row == i).flatten() for i in indices])
    features = torch.cat([torch.ones(n, 1, dtype=DTYPE), basis[rows].T], dim=1)  # [n (class s), F]
    gram, target = 0.0, 0.0
    for piece in cache.chunks():
        f = features.index_select(0, piece.labels)
        gram = gram + f.T @ f
        target = target + f.T @ cache.mlp_out(piece)
    theta_logits = cache.mlp_out_logits(solve_normal(gram, target))  # [F, p]
    per_class = (features.float() @ theta_logits)  # [n, p]: the fitted MLP output's logits per class
    mean_logits = cache.residue_logits.mean(0).float()
    last = f"blocks.{cache.last_layer}.mlp"
    mean_mlp_out = cache.neuron_mean.float() @ cache.weights[f"{last}.W_out"] + cache.weights[f"{last}.b_out"]
    partners = _class_partners(grid.labels)

    def logits_fit(piece: GridChunk) -> torch.Tensor:
        out = piece.logits.mean(-1, keepdim=True).expand_as(piece.logits).clone()
        out[:, :n] += fitted32.index_select(0, piece.labels)
        return out

    edits = {
        "clock: logits": logits_fit,
        "clock: mlp_out": lambda piece: cache.direct_logits(piece) + per_class.index_select(0, piece.labels),
        "clock: resampling": lambda piece: cache.logits_with_neurons(piece, cache.neurons_of(partners[piece.rows])),
        "baseline: logits": lambda piece: mean_logits.expand(len(piece.labels), -1),
        "baseline: mlp_out": lambda piece: cache.logits_with_mlp_out(piece, mean_mlp_out),
    }
    names = [group.irreps[i].name for i in indices]
    return edits, dict(zip(names, beta.tolist(), strict=True))


def _class_partners(labels: torch.Tensor) -> torch.Tensor:
    """``[N]`` grid index of a random input of each input's class ``s`` (seeded, as the cyclic resampling)."""
    order = torch.argsort(labels, stable=True)
    sorted_labels = labels[order]
    starts = torch.searchsorted(sorted_labels, sorted_labels, right=False)
    ends = torch.searchsorted(sorted_labels, sorted_labels, right=True)
    generator = torch.Generator().manual_seed(RESAMPLE_SEED)
    offset = (torch.rand(len(order), generator=generator, dtype=DTYPE) * (ends - starts)).long()
    partner = torch.empty_like(order)
    partner[order] = order[starts + offset]
    return partner


def _claims(key: KeyIrreps, measured: dict[str, Measurement], n_heads: int) -> list[Claim]:
    full = measured["full model"]
    evidence, names, indices = key.spectrum.evidence, key.names, list(key.indices)
    keeps = max(SUFFICIENT_LOSS_FACTOR * full.test_loss, LOSS_FLOOR)

    def in_key(name: str) -> float:
        return float(evidence[name][indices].sum()) if indices else float("nan")

    claims = [
        make_claim("the embedding lives on the key irreps", "none: W_E read in the group's basis",
               "fraction of W_E's energy (trivial irrep excluded) in the key irreps", None, in_key("embed_share"),
               EMBED_KEY_FRACTION, ">=", f"{len(names)} of {len(key.spectrum.names) - 1} irreps", needs_key=names),
        make_claim("the neurons cluster by the key irreps", "none: each neuron read in the group's basis",
               "variance-weighted fraction of neuron variance in the key irreps' blocks", None, in_key("neuron_share"),
               NEURON_KEY_VARIANCE, ">=", "cluster sizes: " + ", ".join(
                   f"{n}: {int(c)}" for n, c in zip(key.spectrum.names, evidence["cluster_size"].tolist(),
                                                     strict=True) if c), needs_key=names),
    ]
    if not indices:
        return claims + [make_claim(name, intervention, metric, None, float("nan"), threshold, comparison,
                                needs_key=(), decides=decides) for name, intervention, metric, threshold, comparison,
                         decides in _KEYED]
    restricted, excluded = measured["restricted logits"], measured["logits without the key irreps"]
    per = {name: measured[f"logits without {name}"].train_loss for name in names}
    weakest = min(per, key=per.get)
    necessary = NECESSARY_LOSS_FACTOR * full.train_loss + 1e-9
    neurons_in, neurons_out = (measured["neurons restricted to the key irreps' ρ(x∘y)"],
                               measured["neurons without the key irreps' ρ(x∘y)"])
    return claims + [
        make_claim("the key irreps suffice (restricted loss)",
               "logits restricted to each answer's mean + the key irreps' components along x ∘ y", "test loss",
               full.test_loss, restricted.test_loss, keeps, "<=",
               f"train {restricted.train_loss:.3g}, all {restricted.loss:.3g}"),
        make_claim("minimality: each key irrep is necessary", "one key irrep's components removed from the logits",
               "smallest excluded training loss", full.train_loss, per[weakest], necessary, ">=",
               "excluded training loss per irrep: " + ", ".join(f"{k}: {v:.3g}" for k, v in per.items()),
               decides=True),
        make_claim("completeness: removing all key irreps breaks the model (excluded loss)",
               "the key irreps' components along x ∘ y removed from the logits", "accuracy", full.accuracy,
               excluded.accuracy, BROKEN_ACCURACY, "<=",
               f"training loss {full.train_loss:.3g} -> {excluded.train_loss:.3g}", decides=True),
        make_claim("the neurons compute with their key irreps' ρ(x∘y) components",
               "every readout-layer neuron replaced by its mean + the key irreps' components of its class means",
               "accuracy", full.accuracy, neurons_in.accuracy, KEEP_ACCURACY, ">=",
               f"test loss {full.test_loss:.3g} -> {neurons_in.test_loss:.3g}"),
        make_claim("removing the neurons' key ρ(x∘y) components breaks the model",
               "the key irreps' components of each neuron's class means removed", "accuracy", full.accuracy,
               neurons_out.accuracy, BROKEN_ACCURACY, "<=",
               f"test loss {full.test_loss:.3g} -> {neurons_out.test_loss:.3g}"),
        heads_claim(n_heads, full.accuracy, measured["all heads zero-ablated"].accuracy if n_heads else float("nan")),
    ]


_KEYED = [
    ("the key irreps suffice (restricted loss)", "logits restricted to the key irreps", "test loss", float("nan"),
     "<=", False),
    ("minimality: each key irrep is necessary", "one key irrep removed from the logits",
     "smallest excluded training loss", float("nan"), ">=", True),
    ("completeness: removing all key irreps breaks the model (excluded loss)", "key irreps removed from the logits",
     "accuracy", BROKEN_ACCURACY, "<=", True),
]


def _loss_recovered(measured: dict[str, Measurement]) -> dict[str, float]:
    full = measured["full model"]
    return {"logits": recovered(measured["clock: logits"], measured["baseline: logits"], full),
            "mlp_out": recovered(measured["clock: mlp_out"], measured["baseline: mlp_out"], full),
            "resampling": recovered(measured["clock: resampling"], measured["baseline: mlp_out"], full)}


def _decide(key: KeyIrreps, measured: dict[str, Measurement], claims: list[Claim], accuracy: float,
            split_known: bool) -> IrrepVerdict:
    basis = {"generalizes": accuracy >= GENERALIZES_ACCURACY, "held_out_accuracy": accuracy,
             "basis": "held-out pairs" if split_known else "the grid (split unknown)"}
    if not key.names:
        return IrrepVerdict("none", (), {}, None, {}, False, key.reason, **basis)
    recovered_ = _loss_recovered(measured)
    short = [f"{test} {value:.1%}" for test, value in recovered_.items() if not value >= CONFIRM_RECOVERED]
    failed = [c.name for c in claims if c.decides and not c.passed]
    if accuracy < GENERALIZES_ACCURACY:
        where = "its held-out pairs" if split_known else "the grid (split unknown)"
        failed.insert(0, f"the model answers only {accuracy:.1%} of {where} (< {GENERALIZES_ACCURACY:.0%}): a "
                         "circuit still forming beside memorized answers")
    confirmed = not short and not failed
    if confirmed:
        reason = (f"the representation clock recovers >= {CONFIRM_RECOVERED:.0%} of the loss in every test; the key "
                  "irreps are complete and minimal")
    else:
        reason = "; ".join((["the representation clock recovers only " + ", ".join(short)] if short else [])
                           + failed)
    return IrrepVerdict(ALGORITHM, (), {ALGORITHM: 1.0}, ALGORITHM, recovered_, confirmed, reason,
                        key_irreps=key.names, **basis)


def _clock_claims(verdict: IrrepVerdict, indices: list[int]) -> list[Claim]:
    tests = {"logits": ("faithfulness: the representation clock's readout recovers the loss (logits)",
                        "logits replaced by mean + Σ_ρ β_ρ χ_ρ(x∘y∘z⁻¹); baseline: the grid's mean logits"),
             "mlp_out": ("faithfulness: the MLP output's fit recovers the loss",
                         "readout-layer MLP output replaced by its fit in the key irreps' functions of x ∘ y; "
                         "baseline: its mean"),
             "resampling": ("resampling within x ∘ y classes recovers the loss",
                            "readout-layer MLP output taken from another input with the same x ∘ y; baseline: its "
                            "mean")}
    if not indices:
        return [make_claim(name, intervention, "share of loss recovered", None, float("nan"), CONFIRM_RECOVERED, ">=",
                       needs_key=(), decides=True) for name, intervention in tests.values()]
    return [make_claim(name, intervention, "share of loss recovered", None, verdict.loss_recovered[test],
                   CONFIRM_RECOVERED, ">=", f"key irreps {list(verdict.key_irreps)}", decides=True)
            for test, (name, intervention) in tests.items()]
