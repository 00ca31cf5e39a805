"""Measure a model over the grid under interventions: float64 losses, activation means.

Examples:
    >>> import modadd_interp as mi
    >>> from modadd_interp.causal import ablate_heads
    >>> model, task = mi.load()
    >>> with ablate_heads(model, [0]):
    ...     m = measure(model, task)
    >>> m.test_loss, m.test_accuracy                            # the whole model: 3.4e-07, 1.0
    (0.58, 0.82)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..grid import grid_measure, grid_run
from ..readout import Measurement
from ..task import ModularTask

__all__ = ["Measurement", "activation_means", "measure"]


def measure(model, task: ModularTask) -> Measurement:
    """Losses and accuracy of ``model`` over the grid (under whatever hooks are active), streamed in chunks."""
    return grid_measure(model, task)


def activation_means(model, task: ModularTask, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """Mean of each named activation over the grid: ``{name: [n_ctx, ...]}`` (for mean ablation)."""
    sums: dict[str, torch.Tensor] = {}
    _, acts = grid_run(model, task, names=names, select={n: (lambda a: a.double().sum(0, keepdim=True))
                                                          for n in names})
    for name in names:
        sums[name] = acts[name].sum(0) / task.n_inputs
    return sums
