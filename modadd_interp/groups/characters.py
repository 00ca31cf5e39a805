"""The character table of a finite group from its Cayley table alone (Burnside–Dixon, in floating point).

Method (Burnside's algorithm, with Dixon's idea of diagonalising one generic combination):

* Class multiplication coefficients ``c[i, j, k] = #{x ∈ C_i : x⁻¹ z_k ∈ C_j}`` for a fixed ``z_k ∈ C_k``
  (``K_i K_j = Σ_k c[i, j, k] K_k`` for the class sums ``K``).
* For every irreducible character χ the central character ``ω_k = |C_k| χ(z_k) / χ(e)`` satisfies
  ``Σ_k c[i, j, k] ω_k = ω_i ω_j``: ω is a common eigenvector of the class matrices ``(M_i)[j, k] = c[i, j, k]``.
* One generic real combination ``M = Σ_i a_i M_i`` (``a_i ~ N(0, 1) / |C_i|``, fixed seeds) has distinct
  eigenvalues ``Σ_i a_i ω_i``, so its eigenvectors are exactly the ω's. ``M`` is built directly as
  ``M[j, k] = Σ_x a(class(x)) [class(x⁻¹ z_k) = j]`` in ``O(n · n_classes)``.
* Conjugating by ``D = diag(sqrt|C_k|)`` makes ``D⁻¹ M D`` a *normal* matrix (its eigenvectors
  ``sqrt|C_k| χ(z_k)`` are orthogonal), so the eigenvectors are as well conditioned as the eigenvalue gaps
  allow (eigenvector error ~ eps · spread / gap); seeds are tried until the smallest gap is at least
  ``0.2 / n_classes`` of the spread (about what random points achieve), else the best of 8 seeds is kept.
  Before the random ones, the class sum of a class of elements of the largest order is tried alone: for a
  cyclic group it separates all characters with evenly spaced eigenvalues (the n-th roots of unity).
* Each eigenvector is scaled to ``ω_e = 1``; the degree ``d = sqrt(|G| / Σ_k |ω_k|² / |C_k|)`` (from ⟨χ, χ⟩ = 1)
  is an integer, so it is rounded (checked within 1e-6) and ``χ(z_k) = d ω_k / |C_k|``. No other value is rounded.

Checks (a :class:`~modadd_interp.errors.GroupError` if one fails, which would be a numerical failure):
as many characters as classes, ``Σ d² = |G|``, ``d`` divides ``|G|``, and both orthogonality relations within
``1e-8`` (the achieved errors are ~1e-14; see the tests).

Examples:
    >>> import torch
    >>> t = torch.tensor([[(i + j) % 3 for j in range(3)] for i in range(3)])
    >>> chars = burnside_dixon(t, torch.tensor([0, 2, 1]), [torch.tensor([0]), torch.tensor([1]), torch.tensor([2])])
    >>> chars.shape, chars.dtype
    (torch.Size([3, 3]), torch.complex128)
"""

from __future__ import annotations

import math

import torch

from ..errors import GroupError

__all__ = ["burnside_dixon", "class_matrix", "frobenius_schur", "orthogonality_errors"]

SEEDS = range(8)
GAP = 0.2  # accept a seed once its smallest eigenvalue gap is GAP / n_classes of the spread


def class_matrix(table: torch.Tensor, inverse: torch.Tensor, classes: list[torch.Tensor], a: torch.Tensor):
    """``M = Σ_i a_i M_i`` ``[r, r]`` float64, ``(M_i)[j, k] = c[i, j, k]`` (module docstring)."""
    n, r = table.shape[0], len(classes)
    class_of = torch.empty(n, dtype=torch.int64)
    for i, c in enumerate(classes):
        class_of[c] = i
    weight = a[class_of]  # a(class(x)) for every x
    m = torch.empty(r, r, dtype=torch.float64)
    for k, c in enumerate(classes):
        z = int(c[0])
        m[:, k] = torch.bincount(class_of[table[inverse, z]], weights=weight, minlength=r)
    return m


def _coefficients(seed: int, sizes: torch.Tensor, hint: int | None) -> torch.Tensor:
    if seed < 0:  # the class sum of the hinted class alone
        return torch.nn.functional.one_hot(torch.tensor(hint), len(sizes)).to(torch.float64) / sizes
    return torch.randn(len(sizes), generator=torch.Generator().manual_seed(seed), dtype=torch.float64) / sizes


