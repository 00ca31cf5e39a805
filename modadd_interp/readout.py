"""Pure math on the final logits: float64 losses, and the ``cos(w(a+b-c))`` readout.

Written for addition in ``Z/n``: the probes pass the grid in its operation's group coordinates
(:class:`modadd_interp.task.AnalysisGrid`), where every operation is ``z = x + y``; read ``a, b, c, p`` below
as ``x, y, z, n``. Logit tensors ``[., c]`` have the answers in the grid's answer order (``c >= n``).

The paper's restricted and excluded logits, and the readout fit, use the logits only through
their components along ``cos/sin(w_k (a+b))`` over the grid. The unit grid direction
``cos(w_k (a+b))`` takes the value ``phi_cos_k(s) / sqrt(p)`` at every input of residue
``s = (a+b) mod p`` (``phi`` the Fourier basis row), so those components depend only on the
**residue means** ``R[s, c]``: the mean of logit ``c`` over the ``p`` inputs with
``a + b = s (mod p)``. ``R`` is ``[p, p]`` whatever the grid size, and is accumulated chunk by
chunk (:func:`residue_sums`). In terms of ``R``:

* the restricted logits of every input of residue ``s`` are ``R`` projected along ``s`` onto the
  constant and the key rows of the basis (each output's grid mean plus its key components);
* the excluded logits of an input are its own logits minus ``R``'s projection onto the key rows
  at its residue (:func:`residue_projection`);
* the components' energy per frequency (:func:`sum_direction_energy`) and the fit
  ``sum_k alpha_k cos(w_k (a+b-c))`` (:func:`cos_readout_fit`) are read off ``R``.

Examples:
    >>> p = 7
    >>> L = torch.randn(p * p, p, dtype=torch.float64)
    >>> s = torch.arange(p).repeat_interleave(p) + torch.arange(p).repeat(p)
    >>> R = residue_sums(L, s % p, p) / p
    >>> restricted = residue_projection(R, [1, 2, 3], const=True)[s % p]     # [p*p, p]
    >>> excluded = L - residue_projection(R, [1, 2, 3])[s % p]
    >>> torch.allclose(restricted + excluded - L.mean(0), L)
    True
"""

from __future__ import annotations

import dataclasses
import math

import torch

from .fourier import DTYPE, fourier_transform, freq_row_pairs, n_freqs, padded_basis

MAX_CHUNK_ELEMENTS = 2**23  # bounds the memory of per-frequency [k, p, p] intermediates (64 MB in float64)


# ------------------------------------------------------------------ losses
@dataclasses.dataclass(frozen=True)
class Measurement:
    """Float64 losses and accuracies of answer logits over the grid, per split."""

    train_loss: float
    test_loss: float
    loss: float
    accuracy: float
    train_accuracy: float
    test_accuracy: float

    @classmethod
    def of(cls, logits: torch.Tensor, task) -> Measurement:
        """Measure ``[p*p, p]`` answer logits (all of the grid, in grid order) on the task's splits."""
        total = MeasurementSum()
        valid = task.valid_mask
        total.add(logits[valid], task.labels[valid], task.train_mask[valid], task.test_mask[valid])
        return total.result()

    def to_dict(self) -> dict:
        """JSON-safe fields."""
        return dataclasses.asdict(self)


