"""The singular-learning-theory lens: the local learning coefficient (LLC), whole or per component, the loss
kernel, and degeneracy measures.

:func:`llc` estimates a model's LLC on the training split with devinterp's SGLD sampler
(``pip install 'modadd_interp[slt]'``, devinterp 2.0.1; we write no sampler of our own).
:func:`degeneracy_measures` counts what the weights do not use: dead neurons, low-rank maps and
the number of weights that carry the model's norm. Both are used per checkpoint by
``progress_measures(run, llc=True)``.

**What devinterp computes** (read from its source, devinterp 2.0.1):

* each SGLD step is ``w <- w - lr/2 * (n_beta * grad L_batch(w) + localization * (w - w0)) + sqrt(lr) * N(0, 1)``,
  where ``L_batch`` is the mean of the per-token loss our ``loss_fn`` returns over the batch and its
  token positions. Our ``loss_fn`` runs the model on ``(a, b, '=')`` and returns the float64
  cross-entropy of the final-position answer logits (an ``'='`` output column dropped) repeated over
  the ``n_ctx`` "token" positions devinterp expects, so the per-token mean is exactly the task's
  cross-entropy on the batch;
* ``init_loss`` is the mean loss at ``w0`` over ``num_init_loss_batches`` batches (we pass enough
  batches to cover the training split once);
* devinterp's own ``llc_per_chain = n_beta * (mean loss over every step - init_loss)`` averages over
  the burn-in steps too. We read its per-step ``loss_trace`` and average **after burn-in only**:
  ``LLC = n_beta * (mean_{draws} L(w_t) - L(w0))``, one value per chain; ``mean``/``std`` are over chains.

**Health check** (:attr:`LLCEstimate.healthy`; an unhealthy estimate also warns; the first two are the
*stability* checks of :func:`stable`):

* every chain finished (devinterp stops a chain on a NaN/inf loss) and its trace is finite;
* no chain diverged: no draw's loss exceeds ``init_loss + log(p)`` (a uniform guess's loss above the start);
* the trace is stationary after burn-in: the LLC from the second half of the draws is within
  :data:`DRIFT_TOLERANCE` (relative, of ``max(|LLC|, 1)``) of the LLC from the first half, or the change
  is not resolved over the chains (at most :data:`RESOLVED_SE` standard errors: at LLC ~ 0.5 the
  heavy-tailed loss of a grokked model moves half-means by more than 20% by chance);
* the LLC is not negative (a negative LLC means the sampler found lower loss: the point is not a local
  minimum of the training loss, e.g. an early checkpoint, or the step size is too large).

**Settings common to a run** (the defaults; the LLC's value depends on them, so checkpoints are compared
at the same ones): ``n_beta = n / log n`` for the ``n`` training inputs (Lau et al.'s ``beta* = 1 / log n``;
464 on the shipped p = 113 run), ``localization = 1000``, batch 256, 3 chains of 100 draws, burn-in
:data:`BURNIN_RELAXATIONS` = 4 relaxation times ``1 / (lr * localization)`` of the pull (40 steps at
``lr = 1e-4``). ``localization`` sets how far the chains wander (std ``1 / sqrt(localization)`` along
directions the loss ignores); measured on the shipped run, 300 lets them leave the basin at the end of
memorization (the batch loss climbs from 0.019 to 2.8 of log p = 4.7) and 3000 keeps them at the grokked
weights (LLC 0.0017); 1000 does neither.

**Step-size calibration** (``lr="auto"``, the default; :func:`calibrate`). Only the step size adapts:

1. *pilots*: one chain at each step of :data:`LR_LADDER` (2e-4 halving to 6.25e-6), largest first, until one
   is :func:`stable`; a pilot stops at its first step whose batch loss is not finite or exceeds
   ``init_loss + log(p)``, so a diverging step size costs only the steps up to the divergence;
2. *the pair*: :data:`MARGIN` = 1 rung below the largest stable step, full runs at two neighbouring steps
   ``lr`` and ``lr / 2``;
3. *the small-step limit* (:func:`extrapolate`): chain by chain (the chains share seeds), when
   ``LLC(lr) - LLC(lr/2)`` is resolved (> :data:`RESOLVED_SE` standard errors over chains), the estimate is
   ``2 LLC(lr/2) - LLC(lr)`` (Richardson); otherwise ``LLC(lr/2)``. It is healthy when both runs are, it is
   not negative and the correction is at most :data:`MAX_STEP_CORRECTION` of ``max(LLC(lr/2), 1)``; else the
   pair moves one rung down. When nothing passes, the estimate is unhealthy and says
   ``"calibration failed: ..."``.

Why (measured on the shipped run; the tables are in docs/concepts.md, "The local learning coefficient"):
at fixed ``n_beta`` and ``localization`` the estimate grows with the step size, through the minibatch
gradient noise (step 4000, ``lr = 1e-4``: 99 at batch 64, 59 at 256, 48 at 1024). The largest stable step
is 1e-4 at steps 200-3000 and 2e-4 elsewhere; sampling at it would overestimate by +68%, +50% and +103% at
steps 200, 1000 and 4000 (and agree within the noise at 9000): biases that differ between checkpoints.
Next to the largest stable step the growth is steeper than linear (step 200: 631, 419, 388 at 1e-4, 5e-5,
2.5e-5), hence the margin; below it, it is close to linear, and the extrapolation removes it. Against
longer runs (2 chains, 600 burn-in steps, one rung lower) the calibrated values are within 3% up to step
4000; at the grokked end (LLC < 3) they are noise-limited (chain spread 10-60%).

**Per component** (``llc(model, task, components=...)``; Wang et al. 2024's weight-restricted LLC): the same
estimator with devinterp's ``param_masks`` restricting the chains to one component's weights
(:func:`component_masks`, built from :func:`modadd_interp.tl_adapter.component_parameters` on either TL version:
devinterp's own ``create_param_masks`` does not understand a TL 4 bridge). What devinterp does with a mask (read in
its ``slt/sampler.py`` and ``optim/sgmcmc.py``): a parameter outside the masks is frozen (``requires_grad=False``:
no gradient, no noise, no pull); inside, the mask multiplies the whole update, ``w <- w - lr/2 * m * (n_beta *
grad L + localization * (w - w0)) + sqrt(lr) * m * N(0, 1)``, so masked-out entries stay at ``w0``. Every
component is sampled at the same ``n_beta``, localization, batch, chains, draws, seed and health rules as the whole
model, from the same ``L(w0)``; only the step is calibrated per component. A component's LLC is the learning
coefficient of the loss as a function of its weights alone, the rest frozen: at most about ``n_params / 2`` (a
regular component), and the components' values do not add up to the whole model's (a symmetry across two
components is invisible to either). They compare across checkpoints as the whole model's do: same settings,
each calibrated on its own.

**The loss kernel** (:func:`loss_kernel`, in :mod:`modadd_interp.slt.kernel`): the correlations of the per-input
losses over the grid under the same sampler, read at the key frequencies against random subspaces.

Examples:
    Skipped when the examples run: each samples for minutes.

    >>> import modadd_interp as mi                                     # doctest: +SKIP
    >>> est = llc(*mi.load())                                          # doctest: +SKIP
    >>> est.mean, est.std, est.healthy, est.hyperparameters["lr_pair"]  # doctest: +SKIP
    >>> llc(*mi.load(), lr=1e-4).mean                  # a fixed step size         # doctest: +SKIP
    >>> llc(*mi.load(), components="all")              # one row per component     # doctest: +SKIP
    >>> loss_kernel(*mi.load()).fourier_share                          # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import random
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from .. import tl_adapter
from ..config import ModelConfig
from ..display import Displayable, Summary
from ..errors import ModAddError
from ..fourier import effective_rank
from ..grid import check_compatible
from ..task import ModularTask

AUTO = "auto"
"""``llc(..., lr=AUTO)``: calibrate the step size per model (see the module docstring)."""

LR_LADDER: tuple[float, ...] = (2e-4, 1e-4, 5e-5, 2.5e-5, 1.25e-5, 6.25e-6)
"""The step sizes ``lr="auto"`` tries, largest first; each is half the one before."""

MARGIN = 1
"""Rungs between the largest stable ladder step and the larger step of the calibrated pair."""

BURNIN_RELAXATIONS = 4.0
"""Default burn-in, in relaxation times ``1 / (lr * localization)`` of the pull toward ``w0``."""

DEFAULT_LR = AUTO
DEFAULT_N_BETA = None  # n / log(n) of the training split
DEFAULT_LOCALIZATION = 1000.0
DEFAULT_NUM_CHAINS = 3
DEFAULT_NUM_DRAWS = 100
DEFAULT_NUM_BURNIN_STEPS = None  # BURNIN_RELAXATIONS relaxation times at each step size
DEFAULT_BATCH_SIZE = 256

DRIFT_TOLERANCE = 0.2
"""Largest relative change of the LLC between the first and second half of the draws for a healthy trace
(a change within :data:`RESOLVED_SE` standard errors over chains is noise, not drift)."""

MAX_STEP_CORRECTION = 0.5
"""Largest step-size correction of a calibrated estimate, relative to ``max(LLC at the smaller step, 1)``."""

RESOLVED_SE = 2.0
"""A difference over chains is *resolved* when it exceeds this many standard errors: the LLCs of a calibrated
pair's two steps (then it is extrapolated), the two halves of the draws (then it is drift)."""

