"""Real orthogonal matrices of each real irrep, by decomposing the regular representation numerically.

For a real irrep ρ (real dimension ``r``):

1. ``U`` ``[n, m]``: an orthonormal basis of its isotypic component (eigenvectors of the projector
   :func:`~modadd_interp.groups.harmonic.projector` with eigenvalue 1; ``m = ρ.isotypic_dim``).
2. ``A = Σ_h a_h (ρ_R(h) + ρ_R(h)ᵀ)``, a generic symmetric element of the RIGHT regular action
   ``(ρ_R(h) f)(x) = f(x ∘ h)`` (fixed seeds), commutes with the left action ``(L(g) f)(x) = f(g⁻¹ ∘ x)``.
   Restricted to the component (``Uᵀ A U``) it acts on the multiplicity space as a generic symmetric
   (ν = 1), Hermitian (ν = 0) or quaternionic-Hermitian (ν = −1) matrix, so its eigenspaces all have
   dimension exactly ``r`` and are left-invariant and irreducible. The lowest one is taken (a new seed is
   tried if its dimension is not ``r`` or it is not separated from the next by ``1e-6`` of the spectrum).
3. The basis of that subspace ``W`` is made canonical, independent of how LAPACK rotated the eigenvectors:
   Gram–Schmidt on the columns ``P_W e_x`` of ``W``'s projector for ``x = 0, 1, ...`` in element order,
   keeping the first ``r`` whose residual exceeds 1e-2 of their norm. This gives ``Q`` ``[n, r]``.
4. ``R(g) = Qᵀ L(g) Q``, i.e. ``R(g)[i, j] = Σ_x Q[x, i] Q[g⁻¹ ∘ x, j]``.

Checks: ``tr R(g)`` equals the real character and ``R(g ∘ s) = R(g) R(s)`` for the generators ``s``, to 1e-8
(else :class:`~modadd_interp.errors.GroupError`); the tests check every product to 1e-10.
Cyclic groups (and ``multiplicative``) use the closed-form rotations by ``2πk·exponent/n`` instead, whose
matrix coefficients are the Fourier basis rows.

Examples:
    >>> import torch
    >>> from modadd_interp.groups import symmetric
    >>> g = symmetric(4)
    >>> R = g.representation("standard")
    >>> R.shape
    torch.Size([24, 3, 3])
    >>> bool(torch.allclose(R[g.table[5, 7]], R[5] @ R[7], atol=1e-10))
    True
"""

from __future__ import annotations

import math

import torch

from ..errors import GroupError

__all__ = ["representation"]

DTYPE = torch.float64
SEEDS = range(1000, 1008)


def representation(group, irrep) -> torch.Tensor:
    """``[n, r, r]`` float64 orthogonal matrices (module docstring). Cached per group and irrep."""
    cache = group.__dict__.setdefault("_representations", {})
    if irrep.index not in cache:
        if group.family.cyclic_log is not None:
            rep = _cyclic(group, irrep)
        else:
            rep = _regular(group, irrep)
        _check(group, irrep, rep)
        cache[irrep.index] = rep
    return cache[irrep.index]


def _cyclic(group, irrep) -> torch.Tensor:
    n, k = group.order, irrep.freq
    theta = 2 * math.pi * k * group.family.cyclic_log.to(DTYPE) / n
    if irrep.real_dim == 1:
        return torch.cos(theta).round()[:, None, None]  # +-1 (k = 0 or n/2)
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def _right_symmetric(group, seed: int) -> torch.Tensor:
    n = group.order
    a = torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)
    m = torch.zeros(n, n, dtype=DTYPE)
    m[torch.arange(n)[:, None], group.table] = a[None, :]  # m[x, x∘h] = a_h: (m f)(x) = Σ_h a_h f(x∘h)
    return m + m.T


def _irreducible_subspace(group, irrep, u: torch.Tensor) -> torch.Tensor:
    r = irrep.real_dim
    if u.shape[1] == r:
        return u
    for seed in SEEDS:
        a = u.T @ _right_symmetric(group, seed) @ u
        vals, vecs = torch.linalg.eigh((a + a.T) / 2)
        spread = float(vals[-1] - vals[0]) or 1.0
        if float(vals[r - 1] - vals[0]) < 1e-9 * spread and float(vals[r] - vals[r - 1]) > 1e-6 * spread:
            return u @ vecs[:, :r]
    raise GroupError(f"numerical failure: no irreducible subspace of {irrep.name!r} found in {group.name}")


def _canonical(q: torch.Tensor, r: int) -> torch.Tensor:
    p = q @ q.T  # projector onto W: independent of the basis q
    kept: list[torch.Tensor] = []
    for x in range(p.shape[0]):
        v = p[:, x].clone()
        norm0 = float(v.norm())
        for _ in range(2):
            if kept:
                b = torch.stack(kept, 1)
                v = v - b @ (b.T @ v)
        if float(v.norm()) > 1e-2 * norm0:
            kept.append(v / v.norm())
            if len(kept) == r:
                return torch.stack(kept, 1)
    raise GroupError("numerical failure: could not build a canonical basis of an irreducible subspace")


def _regular(group, irrep) -> torch.Tensor:
    n, r = group.order, irrep.real_dim
    vals, vecs = torch.linalg.eigh(group.projector(irrep))
    u = vecs[:, vals > 0.5]
    if u.shape[1] != irrep.isotypic_dim:
        raise GroupError(f"numerical failure: isotypic component of {irrep.name!r} has rank {u.shape[1]}")
    q = _canonical(_irreducible_subspace(group, irrep, u), r)
    inv_times = group.table[group.inverse]  # [g, x] -> g^-1 ∘ x
    out = torch.empty(n, r, r, dtype=DTYPE)
    chunk = max(1, 2**22 // (n * r))
    for start in range(0, n, chunk):
        moved = q[inv_times[start : start + chunk]]  # [g, x, r]: Q[g^-1 x, j]
        out[start : start + chunk] = torch.einsum("xi,gxj->gij", q, moved)
    return out


def _check(group, irrep, rep: torch.Tensor) -> None:
    trace_err = float((rep.diagonal(dim1=1, dim2=2).sum(-1) - group.chi(irrep)).abs().max())
    gens = torch.tensor(group.generators, dtype=torch.int64)
    hom_err = 0.0
    if len(gens):
        lhs = rep[group.table[:, gens]]  # [g, s, r, r]: R(g∘s)
        rhs = rep[:, None] @ rep[gens][None]
        hom_err = float((lhs - rhs).abs().max())
    if max(trace_err, hom_err) > 1e-8:
        raise GroupError(
            f"numerical failure in the representation {irrep.name!r} of {group.name}: trace error {trace_err:.1e}, "
            f"homomorphism error {hom_err:.1e}"
        )
