"""Pure Fourier math on tensors: no model, no hooks.

The basis follows the paper's order (DESIGN.md): row 0 is the constant ``1/sqrt(p)``,
row ``2k-1`` is ``cos(2 pi k x / p)`` and row ``2k`` is ``sin(2 pi k x / p)`` for
``k = 1 .. p // 2``, every row with unit norm. For even ``p`` the row for ``k = p/2``
is only the (alternating ``+-1``) cos row. Frequencies are reported as integers ``k``.

Grid tensors are indexed ``[a, b, ...]`` (input ``i = a * p + b``).

Examples:
    >>> basis = fourier_basis(7)
    >>> torch.allclose(basis @ basis.T, torch.eye(7, dtype=basis.dtype))
    True
    >>> basis_names(7)[:3]
    ['const', 'cos 1', 'sin 1']
"""

from __future__ import annotations

import functools
import math

import torch

DTYPE = torch.float64


# ----------------------------------------------------------------- the basis
def n_freqs(p: int) -> int:
    """Number of non-constant frequencies, ``p // 2``."""
    return p // 2


def fourier_basis(p: int, dtype: torch.dtype = DTYPE) -> torch.Tensor:
    """``[p, p]`` orthonormal basis; row ``r`` is a function of ``x = 0..p-1``.

    Cached per ``(p, dtype)`` and shared: treat it as read-only.
    """
    return _basis(p, dtype)


@functools.lru_cache(maxsize=16)
def _basis(p: int, dtype: torch.dtype) -> torch.Tensor:
    x = torch.arange(p, dtype=DTYPE)
    k = torch.arange(1, n_freqs(p) + 1, dtype=DTYPE)
    angle = 2 * math.pi * torch.outer(k, x) / p
    rows = torch.stack([torch.cos(angle), torch.sin(angle)], 1).reshape(-1, p)  # cos 1, sin 1, cos 2, ...
    if p % 2 == 0:
        rows = rows[:-1]  # k = p/2 has no sin row
    basis = torch.cat([torch.ones(1, p, dtype=DTYPE), rows])
    return (basis / basis.norm(dim=1, keepdim=True)).to(dtype)


def basis_names(p: int) -> list[str]:
    """Row names: ``const``, ``cos 1``, ``sin 1``, ..."""
    names = ["const"]
    for k in range(1, n_freqs(p) + 1):
        names.append(f"cos {k}")
        if 2 * k != p:
            names.append(f"sin {k}")
    return names


def row_freqs(p: int) -> torch.Tensor:
    """``[p]`` int64: the frequency ``k`` of each basis row (0 for const)."""
    return torch.tensor([0] + [int(n.split()[1]) for n in basis_names(p)[1:]])


def freq_rows(p: int, k: int) -> list[int]:
    """Basis rows of frequency ``k``: ``[2k-1, 2k]``, or ``[2k-1]`` for ``k = p/2``."""
    if not 1 <= k <= n_freqs(p):
        raise ValueError(f"frequency {k} is outside 1..{n_freqs(p)} for p={p}")
    return [2 * k - 1] if 2 * k == p else [2 * k - 1, 2 * k]


# ------------------------------------------------------------- transforms
def fourier_transform(x: torch.Tensor, dim: int = 0, method: str = "auto") -> torch.Tensor:
    """Coefficients of ``x`` in the basis along ``dim`` (size ``p``), same shape as ``x``.

    ``method``: ``"dense"`` (basis matmul), ``"fft"`` (``torch.fft.rfft``; O(p log p)) or
    ``"auto"`` (fft for p > 256). Both give the same coefficients to float tolerance.
    """
    x = x.to(DTYPE)
    p = x.shape[dim]
    if method == "auto":
        method = "fft" if p > 256 else "dense"
    moved = x.movedim(dim, -1)
    if method == "dense":
        out = moved @ fourier_basis(p).T
    elif method == "fft":
        out = _fft_coefficients(moved)
    else:
        raise ValueError(f"method must be 'auto', 'dense' or 'fft', got {method!r}")
    return out.movedim(-1, dim)


