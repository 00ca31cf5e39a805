"""Which frequencies does the model use? One documented rule over all the evidence.

Frequencies are those of the operation's group ``Z/n`` (:class:`modadd_interp.task.AnalysisGrid`: ``n = p`` for
add/sub, ``p - 1`` for mul/div, where ``w_k`` turns the discrete log); ``a + b`` below is ``x + y`` there.
**Held-out** means the test split; with the split unknown, both "training" and "held-out" mean the whole grid.

The evidence, per frequency ``k = 1..n//2``:

* ``logit_share``: the share of the logits' (output-centered) energy along
  ``cos/sin(w_k(a+b))`` over the grid, among all frequencies — what the model *outputs*;
* ``excluded_delta`` / ``excluded_delta_held_out``: how much the training / held-out loss rises when those
  components are removed from the logits (the paper's per-frequency excluded loss; on held-out pairs the removed
  component is that of the held-out pairs' own residue means) — *causal*; computed exactly where the rule needs it
  (NaN elsewhere), see step 3;
* ``excluded_bound`` / ``excluded_bound_held_out``: cheap upper bounds on them for every frequency
  (:func:`modadd_interp.readout.excluded_loss_bounds`);
* ``wl_share``: the share of ``W_L = W_out W_U``'s Fourier energy;
* ``embed_share``: the share of ``W_E``'s Fourier energy;
* ``cluster_size``: neurons (of every layer) whose variance is >= 85% in that frequency.

The rule (docs/verdicts.md measures it on a labelled population):

1. **Structure (downstream).** Sort ``logit_share`` in decreasing order and cut at the largest ratio between
   consecutive shares among the top half. The shares above the cut are the first candidates when that ratio is at
   least :data:`MIN_SHARE_GAP`; otherwise nothing stands out and there are no key frequencies.
2. **Sufficiency.** While the candidates' restricted logits (each output's grid mean plus the candidates'
   ``cos/sin(w_k(a+b))`` components) have a held-out loss above :data:`SUFFICIENT_LOSS_FACTOR` times the model's
   own, the next frequency in share order joins them (up to the top half). A key frequency whose share sits below
   the largest gap (one frequency dominating the logits) is added here, because without it the candidates do
   not account for the model's held-out answers.
3. **Necessity (causal).** A candidate is kept if removing it raises the held-out loss, or the training loss, by
   more than :data:`NECESSITY_RATIO` times the largest rise on that split from removing any frequency that is
   *not* a candidate. The floor comes from frequencies that step 2 did not need, so a real key frequency cannot
   set the bar that its partners must pass (the earlier rule took its floor from everything below the largest
   share gap, which made it circular). Held-out pairs show a circuit that is forming beside memorized training
   pairs; training pairs show a frequency that the held-out loss, dominated by a few wrong answers, hides. The
   candidates' rises are computed exactly; the others' upper bounds decide when they can, else they are
   evaluated exactly in decreasing order of their bound, :data:`EXACT_BATCH` per sweep of the grid. The verdicts
   are those of evaluating every frequency.
4. **A working circuit.** The kept set is the answer (confidence ``"high"``) only if the logits restricted to it
   still answer :data:`SUFFICIENT_ACCURACY` of the grid. Otherwise the result has confidence ``"low"``, ``freqs``
   is empty and the set is reported as ``candidates``; with no candidates the confidence is ``"none"``.

Every threshold has a margin (``*_MARGIN``): a deciding figure within it is *borderline*
(:meth:`KeyFrequencies.borderline`), and the verdict says so instead of presenting a cliff as a clear answer.

Embedding shares and neuron clusters are reported beside each frequency but never add
one: the paper shows an embedding frequency that nothing downstream uses, and a few
stray neurons do not make a circuit. W_L shares are reported too; the logits include
the direct and attention paths that W_L misses, so they decide.

Examples:
    >>> import modadd_interp as mi
    >>> kf = key_frequencies(*mi.load())         # the shipped grokked p = 113 model
    >>> kf.freqs, kf.confidence, kf.borderline()
    ((1, 5, 7, 29), 'high', [])
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import pandas as pd
import torch

from ..display import Displayable, Summary
from ..fourier import frequency_spectrum, n_freqs, neuron_spectrum
from ..readout import (
    excluded_loss_bounds,
    label_logprobs,
    residue_projection,
    residue_sums,
    sum_direction_energy,
)
from ..task import ModularTask
from .cache import GridCache, grid_cache
from .neurons import CLUSTER_THRESHOLD, check_threshold

MIN_SHARE_GAP = 3.0
"""Consecutive-share ratio that says something stands out. Measured: random inits' largest ratio is 1.1-1.3, lookup
tables' 1.0-1.1 (docs/verdicts.md); every generalizing member of the labelled population has a gap of 4.6x or more."""

