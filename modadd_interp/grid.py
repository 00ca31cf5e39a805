"""Forward passes over the full ``(a, b)`` grid, chunked so memory stays bounded.

Examples:
    >>> logits = grid_logits(model, task)            # doctest: +SKIP
    >>> logits.shape                                  # [p*p, d_vocab_out], final position
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from . import tl_adapter
from .config import ModelConfig
from .errors import ArchitectureError, InvalidWeightsError, TaskMismatchError
from .task import ModularTask

DEFAULT_CHUNK = 16_384  # inputs per forward pass; p=113 is one chunk


def check_compatible(model, task: ModularTask) -> ModelConfig:
    """Raise a clear error unless ``model`` can be analysed on ``task``."""
    cfg = tl_adapter.model_config(model)
    if cfg.n_layers != 1:
        raise ArchitectureError(
            f"the model has {cfg.n_layers} layers; the probes read a one-layer circuit."
        )
    if cfg.n_ctx < 3:
        raise ArchitectureError(f"n_ctx={cfg.n_ctx}; the task needs 3 positions (a, b, '=').")
    if cfg.d_vocab != task.p + 1 or cfg.d_vocab_out not in (task.p, task.p + 1):
        raise TaskMismatchError(
            f"the model has d_vocab={cfg.d_vocab}, d_vocab_out={cfg.d_vocab_out}, but p={task.p} "
            f"needs d_vocab={task.p + 1} and d_vocab_out={task.p} (or {task.p + 1})."
        )
    return cfg


class GridRecorder:
    """Hooks attached once, then any number of chunked grid passes (e.g. over checkpoints).

    Examples:
        >>> with GridRecorder(model, ["blocks.0.mlp.hook_post"]) as rec:      # doctest: +SKIP
        ...     for weights in series:
        ...         tl_adapter.set_weights(model, weights)
        ...         logits, acts = rec.run(task)
    """

    def __init__(
        self, model, names: Sequence[str] = (), fwd_hooks: Sequence = (),
        select: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    ) -> None:
        self.model, self.names, self.select = model, list(names), select or {}
        self._store: dict[str, torch.Tensor] = {}
        recorders = [(n, self._recorder(n)) for n in self.names]
        self._hooks = tl_adapter.hooked(model, list(fwd_hooks) + recorders)

    def _recorder(self, name: str):
        def record(activation: torch.Tensor) -> None:
            self._store[name] = activation.detach()

        return record

    def __enter__(self) -> GridRecorder:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)

    @torch.no_grad()
    def run(self, task: ModularTask, chunk: int = DEFAULT_CHUNK) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Final-position logits ``[p*p, d_vocab_out]`` and the recorded activations over the grid."""
        check_compatible(self.model, task)
        logits_parts, acts = [], {n: [] for n in self.names}
        for start in range(0, task.n_inputs, chunk):
            self._store.clear()
            logits_parts.append(self.model(task.inputs[start : start + chunk])[:, -1].detach())
            missing = [n for n in self.names if n not in self._store]
            if missing:
                raise ArchitectureError(f"hook points {missing} did not fire on this model.")
            for n in self.names:
                acts[n].append(self.select[n](self._store[n]) if n in self.select else self._store[n])
        self._store.clear()
        logits = torch.cat(logits_parts)
        if not torch.isfinite(logits).all():
            raise InvalidWeightsError("the model produced NaN/inf logits; its weights are corrupt.")
        return logits, {n: torch.cat(v) for n, v in acts.items()}


def grid_run(
    model, task: ModularTask, names: Sequence[str] = (), chunk: int = DEFAULT_CHUNK,
    fwd_hooks: Sequence = (), select: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Final-position logits ``[p*p, d_vocab_out]`` and activations for ``names`` over the grid.

    Args:
        names: hook names to record; each activation is kept whole unless ``select[name]``
            slices it per chunk (e.g. ``{"blocks.0.mlp.hook_post": lambda a: a[:, -1]}``),
            which keeps memory bounded for large p.
        fwd_hooks: interventions applied during the pass, as in :func:`tl_adapter.hooked`.
    """
    check_compatible(model, task)
    with GridRecorder(model, names, fwd_hooks, select) as recorder:
        return recorder.run(task, chunk)


def grid_logits(model, task: ModularTask, chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """Final-position logits ``[p*p, d_vocab_out]`` over the grid."""
    return grid_run(model, task, chunk=chunk)[0]


def evaluate(model, task: ModularTask) -> dict[str, float]:
    """Accuracy and float64 losses of ``model`` on the full grid, train and test."""
    logits = grid_logits(model, task)
    return {
        "accuracy": task.accuracy(logits),
        "train_accuracy": task.accuracy(logits, "train"),
        "test_accuracy": task.accuracy(logits, "test"),
        "train_loss": task.loss(logits, "train"),
        "test_loss": task.loss(logits, "test"),
        "loss": task.loss(logits, "all"),
    }
