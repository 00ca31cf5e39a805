"""Accuracy curves of a run from its checkpoints: what the phase labels need, for any group and model.

:func:`modadd_interp.progress.progress_measures` reads the Fourier circuit of ``Z/p`` over training; a run on a
non-abelian group (S4, S5, ...) has no such measures, but its phase label (Liu et al.'s, :mod:`.labels`) needs only
the training and the test accuracy at each checkpoint. :func:`accuracy_frame` computes exactly those.

Examples:
    >>> from modadd_interp.runs import load_run
    >>> frame = accuracy_frame(load_run("sweeps/s4/runs/p24-S4-..."))      # a run directory: not run  # doctest: +SKIP
    >>> list(frame.columns)                                                # doctest: +SKIP
    ['step', 'train_accuracy', 'test_accuracy']
"""

from __future__ import annotations

import pandas as pd
import torch

from .. import tl_adapter
from ..errors import ModAddError
from ..runs import Run

#: Inputs per forward pass (a p = 120 grid is 14,400 inputs: one chunk).
CHUNK = 16_384


def accuracy_frame(run: Run) -> pd.DataFrame:
    """One row per checkpoint: ``step``, ``train_accuracy`` and ``test_accuracy`` (argmax over the ``p`` answers).

    Args:
        run: a checkpoint series whose task (and split) is recorded.

    Returns:
        A frame of ``len(run)`` rows, oldest checkpoint first; accuracies in [0, 1] over the task's
        ``train_mask`` / ``test_mask`` (``[p * p]`` each).

    Raises:
        ModAddError: the run records no task.
    """
    task = run.task
    if task is None:
        raise ModAddError("the run records no task: its accuracies cannot be measured.")
    tokens = run.config.encode(task.pairs)                      # [p * p, seq_len]
    rows = []
    for index, step in enumerate(run.steps):
        model = tl_adapter.build_model(run.config, run.weights[index])
        with torch.no_grad():
            logits = torch.cat([model(tokens[i:i + CHUNK])[:, -1, :task.p] for i in range(0, len(tokens), CHUNK)])
        correct = logits.argmax(-1) == task.labels              # [p * p]
        rows.append({"step": int(step), "train_accuracy": float(correct[task.train_mask].float().mean()),
                     "test_accuracy": float(correct[task.test_mask].float().mean())})
    return pd.DataFrame(rows, columns=["step", "train_accuracy", "test_accuracy"])
