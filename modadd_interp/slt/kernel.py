"""The loss kernel on the grid: correlations of per-pair losses under the local posterior, read in Fourier terms.

Adam, Furman & Hoogland (2025) call the correlation of per-sample losses over SGLD draws from the localized
posterior the *loss kernel* (devinterp's Bayesian influence functions, ``devinterp.slt.bif``), and show that it
recovers the structure of the data. :func:`loss_kernel` computes it over the whole grid of a modular task and
reads it the way this project reads everything else: how much of the kernel's top eigenvectors lies in the
span of ``cos/sin(w_k z)`` at the key frequencies, where ``z = x + y`` is the answer's coordinate (``a + b`` for
addition), against random subspaces of the same dimension.

**Sampling** (devinterp 2.0.1 ``sample``, the sampler ``bif`` itself calls; the same SGLD as :func:`llc`): chains
on the training split at the LLC's common settings (``n_beta = n / log n``, localization 1000, batch 256, burn-in
of :data:`~modadd_interp.slt.BURNIN_RELAXATIONS` relaxation times) at one step size: with ``lr="auto"``, the
smaller step of the pair the LLC's calibration would start from (pilots down the ladder to the largest stable
step, then :data:`~modadd_interp.slt.MARGIN` + 1 rungs below it). Every ``num_steps_bw_draws`` steps, a draw
evaluates the loss of every grid input (devinterp's *observable*: the grid, padded to whole batches with repeats
that are dropped after). The chains' loss trace gives the run its own LLC and health check (:func:`llc`'s rules).

**The kernel**: for the ``N = n^2`` grid inputs and the ``T`` draws of all chains stacked (devinterp's
``reduce_chain_dimension_method="stack"``), ``L`` is ``[N, T]``; ``K = corr(L)`` is the ``N x N`` Pearson
correlation over draws, which devinterp's ``compute_bif(..., correlation_method="sequence")`` would
materialise (at p = 113, 12,769^2 float32 = 650 MB, and compute_bif concatenates two copies: 2.6 GB). We use its
exact low-rank form instead: with ``Z`` the rows of ``L`` centred and scaled to unit norm, ``K = Z Z^T`` has rank
at most ``T - 1``, and its eigenvectors and eigenvalues are the left singular vectors and squared singular
values of ``Z`` (``[N, T]``: 31 MB in float64 at p = 113, T = 300). ``tests/test_slt.py`` checks ``Z Z^T``
against ``compute_bif`` on the same samples. An input whose loss does not vary over the draws has no
correlation (NaN in ``compute_bif``); its row is zero here, and ``constant_inputs`` counts them.

**Two statistics, one set of samples.** devinterp's ``bif`` correlates the raw losses (Pearson). A grokked
model's per-input losses are heavy-tailed over the draws (on the shipped model, the median over inputs of their
std / mean is 7): a draw where a handful of inputs spike dominates their Pearson correlation, and the top
eigenvectors are mostly those spikes (the top 9 of two independent halves of the draws share 0.9% of their
span). :attr:`LossKernel.readings` therefore holds two readings of the same draws: ``"pearson"`` (``bif``'s
kernel) and ``"spearman"`` (the Pearson correlation of each input's loss ranks over the draws, ties averaged:
robust to the tails; 4.1% shared between halves). ``statistic`` picks the one the result's fields, display
and figure show (default ``"pearson"``, as ``bif``).

**The reading**: ``U_m``, the top :attr:`LossKernel.top` eigenvectors (default ``2 |key| + 1``: as many
directions as the key frequencies' span has, and one more). For a frequency ``k``, with ``F_k`` the
orthonormal basis of ``cos/sin(2 pi k z / n)`` over the grid, ``share_k = ||F_k^T U_m||_F^2 / m``: the mean over
the top eigenvectors of the fraction of each one's energy at ``k``. ``fourier_share`` sums it over the key
frequencies; ``sum_share`` over every frequency plus the constant (every function of ``z`` alone). **The random
baseline**, ``random_share``, is the same share for a random subspace of the same dimension ``2 |key|``
(Haar-distributed: Gaussian columns, orthonormalised), averaged over :data:`RANDOM_SUBSPACES` draws; its
expectation is exactly ``2 |key| / N`` whatever the kernel. It answers: would a subspace that knows nothing of
the task capture as much of the top eigenvectors? (A kernel of shuffled losses, the inputs permuted, has the same
expectation: its eigenvectors are spread uniformly over the inputs.) The per-frequency shares
(:meth:`LossKernel.to_frame`) are the sharper control: the key frequencies against the other frequencies of the
same ``z``.

Examples:
    Skipped when the examples run: sampling takes minutes.

    >>> import modadd_interp as mi                                    # doctest: +SKIP
    >>> from modadd_interp.slt import loss_kernel                     # doctest: +SKIP
    >>> kernel = loss_kernel(*mi.load())                              # doctest: +SKIP
    >>> kernel.fourier_share, kernel.random_share, kernel.healthy     # doctest: +SKIP
    >>> kernel.plot()                                                 # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
import torch

from .. import tl_adapter
from ..display import Displayable, Summary
from ..grid import check_compatible
from ..task import ModularTask
from . import (
    AUTO,
    DEFAULT_BATCH_SIZE,
    DEFAULT_LOCALIZATION,
    DEFAULT_N_BETA,
    LR_LADDER,
    MARGIN,
    LLCEstimate,
    SamplerSettingsError,
    _checked,
    _estimate,
    _preserved_global_state,
    _quiet_sampler,
    _sample,
    _Sampled,
    _Settings,
    make_loss_fn,
    stable,
    training_dataset,
)

DEFAULT_KERNEL_CHAINS = 3
DEFAULT_KERNEL_DRAWS = 100
DEFAULT_STEPS_BETWEEN_DRAWS = 10
"""SGLD steps between two draws of the kernel (devinterp's ``num_steps_bw_draws``): draws farther apart are less
correlated, and a step costs about 1/50 of a draw over the p = 113 grid."""

RANDOM_SUBSPACES = 200
"""Random subspaces averaged for :attr:`LossKernel.random_share`."""

KEPT_EIGENVECTORS = 8
"""Eigenvectors kept on the result (for its figure); the shares use :attr:`LossKernel.top` of them."""


STATISTICS = ("pearson", "spearman")
"""The kernel's correlation of the losses over draws: devinterp's ``bif`` (Pearson), or Pearson of the ranks."""


@dataclasses.dataclass(frozen=True, repr=False)
class KernelReading:
    """One reading of the loss kernel (one correlation statistic), in the terms of the module docstring.

    Attributes:
        statistic: ``"pearson"`` or ``"spearman"``.
        fourier_share: the mean share of the top ``m`` eigenvectors' energy in the key frequencies' span.
        random_share: the same for random subspaces of dimension ``2 |key|`` (mean over
            :data:`RANDOM_SUBSPACES`); ``random_share_std`` their spread; ``expected_random_share`` = ``2 |key| / N``.
        frequency_shares: ``[n // 2]`` the share at each frequency ``k = 1 .. n // 2`` (index ``k - 1``).
        constant_share: the share of the constant function.
        sum_share: every function of ``z = x + y`` (the constant and all frequencies).
        eigenvalues: ``[r]`` the kernel's nonzero eigenvalues, descending, over ``N`` (they sum to the fraction of
            inputs whose loss varied).
        eigenvectors: ``[N, KEPT_EIGENVECTORS]`` float32, the top eigenvectors (sign fixed: largest entry > 0).
        constant_inputs: inputs whose loss (or rank) never varied over the draws (zero rows of the kernel).
    """

    statistic: str
    fourier_share: float
    random_share: float
    random_share_std: float
    expected_random_share: float
    frequency_shares: np.ndarray
    constant_share: float
    sum_share: float
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    constant_inputs: int

    @property
    def ratio(self) -> float:
        """``fourier_share / random_share``."""
        return self.fourier_share / self.random_share if self.random_share > 0 else math.inf

    def to_dict(self) -> dict:
        """JSON-safe (no eigenvectors; the top 16 eigenvalues)."""
        return {"statistic": self.statistic, "fourier_share": self.fourier_share, "random_share": self.random_share,
                "random_share_std": self.random_share_std, "expected_random_share": self.expected_random_share,
                "ratio": self.ratio, "constant_share": self.constant_share, "sum_share": self.sum_share,
                "frequency_shares": [float(x) for x in self.frequency_shares],
                "top_eigenvalues": [float(x) for x in self.eigenvalues[:16]], "constant_inputs": self.constant_inputs}


@dataclasses.dataclass(frozen=True, repr=False)
class LossKernel(Displayable):
    """The loss kernel of a model on its grid, read in Fourier terms (see the module docstring).

    The reading's fields (``fourier_share``, ``random_share``, ``frequency_shares``, ``eigenvectors``, ...) are
    those of :attr:`reading`, the one of :attr:`statistic`; :attr:`readings` holds both statistics'.

    Attributes:
        n: the group's order; the grid has ``N = n * n`` inputs in :class:`~modadd_interp.task.AnalysisGrid` order.
        key_freqs: the key frequencies the shares are read at.
        top: ``m``, the number of top eigenvectors read.
        statistic: the reading shown: ``"pearson"`` (devinterp's ``bif``) or ``"spearman"``.
        readings: ``{statistic: KernelReading}`` for both statistics, from the same draws.
        n_draws: ``T``, the draws of all chains.
        estimate: the sampling run's own LLC estimate (health, per chain) at its step size.
        healthy, reasons: the run's health (as :func:`~modadd_interp.slt.llc`'s) and the kernel's own checks.
        hyperparameters: the sampler settings used.
        seconds: wall time.
        losses: ``[N, T]`` float32 the per-input losses at every draw (only with ``keep_losses=True``).
    """

    n: int
    key_freqs: tuple[int, ...]
    top: int
    statistic: str
    readings: dict[str, KernelReading]
    n_draws: int
    estimate: LLCEstimate
    healthy: bool
    reasons: tuple[str, ...]
    hyperparameters: dict
    seconds: float
    losses: np.ndarray | None = None

    @property
    def reading(self) -> KernelReading:
        """The reading of :attr:`statistic`."""
        return self.readings[self.statistic]

    @property
    def fourier_share(self) -> float:
        """The top eigenvectors' mean share in the key frequencies' span (:attr:`reading`)."""
        return self.reading.fourier_share

    @property
    def random_share(self) -> float:
        """The same share for random subspaces of the same dimension (:attr:`reading`)."""
        return self.reading.random_share

    @property
    def random_share_std(self) -> float:
        return self.reading.random_share_std

    @property
    def ratio(self) -> float:
        """``fourier_share / random_share``."""
        return self.reading.ratio

    @property
    def sum_share(self) -> float:
        return self.reading.sum_share

    @property
    def constant_share(self) -> float:
        return self.reading.constant_share

    @property
    def frequency_shares(self) -> np.ndarray:
        return self.reading.frequency_shares

    @property
    def eigenvalues(self) -> np.ndarray:
        return self.reading.eigenvalues

    @property
    def eigenvectors(self) -> np.ndarray:
        return self.reading.eigenvectors

    def to_frame(self) -> pd.DataFrame:
        """One row per frequency ``k``: the share of the top ``m`` eigenvectors per statistic (``pearson``,
        ``spearman``), ``key``, and the random baseline per frequency, ``2 / N``."""
        k = np.arange(1, self.n // 2 + 1)
        return pd.DataFrame({"k": k, **{name: r.frequency_shares for name, r in self.readings.items()},
                             "key": np.isin(k, self.key_freqs), "random": np.full(len(k), 2.0 / (self.n * self.n))})

    def to_dict(self) -> dict:
        """JSON-safe (no eigenvectors): the shown reading's numbers at the top level, both under ``readings``."""
        return {"n": self.n, "key_freqs": list(self.key_freqs), "top": self.top, "statistic": self.statistic,
                **{k: v for k, v in self.reading.to_dict().items() if k != "statistic"},
                "readings": {name: r.to_dict() for name, r in self.readings.items()}, "n_draws": self.n_draws,
                "llc": self.estimate.mean, "llc_std": self.estimate.std, "healthy": self.healthy,
                "reasons": list(self.reasons), "hyperparameters": dict(self.hyperparameters), "seconds": self.seconds}

    def plot(self):
        """The figure (:func:`modadd_interp.viz.figures.loss_kernel_figure`): per-frequency shares against the
        random baseline, the spectrum, the top eigenvectors over the grid."""
        from ..viz.figures import loss_kernel_figure

        return loss_kernel_figure(self)

    def _summary(self) -> Summary:
        other = [r for name, r in self.readings.items() if name != self.statistic]
        return Summary(
            f"loss kernel ({self.statistic}): {self.fourier_share:.1%} of its top {self.top} eigenvectors in the key "
            f"frequencies' span {list(self.key_freqs)} (random subspaces: {self.random_share:.2%} ± "
            f"{self.random_share_std:.2%})", status=self.healthy, details=list(self.reasons),
            rows={"all functions of z = x + y": self.sum_share, "constant": self.constant_share,
                  **{f"{r.statistic}: key share (random)": f"{r.fourier_share:.3g} ({r.random_share:.3g})"
                     for r in other},
                  "top eigenvalues / N": ", ".join(f"{x:.3g}" for x in self.eigenvalues[:6]),
                  "draws": self.n_draws, "LLC of the run": self.estimate.mean,
                  **{str(k): v for k, v in self.hyperparameters.items()}})


def loss_kernel(
    model, task: ModularTask, key_freqs: tuple[int, ...] | None = None, *, top: int | None = None,
    lr: float | str = AUTO, n_beta: float | None = DEFAULT_N_BETA, localization: float = DEFAULT_LOCALIZATION,
    num_chains: int = DEFAULT_KERNEL_CHAINS, num_draws: int = DEFAULT_KERNEL_DRAWS,
    num_steps_bw_draws: int = DEFAULT_STEPS_BETWEEN_DRAWS, num_burnin_steps: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0, ladder: tuple[float, ...] = LR_LADDER,
    statistic: str = "pearson", keep_losses: bool = False,
) -> LossKernel:
    """The loss kernel of ``model`` over ``task``'s grid and its share in the key frequencies' span.

    Samples on a fresh copy of the model (the model, its hooks and the global RNG states are left unchanged);
    deterministic for a given ``seed``. See the module docstring for the sampling, the kernel and the reading.

    Args:
        model: a HookedTransformer (TL 3) or TransformerBridge (TL 4).
        task: the task: its training split is sampled on, its grid (``N = n * n`` inputs) is observed.
        key_freqs: the frequencies to read; default :func:`modadd_interp.key_frequencies` of the model.
        top: ``m``, the top eigenvectors read; default ``2 * len(key_freqs) + 1``.
        lr: the SGLD step, or ``"auto"``: the smaller step of the pair the LLC's calibration starts from.
        n_beta, localization, batch_size, seed, ladder, num_burnin_steps: as for :func:`~modadd_interp.slt.llc`.
        num_chains, num_draws, num_steps_bw_draws: the draws: ``T = num_chains * num_draws`` of them,
            ``num_steps_bw_draws`` SGLD steps apart. The kernel's rank is at most ``T - 1``.
        statistic: the reading the result shows, ``"pearson"`` (devinterp's ``bif``) or ``"spearman"``; both are
            computed (:attr:`LossKernel.readings`).
        keep_losses: keep the ``[N, T]`` per-input losses on the result (:attr:`LossKernel.losses`).

    Returns:
        A :class:`LossKernel` (an unhealthy sampling run also warns).

    Examples:
        Skipped when the examples run: sampling takes minutes.

        >>> import modadd_interp as mi                                     # doctest: +SKIP
        >>> kernel = loss_kernel(*mi.load())                               # doctest: +SKIP
        >>> f"{kernel.fourier_share:.1%} against {kernel.random_share:.2%}"  # doctest: +SKIP
    """
    from devinterp.slt.sampling import sample

    start = time.perf_counter()
    cfg = check_compatible(model, task)
    if key_freqs is None:
        from ..probes import key_frequencies

        key_freqs = key_frequencies(model, task).freqs
    key_freqs = tuple(int(k) for k in key_freqs)
    grid = task.grid
    n_inputs = grid.n_inputs
    if not key_freqs or any(not 1 <= k <= grid.n // 2 for k in key_freqs):
        raise SamplerSettingsError(f"key_freqs must be frequencies in 1..{grid.n // 2}, got {list(key_freqs)}")
    top = 2 * len(key_freqs) + 1 if top is None else int(top)
    n_train = int(task.train_mask.sum())
    if n_beta is None:
        n_beta = n_train / math.log(n_train) if n_train > 1 else 1.0
    settings = _checked(lr, ladder, _Settings(float(n_beta), float(localization), num_chains, num_draws,
                                              num_burnin_steps, min(batch_size, n_train), seed))
    if statistic not in STATISTICS:
        raise SamplerSettingsError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    if num_steps_bw_draws < 1 or not 1 <= top < num_chains * num_draws:
        raise SamplerSettingsError(f"need num_steps_bw_draws >= 1 and 1 <= top < num_chains * num_draws, got "
                                   f"{num_steps_bw_draws} and {top}")
    with _preserved_global_state():
        sampled = _Sampled(cfg, tl_adapter.canonical_weights(model), tl_adapter.backend_name(model))
    pilots: list[LLCEstimate] = []
    if lr == AUTO:
        lr = _kernel_step(sampled, task, settings, tuple(float(x) for x in ladder), pilots)
    run = settings.at(float(lr))
    observed, rows = _grid_observable(task, cfg, run.batch_size)
    out_dir = tempfile.mkdtemp(prefix="modadd_kernel_")
    caught: list[warnings.WarningMessage] = []
    try:
        with _preserved_global_state(), _quiet_sampler(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            samples = sample(
                sampled, training_dataset(task, cfg), {"grid": (observed, len(rows) // run.batch_size)},
                lr=float(lr), n_beta=run.n_beta, num_chains=run.num_chains, num_draws=run.num_draws,
                num_steps_bw_draws=num_steps_bw_draws, num_burnin_steps=run.num_burnin_steps,
                batch_size=run.batch_size, localization=run.localization, init_seed=run.seed,
                num_init_loss_batches=max(1, n_train // run.batch_size), device="cpu", loss_fn=make_loss_fn(task),
                output_path=f"{out_dir}/samples.zarr",
            )
            ds = samples.dataset
            losses = torch.from_numpy(np.asarray(ds["loss_grid"].values, dtype=np.float64)).mean(-1)
            ids = torch.from_numpy(np.asarray(ds["input_ids_grid"].values))
            trace = np.asarray(ds.sampling_loss_micro.mean(dim=["batch_sampling", "token_pos"]).values, np.float64)
            init_loss = float(ds.init_loss.values.mean())
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    failed = [str(w.message) for w in caught if "Chain failed" in str(w.message)]
    hyper = dict(lr=float(lr), n_beta=run.n_beta, localization=run.localization, num_chains=run.num_chains,
                 num_draws=run.num_draws, num_steps_bw_draws=num_steps_bw_draws,
                 num_burnin_steps=run.num_burnin_steps, batch_size=run.batch_size, seed=run.seed,
                 pilots=[p.hyperparameters["lr"] for p in pilots], sampler="devinterp sgmcmc_sgld")
    # the trace has a step per SGLD step; the LLC is read over the steps after burn-in, as llc's
    estimate = _estimate(trace, init_loss, run.n_beta, run.num_burnin_steps, task.p, failed, hyper)
    order = _grid_order(ids, task, rows)
    matrix = losses[:, :, order].reshape(-1, n_inputs).T  # [N, T]: chains' draws stacked, as devinterp's "stack"
    readings = {name: read_kernel(matrix, grid.n, key_freqs, top, name, seed) for name in STATISTICS}
    reasons = list(estimate.reasons)
    if readings["pearson"].constant_inputs == n_inputs:
        reasons.append("no input's loss varied over the draws: the kernel is empty")
    kernel = LossKernel(n=grid.n, key_freqs=key_freqs, top=top, statistic=statistic, readings=readings,
                        n_draws=matrix.shape[1], estimate=estimate, healthy=not reasons, reasons=tuple(reasons),
                        hyperparameters=hyper, seconds=time.perf_counter() - start,
                        losses=matrix.float().numpy() if keep_losses else None)
    if not kernel.healthy:
        warnings.warn("the loss kernel's sampling run is unhealthy: " + "; ".join(kernel.reasons), stacklevel=2)
    return kernel


def _kernel_step(sampled: _Sampled, task: ModularTask, settings: _Settings, ladder: tuple[float, ...],
                 pilots: list[LLCEstimate]) -> float:
    """The step ``MARGIN + 1`` rungs below the largest stable pilot (the smaller step the LLC's pair starts from)."""
    for i, step in enumerate(ladder):
        pilots.append(_sample(sampled, task, step, settings.at(step, 1), True))
        if stable(pilots[-1]):
            return ladder[min(i + MARGIN + 1, len(ladder) - 1)]
    raise SamplerSettingsError(f"no step size in {list(ladder)} was stable for the loss kernel's chains: "
                               + "; ".join(r for p in pilots for r in p.reasons))


def _grid_observable(task: ModularTask, cfg, batch_size: int):
    """The grid as devinterp data rows (tokens, then the answer), padded with repeats to whole batches."""
    from datasets import Dataset

    grid = task.grid
    rows = torch.cat([cfg.encode(grid.pairs), task.labels[grid.token_index, None]], dim=1)
    pad = (-len(rows)) % batch_size
    rows = torch.cat([rows, rows[torch.arange(pad) % len(rows)]])
    return Dataset.from_dict({"input_ids": rows.tolist()}).with_format("torch"), rows


def _grid_order(ids: torch.Tensor, task: ModularTask, rows: torch.Tensor) -> torch.Tensor:
    """``[N]`` for each grid input (grid order), the position of its first occurrence among devinterp's
    observable rows ``ids`` (shuffled by devinterp, padded with repeats)."""
    grid = task.grid
    index = {tuple(r): i for i, r in reversed(list(enumerate(rows[: grid.n_inputs].tolist())))}
    order = torch.full((grid.n_inputs,), -1, dtype=torch.long)
    for position, r in reversed(list(enumerate(ids.tolist()))):
        order[index[tuple(r)]] = position
    if bool((order < 0).any()):  # pragma: no cover - devinterp observes every row of the padded grid
        raise RuntimeError("devinterp's observable missed grid inputs")
    return order


def standardized(losses: torch.Tensor, statistic: str = "pearson") -> torch.Tensor:
    """``Z``, ``[N, T]`` float64: each row of ``losses`` (its ranks, for ``"spearman"``) centred and scaled to unit
    norm (a constant row: zeros), so that ``Z @ Z.T`` is the rows' correlation matrix: the loss kernel."""
    x = average_ranks(losses) if statistic == "spearman" else losses.double()
    z = x - x.mean(dim=1, keepdim=True)
    norm = z.norm(dim=1, keepdim=True)
    return torch.where(norm > 0, z / norm.clamp_min(torch.finfo(torch.float64).tiny), torch.zeros_like(z))


def average_ranks(x: torch.Tensor) -> torch.Tensor:
    """``[N, T]`` float64: the rank of each entry within its row (0-based), ties given their mean rank."""
    order = x.argsort(dim=1, stable=True)
    ordered = x.gather(1, order)
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    group = starts.long().cumsum(1) - 1
    position = torch.arange(x.shape[1], dtype=torch.float64).expand(x.shape).contiguous()
    sums = torch.zeros(x.shape, dtype=torch.float64).scatter_add_(1, group, position)
    counts = torch.zeros(x.shape, dtype=torch.float64).scatter_add_(1, group, torch.ones_like(position))
    return torch.empty(x.shape, dtype=torch.float64).scatter_(1, order, sums.gather(1, group) / counts.gather(1, group))


def z_basis(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``([N], [n // 2, N, 2])``: the constant and, per frequency ``k = 1 .. n // 2``, the orthonormal basis of
    ``cos/sin(2 pi k z / n)`` over the grid, ``z = (x + y) mod n`` (for even ``n`` the Nyquist frequency has a
    cosine only; its sine column is zero)."""
    x = torch.arange(n).repeat_interleave(n)
    y = torch.arange(n).repeat(n)
    z = ((x + y) % n).double()
    k = torch.arange(1, n // 2 + 1, dtype=torch.float64)[:, None]
    angle = 2 * math.pi * k * z[None, :] / n
    basis = torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1)  # [n//2, N, 2]
    norms = basis.norm(dim=1, keepdim=True)
    basis = torch.where(norms > 1e-9, basis / norms.clamp_min(1e-300), torch.zeros_like(basis))
    return torch.full((n * n,), 1.0 / n, dtype=torch.float64), basis


def read_kernel(losses: torch.Tensor, n: int, key_freqs: tuple[int, ...], top: int, statistic: str = "pearson",
                seed: int = 0) -> KernelReading:
    """The Fourier reading of the loss kernel of ``losses`` (``[N, T]``, inputs in grid order), from the SVD of
    :func:`standardized` ``Z`` (``K = Z Z^T``; see the module docstring).

    Examples:
        >>> reading = read_kernel(kernel.losses, 113, (1, 5, 7, 29), 9, "spearman")   # doctest: +SKIP
    """
    z = standardized(torch.as_tensor(losses), statistic)
    n_inputs = z.shape[0]
    u, s, _ = torch.linalg.svd(z, full_matrices=False)
    u_top = u[:, :top]
    constant, basis = z_basis(n)
    frequency = torch.einsum("knc,nm->kcm", basis, u_top).pow(2).sum((1, 2)) / top  # [n // 2]
    constant_share = float((constant @ u_top).pow(2).sum() / top)
    dim = 2 * len(key_freqs)
    g = torch.Generator().manual_seed(seed)
    randoms = []
    for _ in range(RANDOM_SUBSPACES):
        q, _ = torch.linalg.qr(torch.randn(n_inputs, dim, generator=g, dtype=torch.float64))
        randoms.append(float((q.T @ u_top).pow(2).sum() / top))
    kept = u[:, :KEPT_EIGENVECTORS].clone()
    kept *= torch.sign(kept.gather(0, kept.abs().argmax(0, keepdim=True)))
    return KernelReading(
        statistic=statistic, fourier_share=float(sum(frequency[k - 1] for k in key_freqs)),
        random_share=float(np.mean(randoms)), random_share_std=float(np.std(randoms, ddof=1)),
        expected_random_share=dim / n_inputs, frequency_shares=frequency.numpy(), constant_share=constant_share,
        sum_share=float(frequency.sum()) + constant_share, eigenvalues=(s * s / n_inputs).numpy(),
        eigenvectors=kept.float().numpy(), constant_inputs=int((z.abs().sum(1) == 0).sum()),
    )
