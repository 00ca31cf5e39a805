"""Causal checks: interventions, Fourier losses, the ablation table, patching, circle isolation and the claims."""

from .circles import CircleIsolation, isolate_circles
from .claims import CircuitReport, Claim, verify_circuit
from .hypothesis_tests import HypothesisTest, evaluate_hypotheses, evaluate_hypothesis
from .interventions import (
    ablate_heads,
    ablate_mlp,
    ablate_neurons,
    ablate_skip,
    project,
    remove_embedding_frequencies,
    replace_activations,
)
from .losses import FourierLosses, fourier_losses
from .measure import Measurement, activation_means, measure
from .patching import PatchingResult, activation_patching
from .table import AblationTable, ablation_table

__all__ = [
    "AblationTable", "CircleIsolation", "CircuitReport", "Claim", "FourierLosses", "HypothesisTest", "Measurement",
    "PatchingResult", "evaluate_hypotheses", "evaluate_hypothesis", "isolate_circles",
    "ablate_heads", "ablate_mlp", "ablate_neurons", "ablate_skip", "ablation_table", "activation_means",
    "activation_patching", "fourier_losses", "measure", "project", "remove_embedding_frequencies",
    "replace_activations", "verify_circuit",
]
