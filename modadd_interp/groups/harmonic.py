"""Harmonic analysis of functions on a group: isotypic projectors, energies and the real Fourier basis.

A function on G is a tensor ``f`` with size ``n = |G|`` along a dim (element order of the group).

**Projector.** For a real irrep ρ with complex constituents (χ, or χ and χ̄ for ν = 0), let
``ψ = Σ constituents`` (``ψ = χ`` for ν = ±1, ``ψ = χ + χ̄`` for ν = 0; real-valued) and ``d = ρ.dim``::

    (P_ρ f)(x) = (d / |G|) Σ_g ψ(g) f(x ∘ g)          i.e.   P_ρ[x, y] = (d / |G|) ψ(x⁻¹ ∘ y)

This is the central idempotent of the group algebra acting by translation; ``P_ρ`` is symmetric, idempotent,
``P_ρ P_σ = 0`` for ρ ≠ σ and ``Σ_ρ P_ρ = I`` (tested). Its range, the isotypic component, is invariant under both
left and right translations and has dimension ``ρ.isotypic_dim``.

**Basis.** Rows grouped by irrep (in ``group.irreps`` order). For a cyclic group (and ``multiplicative``,
in discrete-log order) it is exactly :func:`modadd_interp.fourier.fourier_basis`, and :func:`transform` uses
:func:`modadd_interp.fourier.fourier_transform`. Otherwise the rows of ρ are the matrix coefficients
``g ↦ R(g)[i, j]`` of its orthogonal representation (:mod:`.representations`), taken column by column
(``j`` outer, ``i`` inner) and orthonormalised by Gram–Schmidt, dropping those already spanned: for ν = 1 these
are exactly ``sqrt(r/|G|) R(g)[i, j]``; for ν = 0 and ν = −1 the ``r²`` coefficients span the
``isotypic_dim < r²`` dimensional component and Gram–Schmidt keeps a deterministic subset.

Examples:
    >>> import torch
    >>> from modadd_interp.groups import symmetric
    >>> g = symmetric(3)
    >>> f = torch.randn(6, 2, dtype=torch.float64)
    >>> torch.allclose(g.energy(f).sum(0), (f ** 2).sum(0))
    True
    >>> [r.name for r in g.irreps]
    ['(3)', '(1,1,1)', '(2,1)']
    >>> torch.allclose(g.energy(torch.ones(6)), torch.tensor([6.0, 0.0, 0.0], dtype=torch.float64), atol=1e-12)
    True
"""

from __future__ import annotations

import math

import torch

from .. import fourier
from ..errors import GroupError

__all__ = ["basis", "energy", "inverse_transform", "irrep_of_row", "project", "projector", "transform"]

DTYPE = torch.float64


def _check(group, f: torch.Tensor, dim: int) -> torch.Tensor:
    f = torch.as_tensor(f)
    if f.ndim == 0 or f.shape[dim] != group.order:
        raise GroupError(
            f"expected a function on {group.name}: size {group.order} along dim {dim}, got shape {tuple(f.shape)}"
        )
    return f.to(DTYPE)


def _inverse_times(group) -> torch.Tensor:
    """``[n, n]`` int64 ``x⁻¹ ∘ y`` (cached on the group)."""
    cached = group.__dict__.get("_inverse_times")
    if cached is None:
        cached = group.table[group.inverse]
        group.__dict__["_inverse_times"] = cached
    return cached


def _psi(group, irrep) -> torch.Tensor:
    chars = group.character_table
    psi = sum(chars[i] for i in irrep.complex_rows).real
    return psi[group.class_of]


def projector(group, irrep) -> torch.Tensor:
    """``[n, n]`` float64 ``P_ρ[x, y] = (d/|G|) ψ(x⁻¹ y)`` (module docstring)."""
    return (irrep.dim / group.order) * _psi(group, irrep)[_inverse_times(group)]


