"""The neuron probe: each MLP neuron's 2D Fourier spectrum over the (a, b) grid.

Each neuron's activation at '=' is centered over the grid and transformed in 2D.
A frequency's share of the neuron's variance is the energy of its 3x3 block
``{const, cos k, sin k}^2``. Neurons whose best share reaches the threshold form that
frequency's cluster. Each neuron is also fitted by the degree-2 trig terms of its best
frequency; since those terms span exactly the 3x3 block, the fit is read off the
coefficients, and its R^2 equals the best share.

Examples:
    >>> probe = probe_neurons(model, task)                 # doctest: +SKIP
    >>> probe.cluster_sizes(), probe.to_frame().head()
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from ..errors import ModAddError
from ..fourier import TRIG_TERM_NAMES, trig_fit_from_block
from ..task import ModularTask
from .cache import GridCache, grid_cache

CLUSTER_THRESHOLD = 0.85  # the paper's: a neuron belongs to frequency k if k explains >= 85% of its variance


def check_threshold(threshold: float) -> float:
    """Raise unless ``threshold`` is a fraction in [0, 1]."""
    if not 0.0 <= float(threshold) <= 1.0:
        raise ModAddError(f"threshold must be in [0, 1], got {threshold!r}; it is a fraction of variance.")
    return float(threshold)


def neuron_spectrum(
    blocks: torch.Tensor, mean: torch.Tensor, variance: torch.Tensor, p: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-neuron frequency shares and trig fits from the neurons' 3x3 frequency blocks.

    Args:
        blocks: ``[n, p//2, 3, 3]`` centered blocks (``GridCache.neuron_blocks``).
        mean, variance: ``[n]`` each neuron's mean and centered sum of squares over the grid.
        p: the modulus.

    Returns:
        ``(shares [n, p//2], trig_coefs [n, 9])``: the fraction of each neuron's centered
        variance in each frequency's 3x3 block, and the trig-term coefficients at its best
        frequency. A neuron with zero variance (dead on the grid) has all shares 0.

    Examples:
        >>> c = cache                                                             # doctest: +SKIP
        >>> shares, coefs = neuron_spectrum(c.neuron_blocks, c.neuron_mean, c.neuron_variance, p)  # doctest: +SKIP
    """
    energy = (blocks**2).sum((2, 3))
    shares = torch.where(variance[:, None] > 0, energy / variance.clamp_min(1e-300)[:, None], torch.zeros_like(energy))
    best = shares.argmax(1) + 1
    return shares, trig_fit_from_block(blocks[torch.arange(len(best)), best - 1], best, mean, p)


@dataclasses.dataclass(frozen=True)
class NeuronProbe:
    """Per-neuron Fourier analysis.

    Attributes:
        p: the modulus.
        shares: ``[d_mlp, p//2]`` fraction of each neuron's variance per frequency.
        trig_coefs: ``[d_mlp, 9]`` coefficients of :data:`TRIG_TERM_NAMES` at the best frequency.
        variance: ``[d_mlp]`` each neuron's centered sum of squares over the grid.
        threshold: the cluster threshold.
    """

    p: int
    shares: torch.Tensor
    trig_coefs: torch.Tensor
    variance: torch.Tensor
    threshold: float = CLUSTER_THRESHOLD

    @property
    def best_freq(self) -> torch.Tensor:
        """``[d_mlp]`` int64 best frequency of each neuron (0 for a dead neuron)."""
        best = self.shares.argmax(1) + 1
        return torch.where(self.variance > 0, best, torch.zeros_like(best))

    @property
    def frac_explained(self) -> torch.Tensor:
        """``[d_mlp]`` share of variance at the best frequency (= the trig fit's R^2)."""
        return self.shares.max(1).values

    @property
    def cluster_of(self) -> torch.Tensor:
        """``[d_mlp]`` int64 cluster frequency of each neuron, 0 if unclustered."""
        keep = self.frac_explained >= self.threshold
        return torch.where(keep & (self.variance > 0), self.best_freq, torch.zeros_like(self.best_freq))

    def clusters(self) -> dict[int, list[int]]:
        """``{freq: [neuron indices]}`` for every frequency with a cluster."""
        out: dict[int, list[int]] = {}
        for neuron, k in enumerate(self.cluster_of.tolist()):
            if k:
                out.setdefault(k, []).append(neuron)
        return dict(sorted(out.items()))

    def unclustered(self) -> list[int]:
        """Indices of neurons in no cluster."""
        return torch.nonzero(self.cluster_of == 0).flatten().tolist()

    def cluster_sizes(self) -> dict[str, int]:
        """``{"k": count, ..., "unclustered": count}`` (JSON-safe keys)."""
        sizes = {str(k): len(v) for k, v in self.clusters().items()}
        sizes["unclustered"] = len(self.unclustered())
        return sizes

    def cluster_size_per_freq(self) -> torch.Tensor:
        """``[p//2]`` number of clustered neurons per frequency."""
        return torch.bincount(self.cluster_of, minlength=self.shares.shape[1] + 1)[1:]

    def to_frame(self) -> pd.DataFrame:
        """One row per neuron: best frequency, share, cluster, trig coefficients, R^2."""
        frame = pd.DataFrame({
            "neuron": range(self.shares.shape[0]),
            "best_freq": self.best_freq.tolist(),
            "frac_explained": self.frac_explained.tolist(),
            "cluster": self.cluster_of.tolist(),
            "variance": self.variance.tolist(),
        })
        for j, name in enumerate(TRIG_TERM_NAMES):
            frame[name] = self.trig_coefs[:, j].tolist()
        frame["r2"] = frame["frac_explained"]
        return frame

    def to_dict(self) -> dict:
        """JSON-safe summary (cluster sizes, threshold, mean R^2 of clustered neurons)."""
        clustered = self.cluster_of > 0
        return {
            "threshold": self.threshold,
            "clusters": self.cluster_sizes(),
            "mean_r2_clustered": float(self.frac_explained[clustered].mean()) if clustered.any() else None,
            "dead_neurons": int((self.variance == 0).sum()),
        }

    def plot(self):
        """Neuron x frequency heatmap of variance shares, sorted by cluster."""
        from ..viz.figures import neuron_heatmap_figure

        return neuron_heatmap_figure(self)


def probe_neurons(
    model, task: ModularTask, threshold: float = CLUSTER_THRESHOLD, cache: GridCache | None = None
) -> NeuronProbe:
    """Fourier spectrum, clusters and trig fits of every MLP neuron.

    Args:
        threshold: minimum share of variance for a neuron to join its best frequency's cluster.
        cache: a :class:`GridCache` to reuse.
    """
    threshold = check_threshold(threshold)
    cache = cache or grid_cache(model, task)
    shares, coefs = neuron_spectrum(cache.neuron_blocks, cache.neuron_mean, cache.neuron_variance, task.p)
    return NeuronProbe(task.p, shares, coefs, cache.neuron_variance, threshold)