def _eigen(table, inverse, classes, sizes, seed, hint=None):
    a = _coefficients(seed, sizes, hint)
    m = class_matrix(table, inverse, classes, a)
    root = sizes.sqrt()
    normal = m * root[None, :] / root[:, None]  # D^-1 M D
    vals, vecs = torch.linalg.eig(normal)
    if len(vals) < 2:
        return vals, vecs, math.inf
    gaps = (vals[:, None] - vals[None, :]).abs()
    gaps.fill_diagonal_(math.inf)
    spread = float(vals.abs().max()) or 1.0
    return vals, vecs, float(gaps.min()) / spread


def burnside_dixon(
    table: torch.Tensor, inverse: torch.Tensor, classes: list[torch.Tensor], hint: int | None = None
) -> torch.Tensor:
    """Complex character table ``[n_irreps, n_classes]`` complex128, rows in no particular order.

    ``classes[0]`` must be the identity's class; column ``k`` is the value on ``classes[k]``. ``hint``: a class
    whose class sum alone is tried first (the group passes a class of elements of the largest order: for a
    cyclic group its eigenvalues are the n-th roots of unity, evenly spaced, the best conditioning possible).
    """
    n = table.shape[0]
    sizes = torch.tensor([len(c) for c in classes], dtype=torch.float64)
    best = None
    for seed in ([-1] if hint is not None else []) + list(SEEDS):
        vals, vecs, gap = _eigen(table, inverse, classes, sizes, seed, hint)
        if best is None or gap > best[2]:
            best = (vals, vecs, gap)
        if gap >= GAP / len(classes):
            break
    _, vecs, _ = best
    u = vecs.T  # row = eigenvector u_k = sqrt|C_k| χ_k / d (up to scale)
    root = sizes.sqrt().to(torch.complex128)
    omega = u * root[None, :] / u[:, :1]
    omega[:, 0] = 1  # ω_e = 1 exactly (u/u can be 1 ulp off), so χ(e) = d exactly
    d_float = (n / (omega.abs() ** 2 / sizes[None, :]).sum(1)).sqrt()
    d = d_float.round()
    if float((d_float - d).abs().max()) > 1e-6 or bool((d < 1).any()):
        raise GroupError(f"numerical failure in the character table: degrees {d_float.tolist()} are not integers")
    chars = d[:, None].to(torch.complex128) * omega / sizes[None, :].to(torch.complex128)
    degrees = [int(x) for x in d]
    if sum(x * x for x in degrees) != n or any(n % x for x in degrees):
        raise GroupError(f"numerical failure in the character table: degrees {degrees} for a group of order {n}")
    row_err, col_err = orthogonality_errors(chars, sizes)
    if max(row_err, col_err) > 1e-8:
        raise GroupError(
            f"numerical failure in the character table: orthogonality errors {row_err:.1e} (rows), "
            f"{col_err:.1e} (columns)"
        )
    return chars


def orthogonality_errors(chars: torch.Tensor, sizes: torch.Tensor) -> tuple[float, float]:
    """Max deviations of the row relation ``Σ_k |C_k| χ_k ψ̄_k / |G| = δ`` and the column relation
    ``Σ_χ χ(C_k) χ̄(C_l) = δ_kl |G| / |C_k|`` (the latter divided by ``|G| / |C_k|``)."""
    n = float(sizes.sum())
    w = sizes.to(torch.complex128) / n
    rows = (chars * w[None, :]) @ chars.conj().T
    eye = torch.eye(len(sizes), dtype=torch.complex128)
    cols = (chars.T @ chars.conj()) * (sizes[:, None].to(torch.complex128) / n)
    return float((rows - eye).abs().max()), float((cols - eye).abs().max())


def frobenius_schur(chars: torch.Tensor, sizes: torch.Tensor, square_class: torch.Tensor) -> torch.Tensor:
    """``[n_irreps]`` int64 indicators ``ν = (1/|G|) Σ_g χ(g²)`` ∈ {1, 0, -1}.

    ``square_class[k]`` is the class of ``z_k²``. The float sum is rounded after checking it lies within 1e-6
    of an integer (ν is an integer by theory).
    """
    n = float(sizes.sum())
    nu = (chars[:, square_class] * sizes.to(torch.complex128)[None, :]).sum(1) / n
    rounded = nu.real.round()
    if float((nu - rounded).abs().max()) > 1e-6 or bool((rounded.abs() > 1).any()):
        raise GroupError(f"numerical failure: Frobenius-Schur indicators {nu.tolist()} are not in {{1, 0, -1}}")
    return rounded.to(torch.int64)
