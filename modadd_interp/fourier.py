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

import math

import torch

DTYPE = torch.float64


# ----------------------------------------------------------------- the basis
def n_freqs(p: int) -> int:
    """Number of non-constant frequencies, ``p // 2``."""
    return p // 2


def fourier_basis(p: int, dtype: torch.dtype = DTYPE) -> torch.Tensor:
    """``[p, p]`` orthonormal basis; row ``r`` is a function of ``x = 0..p-1``."""
    x = torch.arange(p, dtype=dtype)
    rows = [torch.ones(p, dtype=dtype)]
    for k in range(1, n_freqs(p) + 1):
        angle = 2 * math.pi * k * x / p
        rows.append(torch.cos(angle))
        if 2 * k != p:
            rows.append(torch.sin(angle))
    basis = torch.stack(rows)
    return basis / basis.norm(dim=1, keepdim=True)


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


def block_energy(grid: torch.Tensor) -> torch.Tensor:
    """Energy of each frequency's 3x3 block ``{const, cos k, sin k}^2`` minus ``(const, const)``.

    Computed with a 2D FFT of the grid functions themselves (Parseval): for real ``x`` with
    DFT ``X``, the block of ``k`` holds ``2(|X[k,k]|^2 + |X[k,-k]|^2 + |X[0,k]|^2 + |X[k,0]|^2) / p^2``
    (halved at ``k = p/2``). It equals the dense-basis sum of squared 2D coefficients whose rows
    and columns lie in ``{0, 2k-1, 2k}`` (tested against :func:`project_block`).

    Args:
        grid: ``[p, p, ...]`` grid functions (not coefficients).

    Returns:
        ``[p//2, ...]`` float64. Blocks of different ``k`` are disjoint, so with the ``(0, 0)``
        term they add up to at most the total energy.
    """
    p = grid.shape[0]
    spectrum = torch.fft.fft2(grid.to(DTYPE), dim=(0, 1))
    power = (spectrum.real**2 + spectrum.imag**2) / (p * p)
    k = torch.arange(1, n_freqs(p) + 1)
    nyquist = (2 * k == p).reshape(-1, *([1] * (grid.ndim - 2)))
    # at k = p/2, -k is k: the four exponentials collapse to one
    inner = power[k, k] + torch.where(nyquist, torch.zeros_like(power[k, k]), power[k, (-k) % p])
    weight = torch.where(nyquist, torch.tensor(1.0, dtype=DTYPE), torch.tensor(2.0, dtype=DTYPE))
    return weight * (inner + power[0, k] + power[k, 0])


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


def frequency_blocks(grid: torch.Tensor) -> torch.Tensor:
    """Every frequency's 3x3 block of 2D coefficients of each grid function.

    The dense 2D transform ``B x B^T`` of each function (two batched matmuls, ``O(n p^3)``),
    then each frequency's rows and columns gathered.

    Args:
        grid: ``[p, p, n]`` grid functions.

    Returns:
        ``[n, p//2, 3, 3]`` float64: for frequency ``k``, the coefficients on rows and columns
        ``(const, cos k, sin k)``; the sin entries are 0 at ``k = p/2``. Summing the squares of
        a block minus its ``(const, const)`` entry gives that frequency's 3x3 block energy.
    """
    p = grid.shape[0]
    basis = torch.cat([fourier_basis(p), torch.zeros(1, p, dtype=DTYPE)])  # row p: the missing Nyquist sin
    k = torch.arange(1, n_freqs(p) + 1)
    rows = torch.stack([torch.zeros_like(k), 2 * k - 1, torch.where(2 * k == p, p, 2 * k)], dim=1)  # [K, 3]
    coeffs = basis @ (grid.to(DTYPE).permute(2, 0, 1).contiguous() @ basis.T)  # [n, r, s], row p is 0
    return coeffs[:, rows[:, :, None], rows[:, None, :]]


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
