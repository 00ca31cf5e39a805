"""Which frequencies does the model use? One documented rule over all the evidence.

Frequencies are those of the operation's group ``Z/n`` (:class:`modadd_interp.task.AnalysisGrid`: ``n = p`` for
add/sub, ``p - 1`` for mul/div, where ``w_k`` turns the discrete log); ``a + b`` below is ``x + y`` there.
With the split unknown, "training" loss means the loss over the whole grid.

The evidence, per frequency ``k = 1..n//2``:

* ``logit_share``: the share of the logits' (output-centered) energy along
  ``cos/sin(w_k(a+b))`` over the grid, among all frequencies — what the model *outputs*;
* ``excluded_delta``: how much the training loss rises when those components are
  removed from the logits (the paper's per-frequency excluded loss) — *causal*; computed
  exactly where the rule needs it (NaN elsewhere), see step 2;
* ``excluded_bound``: a cheap upper bound on ``excluded_delta`` for every frequency
  (:func:`modadd_interp.readout.excluded_loss_bounds`);
* ``wl_share``: the share of ``W_L = W_out W_U``'s Fourier energy;
* ``embed_share``: the share of ``W_E``'s Fourier energy;
* ``cluster_size``: neurons (of every layer) whose variance is >= 85% in that frequency.

The rule:

1. **Candidates (downstream).** Sort ``logit_share`` in decreasing order and cut at the
   largest ratio between consecutive shares among the top half. The shares above the cut
   are candidates when that ratio is at least :data:`MIN_SHARE_GAP`.
2. **Necessity (causal).** A candidate is kept only if removing it raises the training
   loss by more than :data:`NECESSITY_RATIO` times the largest rise from removing any
   non-candidate frequency. The candidates' rises are computed exactly (one sweep over the grid).
   If the non-candidates' upper bounds cannot change a verdict, that is all; otherwise
   non-candidates are evaluated exactly in decreasing order of their bound, :data:`EXACT_BATCH`
   per sweep, until no unevaluated bound could exceed the largest exact rise or change a verdict.
   The verdicts are those of evaluating every frequency.
3. **Sufficiency.** The kept set is the answer (confidence ``"high"``) only if the logits
   restricted to it still answer :data:`SUFFICIENT_ACCURACY` of the grid. Otherwise the
   result has confidence ``"low"``, ``freqs`` is empty and the set is reported as
   ``candidates``; with no candidates the confidence is ``"none"``.

Embedding shares and neuron clusters are reported beside each frequency but never add
one: the paper shows an embedding frequency that nothing downstream uses, and a few
stray neurons do not make a circuit. W_L shares are reported too; the logits include
the direct and attention paths that W_L misses, so they decide.

Examples:
    >>> kf = key_frequencies(model, task)    # doctest: +SKIP
    >>> kf.freqs, kf.confidence
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from ..display import Displayable, Summary
from ..fourier import frequency_spectrum, n_freqs, neuron_spectrum
from ..readout import (
    excluded_loss_bounds,
    label_logprobs,
    residue_projection,
    sum_direction_energy,
)
from ..task import ModularTask
from .cache import GridCache, grid_cache
from .neurons import CLUSTER_THRESHOLD, check_threshold

MIN_SHARE_GAP = 3.0
"""Consecutive-share ratio that separates used from unused frequencies. Measured: random inits'
largest ratio is 1.1-1.3; the paper's three grokked checkpoints have cuts of 9.2x, 54x and 493x."""

NECESSITY_RATIO = 10.0
"""A key frequency's removal must hurt 10x more than removing any non-candidate. Measured on
the paper's three checkpoints the separation is 79x, 1.2e5x and 1.1e9x."""

EXACT_BATCH = 8
"""Non-candidate frequencies whose excluded loss is computed per sweep of the grid."""

SUFFICIENT_ACCURACY = 0.5
"""The key frequencies alone (restricted logits) must answer half the grid. Grokked models
reach 1.0; memorizing checkpoints of a p=113 run reach <= 0.06 with their top frequency."""