NEARLY_DEAD_FRACTION = 0.01
"""A neuron active (> 0 after ReLU) on fewer than this fraction of the grid is *nearly dead*."""

NORM_FRACTION = 0.99
"""The fraction of the squared weight norm the kept weights must carry (see :func:`weights_needed`)."""


class SamplerSettingsError(ModAddError, ValueError):
    """An LLC sampler setting is invalid (e.g. a non-positive step size or a ladder that does not descend)."""


@dataclasses.dataclass(frozen=True, repr=False)
class LLCEstimate(Displayable):
    """An LLC estimate with its health check.

    Attributes:
        mean: mean over chains of the per-chain LLC.
        std: standard deviation over chains (sample std, ``ddof=1``; 0 for one chain).
        per_chain: the per-chain LLCs.
        init_loss: the training loss at the model's weights, as devinterp measured it.
        healthy: True when every check in the module docstring passed.
        reasons: why the estimate is unhealthy (empty when healthy).
        hyperparameters: the sampler settings used (a calibrated estimate adds ``lr_pair``, ``ladder``
            and ``tries``).
        loss_trace: per chain, the batch loss at every SGLD step (burn-in included); empty for a
            calibrated estimate (see ``tries``) or a sampling run stopped early.
        tries: a calibrated estimate's sampling runs, one per step size tried, in order.
    """

    mean: float
    std: float
    per_chain: tuple[float, ...]
    init_loss: float
    healthy: bool
    reasons: tuple[str, ...]
    hyperparameters: dict
    loss_trace: tuple[tuple[float, ...], ...] = ()
    tries: tuple[LLCEstimate, ...] = ()

    def to_dict(self, trace: bool = False) -> dict:
        """JSON-safe dict (the loss traces only when ``trace``)."""
        out = {
            "mean": self.mean, "std": self.std, "per_chain": list(self.per_chain), "init_loss": self.init_loss,
            "healthy": self.healthy, "reasons": list(self.reasons), "hyperparameters": dict(self.hyperparameters),
        }
        if trace:
            out["loss_trace"] = [list(c) for c in self.loss_trace]
        if self.tries:
            out["tries"] = [t.to_dict(trace) for t in self.tries]
        return out

    def _summary(self) -> Summary:
        rows = {"init loss": self.init_loss, **{f"chain {i}": v for i, v in enumerate(self.per_chain)},
                **{str(k): v for k, v in self.hyperparameters.items()}}
        return Summary(f"LLC {self.mean:.4g} ± {self.std:.2g} over {len(self.per_chain)} chain(s) "
                       f"({'healthy' if self.healthy else 'UNHEALTHY'})", status=self.healthy,
                       details=list(self.reasons), rows=rows)


