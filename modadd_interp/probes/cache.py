"""One pass over the analysis grid, reduced to the statistics every probe reads.

The grid is the task's inputs in its operation's group coordinates (:class:`modadd_interp.task.AnalysisGrid`;
for ``add`` the token grid itself): input ``j = x * n + y`` with answer column ``z = (x + y) mod n``, logits in
the grid's answer order. The pass runs the grid in chunks of whole rows ``x`` and keeps only statistics whose
size does not grow with the grid: the float64 losses per split, the residue means of the logits (``[n, p]``,
see :mod:`modadd_interp.readout`), every layer's neurons' 3x3 frequency blocks
(:class:`modadd_interp.fourier.BlockSpectrum`), and every layer's attention pattern of the last position
(``[L, n*n, n_heads, n_ctx]``, small). Inputs outside the group (a zero operand under ``mul``/``div``) are
measured separately (:attr:`GridCache.outside`).

The pass stops at the readout (last) layer's ``resid_mid`` and replays the rest at the last position
(``act(resid_mid W_in + b_in)``, then ``W_out`` and the unembedding: without LayerNorm nothing else reaches the
answer), so the MLP and the unembedding at the other positions, which no probe reads, are never computed. Up to
``resid_mid`` it is computed from the weights (:class:`~modadd_interp.probes.weight_pass.WeightPass`: layer 0 from
per-token tables, the readout layer at the last query only) once the model's own logits have matched it on
:data:`AGREEMENT_SAMPLE` grid inputs; otherwise (with a warning) by the model with recording hooks. It runs the
model to the logits when a user's hook is attached to it (:func:`stops_at_readout`): that hook must run.

Edited logits (:meth:`GridCache.measure`) are float32, as the model computes them, and their losses keep float64
sums (:func:`modadd_interp.readout.label_scores`). Edits after the MLP share the chunk's direct path
(:meth:`GridCache.direct_logits`, ``unembed(resid_mid)``): the logits are linear in the MLP's output.

Analyses that need every input's logits or last-layer activations again (the excluded losses, the
interventions at the last position) read them chunk by chunk through :meth:`GridCache.chunks` and
:meth:`GridCache.measure`, from the first of these that fits the memory budget (:func:`keep_budget`):

* ``"full"``: every chunk's logits and last-layer activations are kept (the paper's sizes at p = 113: 45 MB);
* ``"replay"``: only the last layer's ``resid_mid`` and ``hook_z`` at the last position are kept (``d_model +
  n_heads d_head`` floats per input: 1 GB at p = 1009), and each sweep recomputes the neurons and logits from
  them exactly as the model does (``act(resid_mid W_in + b_in)``, then the unembedding: nothing else reaches
  the last position's answer), at about a fifth of a forward pass;
* ``"rerun"``: nothing is kept; each sweep re-runs the grid pass (from the weights, or the model);
* ``"logits"`` (asked for, never chosen): only the answer logits, for sweeps that edit the logits alone (the
  progress measures' excluded loss).

Interventions on earlier layers run hooked passes (:meth:`GridCache.measure_hooked`). The model must not change
while the cache is in use. :meth:`GridCache.of_weights` builds a cache from weights alone, with no model (for many
checkpoints of one architecture, once checked against a model); it cannot run hooked passes.

Examples:
    >>> import modadd_interp as mi
    >>> model, task = mi.load()
    >>> cache = grid_cache(model, task)
    >>> cache.full.test_loss, cache.residue_logits.shape           # [n, p]
    (3.4e-07, torch.Size([113, 113]))
    >>> def zero_3(neurons):                                       # neuron 3 of the readout layer zero-ablated
    ...     return neurons.index_fill(1, torch.tensor([3]), 0.0)
    >>> cache.measure({"no neuron 3": lambda c: cache.logits_with_neurons(c, zero_3(c.neurons))})["no neuron 3"]
    Measurement(train_loss=1.0e-07, test_loss=3.4e-07, loss=2.7e-07, accuracy=1.0, train_accuracy=1.0,
                test_accuracy=1.0)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import warnings
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

import torch

from .. import tl_adapter
from ..config import ModelConfig, check_weights
from ..errors import InvalidWeightsError
from ..grid import DEFAULT_CHUNK, GridRecorder, check_compatible
from ..hook_names import EMBED, IN_BLOCK, hook_name
from ..readout import (
    Measurement,
    MeasurementSum,
    label_scores,
    residue_measurement,
    residue_projection,
)
from ..task import AnalysisGrid, ModularTask
from .statistics import (
    GridChunk,
    LogitMoments,
    NeuronStats,
    PassChunk,
    RowSlab,
    Statistic,
    first_pass_statistics,
)
from .weight_pass import (
    WeightPass,
    activation,
    column_major,
    disagreement,
)

KEEP_FRACTION = 0.25
"""The kept grid may use this fraction of the memory available when the cache is built (``MemAvailable``)..."""

KEEP_MAX_BYTES = 2 * 2**30
"""...and never more than 2 GiB, so that an analysis stays within ~4 GB (the statistics and the first pass's
chunks come on top). The paper's architecture: p = 509 keeps everything (1.3 GB); p = 1009 replays (1.0 GB of
the 7.2 GB a full keep would take)."""

KEEP_MODES = ("full", "replay", "rerun", "logits")
KEPT = {"full": ("logits", "neurons", "z", "resid_mid"), "replay": ("z", "resid_mid"), "rerun": (),
        "logits": ("logits",)}
"""What each keep mode keeps per input at the last position (``"logits"``, never chosen by default: sweeps that
edit the logits alone, as the progress measures' excluded loss; an edit reading anything else fails)."""

AGREEMENT_SAMPLE = 64
"""Grid inputs (evenly spaced) on which the model's logits must equal the weight pass's before it stands in."""

AGREEMENT_TOLERANCE = 1e-4
"""Largest answer-logit difference, relative to the largest logit, counted as float32 rounding."""


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (``MemAvailable`` in ``/proc/meminfo``), or None off Linux."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def keep_budget() -> int:
    """Bytes the kept grid may use: :data:`KEEP_FRACTION` of the available memory, at most
    :data:`KEEP_MAX_BYTES` (the maximum where the available memory cannot be read)."""
    available = available_memory()
    return KEEP_MAX_BYTES if available is None else min(int(KEEP_FRACTION * available), KEEP_MAX_BYTES)


def keep_mode(inputs: int, cfg: ModelConfig, p: int, budget: int | None = None) -> str:
    """``"full"``, ``"replay"`` or ``"rerun"``: the first whose float32 bytes fit ``budget`` (default
    :func:`keep_budget`)."""
    budget = keep_budget() if budget is None else budget
    replay = inputs * (cfg.n_heads * cfg.d_head + cfg.d_model) * 4
    if replay + inputs * (p + cfg.d_mlp) * 4 <= budget:
        return "full"
    return "replay" if replay <= budget else "rerun"




def _last_position(activation: torch.Tensor) -> torch.Tensor:
    # a copy, not a view: a view would keep the whole [n, n_ctx, ...] activation alive
    return activation[:, -1].clone()


def _last_query(activation: torch.Tensor) -> torch.Tensor:
    return activation[:, :, -1, :].clone()


def swept_hooks(cfg: ModelConfig, stopped: bool = True) -> list[str]:
    """What a pass records for a sweep's chunks, at the last position: the last layer's ``hook_z`` and
    ``resid_mid``, and its neurons unless the pass is ``stopped`` at ``resid_mid`` (then they and the logits are
    replayed from it)."""
    last = cfg.n_layers - 1
    return [hook_name("z", last), hook_name("resid_mid", last)] + ([] if stopped else [hook_name("post", last)])


def pass_hooks(cfg: ModelConfig, stopped: bool = True) -> list[str]:
    """What the first pass records: the swept hooks plus every earlier layer's neurons and every attention pattern."""
    names = swept_hooks(cfg, stopped)
    names += [hook_name("post", layer) for layer in range(cfg.n_layers - 1)]
    return names + [hook_name("pattern", layer) for layer in range(cfg.n_layers)]


def stops_at_readout(model) -> bool:
    """Whether a grid pass may stop at the readout layer's ``resid_mid`` and replay the rest: only when no hook but
    the model's own is attached (an intervention hooked on the MLP or the unembedding must run)."""
    return tl_adapter.foreign_hook_count(model) == 0


def before_readout(name: str, cfg: ModelConfig) -> bool:
    """Whether hook point ``name`` runs before the readout layer's ``resid_mid`` (so a pass stopped there, then
    replayed, sees an intervention on it): the embeddings, earlier blocks and the readout layer's attention."""
    last = cfg.n_layers - 1
    if name.startswith((EMBED, "hook_pos_embed", f"blocks.{last}.attn.", hook_name("resid_pre", last),
                        hook_name("attn_out", last))):
        return True
    return name.startswith("blocks.") and name.split(".")[1].isdigit() and int(name.split(".")[1]) < last


def _select(names: Sequence[str]) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    return {n: _last_query if n.endswith(IN_BLOCK["pattern"]) else _last_position for n in names}


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """Edits to measure over the grid and what to build from their measurements (:meth:`GridCache.measure_plans`).

    Attributes:
        edits: ``{key: edit}``, each ``edit(chunk)`` returning the chunk's ``[m, p]`` edited logits.
        build: ``build({key: Measurement})``, the analysis's result.
    """

    edits: dict[Hashable, Callable[[GridChunk], torch.Tensor]]
    build: Callable[[dict[Hashable, Measurement]], Any]


class GridCache:
    """What the probes read from a model: weights plus the statistics of one pass over the analysis grid.

    Attributes:
        task, grid, config: the task, its :class:`AnalysisGrid` and the model's architecture.
        weights: canonical float32 weight copies (see :mod:`modadd_interp.config`).
        full: the model's float64 losses and accuracies per split on the grid (the group's inputs).
        outside: the same on the defined inputs outside the group (a zero operand under mul/div), or None.
        task_full: the same on every defined input of the task (``full`` and ``outside`` together).
        residue_logits: ``[n, p]`` float64 ``R[s, c]``, the mean answer logit ``c`` (answer order) over the
            inputs with ``x + y = s (mod n)``.
        centered_sq, train_miss, correct_logits: see :class:`LogitMoments`; summed in the first pass, or from the
            kept logits when first read in keep mode ``"logits"`` (the progress measures, which never read them).
        layers: per layer, the :class:`NeuronStats` of its neurons.
        statistics: ``{name: result}`` of every first-pass statistic (:mod:`modadd_interp.probes.statistics`).
        attention: ``[n_layers, n*n, n_heads, n_ctx]`` float32 attention pattern of the last query (None when not
            recorded: :func:`grid_recorder` or :meth:`GridCache.of_weights` with ``attention=False``).
        neuron_active: the readout layer's active fractions, computed when first read (one sweep).
    """

    def __init__(self, model, task: ModularTask, recorder: GridRecorder | None = None,
                 chunk: int = DEFAULT_CHUNK, keep: str | None = None, statistics: Sequence[Statistic] = ()) -> None:
        self._setup(check_compatible(model, task), tl_adapter.canonical_weights(model), model, task, chunk, keep)
        self._first_pass(recorder, extra=statistics)

    @classmethod
    def of_weights(cls, config: ModelConfig, weights: dict[str, torch.Tensor], task: ModularTask,
                   chunk: int = DEFAULT_CHUNK, keep: str | None = None, attention: bool = True) -> GridCache:
        """The cache of canonical ``weights`` alone, computed by the weight pass, with no model: for many weights of
        one architecture once a model's cache has checked it (:attr:`computed_from_weights`; the progress measures).
        What needs the model itself (hooked passes) raises. ``attention=False`` leaves out the attention patterns."""
        if config.p != task.p:
            raise ValueError(f"the weights are for p = {config.p}, the task has p = {task.p}")
        self = cls.__new__(cls)
        self._setup(config, check_weights(config, weights), None, task, chunk, keep)
        names = [name for name in pass_hooks(config) if attention or "pattern" not in name]
        self._first_pass(None, names)
        return self

    def _setup(self, config: ModelConfig, weights: dict[str, torch.Tensor], model, task: ModularTask, chunk: int,
               keep: str | None) -> None:
        self.config, self.weights, self._model, self._chunk = config, weights, model, chunk
        self.task, self.grid = task, task.grid
        if keep is not None and keep not in KEEP_MODES:
            raise ValueError(f"keep must be one of {KEEP_MODES}, got {keep!r}")
        self.keep = keep or keep_mode(self.grid.n_inputs, config, task.p)

    def _first_pass(self, recorder: GridRecorder | None, names: Sequence[str] | None = None,
                    extra: Sequence[Statistic] = ()) -> None:
        grid = self.grid
        total = MeasurementSum()
        statistics = [*first_pass_statistics(self.config, grid, self.task.p, self.keep), *extra]
        names_seen = [s.name for s in statistics]
        if len(set(names_seen)) != len(names_seen):
            raise ValueError(f"the first pass's statistics need distinct names, got {names_seen}")
        kept = []
        # long-lived per-input results go into tensors allocated once, not one per chunk (see RowSlab)
        slabs = {name: RowSlab(grid.n_inputs) for name in ("logits", "neurons", "z", "resid_mid")}
        with self._pass(recorder, first=True, names=names) as rec:
            for rows, logits, acts in rec.chunks(grid.pairs, self._step):
                piece = self._chunk_of(rows, logits, acts)
                chunk = PassChunk(piece, acts, total.add(piece.logits, piece.labels, piece.train, piece.test))
                for statistic in statistics:
                    statistic.add(chunk)
                if self.keep != "rerun":
                    kept.append(dataclasses.replace(piece, **{
                        name: slabs[name].put(rows, getattr(piece, name)) if name in KEPT[self.keep] else None
                        for name in slabs}))
            outside = self._measure_outside(rec)
        self.full: Measurement = total.result()
        self.outside: Measurement | None = outside.result() if outside is not None else None
        self.task_full: Measurement = total.merge(outside).result() if outside is not None else self.full
        self.statistics: dict[str, Any] = {statistic.name: statistic.result() for statistic in statistics}
        self.residue_logits = self.statistics["residue_logits"]
        self.layers = self.statistics["layers"]
        self.attention = self.statistics["attention"]
        if "logit_moments" in self.statistics:  # else computed from the kept logits when first read
            self._logit_moments = self.statistics["logit_moments"]
        self._kept: list[GridChunk] | None = kept if self.keep != "rerun" else None
        self._slabs = {name: rows.data for name, rows in slabs.items() if rows.data is not None}
        self._direct: tuple[GridChunk | None, torch.Tensor | None] = (None, None)

    @property
    def _step(self) -> int:
        """Inputs per forward pass: whole rows ``x``, at most ``chunk`` (at least one row)."""
        return max(1, self._chunk // self.grid.n) * self.grid.n

    def _pass(self, recorder: GridRecorder | None, first: bool, names: Sequence[str] | None = None):
        """A context giving the chunked pass (``.chunks(pairs, step)``): the :class:`WeightPass` when it may stand in
        for a stopped pass of the model (no foreign hook, and it agrees with the model on a sample), else
        ``recorder`` (attached) or a new recorder for the first pass or a sweep's re-run. ``names``: what a weight
        pass with no recorder records (default: a first pass's or a sweep's hooks)."""
        cfg, model = self.config, self._model
        stopped = recorder.stop_after is not None if recorder is not None else model is None or stops_at_readout(model)
        if model is None or (stopped and self._weight_pass_agrees):
            if names is None:
                names = recorder.names if recorder is not None else (pass_hooks if first else swept_hooks)(cfg)
            return contextlib.nullcontext(WeightPass(cfg, self.weights, names))
        if recorder is not None:
            return contextlib.nullcontext(recorder)
        return grid_recorder(model, pass_hooks(cfg, stopped) if first else swept_hooks(cfg, stopped))

    @functools.cached_property
    def _weight_pass_agrees(self) -> bool:
        """Whether the model's own answer logits equal the weight pass's (replayed) on :data:`AGREEMENT_SAMPLE`
        inputs of the grid, to :data:`AGREEMENT_TOLERANCE` of their scale; warns (once per cache) when not."""
        cfg, grid = self.config, self.grid
        pairs = grid.pairs[torch.linspace(0, grid.n_inputs - 1, min(AGREEMENT_SAMPLE, grid.n_inputs)).long()]
        tokens, resid = cfg.encode(pairs), hook_name("resid_mid", self.last_layer)
        with torch.no_grad():
            theirs = self._answers(self._model(tokens)[:, -1], {})
        ours = self._replay(WeightPass(cfg, self.weights, [resid]).run(tokens)[resid])[1]
        gap = disagreement(ours, theirs)
        if gap > AGREEMENT_TOLERANCE:
            warnings.warn("this model's forward pass differs from the computation of its architecture from its "
                          f"weights (answer logits {gap:.2g} apart relative to their scale on {len(pairs)} grid "
                          "inputs; e.g. a TransformerLens option modadd_interp does not model): the grid passes run "
                          "the model itself, which is slower.", stacklevel=4)
            return False
        return True

    @property
    def computed_from_weights(self) -> bool:
        """Whether this cache's grid passes are the weight pass: built from weights alone, or from a model without a
        foreign hook whose own logits agreed with it (see the module docstring)."""
        return self._model is None or (stops_at_readout(self._model) and self._weight_pass_agrees)

    def _needs_model(self, what: str):
        if self._model is None:
            raise ValueError(f"{what} needs the model, and this cache was computed from weights alone "
                             "(GridCache.of_weights): build it with grid_cache(model, task)")
        return self._model

    def _chunk_of(self, rows: slice, logits: torch.Tensor | None, acts: dict[str, torch.Tensor]) -> GridChunk:
        """A chunk of a pass; one stopped at the readout layer's ``resid_mid`` (``logits`` None) is replayed."""
        grid, last = self.grid, self.config.n_layers - 1
        if logits is None:
            neurons, answer = self._replay(acts[hook_name("resid_mid", last)])
        else:
            neurons, answer = acts[hook_name("post", last)], self._answers(logits, acts)
        return GridChunk(rows, answer, neurons, acts[hook_name("z", last)], acts[hook_name("resid_mid", last)],
                         grid.labels[rows], grid.train[rows], grid.test[rows], grid.rows(rows.start, rows.stop))

    def _measure_outside(self, recorder: GridRecorder) -> MeasurementSum | None:
        """Losses on the defined inputs outside the group (one small pass), or None when there are none."""
        index = self.grid.outside_index
        if not len(index):
            return None
        total = MeasurementSum()
        labels, train, test = self.grid.outside_labels, self.task.train_mask[index], self.task.test_mask[index]
        for rows, logits, acts in recorder.chunks(self.task.pairs[index], self._step):
            total.add(self._answers(logits, acts), labels[rows], train[rows], test[rows])
        return total

    # ------------------------------------------------------------ sweeps
    def chunks(self) -> Iterator[GridChunk]:
        """The grid chunk by chunk: from memory, replayed from the kept ``resid_mid``, or by re-running the model
        with its weights unchanged (:attr:`keep`)."""
        if self.keep in ("full", "logits"):
            yield from self._kept
            return
        if self.keep == "replay":
            for piece in self._kept:
                neurons, logits = self._replay(piece.resid_mid)
                yield dataclasses.replace(piece, logits=logits, neurons=neurons)
            return
        yield from self._rerun_chunks()

    def _rerun_chunks(self) -> Iterator[GridChunk]:
        """The grid chunk by chunk from a new pass (the weight pass, or the model with its weights unchanged)."""
        with self._pass(None, first=False) as rec:
            for rows, logits, acts in rec.chunks(self.grid.pairs, self._step):
                yield self._chunk_of(rows, logits, acts)

    def measure_plans(self, plans: Sequence[SweepPlan]) -> list:
        """Measure every plan's edits in one sweep; return each plan's ``build`` of its measurements, in order.

        Analyses that read the same cache (the Fourier losses, the ablation table, the hypothesis tests) share one
        sweep this way: at large p, where each sweep replays the last layer, that saves a replay per analysis.
        """
        measured = self.measure({(i, key): edit for i, plan in enumerate(plans) for key, edit in plan.edits.items()})
        return [plan.build({key: measured[i, key] for key in plan.edits}) for i, plan in enumerate(plans)]

    def measure(self, edits: dict[Hashable, Callable[[GridChunk], torch.Tensor]],
                split: str | None = None) -> dict[Hashable, Measurement]:
        """Measure edited logits in one sweep: ``edits[name](chunk)`` returns the chunk's ``[m, p]`` logits (measured in
        float32, as the model computes logits: :func:`modadd_interp.readout.label_scores`). ``split="train"``
        measures the training inputs alone (the test fields are NaN)."""
        if split not in (None, "train"):
            raise ValueError(f"split must be None or 'train', got {split!r}")
        totals = {name: MeasurementSum() for name in edits}
        if edits:
            for piece in self.chunks():
                rows = piece.train if split == "train" else slice(None)
                labels, train, test = piece.labels[rows], piece.train[rows], piece.test[rows] & (split is None)
                for name, edit in edits.items():
                    totals[name].add(edit(piece)[rows].float(), labels, train, test)
        return {name: total.result() for name, total in totals.items()}

    def measure_hooked(self, fwd_hooks: Sequence) -> Measurement:
        """Losses on the grid under hooked interventions (one real pass; for edits the sweeps cannot replay,
        e.g. on an earlier layer of a deeper model). When every hook runs :func:`before_readout`, the pass
        stops at the readout layer's ``resid_mid`` and the rest is replayed; else it runs to the logits."""
        total = MeasurementSum()
        grid, resid = self.grid, hook_name("resid_mid", self.last_layer)
        self._needs_model("a hooked pass")
        if stops_at_readout(self._model) and all(before_readout(name, self.config) for name, _ in fwd_hooks):
            recorder = GridRecorder(self._model, [resid], fwd_hooks, select=_select([resid]), stop_after=resid)
        else:
            recorder = GridRecorder(self._model, fwd_hooks=fwd_hooks)
        with recorder as rec:
            for rows, logits, acts in rec.chunks(grid.pairs, self._step):
                total.add(self._answers(logits, acts), grid.labels[rows], grid.train[rows], grid.test[rows])
        return total.result()

    def neurons_of(self, index: torch.Tensor) -> torch.Tensor:
        """``[m, d_mlp]`` float32 readout-layer neurons at the last position of grid inputs ``index`` ``[m]`` (e.g.
        the partners of one chunk's inputs in a resampling): gathered from the kept grid, replayed from its
        ``resid_mid``, or by a forward pass of those inputs. Memory ``O(m)``: call it per chunk."""
        if self.keep == "full":
            return self._slabs["neurons"][index]
        if self.keep == "replay":
            return self._replay_neurons(self._slabs["resid_mid"][index])
        last = self.last_layer
        with self._pass(None, first=False) as rec:
            chunks = rec.chunks(self.grid.pairs[index], self._step)
            return torch.cat([self._replay_neurons(acts[hook_name("resid_mid", last)]) if logits is None
                              else acts[hook_name("post", last)] for _, logits, acts in chunks])

    def logits_with_mlp_out(self, piece: GridChunk, mlp_out: torch.Tensor) -> torch.Tensor:
        """``[m, p]`` float32 answer logits with the readout layer's MLP output at the last position replaced by
        ``mlp_out`` ``[m, d_model]`` (or ``[d_model]``, the same for every input): ``unembed(resid_mid + mlp_out)``,
        exact (nothing follows the last MLP), computed as :meth:`direct_logits` plus :meth:`mlp_out_logits`."""
        return self.direct_logits(piece) + self.mlp_out_logits(mlp_out)

    def direct_logits(self, piece: GridChunk) -> torch.Tensor:
        """``[m, p]`` float32 ``unembed(resid_mid)``: the chunk's answer logits without the readout layer's MLP output
        (the MLP zero-ablated). Remembered for the chunk last asked about, so a sweep's edits share it."""
        if self._direct[0] is not piece:
            self._direct = (piece, self._unembed(piece.resid_mid))
        return self._direct[1]

    def mlp_out_logits(self, mlp_out: torch.Tensor) -> torch.Tensor:
        """``[..., p]`` float32 ``mlp_out @ W_U`` (answer order): what a readout-layer MLP output ``[..., d_model]``
        adds to the answer logits (linear: e.g. fitted coefficients ``[F, d_model]`` map to ``[F, p]`` once)."""
        return mlp_out.float() @ self._w_u_answers

    def mlp_out(self, piece: GridChunk) -> torch.Tensor:
        """``[m, d_model]`` float64 the readout layer's MLP output at the last position."""
        w, last = self.weights, f"blocks.{self.last_layer}.mlp"  # float32, like the model's forward
        return (piece.neurons @ self._readout_mlp[1] + w[f"{last}.b_out"]).double()

    def restricted(self, freqs) -> Measurement:
        """Losses of the paper's restricted logits: each output's grid mean plus its ``cos/sin(w_k s)``
        components, ``s = x + y`` and ``k in freqs``. They depend only on ``s``: exact from the residue means."""
        return residue_measurement(residue_projection(self.residue_logits, freqs, const=True), self.grid)

    def excluding(self, freqs) -> Callable[[GridChunk], torch.Tensor]:
        """An edit for :meth:`measure`: the chunk's logits without their ``cos/sin(w_k s)`` components,
        ``k in freqs`` (the paper's excluded logits)."""
        shift = residue_projection(self.residue_logits, freqs).float()
        return lambda piece: piece.logits - shift.index_select(0, piece.labels)

    def logits_with_neurons(self, piece: GridChunk, neurons: torch.Tensor) -> torch.Tensor:
        """``[m, p]`` float32 answer logits of the chunk with its last-layer MLP activations at the last position
        replaced by ``neurons``.

        Exact: after the last MLP there is no nonlinearity (no LayerNorm), so its activations at the last
        position reach the logits only through ``W_L = W_out W_U``. It equals running the model under
        ``causal.replace_activations`` (tested), without a pass. Computed in float32, like the model.
        """
        return piece.logits + self.neuron_logits(neurons.float() - piece.neurons)

    def neuron_logits(self, delta: torch.Tensor, neurons: torch.Tensor | None = None) -> torch.Tensor:
        """``[m, p]`` float32 ``delta @ W_L[neurons]``: what a change ``delta`` ``[m, len(neurons)]`` of the readout
        layer's activations (all of them by default) adds to the answer logits.

        In the cheaper order: through ``d_model`` as the model computes it (``(delta W_out) W_U``) unless ``W_L``
        itself is smaller (``k p`` against ``d_model (k + p)`` multiply-adds per input for ``k`` neurons: at p =
        1009 and the paper's sizes, 2.7x fewer through ``d_model``).
        """
        w, p = self.weights, self.task.p
        k = delta.shape[1]
        rows = slice(None) if neurons is None else neurons
        if k * p <= self.config.d_model * (k + p):
            return delta.float() @ self._w_logit32[rows]
        return (delta.float() @ w[f"blocks.{self.last_layer}.mlp.W_out"][rows]) @ self._w_u_answers

    @functools.cached_property
    def _w_logit32(self) -> torch.Tensor:
        return self.w_logit.float()

    @functools.cached_property
    def _w_u_answers(self) -> torch.Tensor:
        """``[d_model, p]`` the unembedding's answer columns in answer order, stored column-major."""
        return column_major(self.weights["unembed.W_U"][:, self.grid.answer_order])

    @functools.cached_property
    def _readout_mlp(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The readout layer's ``W_in`` ``[d_model, d_mlp]`` and ``W_out`` ``[d_mlp, d_model]``, stored column-major."""
        mlp = f"blocks.{self.last_layer}.mlp"
        return column_major(self.weights[f"{mlp}.W_in"]), column_major(self.weights[f"{mlp}.W_out"])

    def _replay_neurons(self, resid_mid: torch.Tensor) -> torch.Tensor:
        """``[m, d_mlp]`` float32 last-layer neurons at the last position, recomputed from its ``resid_mid``."""
        w, last = self.weights, f"blocks.{self.last_layer}.mlp"
        return activation(self.config.act_fn, torch.addmm(w[f"{last}.b_in"], resid_mid, self._readout_mlp[0]))

    def _replay(self, resid_mid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``([m, d_mlp] float32 neurons, [m, p] float32 answer logits)`` of the last layer at the last position,
        recomputed from its ``resid_mid`` in float32 as the model computes them."""
        w, last = self.weights, f"blocks.{self.last_layer}.mlp"
        neurons = self._replay_neurons(resid_mid)
        logits = self._unembed(torch.addmm(w[f"{last}.b_out"], neurons, self._readout_mlp[1]).add_(resid_mid))
        if not torch.isfinite(logits.sum()):  # a NaN or inf anywhere makes the sum so
            raise InvalidWeightsError("the model produced NaN/inf logits; its weights are corrupt.")
        return neurons, logits

    def _unembed(self, resid_post: torch.Tensor) -> torch.Tensor:
        """``[m, p]`` float32 answer logits (answer order) of the last position's ``resid_post``, as the model
        computes them (one ``addmm`` on the answer columns of ``W_U``)."""
        return torch.addmm(self._b_u_answers, resid_post.float(), self._w_u_answers)

    @functools.cached_property
    def _b_u_answers(self) -> torch.Tensor:
        return self.weights["unembed.b_U"][self.grid.answer_order].contiguous()

    def _answers(self, logits: torch.Tensor | None, acts: dict[str, torch.Tensor]) -> torch.Tensor:
        """A pass's ``[m, p]`` float32 answer logits: read from its logits, or replayed when it stopped at
        ``resid_mid``."""
        if logits is not None:
            return self.grid.answer_logits(logits).float()
        return self._replay(acts[hook_name("resid_mid", self.last_layer)])[1]

    def logits_with_resid_mid(self, piece: GridChunk, delta: torch.Tensor) -> torch.Tensor:
        """``[m, p]`` float32 answer logits of the chunk with ``delta`` ``[m, d_model]`` (or broadcastable) added to the
        last layer's residual stream at the last position between attention and MLP (``resid_mid``), replayed through
        the MLP and unembedding.

        Exact: without LayerNorm, the last-position logits are ``unembed(x + MLP(x))`` with ``x`` that residual,
        and nothing else reads it. The ablation table evaluates last-layer head and skip ablations this way;
        the tests check it against the same ablations run through hooks.
        """
        w, last = self.weights, f"blocks.{self.last_layer}.mlp"  # float32, like the model's forward
        x = piece.resid_mid + delta.float()
        mlp_out = torch.addmm(w[f"{last}.b_out"], self._replay_neurons(x), self._readout_mlp[1])
        return self._unembed(mlp_out.add_(x))

    def head_outputs(self, piece: GridChunk) -> torch.Tensor:
        """``[m, n_heads, d_model]`` float32: each last-layer head's contribution to ``resid_mid`` (``z_h W_O[h]``)."""
        return torch.einsum("nhe,hed->nhd", piece.z, self.weights[f"blocks.{self.config.n_layers - 1}.attn.W_O"])

    # ------------------------------------------------------------ views
    @property
    def last_layer(self) -> int:
        """The index of the readout layer, whose MLP writes straight into the unembedding."""
        return self.config.n_layers - 1

    @property
    def neuron_blocks(self) -> torch.Tensor:
        """``[d_mlp, n//2, 3, 3]`` of the readout (last) layer's neurons; other layers: :attr:`layers`."""
        return self.layers[-1].blocks

    @property
    def neuron_mean(self) -> torch.Tensor:
        """``[d_mlp]`` of the readout layer."""
        return self.layers[-1].mean

    @property
    def neuron_variance(self) -> torch.Tensor:
        """``[d_mlp]`` of the readout layer."""
        return self.layers[-1].variance

    @functools.cached_property
    def neuron_active(self) -> torch.Tensor:
        """``[d_mlp]`` float64 the fraction of the grid where each readout-layer neuron is positive (its activation;
        read only by the degeneracy measures, so computed when first read: one sweep, re-running the pass when the
        cache keeps no neurons)."""
        count = torch.zeros(self.config.d_mlp, dtype=torch.float64)
        for piece in self._rerun_chunks() if self.keep == "logits" else self.chunks():  # "logits" keeps no neurons
            count += torch.sign(piece.neurons).clamp_(min=0).sum(0)  # (neurons > 0).sum(0), 8x faster (measured)
        return count / self.grid.n_inputs

    @functools.cached_property
    def _logit_moments(self) -> LogitMoments:
        """The logits' moments from the kept logits (keep mode ``"logits"``; the first pass sets them otherwise)."""
        moments = LogitMoments(self.grid.n, self.grid.n_inputs)
        for piece in self.chunks():
            moments.add(PassChunk(piece, {}, label_scores(piece.logits, piece.labels)[0]))
        return moments

    @property
    def centered_sq(self) -> float:
        """The sum over the grid of the squared output-centered answer logits (:class:`LogitMoments`)."""
        return self._logit_moments.centered_sq

    @property
    def train_miss(self) -> torch.Tensor:
        """``[n]`` per residue, the sum over training inputs of ``1 - P(label)`` (:class:`LogitMoments`)."""
        return self._logit_moments.train_miss

    @property
    def correct_logits(self) -> torch.Tensor:
        """``[n*n]`` float64 the logit of each input's answer (:class:`LogitMoments`)."""
        return self._logit_moments.correct_logits

    @functools.cached_property
    def w_logit(self) -> torch.Tensor:
        """``W_L = W_out @ W_U`` of the readout layer over the answers in answer order: ``[d_mlp, p]`` float64
        (the group's answers are columns ``0..n-1``)."""
        w = self.weights
        w_out = w[f"blocks.{self.last_layer}.mlp.W_out"].double()
        return (w_out @ w["unembed.W_U"].double())[:, self.grid.answer_order]

    def number_embeddings(self) -> torch.Tensor:
        """``[n, d]`` float64: the embeddings of the group's numbers by coordinate; ``a``'s rows, and ``b``'s
        rows beside them (``d = 2 d_model``) when the model has separate ``b`` tokens."""
        w_e, coords = self.weights["embed.W_E"].double(), self.grid.coords
        rows_a, rows_b = self.config.number_rows()
        parts = [w_e[rows_a[coords.a_tokens]]]
        if self.config.separate_b_tokens:
            parts.append(w_e[rows_b[coords.b_tokens]])
        return torch.cat(parts, dim=1)

    def answer_unembeddings(self) -> torch.Tensor:
        """``[n, d_model]`` float64: the unembedding columns of the group's answers by coordinate."""
        return self.weights["unembed.W_U"].double()[:, self.grid.coords.c_tokens].T

    def neuron_grid(self, neurons: list[int]) -> torch.Tensor:
        """``[n, n, len(neurons)]`` float32 readout-layer activations of the neurons, indexed ``[x, y, neuron]``."""
        n = self.grid.n
        return torch.cat([piece.neurons[:, neurons] for piece in self.chunks()]).reshape(n, n, len(neurons))

    def answer_logits_at(self, pairs: torch.Tensor) -> torch.Tensor:
        """``[m, p]`` float64 answer logits (answer order) of the operand pairs ``[m, 2]`` (chunked like the grid)."""
        out = RowSlab(len(pairs))
        self._needs_model("answer logits of other inputs")
        with torch.no_grad():
            for i in range(0, len(pairs), self._step):
                rows = slice(i, min(len(pairs), i + self._step))
                out.put(rows, self.grid.answer_logits(self._model(self.config.encode(pairs[rows]))[:, -1]))
        return out.data if out.data is not None else torch.zeros(0, self.task.p, dtype=torch.float64)


def grid_recorder(model, names: Sequence[str] | None = None, attention: bool = True) -> GridRecorder:
    """A :class:`GridRecorder` recording what :func:`grid_cache` reads; attach it once for many checkpoints.

    ``attention=False`` leaves out the attention patterns (the progress measures do not read them).
    """
    cfg, stopped = tl_adapter.model_config(model), stops_at_readout(model)
    if names is None:
        names = [n for n in pass_hooks(cfg, stopped) if attention or "pattern" not in n]
    readout_mid = hook_name("resid_mid", cfg.n_layers - 1)
    stop = readout_mid if stopped and readout_mid in names else None
    return GridRecorder(model, list(names), select=_select(names), stop_after=stop)


def grid_cache(model, task: ModularTask, recorder: GridRecorder | None = None,
               chunk: int = DEFAULT_CHUNK, keep: str | None = None, statistics: Sequence[Statistic] = ()) -> GridCache:
    """Run ``model`` once over the task's analysis grid (chunked) and keep the statistics the probes need.

    Args:
        recorder: a :func:`grid_recorder` already attached to ``model``, to reuse across checkpoints.
        chunk: inputs per forward pass (rounded down to whole rows ``x``, at least one).
        keep: ``"full"``, ``"replay"`` or ``"rerun"`` (see the module docstring); default: by the memory budget.
        statistics: more first-pass accumulators (:mod:`modadd_interp.probes.statistics`); their results are in
            ``cache.statistics``.

    The model is not modified: no hook outlives the call, weights are copied.
    """
    return GridCache(model, task, recorder, chunk, keep, statistics)


__all__ = ["AnalysisGrid", "GridCache", "GridChunk", "LogitMoments", "NeuronStats", "SweepPlan", "grid_cache",
           "grid_recorder"]
