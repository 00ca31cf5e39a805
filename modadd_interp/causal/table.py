"""The paper's ablation table, reproduced on any model by one call.

Rows (each a :class:`Measurement` over the grid; rows that change only the MLP activations at
'=' are evaluated exactly from the grid cache, see :meth:`GridCache.logits_with_neurons`):

* the full model;
* each head zero-ablated, and all heads together;
* the attention skip (``resid_pre`` term of ``resid_mid``) zero-ablated;
* the MLP activations at '=' projected onto the key directions of ``W_L`` (the neuron-space
  directions that ``W_L`` maps onto ``cos/sin(w_k c)`` for key ``k``), and onto their nullspace;
* every clustered neuron replaced by its degree-2 trig fit at its cluster frequency;
* the logits restricted to their ``cos/sin(w_k(a+b))`` key components (the restricted loss).

Examples:
    >>> table = ablation_table(model, task)        # doctest: +SKIP
    >>> table.to_frame()
"""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import torch

from ..fourier import fourier_transform, freq_rows, trig_terms
from ..probes import GridCache, NeuronProbe, grid_cache, key_frequencies, probe_neurons
from ..readout import restricted_logits
from ..task import ModularTask
from .interventions import ablate_heads, ablate_skip
from .measure import Measurement, answer_logits


@dataclasses.dataclass(frozen=True)
class AblationTable:
    """Named interventions and the model's losses under each.

    Attributes:
        rows: ``{name: Measurement}`` in the table's order.
        descriptions: ``{name: what the intervention does}``.
        uniform_loss: ``log p``, the loss of a uniform guess.
    """

    rows: dict[str, Measurement]
    descriptions: dict[str, str]
    uniform_loss: float

    def to_frame(self) -> pd.DataFrame:
        """One row per intervention."""
        return pd.DataFrame([{"intervention": k, "description": self.descriptions[k], **m.to_dict()}
                             for k, m in self.rows.items()])

    def to_dict(self) -> dict:
        """JSON-safe fields."""
        return {"uniform_loss": self.uniform_loss,
                "rows": {k: {"description": self.descriptions[k], **m.to_dict()} for k, m in self.rows.items()}}

    def plot(self):
        """Bars of the loss under each intervention (log scale), with the uniform loss."""
        from ..viz.figures import ablation_figure

        return ablation_figure(self)


def wl_key_directions(w_logit: torch.Tensor, freqs: tuple[int, ...]) -> torch.Tensor:
    """``[d_mlp, 2K]`` neuron-space directions that ``W_L`` reads onto ``cos/sin(w_k c)``, ``k`` key."""
    p = w_logit.shape[1]
    coeffs = fourier_transform(w_logit, dim=1)  # [d_mlp, p]
    rows = [r for k in freqs for r in freq_rows(p, k)]
    return coeffs[:, rows]


def trig_fit_activations(cache: GridCache, neurons: NeuronProbe) -> torch.Tensor:
    """``[p*p, d_mlp]``: clustered neurons replaced by their trig fit, the rest unchanged."""
    values = cache.neurons.double().clone()
    cluster = neurons.cluster_of
    for k in cluster.unique().tolist():
        if k == 0:
            continue
        members = torch.nonzero(cluster == k).flatten()
        values[:, members] = trig_terms(cache.task.p, k) @ neurons.trig_coefs[members].T
    return values


def ablation_table(
    model, task: ModularTask, key_freqs: tuple[int, ...] | None = None, cache: GridCache | None = None,
    neurons: NeuronProbe | None = None,
) -> AblationTable:
    """Run the paper's ablations (see the module docstring)."""
    cache = cache or grid_cache(model, task)
    key_freqs = tuple(key_frequencies(model, task, cache=cache).freqs if key_freqs is None else key_freqs)
    neurons = neurons or probe_neurons(model, task, cache=cache)
    logits = cache.answer_logits
    rows: dict[str, Measurement] = {"full model": Measurement.of(logits, task)}
    desc = {"full model": "no intervention"}
    heads = cache.config.n_heads
    for h in range(heads):
        with ablate_heads(model, [h]):
            rows[f"head {h} zero-ablated"] = Measurement.of(answer_logits(model, task), task)
        desc[f"head {h} zero-ablated"] = f"hook_z of head {h} set to 0 at every position"
    with ablate_heads(model, list(range(heads))):
        rows["all heads zero-ablated"] = Measurement.of(answer_logits(model, task), task)
    desc["all heads zero-ablated"] = "hook_z of every head set to 0"
    with ablate_skip(model, "attn"):
        rows["attention skip zero-ablated"] = Measurement.of(answer_logits(model, task), task)
    desc["attention skip zero-ablated"] = "resid_mid = attn_out: the resid_pre term removed"
    if key_freqs:
        directions = wl_key_directions(cache.w_logit, key_freqs)
        basis, _ = torch.linalg.qr(directions)
        onto = cache.neurons.double() @ basis @ basis.T
        rows["neurons onto W_L key directions"] = Measurement.of(cache.logits_with_neurons(onto), task)
        rows["neurons onto W_L key nullspace"] = Measurement.of(
            cache.logits_with_neurons(cache.neurons.double() - onto), task)
        desc["neurons onto W_L key directions"] = (
            f"MLP activations at '=' projected onto the {directions.shape[1]} directions W_L reads as key cos/sin")
        desc["neurons onto W_L key nullspace"] = "MLP activations at '=' projected onto the orthogonal complement"
        rows["logits restricted to key components"] = Measurement.of(restricted_logits(logits, list(key_freqs)), task)
        desc["logits restricted to key components"] = "only each output's mean plus cos/sin(w_k(a+b)) for key k"
    if neurons.clusters():
        rows["clustered neurons replaced by trig fit"] = Measurement.of(
            cache.logits_with_neurons(trig_fit_activations(cache, neurons)), task)
        desc["clustered neurons replaced by trig fit"] = (
            f"{int((neurons.cluster_of > 0).sum())} clustered neurons replaced by their degree-2 trig polynomial")
    return AblationTable(rows, desc, math.log(task.p))
