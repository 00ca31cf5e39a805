"""Pure math on the final logits over the grid: the cos(w(a+b-c)) readout.

``logits`` here are ``[p*p, p]`` float64 (final position, '=' output dropped) in grid
order. The restricted and excluded logits are the paper's: keep (or remove) the
components of each output's logit along ``cos/sin(w_k (a+b))`` over the grid.

Examples:
    >>> L = torch.randn(7 * 7, 7, dtype=torch.float64)
    >>> torch.allclose(restricted_logits(L, [1, 2, 3]) + excluded_logits(L, [1, 2, 3]) - L.mean(0), L)
    True
"""

from __future__ import annotations

import math

import torch

from .fourier import DTYPE, n_freqs, sum_directions

MAX_CHUNK_ELEMENTS = 2**25  # bounds the memory of batched per-frequency losses


def _p_of(logits: torch.Tensor) -> int:
    p = logits.shape[-1]
    if logits.shape[0] != p * p:
        raise ValueError(f"expected [p*p, p] logits, got {tuple(logits.shape)}")
    return p


def restricted_logits(logits: torch.Tensor, freqs: list[int]) -> torch.Tensor:
    """Keep each output's mean over the grid plus its ``cos/sin(w_k(a+b))`` components, ``k in freqs``."""
    p = _p_of(logits)
    u = sum_directions(p, freqs)
    return logits.mean(0, keepdim=True) + u @ (u.T @ logits)


def excluded_logits(logits: torch.Tensor, freqs: list[int]) -> torch.Tensor:
    """Remove the ``cos/sin(w_k(a+b))`` components of each output's logits, ``k in freqs``."""
    p = _p_of(logits)
    u = sum_directions(p, freqs)
    return logits - u @ (u.T @ logits)


def sum_direction_energy(logits: torch.Tensor) -> torch.Tensor:
    """``[p//2]``: energy of the (output-centered) logits along ``cos/sin(w_k(a+b))``, per ``k``.

    Logits are centered over the outputs first (softmax ignores a per-input shift).
    """
    p = _p_of(logits)
    centered = logits - logits.mean(-1, keepdim=True)
    u = sum_directions(p, range(1, n_freqs(p) + 1))
    proj = u.T @ centered  # [2K, p]
    return (proj**2).sum(-1).reshape(n_freqs(p), 2).sum(-1)


def per_frequency_excluded_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[p//2]`` float64 cross-entropy on ``mask`` after excluding each single frequency."""
    p = _p_of(logits)
    u_all = sum_directions(p, range(1, n_freqs(p) + 1))  # [p*p, 2K]
    coef = u_all.T @ logits  # [2K, p]
    u = u_all[mask]
    base, y = logits[mask], labels[mask]
    k_all = n_freqs(p)
    chunk = max(1, MAX_CHUNK_ELEMENTS // max(1, base.numel()))
    out = []
    for start in range(0, k_all, chunk):
        ks = torch.arange(start, min(k_all, start + chunk))
        cols = torch.stack([2 * ks, 2 * ks + 1], 1)  # [c, 2]
        removed = torch.einsum("nkj,kjc->knc", u[:, cols], coef[cols])  # [c, n, p]
        logprobs = (base[None] - removed).log_softmax(-1)
        out.append(-logprobs.gather(2, y[None, :, None].expand(len(ks), -1, 1)).mean((1, 2)))
    return torch.cat(out)


def cos_readout_fit(logits: torch.Tensor, freqs: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares ``alpha_k`` in ``logits - mean_c ~ sum_k alpha_k cos(w_k (a+b-c))``.

    Returns:
        ``(alpha [len(freqs)], fitted [p*p, p])``. The columns ``cos(w_k(a+b-c))`` of
        distinct frequencies are orthogonal, so each ``alpha_k`` is a projection.
    """
    p = _p_of(logits)
    centered = logits - logits.mean(-1, keepdim=True)
    if len(freqs) == 0:
        return torch.zeros(0, dtype=DTYPE), torch.zeros_like(centered)
    freqs_t = torch.as_tensor(list(freqs), dtype=DTYPE)
    s = (torch.arange(p, dtype=DTYPE).repeat_interleave(p) + torch.arange(p, dtype=DTYPE).repeat(p))
    c = torch.arange(p, dtype=DTYPE)
    w = 2 * math.pi * freqs_t / p
    # cos(w(s - c)) = cos(ws) cos(wc) + sin(ws) sin(wc)
    cos_s, sin_s = torch.cos(torch.outer(s, w)), torch.sin(torch.outer(s, w))  # [N, K]
    cos_c, sin_c = torch.cos(torch.outer(c, w)), torch.sin(torch.outer(c, w))  # [p, K]
    inner = (cos_s * (centered @ cos_c)).sum(0) + (sin_s * (centered @ sin_c)).sum(0)
    norm_sq = (cos_s**2).sum(0) * (cos_c**2).sum(0) + (sin_s**2).sum(0) * (sin_c**2).sum(0)
    alpha = inner / norm_sq
    fitted = (cos_s * alpha) @ cos_c.T + (sin_s * alpha) @ sin_c.T
    return alpha, fitted


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Mean float64 cross-entropy of ``[n, p]`` logits (on ``mask`` when given)."""
    if mask is not None:
        logits, labels = logits[mask], labels[mask]
    logprobs = logits.to(DTYPE).log_softmax(-1)
    return float(-logprobs.gather(1, labels[:, None]).mean())


def accuracy(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Fraction of argmax answers that are correct (on ``mask`` when given)."""
    if mask is not None:
        logits, labels = logits[mask], labels[mask]
    return float((logits.argmax(-1) == labels).to(DTYPE).mean())