MIN_SHARE_GAP_MARGIN = 1.5
"""A largest share ratio within a factor 1.5 of :data:`MIN_SHARE_GAP` (2 to 4.5) is borderline."""

SUFFICIENT_LOSS_FACTOR = 2.0
"""Step 2 adds frequencies until the candidates' restricted held-out loss is at most twice the model's own (the
paper's loss comparison, as in the restricted-loss claim)."""

NECESSITY_RATIO = 10.0
"""A key frequency's removal must hurt 10x more than removing any frequency that is not a candidate, on held-out or
on training pairs. Measured on the labelled population (docs/verdicts.md): the weakest key frequency of a generalizing
model stands 12x above the floor (a planted clock whose four frequencies are redundant), the paper's checkpoints
44-1e5x; the strongest dropped candidate 9.8x."""

NECESSITY_MARGIN = 2.0
"""A necessity ratio within a factor 2 of :data:`NECESSITY_RATIO` (5 to 20) is borderline."""

EXACT_BATCH = 8
"""Non-candidate frequencies whose excluded loss is computed per sweep of the grid."""

SUFFICIENT_ACCURACY = 0.5
"""The key frequencies alone (restricted logits) must answer half the grid. Grokked models reach 1.0; memorizing
checkpoints of a p = 113 run reach <= 0.06 with their top frequency."""

SUFFICIENT_ACCURACY_MARGIN = 0.1
"""A restricted accuracy within 10 points of :data:`SUFFICIENT_ACCURACY` is borderline."""

SPLITS = ("held_out", "train")


def within_margin(value: float, threshold: float, margin: float, kind: str = "ratio") -> bool:
    """True when ``value`` is within ``margin`` of ``threshold``: a factor (``kind="ratio"``) or an absolute
    distance (``kind="points"``).

    Examples:
        >>> within_margin(12.4, 10.0, 2.0), within_margin(25.0, 10.0, 2.0)
        (True, False)
        >>> within_margin(0.98, 0.99, 0.02, "points"), within_margin(0.95, 0.99, 0.02, "points")
        (True, False)
    """
    if not math.isfinite(value):
        return False
    if kind == "ratio":
        return threshold / margin <= value <= threshold * margin
    return abs(value - threshold) <= margin