def project(group, f: torch.Tensor, irreps, dim: int = 0) -> torch.Tensor:
    """``Σ_ρ P_ρ f`` along ``dim`` over the given irreps; same shape as ``f``, float64."""
    f = _check(group, f, dim)
    moved = f.movedim(dim, 0)
    flat = moved.reshape(group.order, -1)
    out = torch.zeros_like(flat)
    for r in irreps:
        out += projector(group, r) @ flat
    return out.reshape(moved.shape).movedim(0, dim)


def energy(group, f: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """``[n_irreps, *rest]`` float64: ``|P_ρ f|²`` along ``dim`` for each irrep; sums to ``|f|²``.

    Cyclic groups sum squared Fourier coefficients (FFT path); others use the projectors
    (``f·P_ρ f``, no representation matrices needed).
    """
    f = _check(group, f, dim)
    moved = f.movedim(dim, 0)
    rest = moved.shape[1:]
    flat = moved.reshape(group.order, -1)
    if group.family.cyclic_log is not None:
        sq = transform(group, flat, 0) ** 2
        out = torch.zeros(len(group.irreps), sq.shape[1], dtype=DTYPE)
        out.index_add_(0, irrep_of_row(group), sq)
    else:
        out = torch.stack([(flat * (projector(group, r) @ flat)).sum(0) for r in group.irreps])
    return out.reshape(len(group.irreps), *rest)


def irrep_of_row(group) -> torch.Tensor:
    """``[n]`` int64: the irrep index of each basis row."""
    return torch.tensor([r.index for r in group.irreps for _ in range(r.isotypic_dim)], dtype=torch.int64)


def _gram_schmidt(candidates: torch.Tensor, want: int) -> torch.Tensor:
    """Orthonormalise rows in order, dropping rows (numerically) in the span of those kept; ``want`` rows."""
    kept: list[torch.Tensor] = []
    scale = float(candidates.norm(dim=1).max())
    for row in candidates:
        v = row.clone()
        for _ in range(2):  # twice is enough (Kahan-Parlett)
            if kept:
                q = torch.stack(kept)
                v = v - q.T @ (q @ v)
        norm = float(v.norm())
        if norm > 1e-6 * scale:
            kept.append(v / norm)
            if len(kept) == want:
                break
    if len(kept) != want:
        raise GroupError(f"numerical failure: the matrix coefficients span {len(kept)} dimensions, expected {want}")
    return torch.stack(kept)


def _cyclic_exp(group) -> torch.Tensor:
    log = group.family.cyclic_log
    exp = torch.empty_like(log)
    exp[log] = torch.arange(group.order)
    return exp  # exp[k] = the element with exponent k


def basis(group) -> torch.Tensor:
    """``[n, n]`` float64 orthonormal basis, rows grouped by irrep (module docstring). Cached per group."""
    cached = group.__dict__.get("_basis")
    if cached is not None:
        return cached
    if group.family.cyclic_log is not None:
        out = fourier.fourier_basis(group.order)[:, group.family.cyclic_log]
    else:
        blocks = []
        for r in group.irreps:
            rep = group.representation(r)  # [n, r, r]
            cand = rep.permute(2, 1, 0).reshape(r.real_dim**2, group.order) * math.sqrt(r.real_dim / group.order)
            blocks.append(_gram_schmidt(cand, r.isotypic_dim))
        out = torch.cat(blocks)
    group.__dict__["_basis"] = out
    return out


def transform(group, f: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Coefficients of ``f`` in :func:`basis` along ``dim``; same shape as ``f``, float64.

    For cyclic groups this is :func:`modadd_interp.fourier.fourier_transform` of ``f`` read in exponent order
    (the same numbers as the rest of the package); otherwise a matmul with the basis.
    """
    f = _check(group, f, dim)
    if group.family.cyclic_log is not None:
        return fourier.fourier_transform(f.index_select(dim, _cyclic_exp(group)), dim)
    moved = f.movedim(dim, -1)
    return (moved @ basis(group).T).movedim(-1, dim)


def inverse_transform(group, coeffs: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Inverse of :func:`transform`."""
    c = _check(group, coeffs, dim)
    moved = c.movedim(dim, -1)
    return (moved @ basis(group)).movedim(-1, dim)
