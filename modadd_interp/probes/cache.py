"""One hooked pass over the grid, reduced to the statistics every probe reads.

The pass runs the grid in chunks of whole rows ``a`` and keeps only statistics whose size
does not grow with the grid: the float64 losses per split, the residue means of the logits
(``[p, p]``, see :mod:`modadd_interp.readout`), every neuron's 3x3 frequency blocks
(:class:`modadd_interp.fourier.BlockSpectrum`), and the attention pattern of '=' (``[p*p,
n_heads, n_ctx]``, small). Analyses that need every input's logits or activations at '=' again
(the excluded losses, the interventions at '=') read them chunk by chunk through
:meth:`GridCache.chunks` and :meth:`GridCache.measure`: from memory when they fit in
:data:`KEEP_BYTES` (the paper's sizes at p = 113: 45 MB), otherwise by re-running the model, so
that memory stays bounded for any p. The model must not change while the cache is in use.

Examples:
    >>> cache = grid_cache(model, task)                          # doctest: +SKIP
    >>> cache.full.test_loss, cache.residue_logits.shape           # [p, p]
    >>> cache.measure({"no neuron 3": lambda c: cache.logits_with_neurons(c, zero_3(c.neurons))})
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator, Sequence

import torch

from .. import tl_adapter
from ..config import ModelConfig
from ..fourier import BlockSpectrum
from ..grid import DEFAULT_CHUNK, GridRecorder, check_compatible
from ..readout import Measurement, MeasurementSum, residue_measurement, residue_projection, residue_sums
from ..task import ModularTask

NEURONS = "blocks.0.mlp.hook_post"
PATTERN = "blocks.0.attn.hook_pattern"
Z = "blocks.0.attn.hook_z"
RESID_MID = "blocks.0.hook_resid_mid"
SWEPT = [NEURONS, Z, RESID_MID]  # what a sweep's chunks carry, at '='
KEEP_BYTES = 3 * 2**29
"""The sweeps' float32 activations at '=' are kept in memory up to this size (1.5 GiB; the paper's
architecture at p = 509: 1.46 GB, kept; p = 1009: 5.8 GB, re-run per sweep)."""
# copies, not views: a view would keep the whole [n, n_ctx, ...] activation alive
_SELECT = {NEURONS: lambda a: a[:, -1].clone(), Z: lambda a: a[:, -1].clone(),
           RESID_MID: lambda a: a[:, -1].clone(), PATTERN: lambda a: a[:, :, -1, :].clone()}


@dataclasses.dataclass(frozen=True)
class GridChunk:
    """The grid's inputs ``rows`` (a slice of whole rows ``a``): answer logits and activations at '='.

    Attributes:
        rows: the slice of input indices ``i = a * p + b``.
        logits: ``[n, p]`` float64 answer logits at '='.
        neurons: ``[n, d_mlp]`` float32 MLP activations at '='.
        z: ``[n, n_heads, d_head]`` float32 attention head outputs (``hook_z``) at '='.
        resid_mid: ``[n, d_model]`` float32 residual stream between attention and MLP at '='.
        labels, train: ``[n]`` the answers and the training-split mask.
        a: ``[n // p]`` the rows ``a`` the chunk covers.
    """

    rows: slice
    logits: torch.Tensor
    neurons: torch.Tensor
    z: torch.Tensor
    resid_mid: torch.Tensor
    labels: torch.Tensor
    train: torch.Tensor
    a: torch.Tensor


class GridCache:
    """What the probes read from a model: weights plus the statistics of one grid pass.

    Attributes:
        task, config: the task and the model's architecture.
        weights: canonical float32 weight copies (see :mod:`modadd_interp.config`).
        full: the model's float64 losses and accuracies per split.
        residue_logits: ``[p, p]`` float64 ``R[s, c]``, the mean answer logit ``c`` over inputs with
            ``a + b = s (mod p)``.
        centered_sq: the sum over the grid of the squared output-centered answer logits.
        train_miss: ``[p]`` per residue, the sum over training inputs of ``1 - P(label)``.
        neuron_blocks: ``[d_mlp, p//2, 3, 3]`` each neuron's centered 3x3 frequency blocks.
        neuron_mean, neuron_variance: ``[d_mlp]`` mean and centered sum of squares over the grid.
        neuron_active: ``[d_mlp]`` fraction of the grid where each neuron's activation is positive.
        attention: ``[p*p, n_heads, n_ctx]`` float32 attention pattern of the '=' query.
    """

    def __init__(self, model, task: ModularTask, recorder: GridRecorder | None = None,
                 chunk: int = DEFAULT_CHUNK) -> None:
        self.config: ModelConfig = check_compatible(model, task)
        self.task, self.weights, self._model, self._chunk = task, tl_adapter.canonical_weights(model), model, chunk
        cfg = self.config
        p, d_mlp = task.p, cfg.d_mlp
        keep = task.n_inputs * (p + d_mlp + cfg.n_heads * cfg.d_head + cfg.d_model) * 4 <= KEEP_BYTES
        total, spectrum = MeasurementSum(), BlockSpectrum(p, d_mlp)
        sums = torch.zeros(p, p, dtype=torch.float64)
        miss = torch.zeros(p, dtype=torch.float64)
        active = torch.zeros(d_mlp, dtype=torch.float64)
        centered_sq, kept, attention = 0.0, [], []
        with _recording(model, recorder, [*SWEPT, PATTERN]) as rec:
            for rows, logits, acts in rec.chunks(task, chunk):
                piece = self._chunk_of(rows, logits, acts)
                logprob = total.add(piece.logits, piece.labels, piece.train)
                sums += residue_sums(piece.logits, piece.labels, p)
                miss.index_add_(0, piece.labels[piece.train], -torch.expm1(logprob[piece.train]))
                centered_sq += float(((piece.logits - piece.logits.mean(-1, keepdim=True)) ** 2).sum())
                spectrum.add(piece.neurons.reshape(len(piece.a), p, d_mlp), piece.a)
                active += (piece.neurons > 0).sum(0)
                attention.append(acts[PATTERN])
                if keep:
                    kept.append(dataclasses.replace(piece, logits=piece.logits.float()))
        self.full: Measurement = total.result()
        self.residue_logits = sums / p
        self.centered_sq, self.train_miss = centered_sq, miss
        self.neuron_blocks, self.neuron_mean, self.neuron_variance = (
            spectrum.blocks(), spectrum.mean, spectrum.variance)
        self.neuron_active = active / task.n_inputs
        self.attention = torch.cat(attention)
        self._kept: list[GridChunk] | None = kept if keep else None

    def _chunk_of(self, rows: slice, logits: torch.Tensor, acts: dict[str, torch.Tensor]) -> GridChunk:
        p = self.task.p
        return GridChunk(rows, self.task.final_logits(logits), acts[NEURONS], acts[Z], acts[RESID_MID],
                         self.task.labels[rows], self.task.train_mask[rows],
                         torch.arange(rows.start // p, rows.stop // p))

    # ------------------------------------------------------------ sweeps
    def chunks(self) -> Iterator[GridChunk]:
        """The grid chunk by chunk (from memory, or by re-running the model with its weights unchanged)."""
        if self._kept is not None:
            for piece in self._kept:
                yield dataclasses.replace(piece, logits=piece.logits.double())
            return
        with _recording(self._model, None, SWEPT) as rec:
            for rows, logits, acts in rec.chunks(self.task, self._chunk):
                yield self._chunk_of(rows, logits, acts)

    def measure(self, edits: dict[str, Callable[[GridChunk], torch.Tensor]]) -> dict[str, Measurement]:
        """Measure edited logits in one sweep: ``edits[name](chunk)`` returns the chunk's ``[n, p]`` logits."""
        totals = {name: MeasurementSum() for name in edits}
        if edits:
            for piece in self.chunks():
                for name, edit in edits.items():
                    totals[name].add(edit(piece).double(), piece.labels, piece.train)
        return {name: total.result() for name, total in totals.items()}

    def restricted(self, freqs) -> Measurement:
        """Losses of the paper's restricted logits: each output's grid mean plus its ``cos/sin(w_k(a+b))``
        components, ``k in freqs``. They depend only on ``(a+b) mod p``: exact from the residue means, no sweep."""
        return residue_measurement(residue_projection(self.residue_logits, freqs, const=True), self.task)

    def excluding(self, freqs) -> Callable[[GridChunk], torch.Tensor]:
        """An edit for :meth:`measure`: the chunk's logits without their ``cos/sin(w_k(a+b))`` components,
        ``k in freqs`` (the paper's excluded logits)."""
        shift = residue_projection(self.residue_logits, freqs)
        return lambda piece: piece.logits - shift[piece.labels]

    def logits_with_neurons(self, piece: GridChunk, neurons: torch.Tensor) -> torch.Tensor:
        """``[n, p]`` float64 answer logits of the chunk with its MLP activations at '=' replaced by ``neurons``.

        Exact for this architecture: after the MLP there is no nonlinearity (no LayerNorm, one
        layer), so the activations at '=' reach the logits only through ``W_L = W_out W_U``.
        It equals running the model under ``causal.replace_activations`` (tested), without a pass.
        The change is computed in float32, like the model's own forward pass.
        """
        return piece.logits + ((neurons.float() - piece.neurons) @ self._w_logit32).double()

    @functools.cached_property
    def _w_logit32(self) -> torch.Tensor:
        return self.w_logit.float()

    def logits_with_resid_mid(self, piece: GridChunk, delta: torch.Tensor) -> torch.Tensor:
        """``[n, p]`` float64 answer logits of the chunk with ``delta`` added to the residual stream at '='
        between attention and MLP (``resid_mid``), replayed through the MLP and the unembedding.

        Exact for this architecture: in one layer without LayerNorm, the '=' logits are
        ``unembed(x + MLP(x))`` with ``x`` that residual, and nothing else reads it. This is how the
        ablation table evaluates head and skip ablations at '=' (only '=' matters: attention reads
        the embeddings, which the ablations do not change); the tests check it against the same
        ablations run through hooks (``causal.ablate_heads``, ``causal.ablate_skip``).

        Args:
            delta: ``[n, d_model]`` (or broadcastable) change of ``resid_mid`` at '='.
        """
        w = self.weights  # float32, like the model's own forward pass
        x = piece.resid_mid + delta.float()
        hidden = torch.relu(x @ w["blocks.0.mlp.W_in"] + w["blocks.0.mlp.b_in"])
        out = x + hidden @ w["blocks.0.mlp.W_out"] + w["blocks.0.mlp.b_out"]
        return (out @ w["unembed.W_U"] + w["unembed.b_U"])[:, : self.task.p].double()

    def head_outputs(self, piece: GridChunk) -> torch.Tensor:
        """``[n, n_heads, d_model]`` float32: each head's contribution to ``resid_mid`` at '=' (``z_h W_O[h]``)."""
        return torch.einsum("nhe,hed->nhd", piece.z, self.weights["blocks.0.attn.W_O"])

    # ------------------------------------------------------------ views
    @functools.cached_property
    def w_logit(self) -> torch.Tensor:
        """``W_L = W_out @ W_U`` restricted to the answers: ``[d_mlp, p]`` float64."""
        w = self.weights
        return (w["blocks.0.mlp.W_out"].double() @ w["unembed.W_U"].double())[:, : self.task.p]

    def neuron_grid(self, neurons: list[int]) -> torch.Tensor:
        """``[p, p, len(neurons)]`` float32 activations of the given neurons, indexed ``[a, b, neuron]``."""
        p = self.task.p
        return torch.cat([piece.neurons[:, neurons] for piece in self.chunks()]).reshape(p, p, len(neurons))

    def answer_logits_at(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``[n, p]`` float64 answer logits of the inputs ``(a, b)`` (one small forward pass)."""
        tokens = torch.stack([a, b, torch.full_like(a, self.task.eq_token)], 1)
        with torch.no_grad():
            return self.task.final_logits(self._model(tokens)[:, -1])


def grid_recorder(model, names: Sequence[str] = (*SWEPT, PATTERN)) -> GridRecorder:
    """A :class:`GridRecorder` recording what :func:`grid_cache` reads; attach it once for many checkpoints."""
    return GridRecorder(model, names, select=_SELECT)


def _recording(model, recorder: GridRecorder | None, names: Sequence[str]):
    """``recorder`` as it is (its hooks already attached), or a new one to attach for the block."""
    return contextlib.nullcontext(recorder) if recorder is not None else grid_recorder(model, names)


def grid_cache(model, task: ModularTask, recorder: GridRecorder | None = None,
               chunk: int = DEFAULT_CHUNK) -> GridCache:
    """Run ``model`` once over the grid (chunked) and keep the statistics the probes need.

    Args:
        recorder: a :func:`grid_recorder` already attached to ``model``, to reuse across checkpoints.
        chunk: inputs per forward pass (rounded down to whole rows ``a``, at least one).

    The model is not modified: no hook outlives the call, weights are copied.
    """
    return GridCache(model, task, recorder, chunk)
