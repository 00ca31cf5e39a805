"""The singular-learning-theory lens: the local learning coefficient (LLC) and degeneracy measures.

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
  the 3 "token" positions devinterp expects, so the per-token mean is exactly the task's
  cross-entropy on the batch;
* ``init_loss`` is the mean loss at ``w0`` over ``num_init_loss_batches`` batches (we pass enough
  batches to cover the training split once);
* devinterp's own ``llc_per_chain = n_beta * (mean loss over every step - init_loss)`` averages over
  the burn-in steps too. We read its per-step ``loss_trace`` and average **after burn-in only**:
  ``LLC = n_beta * (mean_{draws} L(w_t) - L(w0))``, one value per chain; ``mean``/``std`` are over chains.

**Health check** (:attr:`LLCEstimate.healthy`; an unhealthy estimate also warns):

* every chain finished (devinterp stops a chain on a NaN/inf loss) and its trace is finite;
* no chain diverged: no draw's loss exceeds ``init_loss + log(p)`` (a uniform guess's loss above the start);
* the trace is stationary after burn-in: the LLC from the second half of the draws is within
  :data:`DRIFT_TOLERANCE` (relative, of ``max(|LLC|, 1)``) of the LLC from the first half;
* the LLC is not negative (a negative LLC means the sampler found lower loss: the point is not a local
  minimum of the training loss, e.g. an early checkpoint, or the step size is too large).

**Calibration of the defaults** (done once on the shipped grokked p = 113 model: training split of 3830
inputs, 4 chains, 200 draws after 100 burn-in steps, batch 256, seed 0, one torch thread on a shared
2-core CPU; the full table is in docs/concepts.md, "The local learning coefficient"). The grokked model's
training loss is ~1e-7: its softmax is saturated and the loss is almost flat near ``w0``. With a weak
pull (``localization = 100``; ``n_beta`` in {30, 100, 300, 1000}, ``lr`` in {1e-5, 3e-5, 1e-4}) the
chains diffuse until the loss reaches 0.02-2.5 and are still climbing after 300 steps (drift 36-160%):
unhealthy. With a strong pull (``localization`` >= 1000) the chains stay where the loss is still ~0
and the LLC is ~0.7 (or 0.0 at 3000): it then measures the prior, not the model.
``lr = 1e-4, n_beta = 1000, localization = 300`` equilibrates within the burn-in (relaxation time
``2 / (lr * localization)`` ~ 67 steps; the trace is flat at a loss of ~0.027 after ~100 steps) and gives
LLC = 26.5 +- 0.3, healthy; ``lr = 3e-4`` at the same ``n_beta`` and ``localization`` sends every chain to
NaN. Those are the defaults: ~30 s for one estimate on this CPU. The LLC's absolute value depends on the
localization; compare checkpoints at fixed settings.

The defaults suit the grokked endpoint, not every checkpoint: on the shipped series they are flagged
unhealthy at steps 200-5600 (sharper loss: chains diverge or hit NaN). ``lr = 3e-5, localization = 1000``
is healthy there but not at the endpoint. Read ``healthy`` before the number.

Examples:
    >>> est = llc(*mi.load())                                # doctest: +SKIP
    >>> est.mean, est.std, est.healthy
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import shutil
import tempfile
import warnings

import numpy as np
import torch

from . import tl_adapter
from .config import ModelConfig
from .display import Displayable, Summary
from .fourier import effective_rank
from .grid import check_compatible
from .task import ModularTask

DEFAULT_LR = 1e-4
DEFAULT_N_BETA = 1000.0
DEFAULT_LOCALIZATION = 300.0
DEFAULT_NUM_CHAINS = 4
DEFAULT_NUM_DRAWS = 200
DEFAULT_NUM_BURNIN_STEPS = 100
DEFAULT_BATCH_SIZE = 256

DRIFT_TOLERANCE = 0.2
"""Largest relative change of the LLC between the first and second half of the draws for a healthy trace."""

NEARLY_DEAD_FRACTION = 0.01
"""A neuron active (> 0 after ReLU) on fewer than this fraction of the grid is *nearly dead*."""

NORM_FRACTION = 0.99
"""The fraction of the squared weight norm the kept weights must carry (see :func:`weights_needed`)."""


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
        hyperparameters: the sampler settings used.
        loss_trace: per chain, the batch loss at every SGLD step (burn-in included).
    """

    mean: float
    std: float
    per_chain: tuple[float, ...]
    init_loss: float
    healthy: bool
    reasons: tuple[str, ...]
    hyperparameters: dict
    loss_trace: tuple[tuple[float, ...], ...] = ()

    def to_dict(self, trace: bool = False) -> dict:
        """JSON-safe dict (the loss trace only when ``trace``)."""
        out = {
            "mean": self.mean, "std": self.std, "per_chain": list(self.per_chain), "init_loss": self.init_loss,
            "healthy": self.healthy, "reasons": list(self.reasons), "hyperparameters": dict(self.hyperparameters),
        }
        if trace:
            out["loss_trace"] = [list(c) for c in self.loss_trace]
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


def training_dataset(task: ModularTask):
    """The training split as a HuggingFace dataset of ``input_ids`` rows ``[a, b, '=', c]``."""
    from datasets import Dataset

    idx = task.train_mask.nonzero().squeeze(1)
    rows = torch.cat([task.inputs[idx], task.labels[idx, None]], dim=1)
    return Dataset.from_dict({"input_ids": rows.tolist()}).with_format("torch")