class MeasurementSum:
    """A :class:`Measurement` accumulated over chunks of the grid (exact: sums, then one division).

    Examples:
        >>> from modadd_interp.task import ModularTask
        >>> task = ModularTask(p=7)
        >>> logits = 10 * torch.nn.functional.one_hot(task.labels, 7).float()     # [49, 7]: always right
        >>> total = MeasurementSum()
        >>> for rows in (slice(0, 20), slice(20, 49)):
        ...     _ = total.add(logits[rows], task.labels[rows], task.train_mask[rows], task.test_mask[rows])
        >>> total.result().test_loss == Measurement.of(logits, task).test_loss, total.result().test_accuracy
        (True, 1.0)
    """

    def __init__(self) -> None:
        self._nll = torch.zeros(3, dtype=DTYPE)  # [all, train, test]
        self._correct = torch.zeros(3, dtype=DTYPE)
        self._count = torch.zeros(3, dtype=DTYPE)

    def add(self, logits: torch.Tensor, labels: torch.Tensor, train: torch.Tensor,
            test: torch.Tensor | None = None) -> torch.Tensor:
        """Add ``[n, p]`` logits of inputs with ``labels`` ``[n]`` in the splits ``train`` and ``test`` ``[n]`` (bool;
        ``test`` defaults to ``~train``; both are all-True when the split is unknown).

        Returns the ``[n]`` float64 log-probabilities of the labels.
        """
        logprob, hit = label_scores(logits, labels)
        test = ~train if test is None else test
        for index, mask in ((0, None), (1, train), (2, test)):  # masked sums: no boolean indexing (measured slower)
            self._nll[index] -= logprob.sum() if mask is None else torch.where(mask, logprob, 0.0).sum()
            self._correct[index] += (hit if mask is None else hit & mask).sum()
            self._count[index] += len(hit) if mask is None else mask.sum()
        return logprob

    def merge(self, other: MeasurementSum) -> MeasurementSum:
        """A new sum of both (e.g. the group part of the grid and the inputs outside it)."""
        out = MeasurementSum()
        for name in ("_nll", "_correct", "_count"):
            setattr(out, name, getattr(self, name) + getattr(other, name))
        return out

    def result(self) -> Measurement:
        """The measurement of everything added (NaN for an empty split)."""
        nll, correct, count = self._nll.tolist(), self._correct.tolist(), self._count.tolist()

        def ratio(x: float, n: float) -> float:
            return x / n if n else float("nan")

        return Measurement(
            train_loss=ratio(nll[1], count[1]), test_loss=ratio(nll[2], count[2]), loss=ratio(nll[0], count[0]),
            accuracy=ratio(correct[0], count[0]), train_accuracy=ratio(correct[1], count[1]),
            test_accuracy=ratio(correct[2], count[2]),
        )