@dataclasses.dataclass(frozen=True, repr=False)
class KeyFrequencies(Displayable):
    """The key frequencies and the evidence for every frequency.

    Attributes:
        freqs: sorted key frequencies (empty unless ``confidence == "high"``).
        confidence: ``"high"``, ``"low"`` (candidates that are not sufficient) or ``"none"``.
        candidates: the frequencies that passed steps 1-3 of the rule.
        evidence: ``{name: [n//2] tensor}`` for ``logit_share``, ``excluded_delta`` and ``excluded_delta_held_out``
            (NaN where not computed), ``excluded_bound``, ``excluded_bound_held_out``, ``wl_share``, ``embed_share``,
            ``cluster_size``.
        base_train_loss: the model's training loss.
        restricted_accuracy: accuracy of the logits restricted to ``candidates``.
        reason: one sentence saying what decided.
        base_held_out_loss: the model's held-out loss (the whole grid's when the split is unknown).
        considered: the frequencies after steps 1-2 (the largest-gap set, extended until sufficient).
        share_gap: the largest consecutive share ratio of step 1.
        floors: ``{"held_out" | "train": (exact, bound)}``: the largest rise from removing a non-candidate, exact
            over those evaluated, and an upper bound over all of them (equal when every one was evaluated).
    """

    freqs: tuple[int, ...]
    confidence: str
    candidates: tuple[int, ...]
    evidence: dict[str, torch.Tensor]
    base_train_loss: float
    restricted_accuracy: float
    reason: str
    base_held_out_loss: float = float("nan")
    considered: tuple[int, ...] = ()
    share_gap: float = float("nan")
    floors: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)

    def necessity(self) -> dict[int, float]:
        """``{k: ratio}`` for every frequency considered: its larger (over the two splits) excluded-loss rise over
        that split's floor (its upper bound when not every non-candidate was evaluated); inf over a zero floor."""
        out = {}
        for k in self.considered:
            ratios = []
            for split, name in zip(SPLITS, ("excluded_delta_held_out", "excluded_delta"), strict=True):
                delta = float(self.evidence[name][k - 1])
                floor = self.floors.get(split, (0.0, 0.0))[1]
                if delta == delta and delta > 0:
                    ratios.append(delta / floor if floor > 0 else math.inf)
            out[k] = max(ratios, default=0.0)
        return out

    def borderline(self) -> list[str]:
        """The deciding figures of the rule that are within their threshold's margin, in words (empty: clear)."""
        out = []
        if within_margin(self.share_gap, MIN_SHARE_GAP, MIN_SHARE_GAP_MARGIN):
            out.append(f"the largest logit-share ratio {self.share_gap:.2f}x is near the {MIN_SHARE_GAP:g}x that "
                       "makes a frequency stand out")
        ratios = self.necessity()
        kept = [ratios[k] for k in self.candidates]
        dropped = {k: ratios[k] for k in self.considered if k not in self.candidates}
        if kept and within_margin(min(kept), NECESSITY_RATIO, NECESSITY_MARGIN):
            weakest = min((k for k in self.candidates), key=lambda k: ratios[k])
            out.append(f"key frequency {weakest} is necessary by {ratios[weakest]:.3g}x the floor, near the "
                       f"{NECESSITY_RATIO:g}x required")
        if dropped:
            strongest = max(dropped, key=dropped.get)
            if within_margin(dropped[strongest], NECESSITY_RATIO, NECESSITY_MARGIN):
                out.append(f"frequency {strongest} was dropped at {dropped[strongest]:.3g}x the floor, near the "
                           f"{NECESSITY_RATIO:g}x required")
        if self.candidates and within_margin(self.restricted_accuracy, SUFFICIENT_ACCURACY, SUFFICIENT_ACCURACY_MARGIN,
                                             "points"):
            out.append(f"the candidates alone answer {self.restricted_accuracy:.1%} of the grid, near the "
                       f"{SUFFICIENT_ACCURACY:.0%} of a working circuit")
        return out

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
        """JSON-safe summary with the evidence of the frequencies considered."""
        frame = self.to_frame()
        rows = frame[frame["freq"].isin(set(self.candidates) | set(self.considered))].drop(columns=["is_candidate"])
        return {
            "freqs": list(self.freqs), "confidence": self.confidence, "candidates": list(self.candidates),
            "base_train_loss": self.base_train_loss, "restricted_accuracy": self.restricted_accuracy,
            "reason": self.reason, "evidence": rows.to_dict(orient="records"),
            "base_held_out_loss": self.base_held_out_loss, "considered": list(self.considered),
            "share_gap": self.share_gap, "floors": {k: list(v) for k, v in self.floors.items()},
            "necessity": {str(k): v for k, v in self.necessity().items()}, "borderline": self.borderline(),
        }

    def plot(self):
        """The evidence per frequency, key frequencies marked."""
        from ..viz.figures import key_frequency_figure

        return key_frequency_figure(self)

    def _summary(self) -> Summary:
        top = self.to_frame().sort_values("logit_share", ascending=False).head(len(self.considered) + 3)
        accuracy = f"the candidates alone answer {self.restricted_accuracy:.1%} of the grid" if self.candidates else ""
        near = self.borderline()
        return Summary(f"key frequencies {list(self.freqs) or 'none'} ({self.confidence} confidence"
                       + (", borderline)" if near else ")"),
                       status=self.confidence == "high", details=[self.reason, accuracy, *near],
                       rows=top.drop(columns=["excluded_bound", "excluded_bound_held_out"]),
                       table_caption="the top frequencies by logit share")