def _require_devinterp():
    try:
        from devinterp.slt.llc import llc as devinterp_llc
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the LLC needs devinterp: pip install 'modadd_interp[slt]' (devinterp==2.0.1)."
        ) from e
    return devinterp_llc


def training_dataset(task: ModularTask, cfg: ModelConfig):
    """The training split as a HuggingFace dataset of ``input_ids`` rows: the model's tokens, then the answer.

    ``[a, b, '=', c]`` for the paper's layout, ``[a, b, c]`` for a model without ``=`` (:meth:`ModelConfig.encode`).
    """
    from datasets import Dataset

    idx = task.train_mask.nonzero().squeeze(1)
    rows = torch.cat([cfg.encode(task.pairs[idx]), task.labels[idx, None]], dim=1)
    return Dataset.from_dict({"input_ids": rows.tolist()}).with_format("torch")


def make_loss_fn(task: ModularTask, watch: Callable[[torch.Tensor], None] | None = None):
    """``(model, input_ids [batch, n_ctx + 1]) -> [batch, n_ctx]`` float64 loss: the task's cross-entropy, repeated.

    ``watch``, if given, sees every ``[batch, 1]`` loss before it is returned (see :class:`_Watch`).
    """

    def loss_fn(model, input_ids: torch.Tensor) -> torch.Tensor:
        logits = model(input_ids[:, :-1], return_type="logits")
        logprobs = task.final_logprobs(logits)
        loss = -logprobs.gather(1, input_ids[:, -1:].long())
        if watch is not None:
            watch(loss)
        return loss.expand(-1, input_ids.shape[1] - 1)  # devinterp: one loss per predicted position

    return loss_fn


class _Stopped(Exception):
    """Raised by :class:`_Watch` to end a sampling run at its first divergent step."""


class _Watch:
    """Stops a sampling run at the first SGLD step whose batch loss is not finite or exceeds init loss + log p.

    devinterp evaluates the init loss with gradients off and steps the chains with gradients on, so the
    calls with gradients off are the init-loss batches (the same batches devinterp averages).
    """

    def __init__(self, p: int, steps_per_chain: int) -> None:
        self.log_p, self.steps_per_chain = math.log(p), steps_per_chain
        self.init: list[float] = []
        self.calls = 0

    @property
    def init_loss(self) -> float:
        return float(np.mean(self.init)) if self.init else float("nan")

    def __call__(self, loss: torch.Tensor) -> None:
        value = float(loss.mean())
        if not torch.is_grad_enabled():
            self.init.append(value)
            return
        chain, step = divmod(self.calls, self.steps_per_chain)
        self.calls += 1
        limit = self.init_loss + self.log_p
        if not value <= limit:  # also catches NaN
            raise _Stopped(f"chain {chain} stopped at step {step}: batch loss {value:.3g} "
                           f"{'is not finite' if not math.isfinite(value) else f'> init loss + log(p) = {limit:.3g}'}")


class _Sampled(torch.nn.Module):
    """A fresh model built from canonical weights, for devinterp to sample on.

    devinterp deep-copies the model once per chain; a TransformerBridge that has run a forward pass
    may hold non-leaf tensors that ``copy.deepcopy`` refuses, so a copy is rebuilt from the weights.
    """

    def __init__(self, cfg: ModelConfig, weights: dict[str, torch.Tensor], backend: str) -> None:
        super().__init__()
        self.cfg_, self.backend = cfg, backend
        self.model = tl_adapter.build_model(cfg, weights, backend=backend)

    def forward(self, tokens: torch.Tensor, return_type: str = "logits") -> torch.Tensor:
        return self.model(tokens, return_type=return_type)

    def __deepcopy__(self, memo: dict) -> _Sampled:
        copy = _Sampled(self.cfg_, tl_adapter.canonical_weights(self.model), self.backend)
        copy.train(self.training)
        return copy


@contextlib.contextmanager
def _preserved_global_state():
    """Restore torch/numpy/random RNG states and grad mode (devinterp reseeds them globally)."""
    torch_state, np_state, py_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    grad = torch.is_grad_enabled()
    try:
        torch.set_grad_enabled(True)  # SGLD needs gradients, even when called under torch.no_grad()
        yield
    finally:
        torch.set_rng_state(torch_state)
        np.random.set_state(np_state)
        random.setstate(py_state)
        torch.set_grad_enabled(grad)


@contextlib.contextmanager
def _quiet_sampler():
    """Silence devinterp's per-chain tqdm bars and skip its per-chain ``gc.collect()`` (restored on exit).

    The collection frees GPU memory between chains; on the CPU it only costs time (~0.2 s a call here).
    """
    import devinterp.slt.sampler as sampler
    from tqdm.auto import trange

    original_trange, original_gc = sampler.trange, sampler._gc_and_empty_cache

    def quiet(*args, **kwargs):
        kwargs["disable"] = True
        return trange(*args, **kwargs)

    sampler.trange, sampler._gc_and_empty_cache = quiet, lambda: None
    try:
        yield
    finally:
        sampler.trange, sampler._gc_and_empty_cache = original_trange, original_gc


