"""The attention probe: how much '=' attends to a vs b, as a function of (a, b), per head.

Examples:
    >>> probe = probe_attention(model, task)       # doctest: +SKIP
    >>> probe.dominant_freq, probe.fve
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from ..fourier import frequency_blocks
from ..task import ModularTask
from .cache import GridCache, grid_cache


@dataclasses.dataclass(frozen=True)
class AttentionProbe:
    """Per-head attention from the final ('=') position over the grid.

    Attributes:
        p: the modulus.
        to_a: ``[n_heads, p, p]`` attention to the ``a`` token, indexed ``[head, a, b]``.
        to_b: ``[n_heads, p, p]`` attention to ``b``.
        shares: ``[n_heads, p//2]`` fraction of each head's (centered) attention-to-a
            variance in each frequency's 3x3 block.
    """

    p: int
    to_a: torch.Tensor
    to_b: torch.Tensor
    shares: torch.Tensor

    @property
    def dominant_freq(self) -> list[int]:
        """Per head, the frequency explaining the most of its attention-to-a pattern."""
        return (self.shares.argmax(1) + 1).tolist()

    @property
    def fve(self) -> list[float]:
        """Per head, the fraction of variance explained by its dominant frequency."""
        return self.shares.max(1).values.tolist()

    def to_frame(self) -> pd.DataFrame:
        """One row per head."""
        return pd.DataFrame({
            "head": range(self.to_a.shape[0]),
            "mean_to_a": self.to_a.mean((1, 2)).tolist(),
            "mean_to_b": self.to_b.mean((1, 2)).tolist(),
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


def probe_attention(model, task: ModularTask, cache: GridCache | None = None) -> AttentionProbe:
    """Attention from '=' to a and b over the grid, its dominant frequency and FVE per head."""
    cache = cache or grid_cache(model, task)
    p = task.p
    pattern = cache.attention.double()  # [p*p, heads, n_ctx]
    to_a = pattern[:, :, 0].T.reshape(-1, p, p)
    to_b = pattern[:, :, 1].T.reshape(-1, p, p)
    centered = (to_a - to_a.mean((1, 2), keepdim=True)).permute(1, 2, 0)  # [p, p, heads]
    total = (centered**2).sum((0, 1))
    shares = (frequency_blocks(centered) ** 2).sum((2, 3)) / total.clamp_min(1e-300)[:, None]
    return AttentionProbe(p, to_a, to_b, shares)
