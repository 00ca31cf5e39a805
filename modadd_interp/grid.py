"""Forward passes over the full ``(a, b)`` grid, chunked so memory stays bounded.

Examples:
    >>> logits = grid_logits(model, task)            # doctest: +SKIP
    >>> logits.shape                                  # [p*p, d_vocab_out], final position
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

from . import tl_adapter
from .config import ModelConfig
from .errors import ArchitectureError, InvalidWeightsError, TaskMismatchError
from .readout import Measurement, MeasurementSum
from .task import ModularTask

DEFAULT_CHUNK = 4096  # inputs per forward pass (measured fastest on 2 CPU cores at p = 113)


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

    def chunks(self, task: ModularTask, chunk: int = DEFAULT_CHUNK) -> Iterator[tuple[slice, torch.Tensor, dict]]:
        """Run the grid in chunks of whole rows ``a``; yield ``(inputs slice, logits, activations)`` per chunk.

        ``logits`` are the final-position ``[n, d_vocab_out]`` logits of the chunk's inputs; each chunk
        holds ``max(1, chunk // p)`` rows (``chunk`` bounds the inputs per forward pass).
        """
        check_compatible(self.model, task)
        step = max(1, chunk // task.p) * task.p
        for start in range(0, task.n_inputs, step):
            rows = slice(start, min(task.n_inputs, start + step))
            self._store.clear()
            with torch.no_grad():
                logits = self.model(task.inputs[rows])[:, -1].detach()
            if not torch.isfinite(logits).all():
                raise InvalidWeightsError("the model produced NaN/inf logits; its weights are corrupt.")
            missing = [n for n in self.names if n not in self._store]
            if missing:
                raise ArchitectureError(f"hook points {missing} did not fire on this model.")
            acts = {n: self.select[n](self._store[n]) if n in self.select else self._store[n] for n in self.names}
            self._store.clear()
            yield rows, logits, acts

    def run(self, task: ModularTask, chunk: int = DEFAULT_CHUNK) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Final-position logits ``[p*p, d_vocab_out]`` and the recorded activations over the whole grid."""
        parts = list(self.chunks(task, chunk))
        return torch.cat([c[1] for c in parts]), {n: torch.cat([c[2][n] for c in parts]) for n in self.names}


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


def grid_measure(model, task: ModularTask, fwd_hooks: Sequence = (), chunk: int = DEFAULT_CHUNK) -> Measurement:
    """Float64 losses and accuracies over the grid (under ``fwd_hooks``), streamed: memory ``O(chunk * p)``."""
    total = MeasurementSum()
    with GridRecorder(model, fwd_hooks=fwd_hooks) as recorder:
        for rows, logits, _ in recorder.chunks(task, chunk):
            total.add(task.final_logits(logits), task.labels[rows], task.train_mask[rows])
    return total.result()


def evaluate(model, task: ModularTask) -> dict[str, float]:
    """Accuracy and float64 losses of ``model`` on the full grid, train and test."""
    return grid_measure(model, task).to_dict()
