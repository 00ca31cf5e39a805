"""The paper's Fourier losses: restricted, excluded, and neuron-cluster ablations, in float64.

* **Restricted loss**: keep only each output's grid mean plus its ``cos/sin(w_k(a+b))``
  components for the key frequencies (the bias correction is the kept mean).
* **Excluded loss**: remove those components, on the training split; per key frequency and
  for all of them together.
* **Cluster ablation**: mean-ablate each key frequency's neuron cluster.
* **Key-only neurons**: replace every neuron's activation over the grid by its constant plus
  its key-frequency 3x3 Fourier blocks, dropping everything else.

Neuron-level interventions act on the readout (last) layer's activations at the last position and are
evaluated exactly from the
grid's chunks (:meth:`GridCache.logits_with_neurons`); the tests check them against the same
interventions run through hooks (``causal.ablate_neurons``, ``causal.replace_activations``).
The restricted logits depend only on ``(a+b) mod p`` and are measured from the residue means.

Examples:
    >>> import modadd_interp as mi
    >>> model, task = mi.load()
    >>> fl = fourier_losses(model, task)           # ~10 s: not run by the doctests  # doctest: +SKIP
    >>> fl.restricted.test_loss, fl.excluded_all.train_loss    # the full model's: 3.4e-07  # doctest: +SKIP
    (4.4e-08, 6.46)
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from ..display import Displayable, Summary
from ..fourier import block_values
from ..probes import GridCache, NeuronProbe, grid_cache, key_frequencies, probe_neurons
from ..probes.cache import GridChunk, SweepPlan
from ..readout import Measurement
from ..task import ModularTask


@dataclasses.dataclass(frozen=True, repr=False)
class FourierLosses(Displayable):
    """Losses of the model, restricted to and excluding its key frequencies.

    Attributes:
        key_freqs: the frequencies used.
        full: the unmodified model.
        restricted: logits restricted to the key frequencies.
        excluded: ``{k: Measurement}`` excluding each key frequency alone.
        excluded_all: excluding all key frequencies.
        cluster_ablated: ``{k: Measurement}`` with frequency ``k``'s neuron cluster mean-ablated.
        key_only_neurons: neurons replaced by their key-frequency components.
    """

    key_freqs: tuple[int, ...]
    full: Measurement
    restricted: Measurement
    excluded: dict[int, Measurement]
    excluded_all: Measurement
    cluster_ablated: dict[int, Measurement]
    key_only_neurons: Measurement

    def to_frame(self) -> pd.DataFrame:
        """One row per measurement."""
        rows = [("full model", self.full), ("restricted to key freqs", self.restricted),
                ("excluding all key freqs", self.excluded_all),
                ("neurons: key-frequency components only", self.key_only_neurons)]
        rows += [(f"excluding freq {k}", m) for k, m in self.excluded.items()]
        rows += [(f"cluster {k} mean-ablated", m) for k, m in self.cluster_ablated.items()]
        return pd.DataFrame([{"measurement": name, **m.to_dict()} for name, m in rows])

    def to_dict(self) -> dict:
        """JSON-safe; ``excluded`` maps each key frequency to its excluded *training* loss."""
        return {
            "key_freqs": list(self.key_freqs),
            "full": self.full.to_dict(),
            "restricted": self.restricted.to_dict(),
            "excluded": {str(k): m.train_loss for k, m in self.excluded.items()},
            "excluded_all": self.excluded_all.to_dict(),
            "cluster_ablated": {str(k): m.to_dict() for k, m in self.cluster_ablated.items()},
            "key_only_neurons": self.key_only_neurons.to_dict(),
        }

    def _summary(self) -> Summary:
        return Summary(f"restricted to k = {list(self.key_freqs)}: test loss {self.restricted.test_loss:.3g}; "
                       f"excluding them: train loss {self.excluded_all.train_loss:.3g}",
                       details=[f"the full model: train loss {self.full.train_loss:.3g}, test loss "
                                f"{self.full.test_loss:.3g}"],
                       rows=self.to_frame()[["measurement", "train_loss", "test_loss", "accuracy"]])


def readout_neurons(neurons: NeuronProbe, cache: GridCache) -> NeuronProbe:
    """The readout (last) layer's part of a neuron probe: the neurons the exact logit edits act on."""
    return neurons.select(cache.last_layer) if neurons.layers != [cache.last_layer] else neurons