def make_loss_fn(task: ModularTask):
    """``(model, input_ids [batch, 4]) -> [batch, 3]`` float64 loss: the task's cross-entropy, repeated."""

    def loss_fn(model, input_ids: torch.Tensor) -> torch.Tensor:
        logits = model(input_ids[:, :3], return_type="logits")
        logprobs = task.final_logprobs(logits)
        loss = -logprobs.gather(1, input_ids[:, 3:4].long())
        return loss.expand(-1, 3)

    return loss_fn


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
        yield
    finally:
        torch.set_rng_state(torch_state)
        np.random.set_state(np_state)
        random.setstate(py_state)
        torch.set_grad_enabled(grad)


@contextlib.contextmanager
def _quiet_chains():
    """Silence devinterp's per-chain tqdm bars (restored on exit)."""
    import devinterp.slt.sampler as sampler
    from tqdm.auto import trange

    original = sampler.trange

    def quiet(*args, **kwargs):
        kwargs["disable"] = True
        return trange(*args, **kwargs)

    sampler.trange = quiet
    try:
        yield
    finally:
        sampler.trange = original


def llc(
    model, task: ModularTask, *, lr: float = DEFAULT_LR, n_beta: float = DEFAULT_N_BETA,
    localization: float = DEFAULT_LOCALIZATION, num_chains: int = DEFAULT_NUM_CHAINS,
    num_draws: int = DEFAULT_NUM_DRAWS, num_burnin_steps: int = DEFAULT_NUM_BURNIN_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0,
) -> LLCEstimate:
    """Estimate the local learning coefficient of ``model`` on ``task``'s training split.

    Samples on a fresh copy of the model (the user's model, its hooks and the global RNG states are
    left unchanged). Deterministic for a given ``seed``. See the module docstring for the estimator,
    the health check and how the defaults were chosen.

    Args:
        model: a HookedTransformer (TL 3) or TransformerBridge (TL 4) of the supported architecture.
        task: the task; its training split is the sampled data.
        lr, n_beta, localization: devinterp's SGLD step size, inverse temperature and pull toward ``w0``.
        num_chains, num_draws, num_burnin_steps, batch_size: the chains' shape.
        seed: devinterp's ``init_seed`` (chain ``c`` uses ``seed + c``; the batches use ``seed``).

    Returns:
        An :class:`LLCEstimate`; when unhealthy, a warning is emitted too.
    """
    devinterp_llc = _require_devinterp()
    cfg: ModelConfig = check_compatible(model, task)
    weights = tl_adapter.canonical_weights(model)
    n_train = int(task.train_mask.sum())
    if batch_size > n_train:
        batch_size = n_train
    hyper = dict(lr=lr, n_beta=n_beta, localization=localization, num_chains=num_chains, num_draws=num_draws,
                 num_burnin_steps=num_burnin_steps, batch_size=batch_size, seed=seed, sampler="devinterp sgmcmc_sgld")
    out_dir = tempfile.mkdtemp(prefix="modadd_llc_")
    caught: list[warnings.WarningMessage] = []
    try:
        with _preserved_global_state(), _quiet_chains(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sampler_model = _Sampled(cfg, weights, tl_adapter.backend_name(model))
            result = devinterp_llc(
                sampler_model, training_dataset(task), {}, lr=lr, n_beta=n_beta, loss_fn=make_loss_fn(task),
                num_chains=num_chains, num_draws=num_draws, num_burnin_steps=num_burnin_steps,
                batch_size=batch_size, localization=localization, init_seed=seed,
                num_init_loss_batches=max(1, n_train // batch_size), device="cpu",
                output_path=f"{out_dir}/samples.zarr",
            )
            trace = np.asarray(result["loss_trace"].values, dtype=np.float64)  # [chain, step]
            init_loss = float(result["init_loss"].values)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    failed = [str(w.message) for w in caught if "Chain failed" in str(w.message)]
    estimate = _estimate(trace, init_loss, n_beta, num_burnin_steps, task.p, failed, hyper)
    if not estimate.healthy:
        warnings.warn("the LLC estimate is unhealthy: " + "; ".join(estimate.reasons), stacklevel=2)
    return estimate


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
            first = n_beta * (float(draws[:, :half].mean()) - init_loss)
            second = n_beta * (float(draws[:, half:].mean()) - init_loss)
            drift = abs(second - first) / max(abs(mean), 1.0)
            if drift > DRIFT_TOLERANCE:
                reasons.append(f"the trace is not stationary after burn-in: LLC {first:.3g} over the first half "
                               f"of the draws, {second:.3g} over the second (drift {drift:.0%} > "
                               f"{DRIFT_TOLERANCE:.0%})")
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
        active: ``[d_mlp]`` fraction of the grid where each neuron's activation at ``'='`` is positive
            (``GridCache.neuron_active``).
        p: the modulus.

    Returns:
        ``dead_neurons`` (never active on the grid), ``nearly_dead_neurons`` (active on fewer than
        :data:`NEARLY_DEAD_FRACTION` of the grid, the dead ones included), ``erank_wl`` (effective rank of
        ``W_L = W_out @ W_U[:, :p]``), ``erank_we`` (effective rank of the number embedding ``W_E[:p]``) and
        ``weights_needed`` (:func:`weights_needed`) with ``n_params`` for scale.
    """
    w_l = weights["blocks.0.mlp.W_out"].double() @ weights["unembed.W_U"].double()[:, :p]
    return {
        "dead_neurons": int((active == 0).sum()),
        "nearly_dead_neurons": int((active < NEARLY_DEAD_FRACTION).sum()),
        "erank_wl": effective_rank(w_l),
        "erank_we": effective_rank(weights["embed.W_E"][:p]),
        "weights_needed": weights_needed(weights),
        "n_params": int(sum(w.numel() for w in weights.values())),
    }