@dataclasses.dataclass(frozen=True)
class _Settings:
    """Everything but the step size: one sampling run's shape."""

    n_beta: float
    localization: float
    num_chains: int
    num_draws: int
    num_burnin_steps: int | None
    batch_size: int
    seed: int

    def at(self, lr: float, num_chains: int | None = None) -> _Settings:
        """The run's shape at step ``lr``: a default burn-in is :data:`BURNIN_RELAXATIONS` relaxation times."""
        burnin = self.num_burnin_steps
        if burnin is None:
            burnin = math.ceil(BURNIN_RELAXATIONS / (lr * self.localization) - 1e-9)
        return dataclasses.replace(self, num_burnin_steps=burnin, num_chains=num_chains or self.num_chains)


COMPONENT_SETS: dict[str, str] = {
    "all": "every component: the embeddings, each layer's attention, each of its heads and its MLP, the unembedding",
    "coarse": "the embeddings, each layer's attention and MLP, the unembedding (no single heads)",
    "heads": "each attention head",
}
"""Names ``llc(..., components=...)`` takes for a set of components (:func:`component_masks`)."""

PROGRESS_COMPONENTS = "coarse"
"""The components ``progress_measures(run, llc="components")`` estimates at every checkpoint: the 5 of a 1-layer model
(heads: ``llc={"components": "all"}``)."""

FULL = "full"
"""The pseudo-component of every parameter: ``components=["full", ...]`` adds the whole model's LLC as a row."""


def llc(
    model, task: ModularTask, *, components: str | list[str] | tuple[str, ...] | None = None,
    lr: float | str = DEFAULT_LR, n_beta: float | None = DEFAULT_N_BETA,
    localization: float = DEFAULT_LOCALIZATION, num_chains: int = DEFAULT_NUM_CHAINS,
    num_draws: int = DEFAULT_NUM_DRAWS, num_burnin_steps: int | None = DEFAULT_NUM_BURNIN_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0, ladder: tuple[float, ...] = LR_LADDER,
) -> LLCEstimate | pd.DataFrame:
    """Estimate the local learning coefficient of ``model`` on ``task``'s training split, whole or per component.

    Samples on a fresh copy of the model (the user's model, its hooks and the global RNG states are
    left unchanged). Deterministic for a given ``seed``. See the module docstring for the estimator,
    the health check, the calibration and what a component's (weight-restricted) LLC means.

    Args:
        model: a HookedTransformer (TL 3) or TransformerBridge (TL 4) of the supported architecture.
        task: the task; its training split (``n`` inputs) is the sampled data.
        components: ``None`` (default): the whole model's LLC. Else a set name of :data:`COMPONENT_SETS`
            (``"all"``, ``"coarse"``, ``"heads"``), a component name (``"embed"``, ``"pos_embed"``,
            ``"l0 attn"``, ``"l0h1"``, ``"l0 mlp"``, ``"unembed"``, :data:`FULL`) or a list of them: one
            weight-restricted LLC per component, each calibrated on its own (the same settings otherwise).
        lr: devinterp's SGLD step size, or ``"auto"`` (default): the step-size calibration of the module
            docstring, over ``ladder`` (per component when ``components`` is given).
        n_beta: devinterp's inverse temperature; default ``n / log(n)`` (Lau et al.'s ``beta* = 1 / log n``).
        localization: the pull toward ``w0`` (devinterp's ``localization``, gamma).
        num_chains, num_draws, batch_size: each sampling run's shape.
        num_burnin_steps: burn-in steps of each chain; default :data:`BURNIN_RELAXATIONS` relaxation
            times ``1 / (lr * localization)`` at each step size (needs ``localization > 0``).
        seed: devinterp's ``init_seed`` (chain ``c`` uses ``seed + c``; the batches use ``seed``).
        ladder: the step sizes ``lr="auto"`` tries, strictly decreasing (at least ``MARGIN + 2``).

    Returns:
        Without ``components``, an :class:`LLCEstimate`. With them, a DataFrame with one row per component
        (:data:`COMPONENT_COLUMNS`: ``component``, ``kind``, ``layer``, ``head``, ``n_params`` (the weights
        sampled), ``llc_mean``, ``llc_std``, ``healthy``, ``reasons`` (``""`` when healthy), the step pair
        ``lr``/``lr2`` with ``llc_at_lr``/``llc_at_lr2``, ``extrapolated``, ``tries``, the common settings and
        ``seconds``); ``attrs["estimates"]`` holds each row's :class:`LLCEstimate`, ``attrs["settings"]``
        the settings common to the rows. An unhealthy estimate (or row) also warns.

    Raises:
        SamplerSettingsError: a setting is out of range, or a component name is unknown.

    Examples:
        Skipped when the examples run: sampling takes minutes.

        >>> import modadd_interp as mi                                        # doctest: +SKIP
        >>> est = llc(*mi.load())                                             # doctest: +SKIP
        >>> est.mean, est.std, est.healthy, est.hyperparameters["lr_pair"]     # doctest: +SKIP
        >>> frame = llc(*mi.load(), components="all")                         # doctest: +SKIP
        >>> frame[["component", "n_params", "llc_mean", "llc_std", "healthy", "lr", "lr2"]]  # doctest: +SKIP
    """
    _require_devinterp()
    cfg: ModelConfig = check_compatible(model, task)
    n_train = int(task.train_mask.sum())
    if n_beta is None:
        n_beta = n_train / math.log(n_train) if n_train > 1 else 1.0
    settings = _checked(lr, ladder, _Settings(float(n_beta), float(localization), num_chains, num_draws,
                                              num_burnin_steps, min(batch_size, n_train), seed))
    with _preserved_global_state():  # building a HookedTransformer draws its init from the global RNG
        sampled = _Sampled(cfg, tl_adapter.canonical_weights(model), tl_adapter.backend_name(model))
    chosen = None if components is None else _sampled_masks(sampled, component_masks(sampled.model, components))
    if chosen is None:
        estimate = _calibrated(sampled, task, lr, ladder, settings, None)
        if not estimate.healthy:
            warnings.warn("the LLC estimate is unhealthy: " + "; ".join(estimate.reasons), stacklevel=2)
        return estimate
    rows, estimates = [], {}
    for name, masks in chosen.items():
        start = time.perf_counter()
        estimates[name] = _calibrated(sampled, task, lr, ladder, settings, masks)
        rows.append(_component_row(name, masks, sampled, estimates[name], time.perf_counter() - start))
    frame = pd.DataFrame(rows, columns=list(COMPONENT_COLUMNS))
    frame.attrs["estimates"] = estimates
    frame.attrs["settings"] = dict(lr=lr, ladder=list(ladder), n_beta=settings.n_beta,
                                   localization=settings.localization, num_chains=settings.num_chains,
                                   num_draws=settings.num_draws, num_burnin_steps=settings.num_burnin_steps,
                                   batch_size=settings.batch_size, seed=settings.seed)
    sick = frame.loc[~frame["healthy"], "component"].tolist()
    if sick:
        warnings.warn(f"the LLC of component(s) {sick} is unhealthy (see the frame's 'reasons')", stacklevel=2)
    return frame


