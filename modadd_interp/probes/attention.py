"""The attention probe: how much the last position attends to a vs b, as a function of (a, b), per layer and head.

The grid is the task's analysis grid (:class:`modadd_interp.task.AnalysisGrid`). A model with attention rate
``alpha`` < 1 mixes a constant into its pattern; at ``alpha = 0`` every pattern is constant over the grid, so
there is no frequency to find: such rows have zero variance, ``dominant_freq`` 0 and ``fve`` 0.

Examples:
    >>> import modadd_interp as mi
    >>> model, task = mi.load()
    >>> probe = probe_attention(model, task)        # one row per head of the shipped model's one layer
    >>> probe.dominant_freq, probe.fve
    ([5, 29, 5, 29], [0.69, 0.72, 0.74, 0.73])
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from ..display import Displayable, Summary
from ..errors import ModAddError
from ..fourier import frequency_blocks
from ..task import ModularTask
from .cache import GridCache, grid_cache


@dataclasses.dataclass(frozen=True, repr=False)
class AttentionProbe(Displayable):
    """Per-head attention from the last position over the grid; one row per (layer, head).

    Attributes:
        p: the modulus.
        to_a: ``[rows, n, n]`` attention to the ``a`` position, indexed ``[row, x, y]``.
        to_b: ``[rows, n, n]`` attention to the ``b`` position.
        shares: ``[rows, n//2]`` fraction of each row's (centered) attention-to-a variance in each
            frequency's 3x3 block (0 for a constant pattern).
        layer, head: ``[rows]`` int64.
    """

    p: int
    to_a: torch.Tensor
    to_b: torch.Tensor
    shares: torch.Tensor
    layer: torch.Tensor | None = None
    head: torch.Tensor | None = None

    def __post_init__(self) -> None:
        rows = self.to_a.shape[0]
        if self.layer is None:
            object.__setattr__(self, "layer", torch.zeros(rows, dtype=torch.long))
        if self.head is None:
            object.__setattr__(self, "head", torch.arange(rows))

    @property
    def constant(self) -> list[bool]:
        """Per row, True when the pattern does not vary over the grid (e.g. attention rate 0)."""
        return (self.to_a.flatten(1).std(1) < 1e-7).tolist()

    @property
    def dominant_freq(self) -> list[int]:
        """Per row, the frequency explaining the most of its attention-to-a pattern (0 when constant)."""
        best = (self.shares.argmax(1) + 1).tolist()
        return [0 if flat else k for k, flat in zip(best, self.constant, strict=True)]

    @property
    def fve(self) -> list[float]:
        """Per row, the fraction of variance explained by its dominant frequency."""
        return self.shares.max(1).values.tolist()

    def to_frame(self) -> pd.DataFrame:
        """One row per (layer, head)."""
        return pd.DataFrame({
            "layer": self.layer.tolist(),
            "head": self.head.tolist(),
            "mean_to_a": self.to_a.mean((1, 2)).tolist(),
            "mean_to_b": self.to_b.mean((1, 2)).tolist(),
            "constant": self.constant,
            "dominant_freq": self.dominant_freq,
            "fve": self.fve,
        })

    def to_dict(self) -> dict:
        """JSON-safe per-head summary."""
        return {"heads": self.to_frame().to_dict(orient="records")}

    def plot(self):
        """Attention to a over the grid, one panel per head."""
        from ..viz.figures import attention_figure

        return attention_figure(self)

    def _summary(self) -> Summary:
        frame = self.to_frame()
        heads = ", ".join("constant" if flat else f"k={k} ({fve:.0%})"
                          for k, fve, flat in zip(self.dominant_freq, self.fve, self.constant, strict=True))
        return Summary(f"{len(frame)} head(s), dominant frequency (share of variance): {heads}",
                       details=["attention from the last position to a, over the grid"], rows=frame)


def probe_attention(model, task: ModularTask, cache: GridCache | None = None, layer: int | None = None
                    ) -> AttentionProbe:
    """Attention from the last position to a and b over the grid, its dominant frequency and FVE per head.

    Args:
        layer: one layer (negative counts from the end), or None for every layer.
    """
    cache = cache or grid_cache(model, task)
    if cache.attention is None:
        raise ModAddError("this grid cache was built without attention patterns (grid_recorder(attention=False)); "
                          "build one with the default recorder to probe attention.")
    n, n_layers = cache.grid.n, cache.attention.shape[0]
    if layer is not None and not -n_layers <= layer < n_layers:
        raise ModAddError(f"layer {layer} does not exist; the model has {n_layers} layer(s).")
    chosen = range(n_layers) if layer is None else [layer % n_layers]
    pattern = cache.attention[list(chosen)].double()  # [L, n*n, heads, n_ctx]
    heads = pattern.shape[2]
    to_a = pattern[..., 0].permute(0, 2, 1).reshape(-1, n, n)
    to_b = pattern[..., 1].permute(0, 2, 1).reshape(-1, n, n)
    centered = (to_a - to_a.mean((1, 2), keepdim=True)).permute(1, 2, 0)  # [n, n, rows]
    total = (centered**2).sum((0, 1))
    shares = torch.where(total[:, None] > 1e-20,
                         (frequency_blocks(centered) ** 2).sum((2, 3)) / total.clamp_min(1e-300)[:, None], 0.0)
    layers = torch.tensor([i for i in chosen for _ in range(heads)])
    return AttentionProbe(task.p, to_a, to_b, shares, layers, torch.arange(heads).repeat(len(chosen)))
