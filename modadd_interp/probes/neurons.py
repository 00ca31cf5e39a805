"""The neuron probe: each MLP neuron's 2D Fourier spectrum over the (a, b) grid, layer by layer.

Each neuron's activation at the last position is centered over the grid and transformed in 2D (in the
operation's group coordinates, :class:`modadd_interp.task.AnalysisGrid`).
A frequency's share of the neuron's variance is the energy of its 3x3 block
``{const, cos k, sin k}^2``. Neurons whose best share reaches the threshold form that
frequency's cluster. Each neuron is also fitted by the degree-2 trig terms of its best
frequency; since those terms span exactly the 3x3 block, the fit is read off the
coefficients, and its R^2 equals the best share.

Examples:
    >>> import modadd_interp as mi
    >>> model, task = mi.load()
    >>> probe = probe_neurons(model, task)
    >>> probe.cluster_sizes()
    {'1': 53, '5': 61, '7': 59, '29': 100, 'unclustered': 239}
    >>> probe.to_frame()[["neuron", "best_freq", "r2"]].head(3)
       neuron  best_freq        r2
    0       0          5  0.96
    1       1         29  0.96
    2       2          7  0.85
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from ..display import Displayable, Summary
from ..errors import ModAddError
from ..fourier import TRIG_TERM_NAMES, neuron_spectrum
from ..task import ModularTask
from .cache import GridCache, grid_cache

CLUSTER_THRESHOLD = 0.85  # the paper's: a neuron belongs to frequency k if k explains >= 85% of its variance


def check_threshold(threshold: float) -> float:
    """Raise unless ``threshold`` is a fraction in [0, 1]."""
    if not 0.0 <= float(threshold) <= 1.0:
        raise ModAddError(f"threshold must be in [0, 1], got {threshold!r}; it is a fraction of variance.")
    return float(threshold)


@dataclasses.dataclass(frozen=True, repr=False)
class NeuronProbe(Displayable):
    """Per-neuron Fourier analysis, of one layer or of several (rows ordered by layer, then neuron).

    Attributes:
        p: the modulus.
        shares: ``[m, n//2]`` fraction of each neuron's variance per frequency of the grid's group.
        trig_coefs: ``[m, 9]`` coefficients of :data:`TRIG_TERM_NAMES` at the best frequency.
        variance: ``[m]`` each neuron's centered sum of squares over the grid.
        threshold: the cluster threshold.
        layer: ``[m]`` int64 the layer of each row (all 0 for a one-layer model).
    """

    p: int
    shares: torch.Tensor
    trig_coefs: torch.Tensor
    variance: torch.Tensor
    threshold: float = CLUSTER_THRESHOLD
    layer: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.layer is None:
            object.__setattr__(self, "layer", torch.zeros(len(self.variance), dtype=torch.long))

    @property
    def neuron(self) -> torch.Tensor:
        """``[m]`` int64 each row's neuron index within its layer."""
        first = torch.zeros_like(self.layer)
        for value in self.layer.unique().tolist():
            rows = torch.nonzero(self.layer == value).flatten()
            first[rows] = rows[0]
        return torch.arange(len(self.layer)) - first

    @property
    def layers(self) -> list[int]:
        """The layers present, in order."""
        return self.layer.unique().tolist()

    def select(self, layer: int) -> NeuronProbe:
        """The probe of one layer (rows ``0..d_mlp-1`` are its neurons)."""
        rows = self.layer == layer
        if not bool(rows.any()):
            raise ModAddError(f"layer {layer} is not in this probe (layers {self.layers}).")
        return NeuronProbe(self.p, self.shares[rows], self.trig_coefs[rows], self.variance[rows], self.threshold,
                           self.layer[rows])

    @property
    def best_freq(self) -> torch.Tensor:
        """``[m]`` int64 best frequency of each neuron (0 for a dead neuron)."""
        best = self.shares.argmax(1) + 1
        return torch.where(self.variance > 0, best, torch.zeros_like(best))

    @property
    def frac_explained(self) -> torch.Tensor:
        """``[m]`` share of variance at the best frequency (= the trig fit's R^2)."""
        return self.shares.max(1).values

    @property
    def cluster_of(self) -> torch.Tensor:
        """``[m]`` int64 cluster frequency of each neuron, 0 if unclustered."""
        keep = self.frac_explained >= self.threshold
        return torch.where(keep & (self.variance > 0), self.best_freq, torch.zeros_like(self.best_freq))

    def clusters(self) -> dict[int, list[int]]:
        """``{freq: [row indices]}`` for every frequency with a cluster (rows = neurons for one layer)."""
        out: dict[int, list[int]] = {}
        for neuron, k in enumerate(self.cluster_of.tolist()):
            if k:
                out.setdefault(k, []).append(neuron)
        return dict(sorted(out.items()))

    def unclustered(self) -> list[int]:
        """Row indices of neurons in no cluster."""
        return torch.nonzero(self.cluster_of == 0).flatten().tolist()

    def cluster_sizes(self) -> dict[str, int]:
        """``{"k": count, ..., "unclustered": count}`` (JSON-safe keys), over every layer of the probe."""
        sizes = {str(k): len(v) for k, v in self.clusters().items()}
        sizes["unclustered"] = len(self.unclustered())
        return sizes

    def per_layer(self) -> dict[str, dict[str, int]]:
        """``{"layer": cluster_sizes()}`` for each layer."""
        return {str(layer): self.select(layer).cluster_sizes() for layer in self.layers}

    def cluster_size_per_freq(self) -> torch.Tensor:
        """``[n//2]`` number of clustered neurons per frequency."""
        return torch.bincount(self.cluster_of, minlength=self.shares.shape[1] + 1)[1:]

    def to_frame(self) -> pd.DataFrame:
        """One row per neuron: layer, neuron, best frequency, share, cluster, trig coefficients, R^2."""
        frame = pd.DataFrame({
            "layer": self.layer.tolist(),
            "neuron": self.neuron.tolist(),
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
        """JSON-safe summary (cluster sizes overall and per layer, threshold, mean R^2 of clustered neurons)."""
        clustered = self.cluster_of > 0
        return {
            "threshold": self.threshold,
            "clusters": self.cluster_sizes(),
            "per_layer": self.per_layer(),
            "mean_r2_clustered": float(self.frac_explained[clustered].mean()) if clustered.any() else None,
            "dead_neurons": int((self.variance == 0).sum()),
        }

    def plot(self):
        """Neuron x frequency heatmap of variance shares, sorted by cluster."""
        from ..viz.figures import neuron_heatmap_figure

        return neuron_heatmap_figure(self)

    def _summary(self) -> Summary:
        frame = self.to_frame()
        clustered = frame[frame["cluster"] > 0]
        rows = clustered.groupby(["layer", "cluster"]).agg(neurons=("neuron", "count"), mean_r2=("r2", "mean"))
        dead = int((self.variance == 0).sum())
        return Summary(f"{len(clustered)} of {len(frame)} neurons in {len(self.clusters())} frequency clusters "
                       f"(>= {self.threshold:.0%} of a neuron's variance in one frequency)",
                       details=[f"clusters {self.cluster_sizes()}", f"{dead} dead neuron(s)" if dead else ""],
                       rows=rows.reset_index(), table_caption="one row per cluster (frequency k)")


def probe_neurons(
    model, task: ModularTask, threshold: float = CLUSTER_THRESHOLD, cache: GridCache | None = None,
    layer: int | None = None,
) -> NeuronProbe:
    """Fourier spectrum, clusters and trig fits of the MLP neurons, of every layer or of one.

    Args:
        threshold: minimum share of variance for a neuron to join its best frequency's cluster.
        cache: a :class:`GridCache` to reuse.
        layer: one layer (negative counts from the end), or None for every layer (rows by layer).

    Examples:
        >>> import modadd_interp as mi
        >>> model, task = mi.load()
        >>> probe = probe_neurons(model, task)
        >>> probe.per_layer()
        {'0': {'1': 53, '5': 61, '7': 59, '29': 100, 'unclustered': 239}}
        >>> probe.select(0).clusters()[29][:5]                       # layer 0's neurons at frequency 29
        [1, 27, 29, 40, 46]
    """
    threshold = check_threshold(threshold)
    cache = cache or grid_cache(model, task)
    n_layers = len(cache.layers)
    if layer is not None and not -n_layers <= layer < n_layers:
        raise ModAddError(f"layer {layer} does not exist; the model has {n_layers} layer(s).")
    chosen = range(n_layers) if layer is None else [layer % n_layers]
    parts = [neuron_spectrum(cache.layers[i].blocks, cache.layers[i].mean, cache.layers[i].variance, cache.grid.n)
             for i in chosen]
    return NeuronProbe(
        task.p, torch.cat([s for s, _ in parts]), torch.cat([c for _, c in parts]),
        torch.cat([cache.layers[i].variance for i in chosen]), threshold,
        torch.cat([torch.full((len(cache.layers[i].variance),), i) for i in chosen]),
    )
