"""The irrep probes: which irreducible representations of the task's group the model uses, and the evidence.

Chughtai, Chan & Nanda (2023) read a model trained on a group's composition through the group's irreps: the
embeddings and unembeddings live on a few **key irreps**, neurons cluster by irrep, and the logits follow the
representation clock ``Σ_ρ χ_ρ(x ∘ y ∘ z⁻¹)`` (:mod:`modadd_interp.group_readout`). For ``Z/n`` the irreps are the
frequencies and this is the Fourier analysis; the modular operations keep their Fourier probes
(:func:`modadd_interp.key_frequencies`), and :func:`irrep_spectrum` reads them too (the trace similarity of each key
frequency).

The evidence per real irrep ρ (:class:`IrrepSpectrum`; shares exclude the trivial irrep):

* ``logit_share``: the share of the answer-centered residue means ``R_c[s, z]``'s energy along ``s = x ∘ y`` in
  ρ's isotypic component — what the model outputs;
* ``trace_similarity``: the cosine of the centered logits with ``χ_ρ(x ∘ y ∘ z⁻¹)`` over the grid (Chughtai et
  al.'s logit trace similarity);
* ``embed_share`` / ``unembed_share``: the shares of ``W_E``'s rows and ``W_U``'s answer columns (functions of the
  element);
* ``neuron_share``: the variance-weighted share of the readout layer's neuron variance in ρ's blocks (``ρ ⊗ 1``,
  ``1 ⊗ ρ`` and ``ρ ⊗ ρ`` as functions of ``(x, y)``), and ``cluster_size``: neurons with at least
  :data:`~modadd_interp.probes.neurons.CLUSTER_THRESHOLD` of their variance there;
* ``excluded_delta``: how much the training loss rises when ρ's components (along ``s``) are removed from the
  logits (exact, one sweep, for the key irreps and the :data:`EXCLUDED_BEYOND` next by logit share; NaN for the
  rest) — causal.

**The key-irrep rule** (:func:`key_irreps`), not circular (no irrep's evidence sets another's bar):

1. order the non-trivial irreps by ``logit_share``;
2. the key irreps are the shortest prefix whose restricted logits (each answer's mean plus the prefix's components
   along ``s``: exact from ``R``) lose no more than the residue means themselves (every irrep) do, within
   :data:`SUFFICIENT_LOSS_FACTOR` or :data:`LOSS_FLOOR` nats: the fewest irreps that carry what ``x ∘ y`` tells the
   logits. (Answering the grid is not enough: two of the shipped model's four frequencies already answer all of it,
   at a loss 1e5 times the model's);
3. confidence ``"high"`` when the logits are a circuit's, not a lookup table's: at least :data:`CLASS_SHARE` of the
   answer-centered logits' energy depends on the input through ``x ∘ y`` alone (``class_share``; measured: grokked
   models 0.98-0.996, the shipped run's memorizing checkpoints 0.06-0.12, a memorizing S4 transformer 0.42), and the
   prefix spans at most :data:`MAX_KEY_SPAN` of the functions on the group (its isotypic dimensions' sum over
   ``|G|``; the memorizing S4 transformer needs 96%); otherwise ``"low"`` (the prefix is reported as ``candidates``,
   ``names`` empty). When even the residue means answer less than :data:`SUFFICIENT_ACCURACY` of the grid, there is
   no answer to carry (an untrained model): ``"none"``.

Examples:
    >>> import modadd_interp as mi
    >>> model, task = mi.load()                         # Z/113: its irreps are the Fourier frequencies
    >>> cache = grid_cache(model, task)                 # one grid pass for both
    >>> irrep_spectrum(model, task, cache)
    IrrepSpectrum: C113: 57 real irreps; the logits' largest: 29 46.7%, 7 25.2%, 5 18.2%
    >>> key = key_irreps(model, task, cache)
    >>> key.names, key.confidence                        # by the logits' share: the frequencies [1, 5, 7, 29]
    (('29', '7', '5', '1'), 'high')
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from ..display import Displayable, Summary
from ..fourier import frequency_shares
from ..group_readout import centered, characters, isotypic_shares, project_classes, trace_similarity
from ..readout import Measurement, label_logprobs, residue_measurement
from ..task import ModularTask
from .cache import GridCache, grid_cache
from .neurons import CLUSTER_THRESHOLD

SUFFICIENT_LOSS_FACTOR = 2.0
LOSS_FLOOR = 1e-3
"""The key irreps' restricted loss is at most twice the residue means' own, or within 1e-3 nats of it (the claims'
bar for the key frequencies' restricted loss, :mod:`modadd_interp.causal.claims`)."""

EXCLUDED_BEYOND = 8
"""``excluded_delta`` is computed for the key irreps and this many more, by logit share (NaN for the rest)."""

MAX_KEY_SPAN = 0.75
"""The key irreps may span at most three quarters of the functions on the group (``Σ isotypic dim / |G|``; A4's
3-dimensional irrep alone spans 75%): a memorizer's residue means need nearly every irrep."""

SUFFICIENT_ACCURACY = 0.5
"""The residue means must answer half the grid (the key-frequency rule's bar): an untrained model's do not."""

CLASS_SHARE = 0.5
"""At least half the answer-centered logits' energy must depend on the input through ``x ∘ y`` alone."""


@dataclasses.dataclass(frozen=True, repr=False)
class IrrepSpectrum(Displayable):
    """Per real irrep of the task's group: where the model's weights, neurons and logits live.

    Attributes:
        group: the group's name; ``order``, ``abelian``; ``names``, ``dims``, ``real_dims``, ``frobenius_schur``: its
            real irreps.
        d_mlp: the readout layer's width.
        evidence: ``{name: [n_irreps] tensor}``: ``logit_share``, ``trace_similarity``, ``embed_share``,
            ``unembed_share``, ``neuron_share``, ``cluster_size`` (module docstring).
        character_table: ``[n_complex_irreps, n_classes]`` complex128 (None for a cyclic group, whose characters
            are ``exp(2 pi i k g / n)``).
        class_sizes: ``[n_classes]``.
    """

    group: str
    order: int
    abelian: bool
    d_mlp: int
    names: tuple[str, ...]
    dims: tuple[int, ...]
    real_dims: tuple[int, ...]
    frobenius_schur: tuple[int, ...]
    evidence: dict[str, torch.Tensor]
    character_table: torch.Tensor | None
    class_sizes: torch.Tensor | None

    def to_frame(self) -> pd.DataFrame:
        """One row per real irrep."""
        frame = pd.DataFrame({"irrep": self.names, "dim": self.dims, "real_dim": self.real_dims,
                              "frobenius_schur": self.frobenius_schur})
        for name, values in self.evidence.items():
            frame[name] = values.tolist()
        return frame

    def to_dict(self) -> dict:
        """JSON-safe: one record per irrep."""
        return {"group": self.group, "irreps": self.to_frame().to_dict(orient="records")}

    def records(self, names) -> list[dict]:
        """The irreps called ``names``, in that order, as JSON records: ``name``, ``dim``, ``real_dim``,
        ``trace_similarity`` and the rest of the evidence (``analyze --json``'s ``key_irreps``)."""
        frame = self.to_frame().rename(columns={"irrep": "name"}).set_index("name", drop=False)
        return [frame.loc[name].to_dict() for name in names]

    def character_table_dict(self) -> dict | None:
        """JSON-safe: ``{"class_sizes", "values"}`` with each complex character as ``[re, im]`` pairs (None for a
        cyclic group)."""
        if self.character_table is None:
            return None
        values = [[[round(float(v.real), 12), round(float(v.imag), 12)] for v in row] for row in self.character_table]
        return {"class_sizes": self.class_sizes.tolist(), "values": values}

    def plot(self):
        """The shares per irrep (bars) and the trace similarity."""
        from ..viz.figures import irrep_spectrum_figure

        return irrep_spectrum_figure(self)

    def _summary(self) -> Summary:
        frame = self.to_frame()
        top = frame.iloc[1:].sort_values("logit_share", ascending=False)
        return Summary(f"{self.group}: {len(self.names)} real irreps; the logits' largest: "
                       + ", ".join(f"{r.irrep} {r.logit_share:.1%}" for r in top.head(3).itertuples()),
                       rows=frame, table_caption="the evidence per irrep")


@dataclasses.dataclass(frozen=True, repr=False)
class KeyIrreps(Displayable):
    """The key irreps and the rule's evidence (module docstring).

    Attributes:
        group: the group's name.
        names: the key irreps (empty unless ``confidence == "high"``), in decreasing logit share.
        indices: their indices in the group's irreps.
        confidence: ``"high"``, ``"low"`` or ``"none"``.
        candidates: the prefix the rule found sufficient (or the longest one tried).
        span: the candidates' share of the functions on the group.
        class_share: the share of the answer-centered logits' energy that depends on the input through ``x ∘ y``.
        restricted: the restricted logits' losses at the candidates.
        spectrum: the :class:`IrrepSpectrum` (with ``excluded_delta`` added to its evidence).
        base_train_loss: the model's training loss on the grid.
        reason: one sentence.
    """

    group: str
    names: tuple[str, ...]
    indices: tuple[int, ...]
    confidence: str
    candidates: tuple[str, ...]
    span: float
    class_share: float
    restricted: Measurement | None
    spectrum: IrrepSpectrum
    base_train_loss: float
    reason: str

    def to_frame(self) -> pd.DataFrame:
        """The spectrum's table with ``is_key``."""
        frame = self.spectrum.to_frame()
        frame["is_key"] = frame["irrep"].isin(self.names)
        return frame

    def records(self) -> list[dict]:
        """The key irreps as JSON records (:meth:`IrrepSpectrum.records`)."""
        return self.spectrum.records(self.names)

    def to_dict(self) -> dict:
        """JSON-safe summary."""
        return {"group": self.group, "names": list(self.names), "confidence": self.confidence,
                "candidates": list(self.candidates), "span": self.span, "class_share": self.class_share,
                "reason": self.reason,
                "restricted": self.restricted.to_dict() if self.restricted is not None else None,
                "base_train_loss": self.base_train_loss, "key_irreps": self.records()}

    def plot(self):
        """The evidence per irrep, key irreps marked."""
        return self.spectrum.plot()

    def _summary(self) -> Summary:
        return Summary(f"key irreps of {self.group}: {list(self.names) or 'none'} ({self.confidence} confidence)",
                       status=self.confidence == "high", details=[self.reason], rows=self.to_frame(),
                       table_caption="the evidence per irrep")


def irrep_spectrum(model, task: ModularTask, cache: GridCache | None = None,
                   cluster_threshold: float = CLUSTER_THRESHOLD) -> IrrepSpectrum:
    """Where the model lives among the irreps of its task's group (module docstring)."""
    cache = cache or grid_cache(model, task)
    grid, group = cache.grid, cache.grid.group
    n = grid.n
    chis = characters(group)
    evidence = {
        "logit_share": isotypic_shares(centered(cache.residue_logits, n), group, dim=0),
        "trace_similarity": trace_similarity(cache.residue_logits, group, chis, _centered_sq_on_group(cache)),
        "embed_share": isotypic_shares(cache.number_embeddings(), group, dim=0),
        "unembed_share": isotypic_shares(cache.answer_unembeddings(), group, dim=0),
    }
    evidence["neuron_share"], evidence["cluster_size"] = _neuron_evidence(cache, cluster_threshold)
    irreps = group.irreps
    cyclic = group.family.cyclic_log is not None
    return IrrepSpectrum(group.name, group.order, group.abelian, cache.config.d_mlp, tuple(r.name for r in irreps),
                         tuple(r.dim for r in irreps),
                         tuple(r.real_dim for r in irreps), tuple(r.frobenius_schur for r in irreps), evidence,
                         None if cyclic else group.character_table, None if cyclic else group.class_sizes)


def key_irreps(model, task: ModularTask, cache: GridCache | None = None) -> KeyIrreps:
    """The key irreps of ``model`` by the rule of the module docstring."""
    cache = cache or grid_cache(model, task)
    group = cache.grid.group
    spectrum = irrep_spectrum(model, task, cache)
    irreps = group.irreps
    others = list(range(1, len(irreps)))
    base = cache.full.train_loss
    total = _centered_sq_on_group(cache)
    share = group.order * float(centered(cache.residue_logits, group.order).square().sum()) / total if total else 0.0
    if float(spectrum.evidence["logit_share"].sum()) == 0:
        spectrum.evidence["excluded_delta"] = torch.full((len(irreps),), float("nan"), dtype=torch.float64)
        return KeyIrreps(group.name, (), (), "none", (), 0.0, share, None, spectrum, base,
                         "the logits do not depend on x ∘ y: no irrep carries them")
    order = sorted(others, key=lambda i: -float(spectrum.evidence["logit_share"][i]))
    whole = restricted_measurement(cache, order).loss  # the residue means themselves
    bound = max(SUFFICIENT_LOSS_FACTOR * whole, whole + LOSS_FLOOR)
    prefix, restricted = [], None
    for i in order:
        prefix.append(i)
        restricted = restricted_measurement(cache, prefix)
        if restricted.loss <= bound:
            break
    names = tuple(irreps[i].name for i in prefix)
    span = sum(irreps[i].isotypic_dim for i in prefix) / group.order
    spectrum.evidence["excluded_delta"] = _excluded_deltas(cache, order[: len(prefix) + EXCLUDED_BEYOND],
                                                           len(irreps))
    reason = (f"the {len(prefix)} irrep(s) of largest logit share {list(names)} carry the answer from x ∘ y: their "
              f"restricted loss {restricted.loss:.3g} against {whole:.3g} with every irrep (bound {bound:.3g}); "
              f"they span {span:.1%} of the functions on {group.name}")
    if restricted.accuracy < SUFFICIENT_ACCURACY:
        reason = (f"even every irrep's components along x ∘ y answer only {restricted.accuracy:.1%} of the grid "
                  f"(< {SUFFICIENT_ACCURACY:.0%}): the logits do not carry the answer")
        return KeyIrreps(group.name, (), (), "none", names, span, share, restricted, spectrum, base, reason)
    problems = ([f"only {share:.1%} of the logits' energy depends on x ∘ y (< {CLASS_SHARE:.0%}): a lookup table "
                 "more than a circuit"] if share < CLASS_SHARE else [])
    if span > MAX_KEY_SPAN:
        problems.append(f"they span more than {MAX_KEY_SPAN:.0%} of the functions: spread over the group")
    if problems:
        reason += "; but " + "; ".join(problems) + ": no key irreps"
        return KeyIrreps(group.name, (), (), "low", names, span, share, restricted, spectrum, base, reason)
    return KeyIrreps(group.name, names, tuple(prefix), "high", names, span, share, restricted, spectrum, base, reason)


def restricted_measurement(cache: GridCache, irreps) -> Measurement:
    """Losses of the logits restricted to each answer's mean plus ``irreps``' components along ``s = x ∘ y``: exact
    from the residue means (they depend on ``s`` only)."""
    return residue_measurement(project_classes(cache.residue_logits, cache.grid.group, irreps, const=True), cache.grid)


def excluded_shift(cache: GridCache, irreps) -> torch.Tensor:
    """``[n, p]`` float32: the components of ``irreps`` along ``s`` of each answer's residue means; subtracting row
    ``s`` from the logits of each input of class ``s`` removes them (the excluded logits)."""
    return project_classes(cache.residue_logits, cache.grid.group, irreps).float()


def _excluded_deltas(cache: GridCache, irreps: list[int], total: int) -> torch.Tensor:
    """``[total]`` the training-loss rise when each of ``irreps`` has its components removed from the logits (one
    sweep; NaN for the others)."""
    shifts = [excluded_shift(cache, [i]) for i in irreps]
    nll, count = torch.zeros(len(irreps), dtype=torch.float64), 0
    for piece in cache.chunks():
        logits, labels = piece.logits[piece.train], piece.labels[piece.train]
        for j, shift in enumerate(shifts):
            nll[j] -= label_logprobs(logits - shift.index_select(0, labels), labels).sum()
        count += len(labels)
    out = torch.full((total,), float("nan"), dtype=torch.float64)
    out[torch.tensor(irreps, dtype=torch.long)] = nll / max(count, 1) - cache.full.train_loss
    return out


def _centered_sq_on_group(cache: GridCache) -> float:
    """The answer-centered logits' sum of squares over the grid and the group's answers (``z < n``)."""
    n, p = cache.grid.n, cache.task.p
    if n == p:
        return cache.centered_sq
    total = 0.0
    for piece in cache.chunks():
        wide = piece.logits[:, :n].double()
        total += float(wide.sub_(wide.mean(-1, keepdim=True)).square_().sum())
    return total


def _neuron_evidence(cache: GridCache, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``([n_irreps] variance-weighted share of the readout layer's neuron variance, [n_irreps] cluster sizes)``."""
    shares = neuron_irrep_shares(cache)
    variance = cache.layers[-1].variance
    weights = variance / variance.sum() if float(variance.sum()) > 0 else torch.zeros_like(variance)
    weighted = (shares * weights[:, None]).sum(0)
    best = shares.argmax(1)
    clustered = (shares.max(1).values >= threshold) & (variance > 0)
    sizes = torch.bincount(best[clustered], minlength=shares.shape[1])
    return weighted, sizes


def neuron_irrep_shares(cache: GridCache) -> torch.Tensor:
    """``[d_mlp, n_irreps]`` each readout-layer neuron's share of its variance in each irrep's blocks (``ρ ⊗ 1``,
    ``1 ⊗ ρ``, ``ρ ⊗ ρ``); 0 for the trivial irrep and for a neuron with no variance.

    For the modular operations the blocks are the Fourier 3x3 blocks (:func:`modadd_interp.fourier.frequency_shares`,
    frequency ``k`` is irrep ``"k"``); for other groups, :class:`~modadd_interp.probes.statistics.IrrepNeuronStats`.
    """
    stats, group = cache.layers[-1], cache.grid.group
    if cache.grid.coords.cyclic:
        shares = frequency_shares(stats.blocks, stats.variance)  # [d_mlp, n//2], frequency k = irrep k
        return torch.cat([torch.zeros(len(shares), 1, dtype=shares.dtype), shares], dim=1)
    n = group.order
    energy = (n * group.energy(stats.marginals["x"], dim=0) + n * group.energy(stats.marginals["y"], dim=0)
              + stats.diagonal)  # [n_irreps, d_mlp]
    energy[0] = 0.0
    variance = stats.variance
    return torch.where(variance[None, :] > 0, energy / variance.clamp_min(1e-300)[None, :],
                       torch.zeros_like(energy)).T
