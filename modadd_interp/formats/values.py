"""Small readers of the non-tensor values a checkpoint records (steps, epochs)."""

from __future__ import annotations

import torch

from ..errors import CheckpointError


def as_int(value: object, what: str) -> int | None:
    """``value`` as an int (None stays None); integral floats and 0-d tensors are accepted.

    Examples:
        >>> as_int(100.0, "the step"), as_int(None, "the step")
        (100, None)
    """
    if value is None:
        return None
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise CheckpointError(f"{what} must be an integer, got {value!r}.")
    return int(value)
