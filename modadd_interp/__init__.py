"""modadd_interp: read the grokking circuit out of modular-arithmetic transformers.

Examples:
    >>> import modadd_interp as mi
    >>> model, task = mi.load()                  # the grokked p=113 model shipped in the package
    >>> mi.key_frequencies(model, task).freqs
    (1, 5, 7, 29)
"""

from .analysis import analyze
from .causal import CircuitReport, Claim, evaluate_hypothesis, verify_circuit
from .config import ModelConfig
from .display import Phases, phases
from .errors import (
    ArchitectureError,
    BrowserNotFoundError,
    CheckpointError,
    InvalidWeightsError,
    ModAddError,
    RecipeError,
    RunLockedError,
    TaskMismatchError,
    UnsafeCheckpointError,
    VizError,
)
from .hypotheses import Clock, Custom, Hypothesis, Pizza
from .loading import load, shipped_run
from .mlp import HookedMLP
from .probes import (
    key_frequencies,
    probe_attention,
    probe_embedding,
    probe_logits,
    probe_neurons,
)
from .progress import progress_measures
from .report import render_report
from .runs import Run, load_run
from .sweep import sweep
from .task import ModularTask
from .train import Recipe, train

__version__ = "0.1.0"

__all__ = [
    "ArchitectureError",
    "BrowserNotFoundError",
    "Clock",
    "Custom",
    "Hypothesis",
    "HookedMLP",
    "Phases",
    "Pizza",
    "evaluate_hypothesis",
    "CircuitReport",
    "Claim",
    "Run",
    "analyze",
    "key_frequencies",
    "load_run",
    "phases",
    "probe_attention",
    "probe_embedding",
    "probe_logits",
    "probe_neurons",
    "progress_measures",
    "render_report",
    "shipped_run",
    "sweep",
    "verify_circuit",
    "CheckpointError",
    "InvalidWeightsError",
    "ModAddError",
    "ModelConfig",
    "ModularTask",
    "Recipe",
    "RecipeError",
    "RunLockedError",
    "TaskMismatchError",
    "UnsafeCheckpointError",
    "VizError",
    "load",
    "train",
]