def block_activations(cache: GridCache, piece: GridChunk, neurons: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """``[n, len(neurons)]``: the given neurons' grid mean plus their 3x3 block of ``freqs`` (one per neuron).

    That is each neuron's projection onto the degree-2 trig terms of its frequency (its trig fit),
    evaluated on the chunk's inputs.
    """
    blocks = cache.neuron_blocks[neurons, freqs - 1]  # [m, 3, 3]
    values = block_values(blocks, freqs, piece.a, cache.grid.n)  # [rows, n, m]
    return values.reshape(-1, len(neurons)) + cache.neuron_mean[neurons]


def key_component_activations(cache: GridCache, piece: GridChunk, freqs: tuple[int, ...]) -> torch.Tensor:
    """``[m, d_mlp]``: each readout-layer neuron's grid mean plus its key-frequency 3x3 blocks, on the chunk."""
    n, d_mlp = cache.grid.n, cache.config.d_mlp
    out = cache.neuron_mean.expand(len(piece.labels), d_mlp).clone()
    for k in freqs:
        out += block_values(cache.neuron_blocks[:, k - 1], torch.full((d_mlp,), k), piece.a, n).reshape(-1, d_mlp)
    return out


def fourier_losses(
    model, task: ModularTask, key_freqs: tuple[int, ...] | None = None, cache: GridCache | None = None,
    neurons: NeuronProbe | None = None,
) -> FourierLosses:
    """Restricted, excluded and cluster-ablation losses (see the module docstring), in one sweep of the grid."""
    cache = cache or grid_cache(model, task)
    if key_freqs is None:
        key_freqs = key_frequencies(model, task, cache=cache).freqs
    neurons = readout_neurons(neurons or probe_neurons(model, task, cache=cache), cache)
    return cache.measure_plans([fourier_losses_plan(cache, tuple(key_freqs), neurons)])[0]


def fourier_losses_plan(cache: GridCache, key_freqs: tuple[int, ...], neurons: NeuronProbe) -> SweepPlan:
    """The edits of :func:`fourier_losses` and how to read them (``neurons``: the readout layer's probe), to measure
    in one sweep with other analyses' (:meth:`GridCache.measure_plans`)."""
    freqs = list(key_freqs)
    clusters = {k: torch.tensor(v) for k, v in neurons.clusters().items() if k in key_freqs}

    def ablate(piece: GridChunk, members: torch.Tensor) -> torch.Tensor:
        # only the cluster's activations change: (mean - acts) through W_L's rows of the cluster
        delta = cache.neuron_mean[members].float() - piece.neurons[:, members]
        return piece.logits + cache.neuron_logits(delta, members)

    edits = {("excluded", k): cache.excluding([k]) for k in freqs}
    edits["excluded_all"] = cache.excluding(freqs)
    edits.update({("cluster", k): (lambda piece, m=m: ablate(piece, m)) for k, m in clusters.items()})
    edits["key_only"] = lambda piece: cache.logits_with_neurons(piece, key_component_activations(cache, piece,
                                                                                                  key_freqs))

    def build(measured: dict) -> FourierLosses:
        return FourierLosses(
            key_freqs=tuple(key_freqs),
            full=cache.full,
            restricted=cache.restricted(freqs),
            excluded={k: measured[("excluded", k)] for k in freqs},
            excluded_all=measured["excluded_all"],
            cluster_ablated={k: measured[("cluster", k)] for k in clusters},
            key_only_neurons=measured["key_only"],
        )

    return SweepPlan(edits, build)
