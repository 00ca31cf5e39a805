"""The paper's ablation table, reproduced on any model by one call.

Rows (each a :class:`Measurement` over the grid), all evaluated exactly in one sweep of the grid's
chunks: an intervention at '=' on ``resid_mid`` (the head and skip ablations) is replayed through the
MLP and unembedding (:meth:`GridCache.logits_with_resid_mid`), one on the MLP activations through
``W_L`` (:meth:`GridCache.logits_with_neurons`). Only '=' matters for the answer: attention reads the
embeddings, which none of these change. ``tests/test_causal.py`` checks every row against the same
intervention run through hooks (:func:`ablate_heads`, :func:`ablate_skip`, :func:`project`, ...).

* the full model;
* each head zero-ablated (its ``hook_z``), and all heads together;
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

from ..fourier import fourier_transform, freq_rows
from ..probes import GridCache, NeuronProbe, grid_cache, key_frequencies, probe_neurons
from ..readout import Measurement
from ..task import ModularTask
from .losses import block_activations


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


def ablation_table(
    model, task: ModularTask, key_freqs: tuple[int, ...] | None = None, cache: GridCache | None = None,
    neurons: NeuronProbe | None = None,
) -> AblationTable:
    """Run the paper's ablations (see the module docstring)."""
    cache = cache or grid_cache(model, task)
    key_freqs = tuple(key_frequencies(model, task, cache=cache).freqs if key_freqs is None else key_freqs)
    neurons = neurons or probe_neurons(model, task, cache=cache)
    rows: dict[str, Measurement] = {"full model": cache.full}
    desc = {"full model": "no intervention"}
    heads = cache.config.n_heads
    w = cache.weights
    resid_pre = (w["embed.W_E"][task.eq_token] + w["pos_embed.W_pos"][-1]).double()  # the same at every input
    edits = {f"head {h} zero-ablated": (lambda piece, h=h: cache.logits_with_resid_mid(
        piece, -cache.head_outputs(piece)[:, h])) for h in range(heads)}
    desc.update({f"head {h} zero-ablated": f"hook_z of head {h} set to 0" for h in range(heads)})
    edits["all heads zero-ablated"] = lambda piece: cache.logits_with_resid_mid(
        piece, -cache.head_outputs(piece).sum(1))
    desc["all heads zero-ablated"] = "hook_z of every head set to 0"
    edits["attention skip zero-ablated"] = lambda piece: cache.logits_with_resid_mid(piece, -resid_pre)
    desc["attention skip zero-ablated"] = "resid_mid = attn_out: the resid_pre term removed"
    if key_freqs:
        directions = wl_key_directions(cache.w_logit, key_freqs)
        basis, _ = torch.linalg.qr(directions)

        def onto(piece):
            return piece.neurons.double() @ basis @ basis.T

        edits["neurons onto W_L key directions"] = lambda piece: cache.logits_with_neurons(piece, onto(piece))
        edits["neurons onto W_L key nullspace"] = lambda piece: cache.logits_with_neurons(
            piece, piece.neurons.double() - onto(piece))
        desc["neurons onto W_L key directions"] = (
            f"MLP activations at '=' projected onto the {directions.shape[1]} directions W_L reads as key cos/sin")
        desc["neurons onto W_L key nullspace"] = "MLP activations at '=' projected onto the orthogonal complement"
    clustered = torch.nonzero(neurons.cluster_of).flatten()
    if len(clustered):

        def trig_fit(piece):
            values = piece.neurons.double().clone()
            values[:, clustered] = block_activations(cache, piece, clustered, neurons.cluster_of[clustered])
            return cache.logits_with_neurons(piece, values)

        edits["clustered neurons replaced by trig fit"] = trig_fit
        desc["clustered neurons replaced by trig fit"] = (
            f"{len(clustered)} clustered neurons replaced by their degree-2 trig polynomial")
    rows.update(cache.measure(edits))
    if key_freqs:
        rows["logits restricted to key components"] = cache.restricted(key_freqs)
        desc["logits restricted to key components"] = "only each output's mean plus cos/sin(w_k(a+b)) for key k"
    order = [*list(rows)[: heads + 3], "neurons onto W_L key directions", "neurons onto W_L key nullspace",
             "logits restricted to key components", "clustered neurons replaced by trig fit"]
    return AblationTable({k: rows[k] for k in order if k in rows}, desc, math.log(task.p))
