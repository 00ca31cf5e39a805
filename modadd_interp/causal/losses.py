"""The paper's Fourier losses: restricted, excluded, and neuron-cluster ablations, in float64.

* **Restricted loss**: keep only each output's grid mean plus its ``cos/sin(w_k(a+b))``
  components for the key frequencies (the bias correction is the kept mean).
* **Excluded loss**: remove those components, on the training split; per key frequency and
  for all of them together.
* **Cluster ablation**: mean-ablate each key frequency's neuron cluster.
* **Key-only neurons**: replace every neuron's activation over the grid by its constant plus
  its key-frequency 3x3 Fourier blocks, dropping everything else.

Neuron-level interventions act on the activations at '=' and are evaluated exactly from the
grid cache (:meth:`GridCache.logits_with_neurons`); the tests check them against the same
interventions run through hooks (``causal.ablate_neurons``, ``causal.replace_activations``).

Examples:
    >>> fl = fourier_losses(model, task)           # doctest: +SKIP
    >>> fl.restricted.test_loss, fl.excluded_all.train_loss
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from ..fourier import fourier_transform_2d, freq_rows, inverse_fourier_transform
from ..probes import GridCache, NeuronProbe, grid_cache, key_frequencies, probe_neurons
from ..readout import excluded_logits, restricted_logits
from ..task import ModularTask
from .measure import Measurement


@dataclasses.dataclass(frozen=True)
class FourierLosses:
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


def key_component_activations(grid_acts: torch.Tensor, freqs: tuple[int, ...]) -> torch.Tensor:
    """Keep each neuron's mean and its key-frequency 3x3 blocks over the grid.

    Args:
        grid_acts: ``[p, p, n]``.

    Returns:
        ``[p*p, n]`` the projected activations in grid order.
    """
    p = grid_acts.shape[0]
    coeffs = fourier_transform_2d(grid_acts.double())
    keep = torch.zeros(p, dtype=torch.bool)
    keep[0] = True
    for k in freqs:
        keep[freq_rows(p, k)] = True
    mask = (keep[:, None] & keep[None, :]).to(torch.float64)
    kept = coeffs * mask[..., None]
    return inverse_fourier_transform(inverse_fourier_transform(kept, 0), 1).reshape(p * p, -1)


def fourier_losses(
    model, task: ModularTask, key_freqs: tuple[int, ...] | None = None, cache: GridCache | None = None,
    neurons: NeuronProbe | None = None,
) -> FourierLosses:
    """Restricted, excluded and cluster-ablation losses (see the module docstring)."""
    cache = cache or grid_cache(model, task)
    if key_freqs is None:
        key_freqs = key_frequencies(model, task, cache=cache).freqs
    neurons = neurons or probe_neurons(model, task, cache=cache)
    logits = cache.answer_logits
    freqs = list(key_freqs)
    clusters = neurons.clusters()
    cluster_ablated = {}
    for k in key_freqs:
        if clusters.get(k):
            ablated = cache.neurons.clone()
            ablated[:, clusters[k]] = cache.neurons[:, clusters[k]].mean(0)
            cluster_ablated[k] = Measurement.of(cache.logits_with_neurons(ablated), task)
    key_only = Measurement.of(cache.logits_with_neurons(key_component_activations(cache.neuron_grid, key_freqs)),
                              task)
    return FourierLosses(
        key_freqs=tuple(key_freqs),
        full=Measurement.of(logits, task),
        restricted=Measurement.of(restricted_logits(logits, freqs), task),
        excluded={k: Measurement.of(excluded_logits(logits, [k]), task) for k in key_freqs},
        excluded_all=Measurement.of(excluded_logits(logits, freqs), task),
        cluster_ablated=cluster_ablated,
        key_only_neurons=key_only,
    )
