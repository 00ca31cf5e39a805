"""``mi.load``: one entry point for every model a user may bring, and the shipped model.

Examples:
    >>> import modadd_interp as mi
    >>> model, task = mi.load()          # the grokked p=113 model shipped in the package
    >>> task.p, model.cfg.d_model
    (113, 128)
"""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

from . import tl_adapter
from .checkpoints import Checkpoint, read_checkpoint
from .config import ModelConfig
from .errors import CheckpointError, TaskMismatchError
from .task import ModularTask

SHIPPED_MODEL = "grokked_p113.safetensors"
SHIPPED_SERIES = "grokked_p113_series.safetensors"


def data_path(name: str) -> Path:
    """Path of a file shipped in ``modadd_interp/data``."""
    return Path(str(resources.files("modadd_interp") / "data" / name))


def load(
    source: object = None,
    *,
    task: ModularTask | None = None,
    p: int | None = None,
    n_heads: int | None = None,
    backend: str | None = None,
):
    """Load a model and its task.

    Args:
        source: None (the shipped grokked p=113 model), a path to any supported checkpoint
            file or run directory (see docs/formats.md), or a live ``HookedTransformer`` /
            ``TransformerBridge`` (returned as is, never copied or modified).
        task: the task to pair with the model; default: the one the checkpoint records, else
            the paper's default split (frac_train 0.3, seed 0) with a warning.
        p: the modulus you expect; a mismatch with the model raises.
        n_heads: the head count, for a bare TransformerBridge state dict (default 4).
        backend: ``"bridge"`` or ``"hooked_transformer"``; default: the installed TL's.

    Returns:
        ``(model, task)``: a hooked model in eval mode and its :class:`ModularTask`.

    Raises:
        CheckpointError: the file is missing, truncated, or not a checkpoint.
        UnsafeCheckpointError: the file would need arbitrary unpickling; nothing was executed.
        InvalidWeightsError: keys are missing or extra, shapes disagree, or values are NaN/inf.
        ArchitectureError: the model is not a LayerNorm-free attention + ReLU-MLP transformer.
        TaskMismatchError: ``p`` or ``task`` does not fit the model.
    """
    if source is None:
        source = data_path(SHIPPED_MODEL)
        if not source.is_file():
            raise CheckpointError(f"the shipped model is missing from the installed package ({source}); "
                                  "reinstall modadd_interp, or pass a checkpoint path.")
    if isinstance(source, (str, Path)):
        ckpt = read_checkpoint(source, n_heads=n_heads)
        task = resolve_task(ckpt.config, task or ckpt.task, p, origin=str(source))
        return tl_adapter.build_model(ckpt.config, ckpt.weights, backend=backend), task
    config = tl_adapter.model_config(source)
    return source, resolve_task(config, task, p, origin=type(source).__name__)


def shipped_run():
    """The shipped model's thinned checkpoint series (a :class:`modadd_interp.runs.Run`).

    Examples:
        >>> run = shipped_run()
        >>> run.steps[0] < run.steps[-1]
        True
    """
    from .runs import load_run

    return load_run(data_path(SHIPPED_SERIES))


def load_checkpoint(ckpt: Checkpoint, backend: str | None = None):
    """Build a live model from a :class:`Checkpoint`."""
    return tl_adapter.build_model(ckpt.config, ckpt.weights, backend=backend)


def resolve_task(
    config: ModelConfig, task: ModularTask | None, p: int | None, origin: str
) -> ModularTask:
    """Check ``task``/``p`` against the model; default to the paper's split with a warning."""
    if p is not None and p != config.p:
        raise TaskMismatchError(
            f"p={p} was given, but the model's vocabulary ({config.d_vocab} tokens) is for "
            f"p={config.p}. Pass p={config.p}, or load the model trained for p={p}."
        )
    if task is None:
        warnings.warn(
            f"{origin} does not record its train/test split; assuming the paper's default "
            f"(frac_train=0.3, seed=0, split='paper'). Pass task=ModularTask(...) to set it.",
            stacklevel=3,
        )
        task = ModularTask(p=config.p)
    if task.p != config.p:
        raise TaskMismatchError(
            f"the task has p={task.p}, but the model's vocabulary ({config.d_vocab} tokens) "
            f"is for p={config.p}."
        )
    return task