@dataclasses.dataclass(frozen=True)
class HeldOut:
    """The held-out pairs' statistics the rule needs (the whole grid's when the split is unknown).

    Attributes:
        residue_logits: ``[n, p]`` the mean answer logits of the held-out inputs of each residue ``s = x + y``.
        miss: ``[n]`` per residue, the sum over held-out inputs of ``1 - P(label)``.
        count: ``[n]`` held-out inputs per residue.
        loss: the model's mean held-out loss.
    """

    residue_logits: torch.Tensor
    miss: torch.Tensor
    count: torch.Tensor
    loss: float


def held_out_statistics(cache: GridCache) -> HeldOut:
    """The held-out pairs' residue means, misses and counts: one sweep of the grid when the split is known, else
    the cache's whole-grid statistics (no sweep)."""
    grid = cache.grid
    n = grid.n
    if not cache.task.split_known:
        count = torch.bincount(grid.labels, minlength=n)
        return HeldOut(cache.residue_logits, cache.train_miss, count, cache.full.loss)
    sums = torch.zeros(n, cache.residue_logits.shape[1], dtype=torch.float64)
    miss = torch.zeros(n, dtype=torch.float64)
    for piece in cache.chunks():
        logits, labels = piece.logits[piece.test], piece.labels[piece.test]
        sums += residue_sums(logits, labels, n)
        miss.index_add_(0, labels, torch.expm1(label_logprobs(logits, labels)).neg_())
    count = torch.bincount(grid.labels[grid.test], minlength=n)
    return HeldOut(sums / count.clamp_min(1)[:, None].to(sums.dtype), miss, count, cache.full.test_loss)


def key_frequencies(
    model, task: ModularTask, cache: GridCache | None = None, cluster_threshold: float = CLUSTER_THRESHOLD
) -> KeyFrequencies:
    """Find the key frequencies of ``model`` by the rule in this module's docstring.

    Examples:
        >>> import modadd_interp as mi
        >>> model, task = mi.load()
        >>> kf = key_frequencies(model, task)
        >>> kf.freqs, kf.confidence
        ((1, 5, 7, 29), 'high')
    """
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
    nan = torch.full((n,), float("nan"), dtype=torch.float64)
    evidence = {
        "logit_share": _normalise(sum_direction_energy(residues)),
        "excluded_delta": nan.clone(),
        "excluded_delta_held_out": nan.clone(),
        "excluded_bound": excluded_loss_bounds(residues, range(1, n + 1), cache.train_miss, train_count),
        "excluded_bound_held_out": nan.clone(),
        "wl_share": _normalise(frequency_spectrum(cache.w_logit[:, :size], dim=1)[0]),
        "embed_share": _normalise(frequency_spectrum(cache.number_embeddings())[0]),
        "cluster_size": cluster_size,
    }
    held_loss = cache.full.test_loss if task.split_known else cache.full.loss
    chosen, gap, reason = _candidates(evidence["logit_share"])
    if not chosen:
        return KeyFrequencies((), "none", (), evidence, base, float("nan"), reason, held_loss, (), gap)
    considered, reason = _sufficient(cache, chosen, evidence["logit_share"], held_loss, reason)
    held = held_out_statistics(cache)
    evidence["excluded_bound_held_out"] = excluded_loss_bounds(held.residue_logits, range(1, n + 1), held.miss,
                                                               held.count)
    candidates, floors, reason = _necessary(cache, considered, evidence, base, held, reason)
    if not candidates:
        return KeyFrequencies((), "none", (), evidence, base, float("nan"), reason, held_loss, tuple(considered), gap,
                              floors)
    restricted = cache.restricted(candidates)
    if restricted.accuracy < SUFFICIENT_ACCURACY:
        reason = (f"the candidates {list(candidates)} alone answer only {restricted.accuracy:.1%} of the grid "
                  f"(< {SUFFICIENT_ACCURACY:.0%}): not a working Fourier circuit")
        return KeyFrequencies((), "low", candidates, evidence, base, restricted.accuracy, reason, held_loss,
                              tuple(considered), gap, floors)
    return KeyFrequencies(candidates, "high", candidates, evidence, base, restricted.accuracy, reason, held_loss,
                          tuple(considered), gap, floors)


