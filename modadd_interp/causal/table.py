"""The paper's ablation table, reproduced on any model by one call.

Rows (each a :class:`Measurement` over the grid). Interventions on the readout (last) layer at the last
position are evaluated exactly in one sweep of the grid's chunks: one on its ``resid_mid`` (head, skip and
MLP ablations) is replayed through the MLP and unembedding (:meth:`GridCache.logits_with_resid_mid`), one on
its MLP activations through ``W_L`` (:meth:`GridCache.logits_with_neurons`). Only the last position matters
for the answer, and in the last layer nothing else reads it. Interventions on earlier layers of a deeper
model change what later layers read, so each runs as one hooked pass (:meth:`GridCache.measure_hooked`).
``tests/test_causal.py`` checks every replayed row against the same intervention run through hooks
(:func:`ablate_heads`, :func:`ablate_skip`, :func:`ablate_mlp`, :func:`project`, ...).

Row names: a one-layer model's rows are named as below; a deeper model's per-layer rows are prefixed with
``"L{layer} "``, and ``"all heads zero-ablated"`` then ablates every layer's heads at once.

* the full model;
* each head zero-ablated (its ``hook_z``), and all heads together;
* the attention skip (``resid_pre`` term of ``resid_mid``) zero-ablated;
* the MLP output, and the MLP skip (``resid_mid`` term of ``resid_post``), zero-ablated;
* the MLP activations at '=' projected onto the key directions of ``W_L`` (the neuron-space
  directions that ``W_L`` maps onto ``cos/sin(w_k c)`` for key ``k``), and onto their nullspace;
* every clustered neuron replaced by its degree-2 trig fit at its cluster frequency;
* the logits restricted to their ``cos/sin(w_k(a+b))`` key components (the restricted loss).

Examples:
    >>> import modadd_interp as mi
    >>> model, task = mi.load()
    >>> table = ablation_table(model, task)        # ~10 s: not run by the doctests  # doctest: +SKIP
    >>> table.to_frame()[["intervention", "test_accuracy"]]    # doctest: +SKIP
                                  intervention  test_accuracy
    0                               full model           1.00
    1                      head 0 zero-ablated           0.82
    2                      head 1 zero-ablated           0.66
    3                      head 2 zero-ablated           0.83
    4                      head 3 zero-ablated           0.76
    5                   all heads zero-ablated           0.01
    6              attention skip zero-ablated           1.00
    7                         MLP zero-ablated           0.07
    8                     MLP skip zero-ablated           1.00
    9          neurons onto W_L key directions           1.00
    10          neurons onto W_L key nullspace           0.07
    11     logits restricted to key components           1.00
    12  clustered neurons replaced by trig fit           1.00
"""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import torch

from ..display import Displayable, Summary
from ..fourier import fourier_transform, freq_rows
from ..hook_names import hook_name
from ..probes import GridCache, NeuronProbe, grid_cache, key_frequencies, probe_neurons
from ..probes.cache import SweepPlan
from ..readout import Measurement
from ..task import ModularTask
from .losses import block_activations, readout_neurons


@dataclasses.dataclass(frozen=True, repr=False)
class AblationTable(Displayable):
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

    def _summary(self) -> Summary:
        frame = self.to_frame()
        worst = frame.loc[frame["test_loss"].idxmax()] if len(frame) else None
        headline = (f"{len(frame)} interventions; the most harmful: {worst['intervention']} (test loss "
                    f"{worst['test_loss']:.3g}, accuracy {worst['accuracy']:.1%})" if worst is not None
                    else "no interventions")
        return Summary(headline, details=[f"a uniform guess scores log p = {self.uniform_loss:.3g}"],
                       rows=frame[["intervention", "test_loss", "accuracy"]])


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
    """Run the paper's ablations on every layer (see the module docstring)."""
    cache = cache or grid_cache(model, task)
    key_freqs = tuple(key_frequencies(model, task, cache=cache).freqs if key_freqs is None else key_freqs)
    neurons = readout_neurons(neurons or probe_neurons(model, task, cache=cache), cache)
    return cache.measure_plans([ablation_table_plan(cache, key_freqs, neurons)])[0]


