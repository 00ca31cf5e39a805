"""Progress measures over training, and the phases found from them.

:func:`progress_measures` maps the probes and losses over a checkpoint series. Once the final
checkpoint's model has agreed with the grid pass computed from its weights
(:attr:`GridCache.computed_from_weights`), every checkpoint is measured from its weights alone
(:meth:`GridCache.of_weights`), one per core at a time, each on a thread running torch on one core
(:func:`_in_threads`), to the same bits as alone;
otherwise (or with the LLC, which samples the model) one model with hooks attached once is loaded
with each checkpoint's weights in turn. The grid runs in bounded chunks either way.

The phase rule (:func:`detect_phases`), on the measured frame:

* **memorization ends** at the first checkpoint whose training accuracy reaches
  :data:`TRAIN_FIT_ACCURACY`;
* the run **groks** when its final test accuracy reaches :data:`GROKKED_TEST_ACCURACY` and its
  test loss falls at least :data:`MIN_FALL_DECADES` decades below its peak after memorization;
* **circuit formation ends** (cleanup starts) at the first checkpoint after the peak whose
  log test loss has fallen :data:`FALL_START` of the way from the peak to the final value;
* **cleanup ends** where it has fallen :data:`FALL_END` of the way.

Without grokking, circuit formation and cleanup are reported as absent (None).

Examples:
    Skipped when the examples run (the shipped run's 29 checkpoints take a while):

    >>> import modadd_interp as mi                                    # doctest: +SKIP
    >>> frame = progress_measures(mi.shipped_run())                   # doctest: +SKIP
    >>> phases = frame.attrs["phases"]                                # doctest: +SKIP
    >>> [phases[k] for k in ("memorization_end", "circuit_formation_end", "cleanup_end")]  # doctest: +SKIP
    [200, 4800, 7000]
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import torch
from tqdm.auto import tqdm

from . import tl_adapter
from .errors import TaskMismatchError
from .fourier import frequency_shares, frequency_spectrum, gini
from .probes import key_frequencies
from .probes.cache import GridCache, grid_cache, grid_recorder, keep_budget
from .probes.neurons import CLUSTER_THRESHOLD
from .runs import Run, load_run
from .task import ModularTask

TRAIN_FIT_ACCURACY = 0.99
GROKKED_TEST_ACCURACY = 0.99
MIN_FALL_DECADES = 1.0
FALL_START = 0.1
FALL_END = 0.9


def progress_measures(
    run: object, task: ModularTask | None = None, key_freqs: tuple[int, ...] | None = None,
    progress: bool = True, llc: bool | dict | str = False,
) -> pd.DataFrame:
    """One row per checkpoint: losses, accuracies, restricted/excluded loss, Ginis, weight norm, clusters.

    Args:
        run: a :class:`Run`, a run directory, a series file, a paper-style series dict, or a
            list of ``(step, model or state dict)`` pairs.
        task: the task; default: the one the run records (else the paper's default split).
        key_freqs: default: the key frequencies of the final checkpoint.
        progress: show a tqdm bar over checkpoints.
        llc: also add, per checkpoint, the local learning coefficient and the degeneracy measures of
            :func:`modadd_interp.slt.degeneracy_measures` (see :mod:`modadd_interp.slt`; needs devinterp).
            ``True`` calibrates the step size per checkpoint (``slt.llc(lr="auto")``) at a localization and
            ``n_beta`` common to the run, so the values are comparable; a dict passes its keys to
            :func:`modadd_interp.slt.llc` (with an ``lr`` number, that fixed step everywhere). Columns:
            ``llc_mean``, ``llc_std``, ``llc_healthy``, ``llc_reasons`` (why unhealthy, ``""`` when
            healthy), ``llc_lr`` and ``llc_lr2`` (the step pair, ``llc_lr2`` NaN for a fixed step),
            ``llc_at_lr`` and ``llc_at_lr2`` (the LLC at each step), ``llc_extrapolated`` (whether the
            value is extrapolated to step 0 or is ``llc_at_lr2``), ``llc_localization``, ``llc_n_beta``
            and ``llc_tries`` (sampling runs made). Slow: about 30 s per checkpoint on a 2-core CPU.
            ``"components"`` (or a dict with a ``"components"`` key: ``slt.llc(..., components=...)``; default
            set :data:`modadd_interp.slt.PROGRESS_COMPONENTS`) estimates each component's weight-restricted LLC
            instead of the whole model's, calibrated per component and checkpoint: per component ``c``
            (:func:`modadd_interp.slt.column_name`, e.g. ``llc_l0_mlp``) the columns ``llc_c`` (the mean),
            ``llc_c_std``, ``llc_c_healthy``, ``llc_c_reasons``, ``llc_c_lr`` and ``llc_c_lr2``, with the
            degeneracy measures; ``attrs["llc_components"]`` lists the components. About 5x the whole model's time.

    Returns:
        A DataFrame indexed by row with a ``step`` column. ``attrs`` holds ``key_freqs``,
        ``key_freqs_source``, ``phases`` (see :func:`detect_phases`) and ``phase_checks``.
    """
    run = load_run(run, task=task)
    task = run.task or _default_task(run)
    if not task.grid.coords.cyclic:
        raise TaskMismatchError(
            f"progress measures are defined for the Fourier story of a cyclic task; {task.group.name} is read through "
            "its irreps, whose measures over training are not built yet: analyze each checkpoint instead "
            "(mi.analyze(*mi.load(path)) per checkpoint of the run).")
    model = tl_adapter.build_model(run.config, run.weights[-1])
    final = grid_cache(model, task)
    if key_freqs is None:
        kf = key_frequencies(model, task, cache=final)
        key_freqs, source = kf.freqs, f"final checkpoint (step {run.steps[-1]}, confidence {kf.confidence})"
    else:
        key_freqs, source = tuple(key_freqs), "given"
    # the architecture's weight pass agreed with the model on the final checkpoint: every checkpoint is computed
    # from its weights alone (no model to load them into), keeping only the logits the excluded loss needs
    from_weights = final.computed_from_weights
    # checkpoints of weights alone are independent: one per torch thread at a time; one model's are measured in turn
    workers = torch.get_num_threads() if from_weights and not llc else 1
    keep = "logits" if workers * task.grid.n_inputs * task.p * 4 <= keep_budget() else "rerun"  # float32 logits
    checkpoints = list(zip(run.steps, run.weights, strict=True))
    llc_kwargs = _llc_kwargs(llc)
    with contextlib.nullcontext() if from_weights else grid_recorder(model, attention=False) as recorder:

        def measure(checkpoint: tuple[int, dict[str, torch.Tensor]]) -> dict:
            step, weights = checkpoint
            if llc or not from_weights:
                tl_adapter.set_weights(model, run.config, weights)
            cache = (GridCache.of_weights(run.config, weights, task, keep=keep, attention=False) if from_weights
                     else grid_cache(model, task, recorder=recorder, keep=keep))
            row = {"step": step, **checkpoint_measures(cache, key_freqs)}
            if llc:
                row.update(_slt_measures(model, task, weights, cache.neuron_active, llc_kwargs))
            return row

        rows = list(tqdm(_in_threads(measure, checkpoints, workers), total=len(checkpoints), disable=not progress,
                         desc="progress measures", dynamic_ncols=True))
    frame = pd.DataFrame(rows)
    frame.attrs["key_freqs"] = list(key_freqs)
    frame.attrs["key_freqs_source"] = source
    if "components" in llc_kwargs:
        from . import slt

        frame.attrs["llc_components"] = list(slt.component_masks(model, llc_kwargs["components"]))
    frame.attrs["phases"] = detect_phases(frame)
    frame.attrs["phase_checks"] = phase_checks(frame, frame.attrs["phases"])
    return frame


def _in_threads(fn: Callable, items: list, workers: int) -> Iterator:
    """``fn`` over ``items``, results in order, ``workers`` items at a time, each on a thread that runs torch on one
    core (inline for one worker).

    The checkpoints then run side by side, one per core, instead of each operation being split across the cores:
    most of a checkpoint's operations are small (a 4,096-input chunk), and splitting them costs more in waiting
    than it gains (measured on 2 cores at p = 113: 4.1-4.5 s for 100 checkpoints, against 4.9 s with two
    checkpoints at once on two cores each and 4.6-6.1 s one at a time; docs/performance.md). The numbers are
    the same to the last bit as on torch's thread count (tested on the shipped run and the fixtures of both
    families): the grid pass's float32 matrix products split their rows and columns across threads, not their
    sums, and its other reductions have many outputs (split by output) or fewer entries than torch's grain size;
    :func:`checkpoint_measures` computes the rest on one thread. torch's thread count for new threads (which a
    thread's ``set_num_threads`` also sets) is restored after.
    """
    if workers == 1:
        yield from map(fn, items)
        return
    threads = torch.get_num_threads()
    pool = ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,))
    try:
        yield from pool.map(fn, items)
    finally:  # an error or an interrupt drops the checkpoints not yet started
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(threads)


def checkpoint_measures(cache: GridCache, key_freqs: tuple[int, ...]) -> dict[str, float]:
    """The measures of one checkpoint, from its :class:`GridCache` (one sweep for the excluded loss).

    Everything but that sweep is small (float64 products of ``[n, p]`` matrices, the weights' norms and spectra)
    and runs on one torch thread (:func:`_one_torch_thread`), so that its bits do not depend on the caller's
    thread count: MKL's small float64 products do (measured: the Clock-and-Pizza Model A's restricted loss
    differed in its last bit at 1 and 2 threads), and so does a whole-tensor sum above torch's grain size.
    """
    weights, n = cache.weights, cache.grid.n
    keys = list(key_freqs)
    with _one_torch_thread():
        restricted = cache.restricted(keys)
        exclude = cache.excluding(keys)
        weight_measures = {
            "gini_we": gini(frequency_spectrum(cache.number_embeddings())[0].sqrt()),
            "gini_wl": gini(frequency_spectrum(cache.w_logit[:, :n], dim=1)[0].sqrt()),
            "total_sq_weights": float(sum((w.double() ** 2).sum() for w in weights.values())),
        }
        # a neuron clusters at k when k's block holds CLUSTER_THRESHOLD (> 1/2) of its variance: then k is its
        # largest share, so the key frequencies' blocks suffice
        shares = frequency_shares(cache.layers[-1].blocks_at(keys), cache.neuron_variance)
        clustered = (shares >= CLUSTER_THRESHOLD) & (cache.neuron_variance > 0)[:, None]
    excluded = cache.measure({"excluded": exclude}, split="train")["excluded"]
    full = cache.full
    row = {
        "train_loss": full.train_loss, "test_loss": full.test_loss,
        "train_accuracy": full.train_accuracy, "test_accuracy": full.test_accuracy,
        "restricted_loss": restricted.test_loss,
        "restricted_train_loss": restricted.train_loss,
        "excluded_loss": excluded.train_loss,
        **weight_measures,
    }
    for i, k in enumerate(keys):
        row[f"clustered_{k}"] = int(clustered[:, i].sum())
    return row


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch on one thread in this block (in this thread), then restore the thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fall_step(frame: pd.DataFrame, column: str, fraction: float, start: int = 0) -> int | None:
    """First step, at or after row ``start``'s peak of ``column``, where its log10 has fallen ``fraction``
    of the way from that peak to the final value (None when it does not fall)."""
    values = frame[column].iloc[start:].clip(lower=1e-300).map(math.log10)
    peak_pos = int(values.values.argmax())
    peak, final = float(values.iloc[peak_pos]), float(values.iloc[-1])
    if peak <= final:
        return None
    falling = values.iloc[peak_pos:]
    reached = falling.index[((peak - falling) / (peak - final) >= fraction).values]
    return int(frame.loc[reached[0], "step"])


def detect_phases(frame: pd.DataFrame) -> dict:
    """The phase boundaries (steps) by the rule in this module's docstring.

    Returns:
        ``{"memorization_end", "circuit_formation_end", "cleanup_end"}`` (steps or None),
        ``"grokked"`` (bool) and ``"rule"`` (the rule in words, with the numbers it used).
    """
    fitted = frame.index[frame["train_accuracy"] >= TRAIN_FIT_ACCURACY].tolist()
    phases = {"memorization_end": None, "circuit_formation_end": None, "cleanup_end": None, "grokked": False}
    if not fitted:
        phases["rule"] = f"the training accuracy never reaches {TRAIN_FIT_ACCURACY:.0%}: no memorization"
        return phases
    first = fitted[0]
    phases["memorization_end"] = int(frame.loc[first, "step"])
    log_loss = frame["test_loss"].iloc[first:].clip(lower=1e-300).map(math.log10)
    peak, final = float(log_loss.max()), float(log_loss.iloc[-1])
    final_acc = float(frame["test_accuracy"].iloc[-1])
    if final_acc < GROKKED_TEST_ACCURACY or peak - final < MIN_FALL_DECADES:
        phases["rule"] = (f"no grokking: final test accuracy {final_acc:.1%} (needs {GROKKED_TEST_ACCURACY:.0%}) "
                          f"and test loss fell {peak - final:.2f} decades from its peak (needs {MIN_FALL_DECADES})")
        return phases
    phases.update(grokked=True, circuit_formation_end=fall_step(frame, "test_loss", FALL_START, first),
                  cleanup_end=fall_step(frame, "test_loss", FALL_END, first),
                  rule=(f"train accuracy >= {TRAIN_FIT_ACCURACY:.0%} at step {phases['memorization_end']}; "
                        f"log10 test loss then falls from {peak:.2f} to {final:.2f}; {FALL_START:.0%} and "
                        f"{FALL_END:.0%} of that fall end circuit formation and cleanup"))
    return phases


def phase_checks(frame: pd.DataFrame, phases: dict) -> dict:
    """The measures at the phase boundaries, to check the phases against the paper's story."""
    if not phases.get("grokked"):
        return {}
    at = frame.set_index("step")
    m, c, e = phases["memorization_end"], phases["circuit_formation_end"], phases["cleanup_end"]
    first = int(frame.index[frame["step"] == m][0])
    restricted_falls = fall_step(frame, "restricted_loss", FALL_START, first)

    def pair(column, a, b):
        return [float(at.loc[a, column]), float(at.loc[b, column])]

    checks = {
        "train_loss_at_memorization_end": float(at.loc[m, "train_loss"]),
        "test_loss_at_memorization_end": float(at.loc[m, "test_loss"]),
        "excluded_loss_memorization_to_circuit": pair("excluded_loss", m, c),
        "restricted_loss_memorization_to_circuit": pair("restricted_loss", m, c),
        "restricted_loss_fall_step": restricted_falls,
        "gini_we_circuit_to_cleanup": pair("gini_we", c, e),
        "gini_wl_circuit_to_cleanup": pair("gini_wl", c, e),
    }
    checks["excluded_loss_rises_in_circuit_formation"] = bool(
        checks["excluded_loss_memorization_to_circuit"][1] > checks["excluded_loss_memorization_to_circuit"][0])
    checks["restricted_loss_falls_before_test_loss"] = restricted_falls is not None and restricted_falls < c
    checks["gini_rises_in_cleanup"] = bool(
        checks["gini_we_circuit_to_cleanup"][1] > checks["gini_we_circuit_to_cleanup"][0]
        and checks["gini_wl_circuit_to_cleanup"][1] > checks["gini_wl_circuit_to_cleanup"][0])
    return checks


