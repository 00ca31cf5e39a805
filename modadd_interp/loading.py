"""``mi.load``: one entry point for every model a user may bring, and the shipped model.

Examples:
    >>> import modadd_interp as mi
    >>> model, task = mi.load()          # the grokked p=113 model shipped in the package
    >>> task.p, model.cfg.d_model
    (113, 128)
"""

from __future__ import annotations

import dataclasses
import warnings
from importlib import resources
from pathlib import Path

from . import tl_adapter
from .config import ModelConfig
from .errors import ArchitectureError, CheckpointError, TaskMismatchError
from .formats import registry
from .formats.checkpoint import Checkpoint
from .formats.source import Source
from .group_inference import infer_group, require_group
from .inference import infer_op, infer_split, require_op
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
    op: str | None = None,
    frac_train: float | None = None,
    seed: int | None = None,
    split: str | None = None,
    n_heads: int | None = None,
    config: object = None,
    backend: str | None = None,
):
    """Load a model and its task.

    Args:
        source: None (the shipped grokked p=113 model), a path to any supported checkpoint
            file or run directory (see docs/formats.md), or a live ``HookedTransformer`` /
            ``TransformerBridge`` (returned as is, never copied or modified).
        task: the task to pair with the model (then ``op``/``frac_train``/``seed``/``split`` must be None).
        p: the modulus you expect; a mismatch with the model raises.
        op: the operation; default: the one the checkpoint records, else the one the model computes
            (:func:`modadd_interp.inference.infer_op`, with a one-line notice).
        frac_train, seed, split: the train/test split; default: the one the checkpoint records, else
            one recognised from the training loss the file recorded (:func:`modadd_interp.inference.infer_split`),
            else ``split="unknown"`` (full-grid figures only), with a notice. Any of them given sets the
            split (the others default to 0.3, 0 and ``"paper"``).
        n_heads: the head count, for a bare TransformerBridge state dict (default 4, with a notice).
        config: :class:`~modadd_interp.config.ModelConfig` fields (a dict, or a ModelConfig) for what the file does
            not record: a bare state dict's ``attn_rate``, ``act_fn``, ``attention_dir``, ``has_eq``,
            ``separate_b_tokens`` (assumed 1, ReLU, causal, ``n_ctx >= 3``, False otherwise, with a notice). A
            field that contradicts the file raises. Not for a live model (its ``cfg`` says it all).
        backend: ``"bridge"`` or ``"hooked_transformer"``; default: the installed TL's.

    Returns:
        ``(model, task)``: a hooked model in eval mode and its :class:`ModularTask` (``task.op_source``
        and ``task.split_source`` say where each came from).

    Raises:
        CheckpointError: the file is missing, truncated, or not a checkpoint.
        UnsafeCheckpointError: the file would need arbitrary unpickling; nothing was executed.
        InvalidWeightsError: keys are missing or extra, shapes disagree, or values are NaN/inf.
        ArchitectureError: the model is not a LayerNorm-free attention + MLP (ReLU/GeLU) transformer.
        TaskMismatchError: ``p``, ``op`` or ``task`` does not fit the model, or no operation fits its answers.
    """
    split_given = {k: v for k, v in {"frac_train": frac_train, "seed": seed, "split": split}.items() if v is not None}
    if task is not None and (op is not None or split_given):
        raise TaskMismatchError("pass either task= or op/frac_train/seed/split, not both.")
    if source is None:
        source = data_path(SHIPPED_MODEL)
        if not source.is_file():
            raise CheckpointError(f"the shipped model is missing from the installed package ({source}); "
                                  "reinstall modadd_interp, or pass a checkpoint path.")
    if isinstance(source, (str, Path)):
        options = registry.check_options(n_heads, config)
        src = Source.of_path(source)
        ckpt = registry.finish(registry.read_final(src, options), src, options)
        for note in ckpt.notes:
            warnings.warn(note, stacklevel=2)
        model = tl_adapter.build_model(ckpt.config, ckpt.weights, backend=backend)
        origin = Path(source).name
        config, recorded, recorded_loss = ckpt.config, ckpt.task, ckpt.recorded_train_loss
    else:
        if config is not None:
            raise ArchitectureError("config= describes a checkpoint file; a live model's architecture is its cfg.")
        model, origin = source, type(source).__name__
        config, recorded, recorded_loss = tl_adapter.model_config(source), None, None
    _check_p(config, p)
    if task is None:
        task = resolve_task(model, config, recorded, recorded_loss, op, split_given, origin)
    _check_task(config, task)
    return model, task


def resolve_task(model, config: ModelConfig, recorded: ModularTask | None, recorded_loss: float | None,
                 op: str | None, split_given: dict, origin: str) -> ModularTask:
    """The task of a loaded model: given, else recorded, else read from the model (with a notice each time).

    The operation: ``op`` (given), the checkpoint's (recorded), or :func:`infer_op` (inferred). The split:
    ``split_given``, the checkpoint's when known, :func:`infer_split` from ``recorded_loss``, else unknown.
    """
    p = config.p
    if op is not None:
        op_name, op_source = op, "given"
    elif recorded is not None:
        op_name, op_source = recorded.op, recorded.op_source
    else:
        inferred = infer_op(model, config)
        try:
            op_name, notice = require_op(inferred, origin), inferred.notice(origin)
        except TaskMismatchError as error:  # no modular operation: perhaps a group's composition
            group = infer_group(model, config)
            op_name, notice = require_group(group, str(error)), group.notice(origin)
        op_source = "inferred"
        warnings.warn(notice, stacklevel=3)
    if split_given:
        fields = {"frac_train": 0.3, "seed": 0, "split": "paper", **split_given}
        return ModularTask(p=p, op=op_name, op_source=op_source, split_source="given", **fields)
    frac = recorded.frac_train if recorded is not None else 0.3
    if recorded is not None and recorded.split_known:
        return ModularTask(p=p, op=op_name, frac_train=frac, seed=recorded.seed, split=recorded.split,
                           op_source=op_source, split_source=recorded.split_source)
    task = ModularTask(p=p, op=op_name, frac_train=frac, split="unknown", op_source=op_source,
                       split_source="recorded" if recorded is not None else "default")
    if recorded_loss is not None:
        found = infer_split(model, config, dataclasses.replace(task, split="paper"), recorded_loss)
        warnings.warn(found.notice(origin), stacklevel=3)
        if found.task is not None:
            return found.task
        return task
    warnings.warn(
        f"{origin} does not record its train/test split: train and test losses are unavailable and every "
        "figure is over the full grid. Set the split with --frac-train/--seed/--split (task=... in Python).",
        stacklevel=3,
    )
    return task


def _check_p(config: ModelConfig, p: int | None) -> None:
    if p is not None and p != config.p:
        raise TaskMismatchError(
            f"p={p} was given, but the model's vocabulary ({config.d_vocab} tokens, layout {config.layout}) is "
            f"for p={config.p}. Pass p={config.p}, or load the model trained for p={p}."
        )


def _check_task(config: ModelConfig, task: ModularTask) -> None:
    if task.p != config.p:
        raise TaskMismatchError(
            f"the task has p={task.p}, but the model's vocabulary ({config.d_vocab} tokens, layout {config.layout}) "
            f"is for p={config.p}."
        )


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


