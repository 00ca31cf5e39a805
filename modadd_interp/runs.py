"""Checkpoint series ("runs"): read every form a user may have, write the compact shipped form.

A :class:`Run` is a list of canonical-weight checkpoints of one model over training. It can be
read from a run directory written by :func:`modadd_interp.train`, a paper-style series
(``state_dicts``, ``epochs``, ...; a dict or a torch file), a series file of ours, anything a registered
format reads as a series (all through :mod:`modadd_interp.formats`), or a list of ``(step, model or state dict)``
pairs (each state dict in any format the registry reads; what state dicts do not record is assumed and said once).

Examples:
    >>> from modadd_interp.loading import data_path
    >>> run = load_run(data_path("grokked_p113_series.safetensors"))   # the shipped series (mi.shipped_run())
    >>> run.steps[:3], run.steps[-1], len(run), run.task.p
    ((100, 200, 300), 9000, 29, 113)
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from . import tl_adapter
from .config import ModelConfig
from .errors import CheckpointError, ModAddError, TaskMismatchError
from .formats import ours, registry
from .formats.checkpoint import Checkpoint, Series
from .formats.ours import SERIES_FORMAT
from .formats.registry import ReadOptions
from .formats.source import Source
from .formats.values import as_int
from .task import ModularTask

__all__ = ["SERIES_FORMAT", "Run", "load_run", "write_series"]


@dataclasses.dataclass(frozen=True)
class Run:
    """A model's checkpoints over training, oldest first.

    Attributes:
        config: the architecture (the same for every checkpoint).
        steps: the training step of each checkpoint.
        weights: canonical float32 weights of each checkpoint.
        task: the task and split, when recorded.
        history: optional loss history: ``train_loss`` per step, ``test_loss`` at ``test_step``.
    """

    config: ModelConfig
    steps: tuple[int, ...]
    weights: tuple[dict[str, torch.Tensor], ...]
    task: ModularTask | None = None
    history: dict[str, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.steps)

    def checkpoint(self, index: int) -> Checkpoint:
        """The ``index``-th checkpoint (negative indices count from the end)."""
        return Checkpoint(self.config, self.weights[index], self.task, self.steps[index], "modadd_interp")


def load_run(source: object, task: ModularTask | None = None, n_heads: int | None = None,
             config: object = None) -> Run:
    """Read a checkpoint series from any supported form (see the module docstring).

    Args:
        source: a run directory, a series file, a paper-style series (a torch file or the dict), any file or object a
            registered format reads as a series, a list of ``(step, model or state dict)`` pairs, or a :class:`Run`.
        task: the task, when the source does not record it (or to override it).
        n_heads: the head count of bridge state dicts (default 4, with a notice).
        config: :class:`~modadd_interp.config.ModelConfig` fields for what state dicts do not record (their
            attention rate, activation, attention direction, token layout: assumed 1, ReLU, causal, ``(a, b, '=')``
            with 3 positions, with one notice per call otherwise).

    Raises:
        CheckpointError: nothing readable, a single model, or steps that are not increasing.
        TaskMismatchError: checkpoints for different p, or a ``task`` that does not fit.
        ArchitectureError: ``n_heads`` or ``config`` contradicts the source.
    """
    if isinstance(source, Run):
        run = source
    else:
        options = dataclasses.replace(registry.check_options(n_heads, config), series=True)
        if isinstance(source, (str, Path)):
            src = Source.of_path(source)
            series = registry.finish(registry.read_series(src, options), src, options)
        elif isinstance(source, Mapping):
            src = Source.of_object(source, "the series dict")
            series = registry.finish(registry.read_series(src, options), src, options)
        elif isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
            src = Source.of_object(source, "each (step, state dict) pair's state dict")
            series = registry.finish(_from_pairs(source, options), src, options)
        else:
            raise CheckpointError(
                f"cannot read a run from a {type(source).__name__}: pass a run directory, a series file, "
                "a paper-style dict with 'state_dicts', or a list of (step, model or state dict) pairs."
            )
        run = _from_series(series)
        for note in registry.notes_of(series):
            warnings.warn(note, stacklevel=2)
    if task is not None:
        if task.p != run.config.p:
            raise TaskMismatchError(f"the task has p={task.p} but the run's models are for p={run.config.p}.")
        run = dataclasses.replace(run, task=task)
    return run


def write_series(run: Run, path: str | Path, dtype: torch.dtype = torch.float16) -> None:
    """Write ``run`` as one safetensors series file (weights in ``dtype``, history in float64;
    :func:`modadd_interp.formats.ours.write_series`)."""
    ours.write_series(path, run.config, run.steps, run.weights, run.task, run.history, dtype)


# -------------------------------------------------------------------- readers
def _from_pairs(pairs: Sequence, options: ReadOptions) -> Series:
    checkpoints = []
    for index, item in enumerate(pairs):
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise CheckpointError(
                f"a run list must hold (step, model or state dict) pairs; item {index} is a {type(item).__name__}."
            )
        step, obj = item
        step = as_int(step, f"the step of pair {index}")
        if isinstance(obj, Mapping):
            try:
                ckpt = registry.read_final(Source.of_object(obj, f"the state dict of step {step}"), options)
            except ModAddError as e:
                raise type(e)(f"pair {index} (step {step}): {e}") from e
        else:
            ckpt = Checkpoint(tl_adapter.model_config(obj), tl_adapter.canonical_weights(obj), None, None, "model")
        checkpoints.append(dataclasses.replace(ckpt, step=step))
    if not checkpoints:
        raise CheckpointError("the run has no checkpoints.")
    return Series(tuple(checkpoints))


def _from_series(series: Series) -> Run:
    checkpoints = series.checkpoints
    if not checkpoints:
        raise CheckpointError("the run has no checkpoints.")
    config = checkpoints[0].config
    for ckpt in checkpoints[1:]:
        if ckpt.config.p != config.p:
            raise TaskMismatchError(f"the run mixes models for p={config.p} and p={ckpt.config.p}.")
        if ckpt.config != config:
            raise CheckpointError(f"the run mixes architectures: {config} and {ckpt.config}.")
    steps = [c.step for c in checkpoints]
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise CheckpointError(f"the run's steps must increase strictly, got {steps}.")
    return Run(config, tuple(steps), tuple(c.weights for c in checkpoints), checkpoints[-1].task, series.history)