def _llc_kwargs(llc: bool | dict | str) -> dict:
    """``progress_measures``' ``llc`` as keyword arguments of :func:`modadd_interp.slt.llc` (empty: the defaults)."""
    if isinstance(llc, str):
        if llc != "components":
            raise ValueError(f"llc must be True, a dict of slt.llc settings or 'components', got {llc!r}")
        from . import slt

        return {"components": slt.PROGRESS_COMPONENTS}
    return dict(llc) if isinstance(llc, dict) else {}


def _slt_measures(model, task: ModularTask, weights: dict[str, torch.Tensor], active: torch.Tensor,
                  llc_kwargs: dict) -> dict:
    from . import slt

    if "components" in llc_kwargs:
        frame = slt.llc(model, task, **llc_kwargs)
        row = {}
        for r in frame.itertuples(index=False):
            c = slt.column_name(r.component)
            row.update({c: r.llc_mean, f"{c}_std": r.llc_std, f"{c}_healthy": r.healthy, f"{c}_reasons": r.reasons,
                        f"{c}_lr": r.lr, f"{c}_lr2": r.lr2})
        return {**row, **slt.degeneracy_measures(weights, active, task.p)}
    estimate = slt.llc(model, task, **llc_kwargs)
    hyper = estimate.hyperparameters
    pair = hyper.get("lr_pair") or [hyper["lr"], None]
    at = {t.hyperparameters["lr"]: t.mean for t in estimate.tries} or {hyper["lr"]: estimate.mean}
    nan = float("nan")
    return {"llc_mean": estimate.mean, "llc_std": estimate.std, "llc_healthy": estimate.healthy,
            "llc_reasons": "; ".join(estimate.reasons), "llc_lr": pair[0],
            "llc_lr2": nan if pair[1] is None else pair[1], "llc_at_lr": at.get(pair[0], nan),
            "llc_at_lr2": at.get(pair[1], nan), "llc_localization": hyper["localization"],
            "llc_n_beta": hyper["n_beta"], "llc_tries": hyper.get("tries", 1),
            "llc_extrapolated": bool(hyper.get("extrapolated", False)),
            **slt.degeneracy_measures(weights, active, task.p)}


def _default_task(run: Run) -> ModularTask:
    warnings.warn(f"the run does not record its split; assuming ModularTask(p={run.config.p}) (the paper's "
                  "default). Pass task=... to set it.", stacklevel=3)
    return ModularTask(p=run.config.p)
