"""modadd_interp: read the grokking circuit out of modular-arithmetic transformers.

Example:
    >>> import modadd_interp as mi
    >>> model, task = mi.load()                  # the grokked p=113 model shipped in the package
    >>> mi.key_frequencies(model, task).freqs    # doctest: +SKIP
"""

from .config import ModelConfig
from .errors import (
    ArchitectureError,
    CheckpointError,
    InvalidWeightsError,
    ModAddError,
    TaskMismatchError,
    UnsafeCheckpointError,
)
from .loading import load
from .task import ModularTask
from .train import Recipe, train

__version__ = "0.1.0"

__all__ = [
    "ArchitectureError",
    "CheckpointError",
    "InvalidWeightsError",
    "ModAddError",
    "ModelConfig",
    "ModularTask",
    "Recipe",
    "TaskMismatchError",
    "UnsafeCheckpointError",
    "load",
    "train",
]