COMPONENT_COLUMNS = (
    "component", "kind", "layer", "head", "n_params", "llc_mean", "llc_std", "healthy", "reasons", "lr", "lr2",
    "llc_at_lr", "llc_at_lr2", "extrapolated", "tries", "n_beta", "localization", "num_chains", "num_draws",
    "num_burnin_steps", "batch_size", "seed", "init_loss", "seconds",
)
"""The columns of ``llc(..., components=...)``, in order."""


def component_masks(model, components: str | list[str] | tuple[str, ...]) -> dict[str, dict[str, torch.Tensor | None]]:
    """The parameter masks (devinterp ``ParamMasks``) of each named component of a live model, in order.

    Args:
        model: a HookedTransformer or TransformerBridge.
        components: a set name of :data:`COMPONENT_SETS`, a component name of
            :func:`modadd_interp.tl_adapter.component_weights` or :data:`FULL`, or a list of names.

    Returns:
        ``{component: {parameter name (model.named_parameters()): bool mask, or None for all of it}}``.

    Raises:
        SamplerSettingsError: an unknown name.

    Examples:
        >>> list(component_masks(model, "coarse"))             # doctest: +SKIP
        ['embed', 'pos_embed', 'l0 attn', 'l0 mlp', 'unembed']
    """
    table = tl_adapter.component_parameters(model)
    names = [components] if isinstance(components, str) else list(components)
    if not names:
        raise SamplerSettingsError("components is empty; pass a set name, a component name or a list of them.")
    out: dict[str, dict[str, torch.Tensor | None]] = {}
    for name in names:
        if name == "all":
            out.update(table)
        elif name == "coarse":
            out.update({k: v for k, v in table.items() if _kind(k)[0] != "head"})
        elif name == "heads":
            out.update({k: v for k, v in table.items() if _kind(k)[0] == "head"})
        elif name == FULL:
            out[FULL] = {k: None for k, p in model.named_parameters() if p.requires_grad}
        elif name in table:
            out[name] = table[name]
        else:
            raise SamplerSettingsError(
                f"unknown component {name!r}; this model's components are {list(table)}, plus {FULL!r} and the "
                f"sets {list(COMPONENT_SETS)}.")
    return out


def _sampled_masks(sampled: _Sampled, chosen: dict[str, dict]) -> dict[str, dict]:
    """``chosen`` (keyed by the live model's parameter names) keyed by the names devinterp sees on ``sampled``.

    A TransformerBridge names its parameters one way at its top (``tok_embed._original_component.weight``) and
    another when reached through a parent module (``model.embed._original_component.weight``); the tensors are
    the same, so the names are matched by identity.
    """
    outer = {id(p): name for name, p in sampled.named_parameters()}
    inner = dict(sampled.model.named_parameters())
    return {c: {outer[id(inner[k])]: m for k, m in masks.items()} for c, masks in chosen.items()}


def _kind(name: str) -> tuple[str, int | None, int | None]:
    """``(kind, layer, head)`` of a component name: ``"l0h1"`` is ``("head", 0, 1)``, ``"embed"`` ``("embed", None,
    None)``."""
    if name.startswith("l") and name[1:2].isdigit():
        layer, _, rest = name[1:].partition(" ")
        if rest:
            return rest, int(layer), None
        layer, head = name[1:].split("h")
        return "head", int(layer), int(head)
    return name, None, None


def column_name(component: str) -> str:
    """The progress-measures column of a component's LLC: ``"l0 attn"`` -> ``"llc_l0_attn"``."""
    return "llc_" + component.replace(" ", "_")


def _component_row(name: str, masks: dict, model, estimate: LLCEstimate, seconds: float) -> dict:
    params = dict(model.named_parameters())
    kind, layer, head = _kind(name)
    hyper = estimate.hyperparameters
    pair = hyper.get("lr_pair") or [hyper["lr"], None]
    at = {t.hyperparameters["lr"]: t.mean for t in estimate.tries} or {hyper["lr"]: estimate.mean}
    nan = float("nan")
    return dict(
        component=name, kind=kind, layer=layer, head=head,
        n_params=int(sum(params[k].numel() if m is None else int(m.sum()) for k, m in masks.items())),
        llc_mean=estimate.mean, llc_std=estimate.std, healthy=estimate.healthy, reasons="; ".join(estimate.reasons),
        lr=pair[0], lr2=nan if pair[1] is None else pair[1], llc_at_lr=at.get(pair[0], nan),
        llc_at_lr2=at.get(pair[1], nan), extrapolated=bool(hyper.get("extrapolated", False)),
        tries=hyper.get("tries", 1), n_beta=hyper["n_beta"], localization=hyper["localization"],
        num_chains=hyper["num_chains"], num_draws=hyper["num_draws"], num_burnin_steps=hyper["num_burnin_steps"],
        batch_size=hyper["batch_size"], seed=hyper["seed"], init_loss=estimate.init_loss, seconds=seconds,
    )


