"""The pure Fourier math: basis, transforms, blocks, trig fits, Gini."""

from __future__ import annotations

import math

import pytest
import torch

from modadd_interp import fourier as F
from modadd_interp.readout import cos_readout_fit, excluded_logits, restricted_logits


@pytest.mark.parametrize("p", [2, 3, 7, 8, 12, 113])
def test_basis_is_orthonormal_in_paper_order(p):
    basis = F.fourier_basis(p)
    assert basis.shape == (p, p)
    torch.testing.assert_close(basis @ basis.T, torch.eye(p, dtype=torch.float64), atol=1e-12, rtol=0)
    names = F.basis_names(p)
    assert names[0] == "const" and len(names) == p
    x = torch.arange(p, dtype=torch.float64)
    if p >= 3:
        assert names[1] == "cos 1"
        expected = torch.cos(2 * math.pi * x / p)
        torch.testing.assert_close(basis[1], expected / expected.norm())
    if p >= 5:
        assert names[2] == "sin 1"
    if p % 2 == 0:
        assert names[-1] == f"cos {p // 2}"
        torch.testing.assert_close(basis[-1].abs(), torch.full((p,), 1 / math.sqrt(p), dtype=torch.float64))


@pytest.mark.parametrize("p", [7, 8, 31, 64, 113, 257])
def test_fft_path_equals_dense_path(p):
    x = torch.randn(3, p, 5, dtype=torch.float64)
    dense = F.fourier_transform(x, dim=1, method="dense")
    fft = F.fourier_transform(x, dim=1, method="fft")
    torch.testing.assert_close(fft, dense, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(F.inverse_fourier_transform(dense, dim=1), x)


@pytest.mark.parametrize("p", [11, 12])
def test_fft_block_energy_matches_dense_projection(p):
    g = torch.randn(p, p, 3, dtype=torch.float64)
    coeffs = F.fourier_transform_2d(g - g.mean((0, 1)))
    energy = F.block_energy(g - g.mean((0, 1)))
    blocks = F.frequency_blocks(g - g.mean((0, 1)))  # [n, K, 3, 3], dense
    torch.testing.assert_close(((blocks**2).sum((2, 3)) - blocks[..., 0, 0] ** 2).T, energy)
    for k in range(1, p // 2 + 1):
        block = F.project_block(coeffs, k)
        block[0, 0] = 0
        torch.testing.assert_close(energy[k - 1], (block**2).sum((0, 1)))
    assert float(energy.sum(0).max()) <= float((coeffs**2).sum((0, 1)).max()) + 1e-9


@pytest.mark.parametrize("p", [13, 31])
def test_trig_fit_recovers_planted_coefficients(p):
    gen = torch.Generator().manual_seed(0)
    freqs = torch.tensor([1, 4, p // 2, 3])
    true = torch.randn(len(freqs), 9, generator=gen, dtype=torch.float64)
    acts = torch.stack([F.trig_terms(p, int(k)) @ true[i] for i, k in enumerate(freqs)], 1)
    mean = acts.mean(0)
    blocks = F.frequency_blocks((acts - mean).reshape(p, p, -1))
    fit = F.trig_fit_from_block(blocks[torch.arange(len(freqs)), freqs - 1], freqs, mean, p)
    torch.testing.assert_close(fit, true, atol=1e-10, rtol=1e-10)


def test_trig_fit_at_even_p_nyquist_reconstructs():
    p = 12
    acts = F.trig_terms(p, 6) @ torch.tensor([0.5, 1.0, 0, 2.0, 0, 3.0, 0, 0, 0], dtype=torch.float64)
    block = F.frequency_blocks((acts - acts.mean()).reshape(p, p, 1))[:, 5]
    fit = F.trig_fit_from_block(block, torch.tensor([6]), acts.mean()[None], p)
    torch.testing.assert_close(F.trig_terms(p, 6) @ fit[0], acts, atol=1e-10, rtol=0)


def test_sum_directions_are_orthonormal():
    p = 17
    u = F.sum_directions(p, [1, 5, 8])
    torch.testing.assert_close(u.T @ u, torch.eye(6, dtype=torch.float64), atol=1e-10, rtol=0)


def test_gini():
    assert F.gini(torch.ones(10)) == pytest.approx(0.0)
    assert F.gini(torch.tensor([0.0] * 9 + [1.0])) == pytest.approx(0.9)
    assert F.gini(torch.zeros(4)) == 0.0


def test_restricted_and_excluded_logits_split_the_logits():
    p = 13
    logits = torch.randn(p * p, p, dtype=torch.float64)
    both = restricted_logits(logits, [2, 5]) + excluded_logits(logits, [2, 5]) - logits.mean(0)
    torch.testing.assert_close(both, logits)


def test_cos_readout_fit_recovers_alphas():
    p = 19
    s = (torch.arange(p).repeat_interleave(p) + torch.arange(p).repeat(p)).double()
    c = torch.arange(p, dtype=torch.float64)
    angle = 2 * math.pi * (s[:, None] - c) / p
    logits = 3.0 * torch.cos(2 * angle) + 0.5 * torch.cos(7 * angle)
    alpha, fitted = cos_readout_fit(logits + 4.0, [2, 7, 9])
    torch.testing.assert_close(alpha, torch.tensor([3.0, 0.5, 0.0], dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(fitted, logits, atol=1e-10, rtol=0)
