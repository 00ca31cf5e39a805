"""Format 1: our own safetensors files, one model or a series, described by JSON metadata in the header.

* **One model**: the canonical weights (:data:`~modadd_interp.formats.hooked_transformer.CANONICAL`, optionally
  prefixed ``model.``), and the header entry ``"modadd_interp"``: a JSON object with ``config`` (the
  :class:`~modadd_interp.config.ModelConfig` fields), optionally ``task`` (the
  :class:`~modadd_interp.task.ModularTask` fields) and ``step``; a SHA-256 of it and of every tensor
  (``"modadd_interp.sha256"``) is verified on every load. A JSON sidecar ``<name>.json`` stands in for a header
  without our entry. Without either, the file is a bare state dict for the formats after this one.
* **A series** (:data:`SERIES_FORMAT`, :func:`write_series`): tensors keyed ``{step:08d}.{canonical name}`` (float16
  by default) plus ``history.*``; metadata ``{"format", "config", "steps", "task"}``.

A run directory (:mod:`~modadd_interp.formats.run_dir`) holds one file of ours per checkpoint.

Examples:
    >>> from modadd_interp.loading import data_path
    >>> ckpt = read(Source.of_path(data_path("grokked_p113.safetensors")), ReadOptions())   # the shipped model
    >>> ckpt.format, ckpt.task.op_source, ckpt.step
    ('modadd_interp', 'recorded', 9000)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from ..config import ModelConfig, check_weights
from ..errors import CheckpointError, TaskMismatchError
from ..storage import save_tensors
from ..task import ModularTask
from .checkpoint import Checkpoint, Series
from .hooked_transformer import CANONICAL
from .layout import fill_missing_biases, known_dims, refuse_layernorm
from .registry import ReadOptions
from .source import Source
from .values import as_int

NAME = "modadd_interp"
SERIES_FORMAT = "modadd_interp.series/1"
LAYOUT = dataclasses.replace(CANONICAL, fmt="modadd_interp")
"""The canonical layout (our files hold canonical weights), checked against the config the metadata records."""


def sniff(src: Source) -> bool:
    """A safetensors file whose metadata records a ``config`` (one model) or our series format."""
    info = src.metadata
    return "config" in info or info.get("format") == SERIES_FORMAT


def read(src: Source, options: ReadOptions) -> Checkpoint | Series:
    """The model (a series' final one, or every one with ``options.series``)."""
    tensors, info = src.content, src.metadata
    if info.get("format") == SERIES_FORMAT:
        series = read_series(tensors, info, src.origin)
        return series if options.series else series.checkpoints[-1]
    return from_tensors(tensors, info)


def from_tensors(tensors: Mapping[str, torch.Tensor], info: Mapping) -> Checkpoint:
    """One model of ours: canonical ``tensors`` (no ``model.`` prefix) and the metadata ``info`` describing them.

    Raises:
        CheckpointError: the metadata's ``config``/``task``/``step`` is malformed or has unknown fields.
        TaskMismatchError: the recorded task's p does not fit the architecture.
        InvalidWeightsError: a tensor that disagrees with the recorded config (named), keys missing or extra, NaN.
    """
    config = build_from_metadata(ModelConfig, info["config"], "config")
    task = build_from_metadata(ModularTask, info["task"], "task") if "task" in info else None
    if task is not None:
        task = dataclasses.replace(task, op_source="recorded", split_source="recorded")
    if task is not None and task.p != config.p:
        raise TaskMismatchError(
            f"the file's metadata records a task with p={task.p}, but its architecture "
            f"(d_vocab={config.d_vocab}) is for p={config.p}; the metadata is inconsistent."
        )
    refuse_layernorm(tensors)
    LAYOUT.dims(tensors, known=known_dims(config), against="the config in the file's metadata",
                blocks=[f"blocks.{i}" for i in range(config.n_layers)])
    weights = check_weights(config, fill_missing_biases(config, tensors))
    return Checkpoint(config, weights, task, as_int(info.get("step"), "the metadata's 'step'"), NAME)


def read_series(tensors: Mapping[str, torch.Tensor], info: Mapping, origin: str) -> Series:
    """A series file's checkpoints (weights as float32) and loss history.

    Raises:
        CheckpointError: malformed metadata (``config``, ``steps``, ``task``).
        InvalidWeightsError: a step's weights do not fit the config.
    """
    config = build_from_metadata(ModelConfig, info.get("config"), "config")
    steps = info.get("steps")
    if not isinstance(steps, Sequence) or isinstance(steps, str) or not steps:
        raise CheckpointError(f"the series file {origin} must list its 'steps' in its metadata, got {steps!r}.")
    steps = [as_int(s, "a step of the series") for s in steps]
    raw_task = info.get("task")
    task = None
    if raw_task:
        task = dataclasses.replace(build_from_metadata(ModularTask, raw_task, "task"), op_source="recorded",
                                   split_source="recorded")
    checkpoints = []
    for step in steps:
        prefix = f"{step:08d}."
        weights = {k[len(prefix):]: v.float() for k, v in tensors.items() if k.startswith(prefix)}
        checkpoints.append(Checkpoint(config, check_weights(config, weights), task, step, NAME))
    history = {k[8:]: v for k, v in tensors.items() if k.startswith("history.")} or None
    return Series(tuple(checkpoints), history)


def write_series(path: str | Path, config: ModelConfig, steps: Sequence[int],
                 weights: Sequence[Mapping[str, torch.Tensor]], task: ModularTask | None = None,
                 history: Mapping[str, torch.Tensor] | None = None, dtype: torch.dtype = torch.float16) -> None:
    """Write a series file (weights in ``dtype``, history in float64), atomically and checksummed.

    Examples:
        >>> write_series("run.safetensors", run.config, run.steps, run.weights, run.task)   # doctest: +SKIP
    """
    tensors = {f"{step:08d}.{name}": t.to(dtype) for step, w in zip(steps, weights, strict=True)
               for name, t in w.items()}
    for key, values in (history or {}).items():
        tensors[f"history.{key}"] = values.to(torch.float64)
    info = {"format": SERIES_FORMAT, "config": config.to_dict(), "steps": list(steps),
            "task": task.to_dict() if task else None}
    save_tensors(Path(path), tensors, info)


def build_from_metadata(cls: type, fields: object, what: str):
    """``cls(**fields)`` for a ModelConfig or ModularTask recorded in a file's metadata."""
    if not isinstance(fields, Mapping):
        raise CheckpointError(f"the file's metadata '{what}' must be a JSON object, got {fields!r}.")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise CheckpointError(
            f"the file's metadata '{what}' has unknown fields {unknown} (known: {sorted(known)}); "
            "it was written by another tool or a newer modadd_interp."
        )
    try:
        return cls(**fields)
    except (TypeError, ValueError, TaskMismatchError) as e:
        raise CheckpointError(f"the file's metadata '{what}' is malformed: {e}") from e
