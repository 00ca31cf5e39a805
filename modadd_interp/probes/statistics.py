"""The first pass's statistics: each a small accumulator that sums one quantity over the grid, chunk by chunk.

:class:`~modadd_interp.probes.cache.GridCache` runs the grid once and hands every chunk (:class:`PassChunk`) to each
statistic's ``add``; when the pass ends, each ``result()`` is kept in ``cache.statistics[name]`` (the built-in ones
also under their attribute: :attr:`GridCache.residue_logits`, :attr:`GridCache.layers`, :attr:`GridCache.attention`).
**A new probe's statistic is a new accumulator**: a class with ``name``, ``add(chunk)`` and ``result()``, added to
:func:`first_pass_statistics` (or, from outside the package, passed as ``grid_cache(..., statistics=[...])``); the
first pass itself does not change. What every statistic reads of a chunk: its answer logits, the readout layer's
activations at the last position, every recorded hook (earlier layers' neurons, the attention patterns), the split,
and the labels' log-probabilities (which the pass computes once for the losses).

Examples:
    >>> class Peak:                                   # the largest answer logit over the grid
    ...     name = "peak"
    ...     def __init__(self): self.value = float("-inf")
    ...     def add(self, chunk): self.value = max(self.value, float(chunk.piece.logits.max()))
    ...     def result(self): return self.value
    >>> import modadd_interp as mi
    >>> from modadd_interp.probes import grid_cache
    >>> model, task = mi.load()
    >>> cache = grid_cache(model, task, statistics=[Peak()])
    >>> round(cache.statistics["peak"], 1)
    55.7
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Protocol

import torch

from ..config import ModelConfig
from ..fourier import BlockSpectrum
from ..hook_names import hook_name
from ..readout import residue_sums


@dataclasses.dataclass(frozen=True)
class GridChunk:
    """The grid's inputs ``rows`` (a slice of whole rows ``x``): answer logits and last-layer activations.

    Attributes:
        rows: the slice of grid inputs ``j = x * n + y``.
        logits: ``[m, p]`` float32 answer logits at the last position, in the grid's answer order (float32 as the
            model computes them; the losses keep their precision, see :func:`modadd_interp.readout.label_scores`).
        neurons: ``[m, d_mlp]`` float32 last-layer MLP activations at the last position.
        z: ``[m, n_heads, d_head]`` float32 last-layer head outputs (``hook_z``) at the last position.
        resid_mid: ``[m, d_model]`` float32 last-layer residual stream between attention and MLP.
        labels: ``[m]`` answer columns ``(x + y) mod n``.
        train, test: ``[m]`` the split masks.
        a: ``[m // n]`` the rows ``x`` the chunk covers.
    """

    rows: slice
    logits: torch.Tensor
    neurons: torch.Tensor
    z: torch.Tensor
    resid_mid: torch.Tensor
    labels: torch.Tensor
    train: torch.Tensor
    test: torch.Tensor
    a: torch.Tensor


@dataclasses.dataclass(frozen=True)
class PassChunk:
    """What the first pass hands each statistic per chunk.

    Attributes:
        piece: the chunk's answer logits and readout-layer activations (:class:`GridChunk`).
        acts: ``{hook name: tensor}`` everything the pass recorded (at the last position, or the last query).
        logprob: ``[m]`` float64 the log-probability of each input's label.
    """

    piece: GridChunk
    acts: dict[str, torch.Tensor]
    logprob: torch.Tensor


class Statistic(Protocol):
    """A first-pass accumulator (module docstring)."""

    name: str

    def add(self, chunk: PassChunk) -> None: ...

    def result(self) -> Any: ...


class RowSlab:
    """Per-input rows written chunk by chunk into one tensor allocated at the first chunk.

    Measured: kept chunks allocated one by one between each chunk's temporaries fragment glibc's heap (its
    dynamic mmap threshold puts the temporaries there too), and the freed temporaries cannot be returned: at
    p = 509 the first pass grew the resident set by 718 MB to keep 253 MB; at p = 1009 by 3.3 GB.
    """

    def __init__(self, n_rows: int) -> None:
        self.n_rows, self.data = n_rows, None

    def put(self, rows: slice, values: torch.Tensor) -> torch.Tensor:
        """Write ``values`` ``[m, ...]`` at ``rows``; return the stored view."""
        if self.data is None:
            self.data = torch.empty((self.n_rows, *values.shape[1:]), dtype=values.dtype)
        self.data[rows] = values
        return self.data[rows]


class NeuronStats:
    """One layer's neuron statistics at the last position over the grid.

    Attributes:
        blocks: ``[d_mlp, n//2, 3, 3]`` each neuron's centered 3x3 frequency blocks (computed when first read).
        mean, variance: ``[d_mlp]`` mean and centered sum of squares over the grid.
    """

    def __init__(self, spectrum: BlockSpectrum) -> None:
        self._spectrum, self.mean, self.variance = spectrum, spectrum.mean, spectrum.variance

    @functools.cached_property
    def blocks(self) -> torch.Tensor:
        return self._spectrum.blocks()

    def blocks_at(self, freqs) -> torch.Tensor:
        """``[d_mlp, len(freqs), 3, 3]`` the blocks of ``freqs`` alone (a DFT at those frequencies only)."""
        return self._spectrum.blocks(freqs)


class LogitMoments:
    """Statistics of the grid's answer logits, summed chunk by chunk (:attr:`GridCache.centered_sq` and its kin).

    A statistic of the first pass (``name = "logit_moments"``), except in a cache that keeps only the logits, which
    computes it from them when first read.

    Attributes (after every chunk was added):
        centered_sq: the sum over the grid of the squared output-centered answer logits.
        train_miss: ``[n]`` per residue, the sum over training inputs of ``1 - P(label)``.
        correct_logits: ``[n*n]`` float64 the logit of each input's answer.
    """

    name = "logit_moments"

    def __init__(self, n: int, n_inputs: int) -> None:
        self.centered_sq, self.train_miss, self._correct = 0.0, torch.zeros(n, dtype=torch.float64), RowSlab(n_inputs)

    def add(self, chunk: PassChunk) -> None:
        """Add a chunk (its answer logits, labels, split and the labels' float64 log-probabilities)."""
        piece = chunk.piece
        wide = piece.logits.double()
        self.centered_sq += float(wide.sub_(wide.mean(-1, keepdim=True)).square_().sum())
        self.train_miss.index_add_(0, piece.labels, torch.where(piece.train, torch.expm1(chunk.logprob).neg_(), 0.0))
        self._correct.put(piece.rows, piece.logits.gather(1, piece.labels[:, None])[:, 0].double())

    def result(self) -> LogitMoments:
        return self

    @property
    def correct_logits(self) -> torch.Tensor:
        return self._correct.data


class ResidueSums:
    """``[n, p]`` float64 ``R[s, c]``: the mean answer logit ``c`` over the inputs with ``x + y = s (mod n)``."""

    name = "residue_logits"

    def __init__(self, n: int, p: int) -> None:
        self.n, self.sums = n, torch.zeros(n, p, dtype=torch.float64)

    def add(self, chunk: PassChunk) -> None:
        self.sums += residue_sums(chunk.piece.logits, chunk.piece.labels, self.n)

    def result(self) -> torch.Tensor:
        return self.sums / self.n


class NeuronSpectra:
    """Per layer, the :class:`NeuronStats` of its neurons at the last position (their 3x3 frequency blocks' sums)."""

    name = "layers"

    def __init__(self, cfg: ModelConfig, n: int) -> None:
        self.n, self.last = n, cfg.n_layers - 1
        self.spectra = [BlockSpectrum(n, cfg.d_mlp) for _ in range(cfg.n_layers)]

    def add(self, chunk: PassChunk) -> None:
        piece = chunk.piece
        for layer, spectrum in enumerate(self.spectra):
            values = piece.neurons if layer == self.last else chunk.acts[hook_name("post", layer)]
            spectrum.add(values.reshape(len(piece.a), self.n, values.shape[-1]), piece.a)

    def result(self) -> list[NeuronStats]:
        return [NeuronStats(spectrum) for spectrum in self.spectra]


class LastQueryAttention:
    """``[n_layers, n*n, n_heads, n_ctx]`` float32 every layer's attention pattern of the last query (None when the
    pass records no pattern)."""

    name = "attention"

    def __init__(self, cfg: ModelConfig, n_inputs: int) -> None:
        self.n_layers, self.rows = cfg.n_layers, RowSlab(n_inputs)

    def add(self, chunk: PassChunk) -> None:
        if hook_name("pattern", 0) in chunk.acts:
            patterns = [chunk.acts[hook_name("pattern", layer)] for layer in range(self.n_layers)]
            self.rows.put(chunk.piece.rows, torch.stack(patterns, 1))

    def result(self) -> torch.Tensor | None:
        return self.rows.data.transpose(0, 1).contiguous() if self.rows.data is not None else None


def first_pass_statistics(cfg: ModelConfig, grid, p: int, keep: str) -> list[Statistic]:
    """The statistics every cache sums in its first pass over ``grid`` (an :class:`~modadd_interp.task.AnalysisGrid`
    with ``p`` answers): the logits' moments too, except in keep mode ``"logits"``. The neurons are read in the
    group's basis: the Fourier blocks of ``Z/n`` for the modular operations, the irreps' blocks otherwise."""
    spectra = NeuronSpectra(cfg, grid.n) if grid.coords.cyclic else IrrepNeuronSpectra(cfg, grid)
    out: list[Statistic] = [ResidueSums(grid.n, p), spectra, LastQueryAttention(cfg, grid.n_inputs)]
    if keep != "logits":
        out.append(LogitMoments(grid.n, grid.n_inputs))
    return out


class IrrepNeuronStats:
    """One layer's neuron statistics over the grid of a (non-cyclic) group, by real irrep.

    Attributes:
        mean, variance: ``[d_mlp]`` mean and centered sum of squares over the grid.
        marginals: ``{"x", "y", "xy"}`` each ``[n, d_mlp]`` float64: the neurons' mean over the inputs with that
            ``x``, that ``y`` and that ``x ∘ y``.
        diagonal: ``[n_irreps, d_mlp]`` float64 the squared norm of each neuron's ``ρ ⊗ ρ`` component (functions of
            ``(x, y)`` in the span of ``R_ρ(x)_{ij} R_ρ(y)_{kl}``) for every real irrep ``ρ`` (0 for the trivial one).
    """

    def __init__(self, mean, variance, marginals, diagonal) -> None:
        self.mean, self.variance, self.marginals, self.diagonal = mean, variance, marginals, diagonal


class IrrepNeuronSpectra:
    """Per layer, :class:`IrrepNeuronStats` of its neurons at the last position: the group analogue of the cyclic
    3x3 frequency blocks (:class:`NeuronSpectra`). Each neuron's ``ρ`` block is its ``ρ ⊗ 1``, ``1 ⊗ ρ`` (from the
    ``x`` and ``y`` marginals) and ``ρ ⊗ ρ`` components; the last is summed chunk by chunk from the neurons'
    coefficients in the group's basis along ``y`` (``[rows, d_mlp, n]``, one product), then along the chunk's rows
    ``x`` per irrep (:meth:`modadd_interp.groups.Group.basis`). Cost per grid: ``n^3 d_mlp`` multiply-adds."""

    name = "layers"

    def __init__(self, cfg: ModelConfig, grid) -> None:
        self.group, self.n, self.last = grid.group, grid.n, cfg.n_layers - 1
        basis = self.group.basis().float()  # [n, n] rows by irrep
        rows = self.group.irrep_of_row
        self.basis, self.blocks = basis, [torch.nonzero(rows == i).flatten() for i in range(len(self.group.irreps))]
        self.labels = grid.labels
        d, n = cfg.d_mlp, self.n
        self.layers = [{"sum": torch.zeros(d, dtype=torch.float64), "sq": torch.zeros(d, dtype=torch.float64),
                        "x": torch.zeros(n, d, dtype=torch.float64), "y": torch.zeros(n, d, dtype=torch.float64),
                        "xy": torch.zeros(n, d, dtype=torch.float64),
                        "coef": [torch.zeros(len(b), d, len(b)) for b in self.blocks]}
                       for _ in range(cfg.n_layers)]

    def add(self, chunk: PassChunk) -> None:
        piece = chunk.piece
        for layer, acc in enumerate(self.layers):
            values = piece.neurons if layer == self.last else chunk.acts[hook_name("post", layer)]
            grid = values.reshape(len(piece.a), self.n, values.shape[-1])  # [rows x, y, d]
            wide = values.double()
            acc["sum"] += wide.sum(0)
            acc["sq"] += wide.square().sum(0)
            acc["x"][piece.a] += grid.double().sum(1)
            acc["y"] += grid.double().sum(0)
            acc["xy"].index_add_(0, self.labels[piece.rows], wide)
            along_y = grid.transpose(1, 2) @ self.basis.T  # [rows, d, n]: coefficients along y
            for block, coef in list(zip(self.blocks, acc["coef"], strict=True))[1:]:  # the trivial irrep is first
                coef += torch.einsum("jr,rdk->jdk", self.basis[block][:, piece.a], along_y[:, :, block])

    def result(self) -> list[IrrepNeuronStats]:
        out, n = [], self.n
        for acc in self.layers:
            count = n * n
            mean = acc["sum"] / count
            variance = (acc["sq"] - count * mean.square()).clamp_min(0)
            marginals = {"x": acc["x"] / n, "y": acc["y"] / n, "xy": acc["xy"] / n}
            diagonal = torch.stack([coef.double().square().sum((0, 2)) for coef in acc["coef"]])
            out.append(IrrepNeuronStats(mean, variance, marginals, diagonal))
        return out
