"""Phase labels of one run, after Liu et al. 2022 ("Towards Understanding Grokking"), from its checkpoints.

Liu et al. sort runs into four phases by when the training and the test (their validation)
accuracy first reach a threshold within the step budget:

* **comprehension**: both reach it, the test accuracy with a *small* delay after the training accuracy;
* **grokking**: both reach it, the test accuracy with a *large* delay;
* **memorization**: only the training accuracy reaches it;
* **confusion**: the training accuracy does not reach it (whatever the test accuracy does).

The constants (as we use them; Liu et al. use a 90% accuracy threshold and call a delay of more than
10³ steps out of their 10⁴-step budget grokking):

* :data:`ACCURACY_THRESHOLD` = 0.9, their threshold;
* :data:`GROK_DELAY_FRACTION` = 0.1: a delay of more than 10% of the run's step budget is *large*. It is
  their 10³/10⁴ made relative, so the label does not depend on the budget's unit: a sweep of 300 steps
  and one of 30,000 are judged alike. The step budget bounds the delay, so the comprehension/grokking
  line has to scale with it.

The steps come from the run's checkpoints, so they are resolved to ``checkpoint_every`` steps (the
first checkpoint at or past the threshold). Our own phases (:func:`modadd_interp.progress.detect_phases`:
memorization end, circuit formation end, cleanup end) sit beside these labels in the results table;
they use stricter thresholds (99%) and the test loss, and can disagree at the margins.

Examples:
    >>> phase_label(train_step=100, test_step=150, steps=3000)
    'comprehension'
    >>> phase_label(train_step=100, test_step=2000, steps=3000)
    'grokking'
    >>> phase_label(train_step=100, test_step=None, steps=3000), phase_label(None, None, 3000)
    ('memorization', 'confusion')
"""

from __future__ import annotations

import pandas as pd

#: Accuracy both curves must reach (Liu et al. 2022 use 90%).
ACCURACY_THRESHOLD = 0.9
#: A test-after-train delay above this fraction of the step budget is grokking, at or below it comprehension.
GROK_DELAY_FRACTION = 0.1
#: The labels, in the order figures list them.
LABELS = ("comprehension", "grokking", "memorization", "confusion")


def steps_to_reach(frame: pd.DataFrame, column: str, threshold: float = ACCURACY_THRESHOLD) -> int | None:
    """The first checkpoint step where ``frame[column] >= threshold``, or None if it never does.

    Args:
        frame: one row per checkpoint with a ``step`` column (``progress_measures``' frame).
        column: e.g. ``"train_accuracy"`` or ``"test_accuracy"``.
    """
    reached = frame.loc[frame[column] >= threshold, "step"]
    return int(reached.iloc[0]) if len(reached) else None


def phase_label(train_step: int | None, test_step: int | None, steps: int,
                delay_fraction: float = GROK_DELAY_FRACTION) -> str:
    """The Liu et al. label of a run from the steps at which its accuracies reached the threshold."""
    if train_step is None:
        return "confusion"
    if test_step is None:
        return "memorization"
    return "grokking" if test_step - train_step > delay_fraction * steps else "comprehension"


def label_run(frame: pd.DataFrame, steps: int) -> dict:
    """The label and the steps behind it, for a run's progress frame and its step budget.

    Returns:
        ``{"label", "train_threshold_step", "test_threshold_step", "grok_delay"}``; the delay is
        ``test - train`` (None unless both reached the threshold).
    """
    train_step = steps_to_reach(frame, "train_accuracy")
    test_step = steps_to_reach(frame, "test_accuracy")
    delay = test_step - train_step if train_step is not None and test_step is not None else None
    return {"label": phase_label(train_step, test_step, steps), "train_threshold_step": train_step,
            "test_threshold_step": test_step, "grok_delay": delay}