@dataclasses.dataclass(frozen=True, repr=False)
class KeyFrequencies(Displayable):
    """The key frequencies and the evidence for every frequency.

    Attributes:
        freqs: sorted key frequencies (empty unless ``confidence == "high"``).
        confidence: ``"high"``, ``"low"`` (candidates that are not sufficient) or ``"none"``.
        candidates: the frequencies that passed steps 1-2 of the rule.
        evidence: ``{name: [n//2] tensor}`` for ``logit_share``, ``excluded_delta`` (NaN where not
            computed), ``excluded_bound``, ``wl_share``, ``embed_share``, ``cluster_size``.
        base_train_loss: the model's training loss.
        restricted_accuracy: accuracy of the logits restricted to ``candidates``.
        reason: one sentence saying what decided.
    """

    freqs: tuple[int, ...]
    confidence: str
    candidates: tuple[int, ...]
    evidence: dict[str, torch.Tensor]
    base_train_loss: float
    restricted_accuracy: float
    reason: str

    def to_frame(self) -> pd.DataFrame:
        """One row per frequency with every kind of evidence."""
        n = len(self.evidence["logit_share"])
        frame = pd.DataFrame({"freq": range(1, n + 1)})
        for name, values in self.evidence.items():
            frame[name] = values.tolist()
        frame["is_candidate"] = frame["freq"].isin(self.candidates)
        frame["is_key"] = frame["freq"].isin(self.freqs)
        return frame

    def to_dict(self) -> dict:
        """JSON-safe summary with the evidence of the candidates."""
        frame = self.to_frame()
        rows = frame[frame["is_candidate"]].drop(columns=["is_candidate"])
        return {
            "freqs": list(self.freqs), "confidence": self.confidence, "candidates": list(self.candidates),
            "base_train_loss": self.base_train_loss, "restricted_accuracy": self.restricted_accuracy,
            "reason": self.reason, "evidence": rows.to_dict(orient="records"),
        }

    def plot(self):
        """The evidence per frequency, key frequencies marked."""
        from ..viz.figures import key_frequency_figure

        return key_frequency_figure(self)

    def _summary(self) -> Summary:
        top = self.to_frame().sort_values("logit_share", ascending=False).head(len(self.candidates) + 3)
        accuracy = f"the candidates alone answer {self.restricted_accuracy:.1%} of the grid" if self.candidates else ""
        return Summary(f"key frequencies {list(self.freqs) or 'none'} ({self.confidence} confidence)",
                       status=self.confidence == "high", details=[self.reason, accuracy],
                       rows=top.drop(columns=["excluded_bound"]), table_caption="the top frequencies by logit share")


def key_frequencies(
    model, task: ModularTask, cache: GridCache | None = None, cluster_threshold: float = CLUSTER_THRESHOLD
) -> KeyFrequencies:
    """Find the key frequencies of ``model`` by the rule in this module's docstring."""
    check_threshold(cluster_threshold)
    cache = cache or grid_cache(model, task)
    grid = cache.grid
    size, n = grid.n, n_freqs(grid.n)
    residues = cache.residue_logits
    base = cache.full.train_loss
    cluster_size = torch.zeros(n, dtype=torch.long)
    for stats in cache.layers:
        shares, _ = neuron_spectrum(stats.blocks, stats.mean, stats.variance, size)
        best = shares.argmax(1) + 1
        clustered = (shares.max(1).values >= cluster_threshold) & (stats.variance > 0)
        cluster_size += torch.bincount(best[clustered], minlength=n + 1)[1:]
    train_count = torch.bincount(grid.labels[grid.train], minlength=size)
    evidence = {
        "logit_share": _normalise(sum_direction_energy(residues)),
        "excluded_delta": torch.full((n,), float("nan"), dtype=torch.float64),
        "excluded_bound": excluded_loss_bounds(residues, range(1, n + 1), cache.train_miss, train_count),
        "wl_share": _normalise(frequency_spectrum(cache.w_logit[:, :size], dim=1)[0]),
        "embed_share": _normalise(frequency_spectrum(cache.number_embeddings())[0]),
        "cluster_size": cluster_size,
    }
    chosen, reason = _candidates(evidence["logit_share"])
    if not chosen:
        return KeyFrequencies((), "none", (), evidence, base, float("nan"), reason)
    candidates, reason = _necessary(cache, chosen, evidence, base, reason)
    if not candidates:
        return KeyFrequencies((), "none", (), evidence, base, float("nan"), reason)
    restricted = cache.restricted(candidates)
    if restricted.accuracy < SUFFICIENT_ACCURACY:
        reason = (f"the candidates {list(candidates)} alone answer only {restricted.accuracy:.1%} of the grid "
                  f"(< {SUFFICIENT_ACCURACY:.0%}): not a working Fourier circuit")
        return KeyFrequencies((), "low", candidates, evidence, base, restricted.accuracy, reason)
    return KeyFrequencies(candidates, "high", candidates, evidence, base, restricted.accuracy, reason)


