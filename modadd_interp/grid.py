"""Forward passes over the full ``(a, b)`` grid, chunked so memory stays bounded.

Inputs are operand pairs ``(a, b)``, encoded in each model's own token layout
(:meth:`modadd_interp.config.ModelConfig.encode`); logits are read at the last position.

Examples:
    >>> import modadd_interp as mi
    >>> model, task = mi.load()
    >>> logits = grid_logits(model, task)
    >>> logits.shape                                  # [p*p, d_vocab_out], final position
    torch.Size([12769, 113])
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
    """Raise a clear error unless ``model`` can be analysed on ``task``; return its :class:`ModelConfig`."""
    cfg = tl_adapter.model_config(model)
    if cfg.p != task.p:
        raise TaskMismatchError(
            f"the model's vocabulary (d_vocab={cfg.d_vocab}, layout {cfg.layout}) is for p={cfg.p}, but the task "
            f"has p={task.p}; pass the p the model was trained on."
        )
    return cfg


class _PassStopped(Exception):
    """Raised by the ``stop_after`` recorder to end a forward pass early (caught in :meth:`GridRecorder.chunks`)."""


class GridRecorder:
    """Hooks attached once, then any number of chunked grid passes (e.g. over checkpoints).

    Examples:
        >>> import modadd_interp as mi
        >>> run = mi.shipped_run()                    # the shipped model's checkpoints over training
        >>> model = tl_adapter.build_model(run.config, run.weights[0])
        >>> with GridRecorder(model, ["blocks.0.mlp.hook_post"]) as rec:
        ...     for weights in run.weights[-2:]:
        ...         tl_adapter.set_weights(model, run.config, weights)
        ...         logits, acts = rec.run(run.task)
        >>> logits.shape, acts["blocks.0.mlp.hook_post"].shape      # [p*p, p], [p*p, n_ctx, d_mlp]
        (torch.Size([12769, 113]), torch.Size([12769, 3, 512]))
    """

    def __init__(
        self, model, names: Sequence[str] = (), fwd_hooks: Sequence = (),
        select: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None, stop_after: str | None = None,
    ) -> None:
        """``stop_after``: a recorded hook name; each pass ends once it has been recorded (nothing after it runs, and
        :meth:`chunks` yields ``None`` for the logits). For callers that compute the rest themselves."""
        if stop_after is not None and stop_after not in names:
            raise ValueError(f"stop_after={stop_after!r} must be one of the recorded names {list(names)}")
        self.model, self.names, self.select, self.stop_after = model, list(names), select or {}, stop_after
        self._store: dict[str, torch.Tensor] = {}
        self._running = False
        recorders = [(n, self._recorder(n)) for n in self.names]
        self._hooks = tl_adapter.hooked(model, list(fwd_hooks) + recorders)

    def _recorder(self, name: str):
        def record(activation: torch.Tensor) -> None:
            self._store[name] = activation.detach()
            if name == self.stop_after and self._running:  # not in another recorder's pass while this one waits
                raise _PassStopped

        return record

    def __enter__(self) -> GridRecorder:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)

    def chunks(self, pairs: torch.Tensor, step: int) -> Iterator[tuple[slice, torch.Tensor, dict]]:
        """Run operand ``pairs`` ``[N, 2]`` in chunks of ``step`` inputs; yield ``(slice, logits, activations)``.

        ``logits`` are the final-position ``[n, d_vocab_out]`` logits of the chunk's inputs; activations are
        the recorded hook points (sliced by ``select``).
        """
        cfg = tl_adapter.model_config(self.model)
        for start in range(0, len(pairs), step):
            rows = slice(start, min(len(pairs), start + step))
            self._store.clear()
            logits = None
            self._running = True
            try:
                with torch.no_grad():
                    logits = self.model(cfg.encode(pairs[rows]))[:, -1].detach()
            except _PassStopped:
                pass
            finally:
                self._running = False
            if logits is not None and not torch.isfinite(logits).all():
                raise InvalidWeightsError("the model produced NaN/inf logits; its weights are corrupt.")
            missing = [n for n in self.names if n not in self._store]
            if missing:
                raise ArchitectureError(f"hook points {missing} did not fire on this model.")
            acts = {n: self.select[n](self._store[n]) if n in self.select else self._store[n] for n in self.names}
            self._store.clear()
            yield rows, logits, acts

    def run(self, task: ModularTask, chunk: int = DEFAULT_CHUNK) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Final-position logits ``[m, d_vocab_out]`` and the recorded activations at the task's defined inputs
        (all ``p*p`` of the grid, in grid order, but for ``b = 0`` under ``div``)."""
        check_compatible(self.model, task)
        parts = list(self.chunks(task.pairs[task.valid_mask], chunk))
        return torch.cat([c[1] for c in parts]), {n: torch.cat([c[2][n] for c in parts]) for n in self.names}


def grid_run(
    model, task: ModularTask, names: Sequence[str] = (), chunk: int = DEFAULT_CHUNK,
    fwd_hooks: Sequence = (), select: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Final-position logits ``[m, d_vocab_out]`` and activations for ``names`` at the task's defined inputs.

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
    """Final-position logits ``[m, d_vocab_out]`` at the task's defined inputs (``[p*p, ...]`` but for div)."""
    return grid_run(model, task, chunk=chunk)[0]


def grid_measure(model, task: ModularTask, fwd_hooks: Sequence = (), chunk: int = DEFAULT_CHUNK) -> Measurement:
    """Float64 losses and accuracies over the task's defined inputs (under ``fwd_hooks``), streamed."""
    check_compatible(model, task)
    total = MeasurementSum()
    valid = task.valid_mask
    labels, train, test = task.labels[valid], task.train_mask[valid], task.test_mask[valid]
    with GridRecorder(model, fwd_hooks=fwd_hooks) as recorder:
        for rows, logits, _ in recorder.chunks(task.pairs[valid], chunk):
            total.add(task.final_logits(logits), labels[rows], train[rows], test[rows])
    return total.result()


def evaluate(model, task: ModularTask) -> dict[str, float]:
    """Accuracy and float64 losses of ``model`` on the full grid, train and test."""
    return grid_measure(model, task).to_dict()
