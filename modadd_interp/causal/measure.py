"""Measure a model over the grid under interventions: logits, float64 losses, activation means.

Examples:
    >>> with ablate_heads(model, [0]):                         # doctest: +SKIP
    ...     m = measure(model, task)
    >>> m.test_loss
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from ..grid import grid_run
from ..readout import accuracy, cross_entropy
from ..task import ModularTask


@dataclasses.dataclass(frozen=True)
class Measurement:
    """Float64 losses and accuracies of one set of ``[p*p, p]`` answer logits."""

    train_loss: float
    test_loss: float
    loss: float
    accuracy: float
    test_accuracy: float

    @classmethod
    def of(cls, logits: torch.Tensor, task: ModularTask) -> Measurement:
        """Measure answer logits (``[p*p, p]`` float64) on the task's splits."""
        y = task.labels
        return cls(
            train_loss=cross_entropy(logits, y, task.train_mask),
            test_loss=cross_entropy(logits, y, task.test_mask),
            loss=cross_entropy(logits, y),
            accuracy=accuracy(logits, y),
            test_accuracy=accuracy(logits, y, task.test_mask),
        )

    def to_dict(self) -> dict:
        """JSON-safe fields."""
        return dataclasses.asdict(self)


def answer_logits(model, task: ModularTask) -> torch.Tensor:
    """``[p*p, p]`` float64 answer logits over the grid (under whatever hooks are active)."""
    return task.final_logits(grid_run(model, task)[0])


def measure(model, task: ModularTask) -> Measurement:
    """Losses and accuracy of ``model`` over the grid (under whatever hooks are active)."""
    return Measurement.of(answer_logits(model, task), task)


def activation_means(model, task: ModularTask, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """Mean of each named activation over the grid: ``{name: [n_ctx, ...]}`` (for mean ablation)."""
    sums: dict[str, torch.Tensor] = {}
    _, acts = grid_run(model, task, names=names, select={n: (lambda a: a.double().sum(0, keepdim=True))
                                                          for n in names})
    for name in names:
        sums[name] = acts[name].sum(0) / task.n_inputs
    return sums