def excluded_train_losses(cache: GridCache, freqs: list[int]) -> dict[int, float]:
    """``{k: training loss}`` with each frequency's ``cos/sin(w_k(a+b))`` components removed (one sweep).

    Like ``cache.measure({k: cache.excluding([k])})``, but only on the training rows.
    """
    return {k: losses["train"] for k, losses in excluded_losses(cache, freqs).items()}


def excluded_losses(cache: GridCache, freqs: Sequence[int], held: HeldOut | None = None
                    ) -> dict[int, dict[str, float]]:
    """``{k: {"train": loss, "held_out": loss}}`` with each frequency's ``cos/sin(w_k(a+b))`` components removed, in
    one sweep of the grid (the rule's hot loop).

    On training pairs the removed component is the grid's residue means' (the paper's excluded loss); on held-out
    pairs it is the held-out pairs' own (``held``; default :func:`held_out_statistics`), so that memorized training
    answers, which the grid's residue means carry, are not subtracted from pairs the model never trained on. With
    the split unknown both are the whole grid's.

    Examples:
        >>> excluded_losses(cache, [14, 15])[15]             # doctest: +SKIP
        {'train': 0.438, 'held_out': 0.441}
    """
    freqs = list(freqs)
    known = cache.task.split_known
    held = held or held_out_statistics(cache)
    train_shift = [residue_projection(cache.residue_logits, [k]).float() for k in freqs]
    held_shift = [residue_projection(held.residue_logits, [k]).float() for k in freqs] if known else train_shift
    nll = torch.zeros(2, len(freqs), dtype=torch.float64)  # [train, held-out]
    count = torch.zeros(2, dtype=torch.float64)
    for piece in cache.chunks():
        masks = (piece.train, piece.test) if known else (piece.train,)
        for i, (mask, shifts) in enumerate(zip(masks, (train_shift, held_shift), strict=False)):
            logits, labels = piece.logits[mask], piece.labels[mask]
            for j, shift in enumerate(shifts):
                nll[i, j] -= label_logprobs(logits - shift.index_select(0, labels), labels).sum()
            count[i] += len(labels)
    if not known:
        nll[1], count[1] = nll[0], count[0]
    losses = (nll / count[:, None]).tolist()
    return {k: {"train": losses[0][j], "held_out": losses[1][j]} for j, k in enumerate(freqs)}


def _normalise(energy: torch.Tensor) -> torch.Tensor:
    total = float(energy.sum())
    return energy / total if total > 0 else torch.zeros_like(energy)


