"""Hook-based probes: one cached forward pass over the grid, then pure math."""

from .attention import AttentionProbe, probe_attention
from .cache import GridCache, grid_cache
from .embedding import EmbeddingProbe, probe_embedding
from .key_frequencies import KeyFrequencies, key_frequencies
from .logits import LogitProbe, probe_logits
from .neurons import NeuronProbe, probe_neurons

__all__ = [
    "AttentionProbe", "EmbeddingProbe", "GridCache", "KeyFrequencies", "LogitProbe", "NeuronProbe",
    "grid_cache", "key_frequencies", "probe_attention", "probe_embedding", "probe_logits", "probe_neurons",
]