def ablation_table_plan(cache: GridCache, key_freqs: tuple[int, ...], neurons: NeuronProbe) -> SweepPlan:
    """The replayed rows of :func:`ablation_table` as edits, and how to build the table from them (the hooked rows
    of earlier layers run as their own passes then), to measure in one sweep with other analyses' (``neurons``: the
    readout layer's probe)."""
    n_layers, heads, last = cache.config.n_layers, cache.config.n_heads, cache.last_layer
    rows: dict[str, Measurement] = {"full model": cache.full}
    desc = {"full model": "no intervention"}
    edits, hooked = {}, {}

    def name(layer: int, text: str) -> str:
        return text if n_layers == 1 else f"L{layer} {text}"

    for layer in range(n_layers):
        layer_desc = {
            **{name(layer, f"head {h} zero-ablated"): f"hook_z of head {h} set to 0" for h in range(heads)},
            name(layer, "all heads zero-ablated"): "hook_z of every head set to 0",
            name(layer, "attention skip zero-ablated"): "resid_mid = attn_out: the resid_pre term removed",
            name(layer, "MLP zero-ablated"): "hook_mlp_out set to 0",
            name(layer, "MLP skip zero-ablated"): "resid_post = mlp_out: the resid_mid term removed",
        }
        if n_layers > 1:
            layer_desc = {k: f"layer {layer}: {v}" for k, v in layer_desc.items()}
        desc.update(layer_desc)
        if layer == last:
            edits.update(_replayed_rows(cache, name))
        else:
            hooked.update(_hooked_rows(layer, heads, name))
    if n_layers > 1:
        desc["all heads zero-ablated"] = "hook_z of every head of every layer set to 0"
        hooked["all heads zero-ablated"] = [hook for layer in range(n_layers) for hook in
                                            _zero_hooks(hook_name("z", layer))]
    if key_freqs:
        directions = wl_key_directions(cache.w_logit[:, : cache.grid.n], key_freqs)
        basis, _ = torch.linalg.qr(directions)  # [d_mlp, r] orthonormal
        basis32 = basis.float()
        basis_logits = cache.neuron_logits(basis32.T)  # [r, p]: each direction's logits
        b_out = cache.weights[f"blocks.{last}.mlp.b_out"]

        # neurons n -> n B B^T changes the logits by rank r: (n B) (B^T W_L); the rest of the MLP's output goes
        def onto(piece):  # direct path + b_out + the kept part
            return cache.logits_with_mlp_out(piece, b_out) + (piece.neurons @ basis32) @ basis_logits

        edits["neurons onto W_L key directions"] = onto
        edits["neurons onto W_L key nullspace"] = lambda piece: piece.logits - (piece.neurons @ basis32) @ basis_logits
        desc["neurons onto W_L key directions"] = (
            f"readout-layer MLP activations at the last position projected onto the {directions.shape[1]} "
            "directions W_L reads as key cos/sin")
        desc["neurons onto W_L key nullspace"] = "MLP activations projected onto the orthogonal complement"
    clustered = torch.nonzero(neurons.cluster_of).flatten()
    if len(clustered):

        def trig_fit(piece):
            values = piece.neurons.double().clone()
            values[:, clustered] = block_activations(cache, piece, clustered, neurons.cluster_of[clustered])
            return cache.logits_with_neurons(piece, values)

        edits["clustered neurons replaced by trig fit"] = trig_fit
        desc["clustered neurons replaced by trig fit"] = (
            f"{len(clustered)} clustered readout-layer neurons replaced by their degree-2 trig polynomial")
    if key_freqs:
        desc["logits restricted to key components"] = "only each output's mean plus cos/sin(w_k s) for key k"

    def build(measured: dict) -> AblationTable:
        rows.update(measured)
        rows.update({key: cache.measure_hooked(hooks) for key, hooks in hooked.items()})
        if key_freqs:
            rows["logits restricted to key components"] = cache.restricted(key_freqs)
        order = [k for k in desc if k in rows and not k.startswith(("neurons onto", "logits restricted", "clustered"))]
        order += ["neurons onto W_L key directions", "neurons onto W_L key nullspace",
                  "logits restricted to key components", "clustered neurons replaced by trig fit"]
        return AblationTable({k: rows[k] for k in order if k in rows}, desc, math.log(cache.task.p))

    return SweepPlan(edits, build)


def _replayed_rows(cache: GridCache, name) -> dict:
    """The readout layer's head, skip and MLP ablations, replayed from its ``resid_mid`` at the last position."""
    last = cache.last_layer
    b_o = cache.weights[f"blocks.{last}.attn.b_O"]

    memo: dict = {}

    def heads(piece):  # [m, n_heads, d_model], once per chunk for all the rows below
        if memo.get("piece") is not piece:
            memo.update(piece=piece, heads=cache.head_outputs(piece))
        return memo["heads"]

    def resid_pre(piece):  # resid_mid = resid_pre + sum_h z_h W_O[h] + b_O
        return piece.resid_mid - heads(piece).sum(1) - b_o

    edits = {name(last, f"head {h} zero-ablated"): (lambda piece, h=h: cache.logits_with_resid_mid(
        piece, -heads(piece)[:, h])) for h in range(cache.config.n_heads)}
    edits[name(last, "all heads zero-ablated")] = lambda piece: cache.logits_with_resid_mid(
        piece, -heads(piece).sum(1))
    edits[name(last, "attention skip zero-ablated")] = lambda piece: cache.logits_with_resid_mid(
        piece, -resid_pre(piece))
    # logits = direct path (unembed of resid_mid) + the MLP output's logits: both rows are one of the two
    b_u = cache.weights["unembed.b_U"][cache.grid.answer_order]
    edits[name(last, "MLP zero-ablated")] = cache.direct_logits
    edits[name(last, "MLP skip zero-ablated")] = lambda piece: piece.logits - cache.direct_logits(piece) + b_u
    return edits


def _zero_hooks(hook: str, index: tuple = ()) -> list:
    def zero(act: torch.Tensor) -> torch.Tensor:
        out = act.clone()
        out[(slice(None), *index)] = 0
        return out

    return [(hook, zero)]


def _hooked_rows(layer: int, heads: int, name) -> dict[str, list]:
    """An earlier layer's ablations as hook lists (run as real passes: later layers read their effect)."""
    z = hook_name("z", layer)
    rows = {name(layer, f"head {h} zero-ablated"): _zero_hooks(z, (slice(None), h)) for h in range(heads)}
    rows[name(layer, "all heads zero-ablated")] = _zero_hooks(z)
    rows[name(layer, "MLP zero-ablated")] = _zero_hooks(hook_name("mlp_out", layer))
    seen: dict[str, torch.Tensor] = {}

    def keeper(key):
        def record(act):
            seen[key] = act.detach()

        return record

    def minus(key):
        return lambda act: act - seen[key]

    rows[name(layer, "attention skip zero-ablated")] = [
        (hook_name("resid_pre", layer), keeper("pre")), (hook_name("attn_out", layer), minus("pre"))]
    rows[name(layer, "MLP skip zero-ablated")] = [
        (hook_name("resid_mid", layer), keeper("mid")), (hook_name("mlp_out", layer), minus("mid"))]
    return rows
