"""The logit probe: W_L = W_out W_U in the Fourier basis, and the cos(w(a+b-c)) readout.

Examples:
    >>> import modadd_interp as mi
    >>> model, task = mi.load()
    >>> probe = probe_logits(model, task)
    >>> probe.alpha.tolist(), probe.fve, probe.fit_loss
    ([7.85, 10.73, 12.61, 17.19], 0.98, 3.7e-08)
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from ..display import Displayable, Summary
from ..fourier import effective_rank, frequency_spectrum
from ..readout import Measurement, cos_readout_fit, residue_measurement
from ..task import ModularTask
from .cache import GridCache, grid_cache
from .key_frequencies import key_frequencies


@dataclasses.dataclass(frozen=True, repr=False)
class LogitProbe(Displayable):
    """How the logits read out the answer.

    Attributes:
        p: the modulus.
        key_freqs: the frequencies of the fit.
        wl_energy: ``[n//2]`` squared Fourier norm of ``W_L`` per frequency; ``wl_const`` its const part.
        wl_effective_rank: Roy & Vetterli effective rank of ``W_L``.
        alpha: ``[len(key_freqs)]`` coefficients of ``logits ~ sum_k alpha_k cos(w_k(x+y-z))`` (the operation's
            readout in group coordinates: ``cos(w_k(a+b-c))`` for add).
        fitted: ``[n, p]`` the fit at every input of residue ``s = x + y mod n``, over the answers (answer order).
        fve: fraction of the (output-centered) logit variance over the grid the fit explains.
        fit: losses and accuracies of the fitted logits in place of the model's.
        full_loss: the model's own cross-entropy on the full grid.
        readout: the readout in the operation's words (e.g. ``"cos(w(a - b - c))"``).
    """

    p: int
    key_freqs: tuple[int, ...]
    wl_energy: torch.Tensor
    wl_const: float
    wl_effective_rank: float
    alpha: torch.Tensor
    fitted: torch.Tensor
    fve: float
    fit: Measurement
    full_loss: float
    readout: str = "cos(w(a + b - c))"

    @property
    def fit_loss(self) -> float:
        """Float64 cross-entropy of the fitted logits on the full grid."""
        return self.fit.loss

    @property
    def wl_fraction_in_key(self) -> float:
        """Fraction of ``W_L``'s squared norm on the key frequencies (const included in the total)."""
        total = float(self.wl_energy.sum()) + self.wl_const
        return float(self.wl_energy[[k - 1 for k in self.key_freqs]].sum()) / total if total else 0.0

    def to_frame(self) -> pd.DataFrame:
        """One row per frequency: W_L norm and share; alpha for key frequencies."""
        total = float(self.wl_energy.sum()) + self.wl_const
        alpha = dict(zip(self.key_freqs, self.alpha.tolist(), strict=True))
        k = range(1, len(self.wl_energy) + 1)
        return pd.DataFrame({
            "freq": list(k),
            "wl_norm": self.wl_energy.sqrt().tolist(),
            "wl_fraction": (self.wl_energy / total).tolist(),
            "alpha": [alpha.get(f, float("nan")) for f in k],
            "is_key": [f in self.key_freqs for f in k],
        })

    def to_dict(self) -> dict:
        """JSON-safe summary."""
        return {
            "key_freqs": list(self.key_freqs), "readout": self.readout, "alpha": self.alpha.tolist(), "fve": self.fve,
            "fit_loss": self.fit_loss, "full_loss": self.full_loss,
            "wl_fraction_in_key": self.wl_fraction_in_key, "wl_effective_rank": self.wl_effective_rank,
        }

    def plot(self):
        """W_L's Fourier norms per frequency, with the key frequencies and alphas."""
        from ..viz.figures import logit_figure

        return logit_figure(self)

    def _summary(self) -> Summary:
        frame = self.to_frame()
        return Summary(f"logits ≈ Σ_k α_k {self.readout} at k = {list(self.key_freqs)}: FVE {self.fve:.3f}",
                       details=[f"the fit's loss {self.fit_loss:.3g} (the model's {self.full_loss:.3g}); "
                                f"{self.wl_fraction_in_key:.1%} of W_L on the key frequencies, effective rank "
                                f"{self.wl_effective_rank:.1f}"],
                       rows=frame[frame["is_key"]], table_caption="the key frequencies")


def probe_logits(
    model, task: ModularTask, key_freqs: tuple[int, ...] | None = None, cache: GridCache | None = None
) -> LogitProbe:
    """``W_L`` in the Fourier basis and the fit ``logits ~ sum_k alpha_k cos(w_k(a+b-c))``."""
    cache = cache or grid_cache(model, task)
    if key_freqs is None:
        key_freqs = key_frequencies(model, task, cache=cache).freqs
    w_logit = cache.w_logit[:, : cache.grid.n]
    energy, const = frequency_spectrum(w_logit, dim=1)
    alpha, fitted = cos_readout_fit(cache.residue_logits, list(key_freqs))
    # each residue holds n inputs of the grid
    fve = cache.grid.n * float((fitted**2).sum()) / cache.centered_sq if cache.centered_sq else 0.0
    return LogitProbe(
        p=task.p, key_freqs=tuple(key_freqs), wl_energy=energy, wl_const=const,
        wl_effective_rank=effective_rank(w_logit), alpha=alpha, fitted=fitted, fve=fve,
        fit=residue_measurement(fitted, cache.grid), full_loss=cache.full.loss, readout=cache.grid.coords.readout,
    )