def excluded_train_losses(cache: GridCache, freqs: list[int]) -> dict[int, float]:
    """``{k: training loss}`` with each frequency's ``cos/sin(w_k(a+b))`` components removed (one sweep).

    Like ``cache.measure({k: cache.excluding([k])})``, but only on the training rows: the rule needs
    only the training loss, and this is the rule's hot loop.
    """
    shifts = [residue_projection(cache.residue_logits, [k]).float() for k in freqs]
    nll, count = torch.zeros(len(freqs), dtype=torch.float64), 0
    for piece in cache.chunks():
        logits, labels = piece.logits[piece.train], piece.labels[piece.train]
        for j, shift in enumerate(shifts):
            nll[j] -= label_logprobs(logits - shift.index_select(0, labels), labels).sum()
        count += len(labels)
    return dict(zip(freqs, (nll / count).tolist(), strict=True))


def _normalise(energy: torch.Tensor) -> torch.Tensor:
    total = float(energy.sum())
    return energy / total if total > 0 else torch.zeros_like(energy)


def _candidates(share: torch.Tensor) -> tuple[list[int], str]:
    """Step 1: the frequencies above the largest consecutive-share ratio, if it is large enough."""
    if float(share.sum()) == 0:
        return [], "the logits have no component along any cos/sin(w(a+b)) direction"
    ordered = share.sort(descending=True)
    top = max(1, len(share) // 2)
    ratios = ordered.values[:top] / ordered.values[1 : top + 1].clamp_min(1e-300)
    cut = int(ratios.argmax())
    gap = float(ratios[cut])
    if gap < MIN_SHARE_GAP:
        return [], (f"no frequency stands out in the logits (largest share ratio {gap:.2f} "
                    f"< {MIN_SHARE_GAP}): no Fourier structure")
    return sorted(int(i) + 1 for i in ordered.indices[: cut + 1]), (
        f"the top {cut + 1} logit shares stand {gap:.1f}x above the rest")


def _necessary(cache: GridCache, chosen: list[int], evidence: dict, base: float, reason: str):
    """Step 2, exact: evaluate the candidates, then non-candidates by decreasing bound until decided."""
    delta, bound = evidence["excluded_delta"], evidence["excluded_bound"]
    others = [k for k in (bound.argsort(descending=True) + 1).tolist() if k not in chosen]
    todo = list(chosen)
    while True:
        for k, loss in excluded_train_losses(cache, todo).items():
            delta[k - 1] = loss - base
        rises = [float(delta[k - 1]) for k in chosen]
        evaluated = [float(d) for i, d in enumerate(delta.tolist()) if i + 1 not in chosen and d == d]
        low = max([0.0, *evaluated])
        high = max(low, float(bound[others[0] - 1]) if others else 0.0)
        decided = all(r > NECESSITY_RATIO * high or r <= NECESSITY_RATIO * low for r in rises)
        if not others or high == low or decided:
            break
        todo, others = others[:EXACT_BATCH], others[EXACT_BATCH:]
    kept = [k for k, r in zip(chosen, rises, strict=True) if r > NECESSITY_RATIO * high and r > 0]
    if high == low:
        floor = f"{low:.2g} nats"
    elif evaluated:
        floor = f"between {low:.2g} nats, exact, and {high:.2g} by the bound"
    else:
        floor = f"at most {high:.2g} nats by the bound"
    reason += (f"; removing each raises the training loss > {NECESSITY_RATIO:g}x the largest non-candidate rise "
               f"({floor})")
    dropped = sorted(set(chosen) - set(kept))
    if dropped:
        reason += f"; {dropped} dropped as causally unnecessary"
    return tuple(kept), reason