def _fft_coefficients(x: torch.Tensor) -> torch.Tensor:
    """Basis coefficients along the last dim via rfft: cos = Re X_k, sin = -Im X_k, rescaled."""
    p = x.shape[-1]
    spectrum = torch.fft.rfft(x, dim=-1)
    k_max = n_freqs(p)
    parts = [spectrum[..., :1].real / math.sqrt(p)]
    cos = spectrum[..., 1 : k_max + 1].real * math.sqrt(2 / p)
    sin = -spectrum[..., 1 : k_max + 1].imag * math.sqrt(2 / p)
    if p % 2 == 0:  # the Nyquist row is +-1/sqrt(p), and has no sin
        cos[..., -1] = spectrum[..., k_max].real / math.sqrt(p)
        interleaved = torch.stack([cos[..., :-1], sin[..., :-1]], dim=-1).flatten(-2)
        parts += [interleaved, cos[..., -1:]]
    else:
        parts.append(torch.stack([cos, sin], dim=-1).flatten(-2))
    return torch.cat(parts, dim=-1)


def fourier_transform_2d(x: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """2D coefficients of grid tensor ``x`` ``[p, p, ...]`` over its first two dims."""
    return fourier_transform(fourier_transform(x, 0, method), 1, method)


def inverse_fourier_transform(coeffs: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Inverse of :func:`fourier_transform` (the basis is orthonormal)."""
    p = coeffs.shape[dim]
    return (coeffs.to(DTYPE).movedim(dim, -1) @ fourier_basis(p)).movedim(-1, dim)


# ------------------------------------------------------ per-frequency views
def frequency_energy(coeffs: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Squared norm per frequency ``k = 1..p//2`` of 1D coefficients along ``dim``.

    Returns shape ``[p//2, *rest]`` (``dim`` replaced by frequencies, moved first).
    The constant row is excluded.
    """
    c = coeffs.movedim(dim, 0)
    p = c.shape[0]
    sq = c[1:] ** 2
    if p % 2 == 0:
        sq = torch.cat([sq, torch.zeros_like(sq[:1])])
    return sq.reshape(n_freqs(p), 2, *c.shape[1:]).sum(1)


def frequency_spectrum(x: torch.Tensor, dim: int = 0) -> tuple[torch.Tensor, float]:
    """The squared Fourier norm of ``x`` per frequency along ``dim``, summed over its other dim, and its const part.

    Args:
        x: ``[n, d]`` (``dim=0``, e.g. one embedding row per group element) or ``[d, n]`` (``dim=1``, e.g. ``W_L``
            over the answers).

    Returns:
        ``([n//2] energy per frequency k = 1..n//2, the constant row's energy)``.

    Examples:
        >>> energy, const = frequency_spectrum(torch.cos(2 * math.pi * 3 * torch.arange(11.0) / 11)[:, None])
        >>> int(energy.argmax()) + 1, round(const, 12)
        (3, 0.0)
    """
    coeffs = fourier_transform(x, dim=dim)
    return frequency_energy(coeffs, dim=dim).sum(-1), float((coeffs.select(dim, 0) ** 2).sum())


def frequency_shares(blocks: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """``[m, n//2]`` the fraction of each neuron's centered variance in each frequency's 3x3 block, from ``blocks``
    ``[m, n//2, 3, 3]`` and ``variance`` ``[m]`` (see :func:`neuron_spectrum`); 0 for a neuron with zero variance."""
    energy = (blocks**2).sum((2, 3))
    return torch.where(variance[:, None] > 0, energy / variance.clamp_min(1e-300)[:, None], torch.zeros_like(energy))


def neuron_spectrum(
    blocks: torch.Tensor, mean: torch.Tensor, variance: torch.Tensor, p: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-neuron frequency shares and trig fits from the neurons' 3x3 frequency blocks.

    Args:
        blocks: ``[m, n//2, 3, 3]`` centered blocks (``GridCache.layers[l].blocks``).
        mean, variance: ``[m]`` each neuron's mean and centered sum of squares over the grid.
        p: the size ``n`` of the grid's group (the modulus for add/sub).

    Returns:
        ``(shares [m, n//2], trig_coefs [m, 9])``: the fraction of each neuron's centered
        variance in each frequency's 3x3 block, and the trig-term coefficients at its best
        frequency. A neuron with zero variance (dead on the grid) has all shares 0.
    """
    shares = frequency_shares(blocks, variance)
    best = shares.argmax(1) + 1
    return shares, trig_fit_from_block(blocks[torch.arange(len(best)), best - 1], best, mean, p)


def padded_basis(p: int) -> torch.Tensor:
    """``[p + 1, p]``: :func:`fourier_basis` plus a zero row ``p``, the missing sin row of ``k = p/2``.

    Cached and shared: treat it as read-only.
    """
    return _padded_basis(p)


@functools.lru_cache(maxsize=16)
def _padded_basis(p: int) -> torch.Tensor:
    return torch.cat([fourier_basis(p), torch.zeros(1, p, dtype=DTYPE)])


def checked_freqs(p: int, freqs) -> torch.Tensor:
    """``[m]`` int64 the frequencies ``freqs``, each checked to be in ``1..p//2`` (a ValueError names them)."""
    k = torch.as_tensor(list(freqs), dtype=torch.long)
    if len(k) and (int(k.min()) < 1 or int(k.max()) > n_freqs(p)):
        raise ValueError(f"frequencies must be in 1..{n_freqs(p)} for p={p}, got {k.tolist()}")
    return k


def freq_row_pairs(p: int, freqs) -> torch.Tensor:
    """``[m, 2]`` int64: the rows ``(cos k, sin k)`` of each frequency in :func:`padded_basis`.

    At ``k = p/2`` (even p) the sin row is ``p``, the zero row. The batched form of :func:`freq_rows`.
    """
    k = checked_freqs(p, freqs)
    return torch.stack([2 * k - 1, torch.where(2 * k == p, p, 2 * k)], 1)


def block_basis(p: int, freqs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``[m, len(x), 3]``: the basis functions ``(const, cos k, sin k)`` of each frequency at ``x``.

    Args:
        freqs: ``[m]`` frequencies ``k``; at ``k = p/2`` the sin column is 0 (as in the basis).
        x: ``[nx]`` integer positions.
    """
    pairs = freq_row_pairs(p, torch.as_tensor(freqs).tolist())
    rows = torch.cat([torch.zeros_like(pairs[:, :1]), pairs], 1)  # [m, 3]
    return padded_basis(p)[rows][:, :, x].transpose(1, 2)


class BlockSpectrum:
    """Every frequency's 3x3 block of 2D coefficients of ``n`` grid functions, accumulated row chunk by row chunk.

    The block of ``k`` needs only four DFT terms, ``X[0,k], X[k,0], X[k,k], X[k,-k]``
    (``X[k,l] = sum_ab f(a,b) e^{-2 pi i (ka + lb)/p}``), and each is the 1D DFT of a sum of
    ``f`` along one direction of the grid: over ``a`` (a function of ``b``), over ``b``, along
    ``a + b = s`` and along ``a - b = d (mod p)``. So the accumulator keeps those four
    ``[p, n]`` marginals (``O(p n)`` memory, ``O(p^2 n)`` work for the grid). With the rows
    ``(const, cos k, sin k)`` of the basis and product-to-sum identities:
    ``C[const, cos] = sqrt(2) Re X[0,k] / p``, ``C[cos, cos] = (Re X[k,k] + Re X[k,-k]) / p``,
    ``C[sin, sin] = (Re X[k,-k] - Re X[k,k]) / p``, ``C[cos, sin] = (Im X[k,-k] - Im X[k,k]) / p``,
    ``C[sin, cos] = -(Im X[k,k] + Im X[k,-k]) / p`` (and the Nyquist row of even ``p`` has no sin).
    Tested against the dense transform ``B f B^T``.

    Examples:
        >>> grid = torch.randn(7, 7, 2, dtype=torch.float64)
        >>> spectrum = BlockSpectrum(7, 2)
        >>> spectrum.add(grid[:4], torch.arange(4)); spectrum.add(grid[4:], torch.arange(4, 7))
        >>> spectrum.blocks().shape                 # [n, p//2, 3, 3]
        torch.Size([2, 3, 3, 3])
    """

    ROW_BLOCK = 1024  # grid inputs per block of :meth:`add` (2 MB of float32 activations at d_mlp = 512)

    def __init__(self, p: int, n: int) -> None:
        self.p, self.n = p, n
        self._marginals = torch.zeros(4, p, n, dtype=DTYPE)  # over a (by b), over b (by a), by a+b, by a-b
        self._sum_sq = torch.zeros(n, dtype=DTYPE)  # of the values minus _shift (well conditioned)
        self._shifted_sum = torch.zeros(n, dtype=DTYPE)
        self._shift: torch.Tensor | None = None
        self._rows = 0

    def add(self, values: torch.Tensor, rows: torch.Tensor) -> None:
        """Add grid rows: ``values`` ``[len(rows), p, n]`` at row indices ``rows``.

        Works through blocks of whole rows, at most :data:`ROW_BLOCK` values per function each (a block stays in
        the core's cache between the passes over it), summing in the values' dtype (float32 for activations): the
        four marginals of one call into one scratch (each entry then sums at most ``len(rows)`` values; one chunk
        of the grid adds a few dozen rows), added to the float64 totals once per call; the sums of one block's
        squares, once per block. The sum of squares is taken about the first block's mean, so the variance does
        not cancel catastrophically when a function's mean dwarfs its spread.
        """
        p, b = self.p, torch.arange(self.p)
        step = max(1, self.ROW_BLOCK // p)
        if self._shift is None:
            self._shift = values[:step].reshape(-1, self.n).mean(0)
        part = torch.zeros(4, p, self.n, dtype=values.dtype)  # this call's marginals (see _marginals)
        for start in range(0, len(rows), step):
            block, at = values[start : start + step], rows[start : start + step]
            flat = block.reshape(-1, self.n)
            part[0] += block.sum(0)
            part[1].index_add_(0, at, block.sum(1))
            part[2].index_add_(0, ((at[:, None] + b) % p).flatten(), flat)
            part[3].index_add_(0, ((at[:, None] - b) % p).flatten(), flat)
            centered = flat - self._shift
            self._shifted_sum += centered.sum(0)
            self._sum_sq += centered.square_().sum(0)
        self._marginals += part
        self._rows += len(rows)

    def _check_complete(self) -> None:
        if self._rows != self.p:
            raise ValueError(f"{self._rows} rows were added; a complete grid has {self.p}.")

    @property
    def mean(self) -> torch.Tensor:
        """``[n]`` each function's mean over the grid."""
        self._check_complete()
        return self._marginals[0].sum(0) / self.p**2

    @property
    def variance(self) -> torch.Tensor:
        """``[n]`` each function's centered sum of squares over the grid (clamped at 0)."""
        self._check_complete()
        return (self._sum_sq - self._shifted_sum**2 / self.p**2).clamp_min(0.0)

    def blocks(self, freqs=None) -> torch.Tensor:
        """``[n, K, 3, 3]`` float64 blocks of the *centered* functions (entry ``(0, 0)`` is 0) at ``freqs`` (default:
        every frequency ``1..p//2``, ``K = p//2``; a few frequencies take the DFT at those alone)."""
        self._check_complete()
        p, every = self.p, n_freqs(self.p)
        rows = _dft_rows(p)
        if freqs is not None:
            index = checked_freqs(p, freqs) - 1
            rows, entries = rows.reshape(2, every, p)[:, index].reshape(-1, p), _block_entries(p)[index]
        else:
            entries = _block_entries(p)
        k = len(entries)
        dft = (rows @ self._marginals).reshape(4, 2, k, self.n)  # [marginal, (Re, Im), K, n]
        blocks = entries @ dft.permute(2, 0, 1, 3).reshape(k, 8, self.n)  # [K, 9, n]
        return blocks.permute(2, 0, 1).reshape(self.n, k, 3, 3)


@functools.lru_cache(maxsize=4)
def _block_entries(p: int) -> torch.Tensor:
    """``[K, 9, 8]`` float64: each frequency's nine block entries (row-major) as combinations of the real and
    imaginary parts of the four marginals' DFTs at that frequency (``[X0k, Xk0, Xkk, Xk-k] x [Re, Im]``), by the
    identities in :class:`BlockSpectrum`'s docstring; the Nyquist row of even ``p`` has no sin entries."""
    k = n_freqs(p)
    out = torch.zeros(k, 3, 3, 4, 2, dtype=DTYPE)
    edge = torch.full((k,), math.sqrt(2) / p, dtype=DTYPE)
    has_sin = 2 * torch.arange(1, k + 1) != p
    edge[~has_sin] = 1.0 / p
    re, im, x0k, xk0, xkk, xkm = 0, 1, 0, 1, 2, 3
    out[:, 0, 1, x0k, re] = edge
    out[:, 1, 0, xk0, re] = edge
    out[:, 1, 1, xkk, re] = 1.0 / p
    out[:, 1, 1, xkm, re] = has_sin.to(DTYPE) / p
    sin = out[has_sin]
    sin[:, 0, 2, x0k, im] = -edge[has_sin]
    sin[:, 2, 0, xk0, im] = -edge[has_sin]
    sin[:, 1, 2, xkm, im], sin[:, 1, 2, xkk, im] = 1.0 / p, -1.0 / p
    sin[:, 2, 1, xkk, im], sin[:, 2, 1, xkm, im] = -1.0 / p, -1.0 / p
    sin[:, 2, 2, xkm, re], sin[:, 2, 2, xkk, re] = 1.0 / p, -1.0 / p
    out[has_sin] = sin
    return out.reshape(k, 9, 8)


@functools.lru_cache(maxsize=4)
def _dft_rows(p: int) -> torch.Tensor:
    """``[2K, p]`` float64 (``K = p // 2``): rows ``cos(2 pi k x / p)`` then ``-sin(2 pi k x / p)``, ``k = 1..K``;
    times a signal ``[p, ...]``, the real and imaginary parts of its DFT at ``k = 1..K``. A product, not an FFT: for the
    four marginals of 512 functions it takes a quarter of the time of ``torch.fft.rfft`` along the strided dimension
    at p = 113 (0.7 ms against 2.6 ms, measured), and at p = 1009 51 ms against 29 ms, once per grid pass."""
    k = torch.arange(1, n_freqs(p) + 1)
    angle = (2 * math.pi / p) * (k[:, None] * torch.arange(p) % p).to(DTYPE)  # k x reduced mod p: exact angles
    return torch.cat([torch.cos(angle), -torch.sin(angle)])


def frequency_blocks(grid: torch.Tensor) -> torch.Tensor:
    """``[n, p//2, 3, 3]``: every frequency's 3x3 block of the 2D coefficients of centered grid functions.

    Args:
        grid: ``[p, p, n]`` grid functions (centered or not: the blocks are of the centered ones).

    Returns:
        For frequency ``k``, the coefficients on rows and columns ``(const, cos k, sin k)``; the
        sin entries are 0 at ``k = p/2``. The squares of a block sum to that frequency's share of
        the function's centered sum of squares. See :class:`BlockSpectrum` (one chunk).
    """
    spectrum = BlockSpectrum(grid.shape[0], grid.shape[2])
    spectrum.add(grid, torch.arange(grid.shape[0]))
    return spectrum.blocks()


def block_values(blocks: torch.Tensor, freqs: torch.Tensor, rows: torch.Tensor, p: int) -> torch.Tensor:
    """``[len(rows), p, n]``: grid functions given by one 3x3 block each, evaluated on grid rows.

    Args:
        blocks: ``[n, 3, 3]`` coefficients on ``(const, cos k, sin k)^2`` (from :func:`frequency_blocks`).
        freqs: ``[n]`` the frequency ``k`` of each block.
        rows: ``[na]`` the rows ``a`` to evaluate.
    """
    unique, index = torch.as_tensor(freqs).unique(return_inverse=True)
    at_a = block_basis(p, unique, rows)[index]  # [n, na, 3]
    at_b = block_basis(p, unique, torch.arange(p))[index]  # [n, p, 3]
    along_b = torch.einsum("nrc,nbc->nrb", blocks.to(DTYPE), at_b)  # [n, 3, p]
    return torch.einsum("nar,nrb->abn", at_a, along_b)


def project_block(coeffs_2d: torch.Tensor, k: int) -> torch.Tensor:
    """Keep only frequency ``k``'s 3x3 block (rows/cols ``{const, cos k, sin k}``) of 2D coefficients."""
    p = coeffs_2d.shape[0]
    keep = torch.zeros(p, dtype=torch.bool)
    keep[[0, *freq_rows(p, k)]] = True
    mask = keep[:, None] & keep[None, :]
    return coeffs_2d * mask.reshape(p, p, *([1] * (coeffs_2d.ndim - 2)))


# --------------------------------------------------- trig directions on the grid
def sum_directions(p: int, freqs: list[int] | torch.Tensor) -> torch.Tensor:
    """Unit vectors ``cos(w_k (a+b))`` and ``sin(w_k (a+b))`` over the grid.

    Returns ``[p*p, 2 * len(freqs)]`` float64 with columns ``cos k1, sin k1, cos k2, ...``,
    each of unit norm (the sin column of ``k = p/2`` is all zeros). Columns of distinct
    frequencies are orthogonal.
    """
    freqs = torch.as_tensor(list(freqs) if not isinstance(freqs, torch.Tensor) else freqs, dtype=DTYPE)
    a = torch.arange(p, dtype=DTYPE).repeat_interleave(p)
    b = torch.arange(p, dtype=DTYPE).repeat(p)
    angle = 2 * math.pi * torch.outer(a + b, freqs) / p
    cols = torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1).flatten(1)
    norms = cols.norm(dim=0)
    return torch.where(norms > 1e-9, cols / norms.clamp_min(1e-300), torch.zeros_like(cols))


def trig_terms(p: int, k: int) -> torch.Tensor:
    """``[p*p, 9]`` float64 grid values of the degree-2 trig terms of frequency ``k``.

    Columns: ``1, cos wa, sin wa, cos wb, sin wb, cos w(a+b), sin w(a+b), cos w(a-b), sin w(a-b)``.
    """
    a = torch.arange(p, dtype=DTYPE).repeat_interleave(p)
    b = torch.arange(p, dtype=DTYPE).repeat(p)
    w = 2 * math.pi * k / p
    return torch.stack([
        torch.ones_like(a), torch.cos(w * a), torch.sin(w * a), torch.cos(w * b), torch.sin(w * b),
        torch.cos(w * (a + b)), torch.sin(w * (a + b)), torch.cos(w * (a - b)), torch.sin(w * (a - b)),
    ], dim=1)


TRIG_TERM_NAMES = (
    "1", "cos wa", "sin wa", "cos wb", "sin wb", "cos w(a+b)", "sin w(a+b)", "cos w(a-b)", "sin w(a-b)",
)


def trig_fit_from_block(block: torch.Tensor, freqs: torch.Tensor, mean: torch.Tensor, p: int) -> torch.Tensor:
    """Degree-2 trig coefficients of grid functions from their 3x3 Fourier blocks.

    Args:
        block: ``[n, 3, 3]`` from :func:`frequency_blocks` of the *centered* functions, at ``freqs``.
        freqs: ``[n]`` the frequency ``k`` of each block.
        mean: ``[n]`` the functions' means (the constant term).

    Returns:
        ``[n, 9]`` coefficients of :data:`TRIG_TERM_NAMES`, such that
        ``f(a, b) ~ sum_j coef[j] * trig_terms(p, k)[:, j]``. This is the least-squares fit:
        the terms span exactly the 3x3 block, which is orthogonal to the rest of the basis.
        At ``k = p/2`` (even p) the ``a+b`` and ``a-b`` terms coincide and are reported as ``a+b``.
    """
    nyquist = 2 * freqs == p
    n0 = 1 / math.sqrt(p)
    nk = torch.where(nyquist, torch.tensor(n0, dtype=DTYPE), torch.tensor(math.sqrt(2 / p), dtype=DTYPE))
    edge, inner = n0 * nk, nk * nk
    c_c0, c_s0, c_0c, c_0s = block[:, 1, 0], block[:, 2, 0], block[:, 0, 1], block[:, 0, 2]
    c_cc, c_ss, c_cs, c_sc = block[:, 1, 1], block[:, 2, 2], block[:, 1, 2], block[:, 2, 1]
    # product-to-sum: cos a cos b = (cos(a+b) + cos(a-b))/2, sin a sin b = (cos(a-b) - cos(a+b))/2,
    # cos a sin b = (sin(a+b) - sin(a-b))/2, sin a cos b = (sin(a+b) + sin(a-b))/2
    cos_sum = inner * torch.where(nyquist, c_cc, (c_cc - c_ss) / 2)
    cos_diff = inner * torch.where(nyquist, torch.zeros_like(c_cc), (c_cc + c_ss) / 2)
    return torch.stack([mean.to(DTYPE), edge * c_c0, edge * c_s0, edge * c_0c, edge * c_0s,
                        cos_sum, inner * (c_cs + c_sc) / 2, cos_diff, inner * (c_sc - c_cs) / 2], dim=1)


# ------------------------------------------------------------ summaries
def gini(x: torch.Tensor) -> float:
    """Gini coefficient of the non-negative values in ``x`` (0 = uniform, -> 1 = concentrated).

    Examples:
        >>> gini(torch.tensor([1.0, 1.0, 1.0]))
        0.0
    """
    v = x.detach().flatten().to(DTYPE).abs().sort().values
    n = v.numel()
    if n == 0 or float(v.sum()) == 0.0:
        return 0.0
    index = torch.arange(1, n + 1, dtype=DTYPE)
    return float(((2 * index - n - 1) * v).sum() / (n * v.sum()))


def effective_rank(matrix: torch.Tensor) -> float:
    """Roy & Vetterli's effective rank: ``exp`` of the entropy of the normalised singular values."""
    s = torch.linalg.svdvals(matrix.to(DTYPE))
    if float(s.sum()) == 0.0:
        return 0.0
    q = s / s.sum()
    q = q[q > 0]
    return float(torch.exp(-(q * q.log()).sum()))


def circularity(embeddings: torch.Tensor, n_components: int = 4) -> float:
    """Zhong et al.'s circularity of the numbers' embeddings ``[n, d]`` (rows by group coordinate).

    The embeddings are centered and their top ``n_components`` principal components taken; each component
    ``v`` (``[n]``, scaled to ``sum v^2 = 1/n``) scores ``max_k 2 |sum_t v_t e^{2 pi i k t / n}|^2`` clamped to
    ``[0, 1]``: 1 when it is a single Fourier mode (a circle's coordinate), lower when spread. The mean of the
    scores is returned. The authors search the frequency as a multiplier ``t -> t i mod n``; for prime ``n``
    every non-zero frequency is such a multiple, so the maximum is the same.
    """
    x = embeddings.to(DTYPE)
    x = x - x.mean(0, keepdim=True)
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    comps = (u * s)[:, :n_components]  # [n, c] principal-component scores
    n = x.shape[0]
    scores = []
    for v in comps.T:
        norm = float(v.norm())
        if norm == 0.0:
            scores.append(0.0)
            continue
        v = v / norm / math.sqrt(n)
        spectrum = torch.fft.fft(v.to(torch.complex128))[1:]
        scores.append(min(max(float(2 * (spectrum.abs() ** 2).max()), 0.0), 1.0))
    return sum(scores) / len(scores) if scores else 0.0