def label_scores(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``([n] float64 log-softmax of [n, p] logits at labels, [n] bool: the label's logit is strictly the largest)``.

    ``log p(y) = -log1p(S)`` with ``S = sum_{j != y} exp(L_j - L_y)``, computed in the logits' own dtype (float32
    for the model's logits, which it computes in float32): each term carries only that dtype's relative rounding,
    so a grokked model's losses of 1e-8 keep their digits (``L_y - logsumexp(L)`` in float32 would not), and it
    takes a fraction of the time of a float64 ``logsumexp`` (see :file:`docs/performance.md`). Rows where a
    difference overflows ``exp`` (``L_j - L_y > 88`` in float32) are recomputed by float64 ``logsumexp``. A tie
    with the label's logit is not a correct answer.

    Examples:
        >>> logprob, correct = label_scores(torch.tensor([[2.0, 0.0], [0.0, 0.0]]), torch.tensor([0, 1]))
        >>> [round(v, 4) for v in logprob.tolist()], correct.tolist()
        ([-0.1269, -0.6931], [True, False])
    """
    gap = logits - logits.gather(1, labels[:, None])
    # exp near or below the dtype's smallest normal number (and of -inf) takes the CPU's slow path (measured 7x
    # slower at p = 1009, where a confident model's wrong answers sit 100+ below the right one): floor every
    # difference, and the label's own term, at exp(floor), which adds at most p * 2e-38 (float32) to S
    floor = math.log(torch.finfo(gap.dtype).tiny) + 0.5
    gap.clamp_(min=floor).scatter_(1, labels[:, None], floor)
    correct = gap.amax(-1) < 0 if gap.shape[1] > 1 else torch.ones(len(gap), dtype=torch.bool)
    total = gap.exp_().sum(-1).to(DTYPE)
    logprob = -torch.log1p(total)
    over = torch.isinf(total)
    if bool(over.any()):
        wide = logits[over].to(DTYPE)
        logprob[over] = wide.gather(1, labels[over][:, None]).squeeze(1) - torch.logsumexp(wide, -1)
    return logprob, correct


def label_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``[n]`` float64 log-softmax of ``[n, p]`` logits at ``labels`` (see :func:`label_scores`)."""
    return label_scores(logits, labels)[0]


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Mean float64 cross-entropy of ``[n, p]`` logits (on ``mask`` when given)."""
    if mask is not None:
        logits, labels = logits[mask], labels[mask]
    return float(-label_logprobs(logits, labels).mean())


def accuracy(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Fraction of inputs whose label's logit is strictly the largest (on ``mask`` when given)."""
    if mask is not None:
        logits, labels = logits[mask], labels[mask]
    return float(label_scores(logits, labels)[1].to(DTYPE).mean())


def residue_measurement(residue_logits: torch.Tensor, grid) -> Measurement:
    """Measure logits that depend only on the residue: every input of residue ``s`` gets ``residue_logits[s]``.

    Exact and ``O(n p)``: the label (answer column) of an input of residue ``s`` is ``s``, so only the
    number of training and test inputs per residue matters.

    Args:
        residue_logits: ``[n, p]`` answer logits per residue, columns in the grid's answer order.
        grid: anything with ``labels``, ``train`` and ``test`` (``[N]`` each), e.g. an
            :class:`~modadd_interp.task.AnalysisGrid`.
    """
    n = residue_logits.shape[0]
    s = torch.arange(n)
    logprob, hit = label_scores(residue_logits, s)
    correct = hit.to(DTYPE)
    every = torch.bincount(grid.labels, minlength=n).to(DTYPE)
    train = torch.bincount(grid.labels[grid.train], minlength=n).to(DTYPE)
    test = torch.bincount(grid.labels[grid.test], minlength=n).to(DTYPE)

    def mean(values: torch.Tensor, weights: torch.Tensor) -> float:
        return float((values * weights).sum() / weights.sum()) if float(weights.sum()) else float("nan")

    return Measurement(
        train_loss=mean(-logprob, train), test_loss=mean(-logprob, test), loss=mean(-logprob, every),
        accuracy=mean(correct, every), train_accuracy=mean(correct, train), test_accuracy=mean(correct, test),
    )


# ---------------------------------------------------------- residue means
def residue_sums(logits: torch.Tensor, residues: torch.Tensor, n: int) -> torch.Tensor:
    """``[n, c]`` float64: ``logits`` ``[m, c]`` summed by residue (row ``s`` adds the inputs with residue ``s``).

    Summed over the whole ``n x n`` grid and divided by ``n``, this gives the residue means ``R``.
    """
    # summed in the logits' dtype (a chunk adds at most a few hundred inputs per residue), accumulated in float64
    return torch.zeros(n, logits.shape[1], dtype=logits.dtype).index_add_(0, residues, logits).to(DTYPE)


def residue_projection(residue_logits: torch.Tensor, freqs, const: bool = False) -> torch.Tensor:
    """``[n, c]``: ``R`` projected along the residue ``s`` onto the basis rows of ``freqs`` (and the constant).

    Row ``s`` is what the components ``cos/sin(w_k (a+b))``, ``k in freqs``, add to the logits of
    every input of residue ``s``; with ``const=True`` each output's grid mean is added (the
    paper's restricted logits).
    """
    p = residue_logits.shape[0]
    rows = freq_row_pairs(p, freqs).flatten()  # the zero row p (no sin at k = p/2) adds nothing
    b = padded_basis(p)[torch.cat([torch.zeros(int(const), dtype=torch.long), rows])]
    return b.T @ (b @ residue_logits.to(DTYPE))


def sum_direction_energy(residue_logits: torch.Tensor) -> torch.Tensor:
    """``[n//2]``: energy of the (output-centered) grid logits along ``cos/sin(w_k s)``, ``s = x + y``, per ``k``.

    Logits are centered over the outputs first (softmax ignores a per-input shift). Equals the
    grid definition ``sum_c (u_k^T L_c)^2`` (each residue holds ``n`` inputs).
    """
    p = residue_logits.shape[0]
    centered = residue_logits - residue_logits.mean(-1, keepdim=True)
    coeffs = fourier_transform(centered.to(DTYPE), dim=0)  # [rows, c]
    sq = p * (coeffs[1:] ** 2).sum(-1)
    if p % 2 == 0:
        sq = torch.cat([sq, torch.zeros(1, dtype=DTYPE)])
    return sq.reshape(n_freqs(p), 2).sum(-1)


def excluded_loss_bounds(
    residue_logits: torch.Tensor, freqs, miss: torch.Tensor, count: torch.Tensor
) -> torch.Tensor:
    """``[len(freqs)]`` upper bounds on the rise of the mean training loss when each frequency is excluded.

    Excluding ``k`` subtracts ``r = residue_projection(R, [k])[s]`` from the logits of an input
    of residue ``s`` (whose label is ``s``). With ``q`` the input's probability of its label,
    ``loss(L - r) - loss(L) = r_s + log sum_c softmax(L)_c e^{-r_c} <= log(q + (1 - q) e^{d_s})``
    with ``d_s = r_s - min_c r_c``. That is concave in ``q``, so by Jensen the mean over the
    training inputs of residue ``s`` is at most ``log(1 + m_s (e^{d_s} - 1))`` where ``m_s`` is
    their mean ``1 - q``.

    Args:
        miss: ``[p]`` sum over the training inputs of each residue of ``1 - q``.
        count: ``[p]`` number of training inputs of each residue.
    """
    p = residue_logits.shape[0]
    rows = freq_row_pairs(p, freqs)
    basis = padded_basis(p)
    coeffs = basis @ residue_logits.to(DTYPE)  # [p + 1, c], row p is 0
    miss_mean = torch.where(count > 0, miss / count.clamp_min(1), torch.zeros_like(miss)).to(DTYPE)
    s = torch.arange(p)
    out = []
    step = max(1, MAX_CHUNK_ELEMENTS // (p * p))
    for start in range(0, len(rows), step):
        r = rows[start : start + step]  # [m, 2]
        shift = torch.einsum("mjs,mjc->msc", basis[r], coeffs[r])  # [m, s, c]
        d = shift[:, s, s] - shift.min(-1).values  # [m, s]
        out.append((count.to(DTYPE) * torch.log1p(miss_mean * torch.expm1(d))).sum(-1) / count.sum())
    return torch.cat(out) if out else torch.zeros(0, dtype=DTYPE)


def cos_readout_fit(residue_logits: torch.Tensor, freqs) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares ``alpha_k`` in ``logits - mean_c ~ sum_k alpha_k cos(w_k (x+y-z))`` over the grid.

    Args:
        residue_logits: ``[n, c]`` residue means, answer columns ``0..n-1`` by coordinate ``z`` (further
            columns, answers outside the group, are fitted by 0).

    Returns:
        ``(alpha [len(freqs)], fitted [n, c])`` with ``fitted[s, z]`` the fit at every input of
        residue ``s``. The columns ``cos(w_k (s-z))`` of distinct frequencies are orthogonal, so
        each ``alpha_k`` is a projection; every residue holds ``n`` inputs, so the grid fit and
        the fit of ``R`` coincide.
    """
    n = residue_logits.shape[0]
    centered = residue_logits.to(DTYPE) - residue_logits.to(DTYPE).mean(-1, keepdim=True)
    fitted = torch.zeros_like(centered)
    if len(freqs) == 0:
        return torch.zeros(0, dtype=DTYPE), fitted
    x = torch.arange(n, dtype=DTYPE)
    w = 2 * math.pi * torch.as_tensor(list(freqs), dtype=DTYPE) / n
    waves = torch.cos(w[:, None, None] * (x[None, :, None] - x[None, None, :]))  # [K, s, z]
    alpha = (waves * centered[:, :n]).sum((1, 2)) / (waves**2).sum((1, 2))
    fitted[:, :n] = torch.einsum("k,ksc->sc", alpha, waves)
    return alpha, fitted


# ------------------------------------------------ readouts of a hypothesis
def demodulate(logits: torch.Tensor, labels: torch.Tensor, freqs, n: int) -> torch.Tensor:
    """``[m, K]`` complex128: each input's logit component at answer frequency ``w_k``, turned back by its own sum.

    ``D_k(x, y) = e^{-i w_k (x+y)} sum_z L(x, y, z) e^{i w_k z}`` over the group's answers ``z < n`` (``logits``
    ``[m, >= n]`` in answer order; ``labels`` ``[m]`` = ``(x + y) mod n``). A clock's readout
    ``alpha cos(w_k(x+y-z))`` gives the constant ``D_k = alpha n / 2``; a pizza's ``|cos(w_k(x-y)/2)|``
    envelope makes ``D_k`` vary with ``x - y``. The logits' mean over answers drops out (``k != 0``).
    """
    w = 2 * math.pi * torch.as_tensor(list(freqs), dtype=DTYPE) / n
    z = torch.arange(n, dtype=DTYPE)
    waves = torch.polar(torch.ones(len(w), n, dtype=DTYPE), w[:, None] * z[None])  # [K, n]
    spectrum = logits[:, :n].to(DTYPE).to(torch.complex128) @ waves.T  # [m, K]
    return spectrum * torch.polar(torch.ones(1, dtype=DTYPE), -w[None] * labels[:, None].to(DTYPE))


def envelope_fit(demod: torch.Tensor, envelopes: torch.Tensor, n: int, nyquist: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares ``beta`` of one frequency's logit component on ``g_e(x, y) cos(w_k(x+y-z))``.

    Args:
        demod: ``[m]`` complex ``D_k`` over the grid (:func:`demodulate`).
        envelopes: ``[m, E]`` real ``g_e(x, y)``.
        n: the group order; ``nyquist``: ``k = n/2`` (then ``sum_z cos^2 = n``, not ``n/2``).

    Returns:
        ``(beta [E], fitted energy)``: the fit's squared norm over the grid and answers. The features of
        distinct frequencies are orthogonal, and ``<g cos(w(s-z)), L> = sum g Re D``,
        ``<g cos, g' cos> = (n/2) sum g g'``, so each frequency is fitted on its own.
    """
    half = n if nyquist else n / 2
    g = envelopes.to(DTYPE)
    gram = half * (g.T @ g)
    beta = solve_normal(gram, (g.T @ demod.real.to(DTYPE))[:, None])[:, 0]
    return beta, float(beta @ gram @ beta)


def solve_normal(gram: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The minimum-norm solution of ``gram @ beta = target`` (``gram`` symmetric PSD ``[F, F]``, ``target``
    ``[F, c]``), by a symmetric pseudo-inverse: deterministic where features are collinear or zero (e.g. the
    sin of the Nyquist frequency), unlike ``torch.linalg.lstsq``, whose answer then varies run to run."""
    return torch.linalg.pinv(gram.to(DTYPE), hermitian=True) @ target.to(DTYPE)


def amplitude_shares(demod: torch.Tensor, x: torch.Tensor, y: torch.Tensor, n: int) -> dict[str, float]:
    """How one frequency's demodulated component ``D_k`` ``[m]`` varies over inputs ``(x, y)``.

    Returns the shares of ``sum |D_k|^2`` explained by a constant (``const``), by any function of
    ``x + y`` (``sum``) and by any function of ``x - y`` (``diff``), each the squared norm of the class
    means. A clock's component depends on the inputs only through ``x + y`` (``sum`` near 1); a pizza's
    amplitude follows ``|cos(w(x-y)/2)|`` (``diff`` near 1, ``const`` near ``8/pi^2``).
    """
    energy = float((demod.abs() ** 2).sum())
    out = {"const": float(demod.mean().abs() ** 2) * len(demod) / energy if energy else 0.0}
    for name, key in (("sum", (x + y) % n), ("diff", (x - y) % n)):
        count = torch.bincount(key, minlength=n).to(DTYPE)
        means = torch.zeros(n, dtype=torch.complex128).index_add_(0, key, demod.to(torch.complex128))
        means = means / count.clamp_min(1)
        out[name] = float((count * means.abs() ** 2).sum()) / energy if energy else 0.0
    return out


def distance_irrelevance(correct: torch.Tensor, n: int) -> float:
    """Zhong et al.'s distance irrelevance of the correct-answer logits ``[n, n]`` indexed ``[x, y]``.

    Arranged by ``(x + y, x - y)``, it is the mean over the ``x - y`` columns of the standard deviation over
    ``x + y``, divided by the standard deviation over the whole grid (population std, as numpy's): near 1
    when the correct logit does not depend on ``x - y`` (a clock), near 0 when it depends on nothing else.
    For odd ``n`` (the authors' prime p) every ``(x + y, x - y)`` cell holds one input; for even ``n`` (the
    group of mul/div) ``x + y`` and ``x - y`` have the same parity, so each occupied cell averages its two
    inputs and the empty cells are left out.
    """
    x = torch.arange(n).repeat_interleave(n)
    y = torch.arange(n).repeat(n)
    cell = ((x + y) % n) * n + (x - y) % n
    count = torch.bincount(cell, minlength=n * n).to(DTYPE)
    total = torch.zeros(n * n, dtype=DTYPE).index_add_(0, cell, correct.reshape(-1).to(DTYPE))
    occupied = (count > 0).reshape(n, n)
    grid = (total / count.clamp_min(1)).reshape(n, n)
    values = grid[occupied]
    spread = float(values.std(unbiased=False))
    if not spread:
        return float("nan")
    columns = [grid[occupied[:, d], d] for d in range(n) if occupied[:, d].any()]
    return sum(float(c.std(unbiased=False)) for c in columns) / len(columns) / spread
