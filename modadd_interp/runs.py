"""Checkpoint series ("runs"): read every form a user may have, write the compact shipped form.

A :class:`Run` is a list of canonical-weight checkpoints of one model over training. It can be
read from a run directory written by :func:`modadd_interp.train`, a paper-style series
(``state_dicts``, ``epochs``, ...; a dict or a torch file), a series file of ours, or a list of
``(step, model or state dict)`` pairs.

Examples:
    >>> run = load_run("runs/p113")            # doctest: +SKIP
    >>> run.steps[:3], len(run)
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from . import tl_adapter
from .checkpoints import Checkpoint, from_state_dict, read_paper_series
from .config import ModelConfig, check_weights
from .errors import CheckpointError, TaskMismatchError
from .storage import load_tensors, save_tensors, torch_load_safely
from .task import ModularTask
from .train import checkpoint_paths, read_run_info

SERIES_FORMAT = "modadd_interp.series/1"


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


def load_run(source: object, task: ModularTask | None = None, n_heads: int | None = None) -> Run:
    """Read a checkpoint series from any supported form (see the module docstring).

    Raises:
        CheckpointError: nothing readable, or steps that are not increasing.
        TaskMismatchError: checkpoints for different p, or a ``task`` that does not fit.
    """
    if isinstance(source, Run):
        run = source
    elif isinstance(source, (str, Path)):
        run = _from_path(Path(source), n_heads)
    elif isinstance(source, Mapping) and "state_dicts" in source:
        run = _from_checkpoints(read_paper_series(source, n_heads))
    elif isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
        run = _from_pairs(source, n_heads)
    else:
        raise CheckpointError(
            f"cannot read a run from a {type(source).__name__}: pass a run directory, a series file, "
            "a paper-style dict with 'state_dicts', or a list of (step, model or state dict) pairs."
        )
    if task is not None:
        if task.p != run.config.p:
            raise TaskMismatchError(f"the task has p={task.p} but the run's models are for p={run.config.p}.")
        run = dataclasses.replace(run, task=task)
    return run


def write_series(run: Run, path: str | Path, dtype: torch.dtype = torch.float16) -> None:
    """Write ``run`` as one safetensors series file (weights in ``dtype``, history in float64)."""
    tensors = {f"{step:08d}.{name}": t.to(dtype) for step, w in zip(run.steps, run.weights, strict=True)
               for name, t in w.items()}
    for key, values in (run.history or {}).items():
        tensors[f"history.{key}"] = values.to(torch.float64)
    info = {"format": SERIES_FORMAT, "config": run.config.to_dict(), "steps": list(run.steps),
            "task": run.task.to_dict() if run.task else None}
    save_tensors(Path(path), tensors, info)


# -------------------------------------------------------------------- readers
def _from_path(path: Path, n_heads: int | None) -> Run:
    if path.is_dir():
        return _from_run_dir(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist; pass a run directory or a series file.")
    if path.suffix == ".safetensors":
        return _from_series_file(path)
    obj = torch_load_safely(path)
    if isinstance(obj, Mapping) and "state_dicts" in obj:
        return _from_checkpoints(read_paper_series(obj, n_heads))
    raise CheckpointError(
        f"{path} holds a single model, not a series; progress measures need several checkpoints "
        "(a run directory, a paper-style 'state_dicts' file, or a list of (step, state dict) pairs)."
    )


def _from_run_dir(path: Path) -> Run:
    if not (path / "run.json").exists():
        raise CheckpointError(f"{path} is a directory but not a modadd_interp run (no run.json).")
    info = read_run_info(path)
    found = checkpoint_paths(path)
    if not found:
        raise CheckpointError(f"the run {path} has no checkpoints yet (checkpoints/ is empty).")
    config = ModelConfig(**info["config"])
    steps, weights, history = [], [], None
    for step, file in found:
        try:
            tensors, _ = load_tensors(file)
        except CheckpointError as e:
            warnings.warn(f"skipping unreadable checkpoint {file.name}: {e}", stacklevel=3)
            continue
        weights.append(check_weights(config, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}))
        steps.append(step)
        history = {k[8:]: v for k, v in tensors.items() if k.startswith("history.")} or history
    return Run(config, tuple(steps), tuple(weights), ModularTask(**info["task"]), history)


def _from_series_file(path: Path) -> Run:
    tensors, info = load_tensors(path)
    if info.get("format") != SERIES_FORMAT:
        raise CheckpointError(f"{path} is not a modadd_interp series file (format {info.get('format')!r}).")
    config = ModelConfig(**info["config"])
    steps = tuple(int(s) for s in info["steps"])
    weights = tuple(check_weights(config, {k[9:]: v.float() for k, v in tensors.items() if k.startswith(f"{s:08d}.")})
                    for s in steps)
    history = {k[8:]: v for k, v in tensors.items() if k.startswith("history.")} or None
    task = ModularTask(**info["task"]) if info.get("task") else None
    return Run(config, steps, weights, task, history)


def _from_pairs(pairs: Sequence, n_heads: int | None) -> Run:
    checkpoints = []
    for item in pairs:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise CheckpointError("a run list must hold (step, model or state dict) pairs.")
        step, obj = item
        if isinstance(obj, Mapping):
            ckpt = from_state_dict(obj, n_heads)
        else:
            ckpt = Checkpoint(tl_adapter.model_config(obj), tl_adapter.canonical_weights(obj), None, None, "model")
        checkpoints.append(dataclasses.replace(ckpt, step=int(step)))
    return _from_checkpoints(checkpoints)


def _from_checkpoints(checkpoints: list[Checkpoint]) -> Run:
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
    return Run(config, tuple(steps), tuple(c.weights for c in checkpoints), checkpoints[-1].task)