def _candidates(share: torch.Tensor) -> tuple[list[int], float, str]:
    """Step 1: the frequencies above the largest consecutive-share ratio, if it is large enough."""
    if float(share.sum()) == 0:
        return [], float("nan"), "the logits have no component along any cos/sin(w(a+b)) direction"
    ordered = share.sort(descending=True)
    top = max(1, len(share) // 2)
    ratios = ordered.values[:top] / ordered.values[1 : top + 1].clamp_min(1e-300)
    cut = int(ratios.argmax())
    gap = float(ratios[cut])
    if gap < MIN_SHARE_GAP:
        return [], gap, (f"no frequency stands out in the logits (largest share ratio {gap:.2f} "
                         f"< {MIN_SHARE_GAP}): no Fourier structure")
    return sorted(int(i) + 1 for i in ordered.indices[: cut + 1]), gap, (
        f"the top {cut + 1} logit shares stand {gap:.1f}x above the rest")


def _sufficient(cache: GridCache, chosen: list[int], share: torch.Tensor, held_loss: float, reason: str
                ) -> tuple[list[int], str]:
    """Step 2: add frequencies in share order until the restricted held-out loss is within the factor."""
    order = (share.argsort(descending=True) + 1).tolist()
    top = max(1, len(share) // 2)
    considered = list(chosen)
    target = SUFFICIENT_LOSS_FACTOR * held_loss
    loss = _held_out_loss(cache.restricted(considered), cache)
    added = []
    while loss > target and len(considered) < top:
        k = next(k for k in order if k not in considered)
        considered.append(k)
        added.append(k)
        loss = _held_out_loss(cache.restricted(considered), cache)
    if added:
        reason += (f"; their restricted held-out loss exceeds {SUFFICIENT_LOSS_FACTOR:g}x the model's "
                   f"({held_loss:.2g} nats), so {added} joined them in share order")
        if loss > target:
            reason += f" (still {loss:.2g} nats at the top half)"
    return sorted(considered), reason


def _held_out_loss(measurement, cache: GridCache) -> float:
    return measurement.test_loss if cache.task.split_known else measurement.loss


def _necessary(cache: GridCache, chosen: list[int], evidence: dict, base: float, held: HeldOut, reason: str
               ) -> tuple[tuple[int, ...], dict[str, tuple[float, float]], str]:
    """Step 3, exact: evaluate the candidates, then non-candidates by decreasing bound until decided."""
    names = {"train": ("excluded_delta", "excluded_bound", base),
             "held_out": ("excluded_delta_held_out", "excluded_bound_held_out", held.loss)}
    bound_all = torch.maximum(evidence["excluded_bound"], evidence["excluded_bound_held_out"])
    others = [k for k in (bound_all.argsort(descending=True) + 1).tolist() if k not in chosen]
    todo = list(chosen)
    while True:
        for k, losses in excluded_losses(cache, todo, held).items():
            for split, (delta_name, _, split_base) in names.items():
                evidence[delta_name][k - 1] = losses[split] - split_base
        floors, decided, kept = {}, True, []
        for split, (delta_name, bound_name, _) in names.items():
            delta, bound = evidence[delta_name], evidence[bound_name]
            evaluated = [float(d) for i, d in enumerate(delta.tolist()) if i + 1 not in chosen and d == d]
            low = max([0.0, *evaluated])
            pending = [float(bound[k - 1]) for k in others]
            floors[split] = (low, max(low, max(pending, default=0.0)))
        for k in chosen:
            verdicts = []
            for split, (delta_name, _, _) in names.items():
                r = float(evidence[delta_name][k - 1])
                low, high = floors[split]
                verdicts.append("keep" if r > NECESSITY_RATIO * high and r > 0 else
                                "drop" if r <= NECESSITY_RATIO * low or r <= 0 else "open")
            if "keep" in verdicts:
                kept.append(k)
            elif "open" in verdicts:
                decided = False
        if decided or not others:
            break
        todo, others = others[:EXACT_BATCH], others[EXACT_BATCH:]
    words = []
    for split, label in (("held_out", "held-out"), ("train", "training")):
        low, high = floors[split]
        words.append(f"{label} {low:.2g} nats" if high == low else f"{label} at most {high:.2g} nats")
    reason += (f"; removing each raises the held-out or the training loss > {NECESSITY_RATIO:g}x the largest "
               f"non-candidate rise ({', '.join(words)})")
    dropped = sorted(set(chosen) - set(kept))
    if dropped:
        reason += f"; {dropped} dropped as causally unnecessary"
    return tuple(sorted(kept)), floors, reason