def _calibrated(sampled: _Sampled, task: ModularTask, lr: float | str, ladder: tuple[float, ...], settings: _Settings,
                masks: dict | None) -> LLCEstimate:
    """One estimate (over the parameters of ``masks``, all when None): calibrated when ``lr == AUTO``."""
    if lr == AUTO:
        return calibrate(lambda step, chains: _sample(sampled, task, step, settings.at(step, chains), True, masks),
                         tuple(float(x) for x in ladder))
    return _sample(sampled, task, float(lr), settings.at(float(lr)), False, masks)


def _checked(lr: float | str, ladder: tuple[float, ...], s: _Settings) -> _Settings:
    def bad(what: str) -> SamplerSettingsError:
        return SamplerSettingsError(f"{what}; see modadd_interp.slt.llc for the valid settings.")

    def positive(x: object) -> bool:
        return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x > 0

    if not (lr == AUTO or positive(lr)):
        raise bad(f"lr must be a positive number or {AUTO!r}, got {lr!r}")
    steps = list(ladder)
    if len(steps) < MARGIN + 2 or not all(positive(x) for x in steps) \
            or any(b >= a for a, b in itertools.pairwise(steps)):
        raise bad(f"ladder must be at least {MARGIN + 2} positive, strictly decreasing step sizes, got {ladder!r}")
    if not positive(s.n_beta) or not (math.isfinite(s.localization) and s.localization >= 0):
        raise bad(f"n_beta must be > 0 and localization >= 0, got {s.n_beta} and {s.localization}")
    if s.num_burnin_steps is None and s.localization == 0:
        raise bad("with localization 0 the default burn-in (relaxation times of the pull) is undefined: "
                  "pass num_burnin_steps")
    if s.num_chains < 1 or s.num_draws < 2 or (s.num_burnin_steps or 0) < 0 or s.batch_size < 1:
        raise bad(f"need num_chains >= 1, num_draws >= 2, num_burnin_steps >= 0 and batch_size >= 1, got "
                  f"{s.num_chains}, {s.num_draws}, {s.num_burnin_steps} and {s.batch_size}")
    return s


