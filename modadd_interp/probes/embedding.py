"""The embedding probe: how W_E (and W_U) spread over the Fourier frequencies.

Examples:
    >>> import modadd_interp as mi
    >>> model, task = mi.load()
    >>> probe = probe_embedding(model, task)
    >>> probe.fraction_in_key, probe.to_frame().query("is_key")["freq"].tolist()
    (0.93, [1, 5, 7, 29])
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from ..display import Displayable, Summary
from ..fourier import frequency_spectrum, gini
from ..task import ModularTask
from .cache import GridCache, grid_cache
from .key_frequencies import key_frequencies


@dataclasses.dataclass(frozen=True, repr=False)
class EmbeddingProbe(Displayable):
    """Per-frequency norms of W_E and W_U in the Fourier basis.

    Frequencies are those of the operation's group ``Z/n`` (the numbers by coordinate; see
    :class:`modadd_interp.task.AnalysisGrid`). With separate ``b`` tokens, W_E's energy adds both tables.

    Attributes:
        p: the modulus.
        we_energy: ``[n//2]`` squared norm of W_E's coefficients per frequency ``k = 1..n//2``.
        wu_energy: ``[n//2]`` the same for W_U (over the answers).
        we_const, wu_const: squared norm on the constant row.
        key_freqs: the key frequencies the fractions refer to.
    """

    p: int
    we_energy: torch.Tensor
    wu_energy: torch.Tensor
    we_const: float
    wu_const: float
    key_freqs: tuple[int, ...]

    @property
    def we_norms(self) -> torch.Tensor:
        """``[p//2]`` Fourier norm of W_E per frequency."""
        return self.we_energy.sqrt()

    @property
    def fraction_in_key(self) -> float:
        """Fraction of W_E's squared norm (constant row included) on the key frequencies."""
        return _fraction(self.we_energy, self.we_const, self.key_freqs)

    @property
    def wu_fraction_in_key(self) -> float:
        """Fraction of W_U's squared norm on the key frequencies."""
        return _fraction(self.wu_energy, self.wu_const, self.key_freqs)

    @property
    def gini(self) -> float:
        """Gini coefficient of W_E's per-frequency norms (sparsity in the Fourier basis)."""
        return gini(self.we_norms)

    def to_frame(self) -> pd.DataFrame:
        """One row per frequency: norms, fractions and whether it is key."""
        total_e = float(self.we_energy.sum()) + self.we_const
        total_u = float(self.wu_energy.sum()) + self.wu_const
        k = range(1, len(self.we_energy) + 1)
        return pd.DataFrame({
            "freq": list(k),
            "we_norm": self.we_norms.tolist(),
            "we_fraction": (self.we_energy / total_e).tolist(),
            "wu_norm": self.wu_energy.sqrt().tolist(),
            "wu_fraction": (self.wu_energy / total_u).tolist(),
            "is_key": [f in self.key_freqs for f in k],
        })

    def to_dict(self) -> dict:
        """JSON-safe summary."""
        return {"p": self.p, "key_freqs": list(self.key_freqs), "fraction_in_key": self.fraction_in_key,
                "wu_fraction_in_key": self.wu_fraction_in_key, "gini": self.gini,
                "we_norms": self.we_norms.tolist(), "wu_norms": self.wu_energy.sqrt().tolist()}

    def plot(self):
        """Bar chart of W_E's Fourier norms per frequency, key frequencies marked."""
        from ..viz.figures import embedding_figure

        return embedding_figure(self)

    def _summary(self) -> Summary:
        top = self.to_frame().sort_values("we_norm", ascending=False).head(max(5, len(self.key_freqs) + 2))
        return Summary(f"{self.fraction_in_key:.1%} of W_E's squared norm on the key frequencies "
                       f"{list(self.key_freqs)} (W_U: {self.wu_fraction_in_key:.1%})",
                       details=[f"Gini of W_E's Fourier norms {self.gini:.3f} (1: one frequency, 0: spread evenly)"],
                       rows=top, table_caption="the frequencies with the largest W_E norms")


def _fraction(energy: torch.Tensor, const: float, freqs: tuple[int, ...]) -> float:
    total = float(energy.sum()) + const
    if total == 0:
        return 0.0
    return float(energy[[k - 1 for k in freqs]].sum()) / total


def probe_embedding(
    model, task: ModularTask, key_freqs: tuple[int, ...] | None = None, cache: GridCache | None = None
) -> EmbeddingProbe:
    """Fourier norms of ``W_E`` and ``W_U`` per frequency and their fraction in the key frequencies.

    Args:
        key_freqs: default: :func:`key_frequencies` of the model.
        cache: a :class:`GridCache` to reuse (saves the forward pass).
    """
    cache = cache or grid_cache(model, task)
    if key_freqs is None:
        key_freqs = key_frequencies(model, task, cache=cache).freqs
    we, we_c = frequency_spectrum(cache.number_embeddings())
    wu, wu_c = frequency_spectrum(cache.answer_unembeddings())
    return EmbeddingProbe(task.p, we, wu, we_c, wu_c, tuple(key_freqs))
