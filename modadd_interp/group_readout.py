"""Pure math of a group's readout: characters as functions of the answer, trace similarity, isotypic projections of
the residue means. No model, no hooks (the cyclic analogue is :mod:`modadd_interp.readout`).

Notation: a grid input ``(x, y)`` has ``s = x ∘ y``; ``R[s, z]`` is the mean answer logit ``z`` over the ``n`` inputs
of class ``s`` (:attr:`modadd_interp.probes.GridCache.residue_logits`). Chughtai et al.'s representation clock reads
``logits(x, y, z) ∝ Σ_ρ tr R_ρ(x) R_ρ(y) R_ρ(z)^-1 = Σ_ρ χ_ρ(x ∘ y ∘ z⁻¹) = Σ_ρ χ_ρ(s ∘ z⁻¹)``, a function of ``(s, z)``
only, so its fits and similarities need ``R`` alone. For ``Z/n`` it is ``Σ_k 2 cos(w_k(x + y - z))``: the clock.

Examples:
    >>> from modadd_interp.groups import symmetric
    >>> g = symmetric(3)
    >>> chis = characters(g)                                 # [3 irreps, 6 elements]
    >>> features = trace_features(g, chis)                   # [3, 6, 6]: chi(s z^-1)
    >>> bool(torch.allclose(features[:, 0, 0], chis[:, 0]))  # s = z: chi(e) = the dimension
    True
"""

from __future__ import annotations

import math

import torch

DTYPE = torch.float64


def characters(group) -> torch.Tensor:
    """``[n_irreps, n]`` float64 the real characters of ``group``'s real irreps on its elements (``group.irreps``
    order). For a cyclic group in closed form (``2 cos(2 pi k g / n)``, ``cos(pi g)`` at the Nyquist frequency), so
    that no character table is computed for a large ``Z/n``."""
    if group.family.cyclic_log is not None:
        n, log = group.order, group.family.cyclic_log.to(DTYPE)
        rows = [torch.ones(n, dtype=DTYPE)]
        for irrep in group.irreps[1:]:
            angle = 2 * math.pi * irrep.freq * log / n
            rows.append(torch.cos(angle) * (1.0 if irrep.real_dim == 1 else 2.0))
        return torch.stack(rows)
    return torch.stack([group.chi(irrep).to(DTYPE) for irrep in group.irreps])


def trace_features(group, chis: torch.Tensor) -> torch.Tensor:
    """``[K, n, n]`` float64 ``F[ρ, s, z] = χ_ρ(s ∘ z⁻¹)`` for the characters ``chis`` ``[K, n]``."""
    s_zinv = group.table[:, group.inverse]  # [s, z] -> s ∘ z^-1
    return chis[:, s_zinv]


def centered(residue_logits: torch.Tensor, n: int) -> torch.Tensor:
    """``[n, n]`` the residue means over the group's answers ``z < n``, centered over the answers (softmax ignores a
    per-input shift)."""
    r = residue_logits[:, :n].to(DTYPE)
    return r - r.mean(-1, keepdim=True)


def trace_similarity(residue_logits: torch.Tensor, group, chis: torch.Tensor, centered_sq: float) -> torch.Tensor:
    """``[K]`` the cosine over the grid between the answer-centered logits and ``χ_ρ(x ∘ y ∘ z⁻¹)``, per irrep.

    Chughtai et al.'s logit trace similarity. Over the grid, ``<L_c, F_ρ> = n Σ_{s,z} R_c[s, z] F_ρ[s, z]`` (each
    class ``s`` holds ``n`` inputs) and ``|F_ρ|² = n Σ_{s,z} F_ρ[s, z]²``; ``centered_sq`` is ``|L_c|²`` (the
    answer-centered logits' sum of squares over the grid and the group's answers). One irrep at a time: memory
    ``O(n²)``.
    """
    n = group.order
    r = centered(residue_logits, n)
    s_zinv = group.table[:, group.inverse]
    out = torch.zeros(len(chis), dtype=DTYPE)
    for k, chi in enumerate(chis):
        feature = chi[s_zinv]  # [n, n]
        norm = float(torch.sqrt(n * feature.square().sum() * max(centered_sq, 1e-300)))
        out[k] = n * float((r * feature).sum()) / norm if norm > 0 else 0.0
    return out


def isotypic_shares(values: torch.Tensor, group, dim: int = 0) -> torch.Tensor:
    """``[n_irreps]`` each irrep's share of the squared norm of ``values`` (a function on the group along ``dim``,
    summed over the other dims), the trivial irrep excluded from the total (its share is reported as 0)."""
    energy = group.energy(values.to(DTYPE), dim=dim)
    energy = energy.reshape(energy.shape[0], -1).sum(1)
    energy[0] = 0.0
    total = float(energy.sum())
    return energy / total if total > 0 else torch.zeros_like(energy)


def project_classes(values: torch.Tensor, group, irreps, const: bool = False) -> torch.Tensor:
    """``values`` ``[n, ...]`` (a function of the class ``s``) projected on the isotypic components of ``irreps``
    (names or indices), plus its mean over ``s`` when ``const``."""
    out = group.project(values.to(DTYPE), list(irreps), dim=0) if len(irreps) else torch.zeros_like(values, dtype=DTYPE)
    if const:
        out = out + values.to(DTYPE).mean(0, keepdim=True)
    return out


def trace_readout_fit(residue_logits: torch.Tensor, group, chis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least squares ``R_c[s, z] ≈ Σ_ρ β_ρ χ_ρ(s ∘ z⁻¹)`` over the characters ``chis`` ``[K, n]``.

    Returns:
        ``(beta [K], fitted [n, n])``: the coefficients and the fitted (answer-centered) residue logits. The
        features of distinct irreps are orthogonal (character orthogonality), so each is fitted on its own.
    """
    n = group.order
    r = centered(residue_logits, n)
    s_zinv = group.table[:, group.inverse]
    beta, fitted = torch.zeros(len(chis), dtype=DTYPE), torch.zeros(n, n, dtype=DTYPE)
    for k, chi in enumerate(chis):
        feature = chi[s_zinv]
        gram = float(feature.square().sum())
        beta[k] = float((r * feature).sum()) / gram if gram > 0 else 0.0
        fitted += beta[k] * feature
    return beta, fitted