def _sample(sampled: _Sampled, task: ModularTask, lr: float, s: _Settings, stop_early: bool,
            masks: dict | None = None) -> LLCEstimate:
    """One devinterp sampling run at step size ``lr``; ``stop_early``: end it at the first divergent step;
    ``masks``: devinterp's ``param_masks`` (names of ``sampled``'s parameters; None: every parameter)."""
    devinterp_llc = _require_devinterp()
    n_train = int(task.train_mask.sum())
    hyper = dict(lr=lr, n_beta=s.n_beta, localization=s.localization, num_chains=s.num_chains,
                 num_draws=s.num_draws, num_burnin_steps=s.num_burnin_steps, batch_size=s.batch_size, seed=s.seed,
                 sampler="devinterp sgmcmc_sgld")
    watch = _Watch(task.p, s.num_burnin_steps + s.num_draws) if stop_early else None
    out_dir = tempfile.mkdtemp(prefix="modadd_llc_")
    caught: list[warnings.WarningMessage] = []
    try:
        with _preserved_global_state(), _quiet_sampler(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = devinterp_llc(
                sampled, training_dataset(task, sampled.cfg_), {}, lr=lr, n_beta=s.n_beta,
                param_masks=masks, loss_fn=make_loss_fn(task, watch),
                num_chains=s.num_chains, num_draws=s.num_draws, num_burnin_steps=s.num_burnin_steps,
                batch_size=s.batch_size, localization=s.localization, init_seed=s.seed,
                num_init_loss_batches=max(1, n_train // s.batch_size), device="cpu",
                output_path=f"{out_dir}/samples.zarr",
            )
            trace = np.asarray(result["loss_trace"].values, dtype=np.float64)  # [chain, step]
            init_loss = float(result["init_loss"].values)
    except _Stopped as stop:
        nan = float("nan")
        return LLCEstimate(mean=nan, std=nan, per_chain=(), init_loss=watch.init_loss, healthy=False,
                           reasons=(f"a chain diverged: {stop} (sampling stopped there)",), hyperparameters=hyper)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    failed = [str(w.message) for w in caught if "Chain failed" in str(w.message)]
    return _estimate(trace, init_loss, s.n_beta, s.num_burnin_steps, task.p, failed, hyper)


def stable(estimate: LLCEstimate) -> bool:
    """True when no chain of ``estimate`` diverged, stopped or left a NaN/inf (the other checks aside)."""
    return math.isfinite(estimate.mean) and not any(r.startswith(INSTABILITY) for r in estimate.reasons)


def calibrate(sample: Callable[[float, int | None], LLCEstimate], ladder: tuple[float, ...],
              margin: int = MARGIN) -> LLCEstimate:
    """The step-size calibration (``lr="auto"``): a pair of ladder steps below the largest stable one.

    1. **Pilots**, down ``ladder``: one chain per step size (``sample(lr, 1)``) until one is :func:`stable`.
    2. **Pair**: from ``margin`` rungs below that step, sample (all chains, ``sample(lr, None)``) two
       neighbouring steps ``lr > lr2``; when both are healthy and their extrapolation (:func:`extrapolate`)
       is healthy, return it; else move one rung down.

    Args:
        sample: one sampling run at a step size with a number of chains (None: the configured number).
        ladder: strictly decreasing step sizes.
        margin: rungs between the largest stable step and the pair's larger step.

    Returns:
        The extrapolated estimate (``tries`` holds every run, pilots first), or, when nothing passes, an
        unhealthy estimate carrying the numbers of the last run and every failure's reasons.

    Examples:
        A stand-in for the sampler, whose steps above 1e-4 diverge and whose bias is linear in the step:

        >>> def sample(lr, chains):
        ...     if lr > 1e-4:
        ...         return LLCEstimate(math.nan, math.nan, (), 0.0, False, ("a chain diverged",), {"lr": lr})
        ...     value = 60.0 + 1e5 * lr
        ...     return LLCEstimate(value, 0.0, (value,), 0.0, True, (), {"lr": lr})
        >>> est = calibrate(sample, (2e-4, 1e-4, 5e-5, 2.5e-5))
        >>> est.hyperparameters["lr_pair"]     # 2e-4 diverged, 1e-4 was stable: the pair starts below it
        [5e-05, 2.5e-05]
        >>> round(est.mean, 3), est.healthy, len(est.tries)   # extrapolated to step 0; two pilots, the pair
        (60.0, True, 4)
    """
    if margin < 0 or len(ladder) < margin + 2:
        raise SamplerSettingsError(f"calibrate needs at least margin + 2 = {margin + 2} ladder steps, got "
                                   f"{list(ladder)}")
    tries: list[LLCEstimate] = []
    first = None
    for i, lr in enumerate(ladder):
        tries.append(sample(lr, 1))
        if stable(tries[-1]):
            first = i
            break
    runs: dict[float, LLCEstimate] = {}
    last = None
    for big, small in itertools.pairwise(ladder[first + margin:] if first is not None else ()):
        for lr in (big, small):
            if lr not in runs:
                runs[lr] = sample(lr, None)
                tries.append(runs[lr])
        if not (runs[big].healthy and runs[small].healthy):
            continue
        last = extrapolate(runs[big], runs[small], tuple(tries), ladder)
        if last.healthy:
            return last
    why = [f"lr {t.hyperparameters['lr']:.3g}{' (pilot)' if i < len(tries) - len(runs) else ''}: "
           + "; ".join(t.reasons) for i, t in enumerate(tries) if not t.healthy]
    if last is not None:
        why.append(f"pair {last.hyperparameters['lr_pair']}: " + "; ".join(last.reasons))
    if first is None:
        what = f"no step size in {list(ladder)} was stable"
    elif first + margin + 2 > len(ladder):
        what = (f"the largest stable step {ladder[first]:.3g} leaves no pair {margin} rung(s) below it in "
                f"{list(ladder)}")
    else:
        what = f"no pair of neighbouring step sizes below {ladder[first]:.3g} gave healthy estimates"
    final = tries[-1]
    hyper = dict(final.hyperparameters, ladder=list(ladder), tries=len(tries), lr_pair=None)
    return dataclasses.replace(
        final, healthy=False, hyperparameters=hyper, loss_trace=(), tries=tuple(tries),
        reasons=(f"calibration failed: {what} (the numbers are those of the last run)",) + tuple(why))


def extrapolate(big: LLCEstimate, small: LLCEstimate, tries: tuple[LLCEstimate, ...] = (),
                ladder: tuple[float, ...] = ()) -> LLCEstimate:
    """The small-step limit from two estimates at step sizes ``lr > lr2`` (Richardson extrapolation).

    The estimate's bias is linear in the step size at small steps. Chain by chain (the same seeds, so the
    same batches and noise draws) ``d = LLC(lr) - LLC(lr2)``. When the mean of ``d`` is resolved (at least
    :data:`RESOLVED_SE` standard errors over chains; always with one chain), with ``q = lr / lr2``,
    ``LLC_0 = (q * LLC(lr2) - LLC(lr)) / (q - 1)`` chain by chain; otherwise the step-size dependence is
    below the noise and the estimate is ``LLC(lr2)`` (extrapolating would only add noise).
    Unhealthy when ``LLC_0 < 0`` or the correction ``|LLC(lr2) - LLC_0|`` exceeds
    :data:`MAX_STEP_CORRECTION` of ``max(|LLC(lr2)|, 1)`` (the steps are not in the linear regime).

    Examples:
        >>> extrapolate(at_1e4, at_5e5).mean   # 2 * LLC(5e-5) - LLC(1e-4) when resolved   # doctest: +SKIP
    """
    lr, lr2 = big.hyperparameters["lr"], small.hyperparameters["lr"]
    q = lr / lr2
    at_lr, at_lr2 = np.asarray(big.per_chain), np.asarray(small.per_chain)
    d = at_lr - at_lr2
    se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0
    resolved = len(d) == 1 or abs(float(d.mean())) > RESOLVED_SE * se
    per_chain = (q * at_lr2 - at_lr) / (q - 1) if resolved else at_lr2
    mean = float(per_chain.mean())
    std = float(per_chain.std(ddof=1)) if len(per_chain) > 1 else 0.0
    reasons = []
    if mean < 0:
        reasons.append(f"negative extrapolated LLC ({mean:.3g}) from {big.mean:.3g} at lr {lr:.3g} and "
                       f"{small.mean:.3g} at lr {lr2:.3g}")
    correction = abs(small.mean - mean)
    if correction > MAX_STEP_CORRECTION * max(abs(small.mean), 1.0):
        reasons.append(f"the step-size correction {correction:.3g} exceeds {MAX_STEP_CORRECTION:.0%} of the "
                       f"estimate at lr {lr2:.3g} ({small.mean:.3g}): the steps are not in the small-step regime")
    hyper = dict(small.hyperparameters, lr=lr, lr_pair=[lr, lr2], ladder=list(ladder), tries=len(tries),
                 extrapolated=resolved, step_difference=float(d.mean()), step_difference_se=se,
                 estimator="Richardson (q LLC(lr2) - LLC(lr)) / (q - 1), q = lr / lr2, when LLC(lr) - LLC(lr2) "
                           f"is resolved (> {RESOLVED_SE:g} standard errors); else LLC(lr2)")
    return LLCEstimate(mean=mean, std=std, per_chain=tuple(float(x) for x in per_chain), init_loss=small.init_loss,
                       healthy=not reasons, reasons=tuple(reasons), hyperparameters=hyper, tries=tries)


INSTABILITY = ("a chain", "the loss trace")
"""How the reasons of the stability checks (NaN/inf, a stopped or diverged chain) begin."""


def _estimate(trace: np.ndarray, init_loss: float, n_beta: float, burnin: int, p: int, failed: list[str],
              hyper: dict) -> LLCEstimate:
    draws = trace[:, burnin:]
    per_chain = n_beta * (draws.mean(axis=1) - init_loss)
    mean = float(per_chain.mean())
    std = float(per_chain.std(ddof=1)) if len(per_chain) > 1 else 0.0
    reasons = [f"a chain stopped: {m}" for m in failed]
    if not np.isfinite(trace).all() or not math.isfinite(init_loss):
        reasons.append("the loss trace has NaN/inf values")
    else:
        limit = init_loss + math.log(p)
        worst = float(draws.max()) if draws.size else float("nan")
        if worst > limit:
            reasons.append(f"a chain diverged: loss {worst:.3g} > init loss + log(p) = {limit:.3g}")
        half = draws.shape[1] // 2
        if half >= 1:
            firsts = n_beta * (draws[:, :half].mean(axis=1) - init_loss)
            seconds = n_beta * (draws[:, half:].mean(axis=1) - init_loss)
            first, second = float(firsts.mean()), float(seconds.mean())
            drift = abs(second - first) / max(abs(mean), 1.0)
            changes = seconds - firsts
            se = float(changes.std(ddof=1) / math.sqrt(len(changes))) if len(changes) > 1 else 0.0
            if drift > DRIFT_TOLERANCE and abs(second - first) > RESOLVED_SE * se:
                reasons.append(f"the trace is not stationary after burn-in: LLC {first:.3g} over the first half "
                               f"of the draws, {second:.3g} over the second (drift {drift:.0%} > "
                               f"{DRIFT_TOLERANCE:.0%}, {abs(second - first) / se if se else math.inf:.1f} "
                               "standard errors over chains)")
        if mean < 0:
            reasons.append(f"negative LLC ({mean:.3g}): the weights are not at a local minimum of the training "
                           "loss, or the step size is too large")
    return LLCEstimate(mean=mean, std=std, per_chain=tuple(float(x) for x in per_chain), init_loss=init_loss,
                       healthy=not reasons, reasons=tuple(reasons), hyperparameters=hyper,
                       loss_trace=tuple(tuple(float(x) for x in row) for row in trace))


# ------------------------------------------------------------------ degeneracy
def weights_needed(weights: dict[str, torch.Tensor], fraction: float = NORM_FRACTION) -> int:
    """The fewest weights, taken largest magnitude first, that carry ``fraction`` of the total squared norm.

    An ablation-free pruning count: magnitude pruning keeps the largest weights; this is how many it must
    keep so that what it drops carries at most ``1 - fraction`` of ``sum w^2``. It falls as weight decay
    concentrates the norm on the weights the circuit uses (cleanup). Biases are included.
    """
    flat = torch.cat([w.detach().flatten().to(torch.float64) for w in weights.values()])
    sq = (flat * flat).sort(descending=True).values
    total = float(sq.sum())
    if total == 0.0:
        return 0
    cumulative = sq.cumsum(0)
    return int(torch.searchsorted(cumulative, torch.tensor(fraction * total, dtype=torch.float64)).item()) + 1


def degeneracy_measures(weights: dict[str, torch.Tensor], active: torch.Tensor, p: int) -> dict[str, float]:
    """Degeneracy of one checkpoint (pure).

    Args:
        weights: canonical weights.
        active: ``[d_mlp]`` fraction of the grid where each readout-layer neuron's activation at the last
            position is positive (``GridCache.neuron_active``).
        p: the modulus.

    Returns:
        ``dead_neurons`` (never active on the grid), ``nearly_dead_neurons`` (active on fewer than
        :data:`NEARLY_DEAD_FRACTION` of the grid, the dead ones included), ``erank_wl`` (effective rank of
        ``W_L = W_out @ W_U[:, :p]`` of the readout (last) layer, whose neurons ``active`` counts),
        ``erank_we`` (effective rank of the number embedding ``W_E[:p]``) and ``weights_needed``
        (:func:`weights_needed`) with ``n_params`` for scale.

    Examples:
        >>> degeneracy_measures(tl_adapter.canonical_weights(model), grid_cache(model, task).neuron_active, 113)
        ... # doctest: +SKIP
    """
    readout = max(int(k.split(".")[1]) for k in weights if k.startswith("blocks."))
    w_l = weights[f"blocks.{readout}.mlp.W_out"].double() @ weights["unembed.W_U"].double()[:, :p]
    return {
        "dead_neurons": int((active == 0).sum()),
        "nearly_dead_neurons": int((active < NEARLY_DEAD_FRACTION).sum()),
        "erank_wl": effective_rank(w_l),
        "erank_we": effective_rank(weights["embed.W_E"][:p]),
        "weights_needed": weights_needed(weights),
        "n_params": int(sum(w.numel() for w in weights.values())),
    }


from .kernel import KernelReading, LossKernel, loss_kernel  # noqa: E402  (the kernel module builds on the sampler above)

__all__ = [
    "AUTO", "COMPONENT_COLUMNS", "COMPONENT_SETS", "FULL", "KernelReading", "LLCEstimate", "LossKernel",
    "PROGRESS_COMPONENTS", "SamplerSettingsError", "calibrate", "column_name", "component_masks",
    "degeneracy_measures", "extrapolate", "llc", "loss_kernel", "stable", "weights_needed",
]
