"""The pure Fourier math: basis, transforms, blocks, trig fits, Gini."""

from __future__ import annotations

import math

import pytest
import torch

from modadd_interp import fourier as F
from modadd_interp import readout as R
from modadd_interp.task import ModularTask


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


def dense_blocks(grid: torch.Tensor) -> torch.Tensor:
    """The definition: the dense 2D transform B f B^T of the centered functions, each 3x3 block gathered."""
    p = grid.shape[0]
    coeffs = F.fourier_transform_2d(grid - grid.mean((0, 1)), method="dense")  # [p, p, n]
    blocks = torch.zeros(grid.shape[2], p // 2, 3, 3, dtype=torch.float64)
    for k in range(1, p // 2 + 1):
        rows = [0, *F.freq_rows(p, k)]
        blocks[:, k - 1, : len(rows), : len(rows)] = coeffs[rows][:, rows].permute(2, 0, 1)
    blocks[:, :, 0, 0] = 0
    return blocks


@pytest.mark.parametrize("p", [7, 8, 11, 12, 113])
def test_block_spectrum_in_row_chunks_equals_the_dense_transform(p):
    g = torch.randn(p, p, 3, generator=torch.Generator().manual_seed(p), dtype=torch.float64) + 2.0
    spectrum = F.BlockSpectrum(p, 3)
    cut = max(1, p // 3)
    spectrum.add(g[:cut], torch.arange(cut))
    spectrum.add(g[cut:], torch.arange(cut, p))
    blocks = spectrum.blocks()
    torch.testing.assert_close(blocks, dense_blocks(g), atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(spectrum.mean, g.mean((0, 1)))
    torch.testing.assert_close(spectrum.variance, ((g - g.mean((0, 1))) ** 2).sum((0, 1)))
    # blocks of different k are disjoint parts of the centered energy
    assert bool(((blocks**2).sum((1, 2, 3)) <= spectrum.variance * (1 + 1e-9)).all())
    with pytest.raises(ValueError, match="rows"):
        partial = F.BlockSpectrum(p, 3)
        partial.add(g[:cut], torch.arange(cut))
        partial.blocks()


@pytest.mark.parametrize("p", [11, 12])
def test_block_values_evaluate_one_block_per_function(p):
    g = torch.randn(p, p, 4, dtype=torch.float64)
    blocks = F.frequency_blocks(g)
    freqs = torch.tensor([1, 3, p // 2, 3])
    rows = torch.tensor([0, 4, p - 1])
    values = F.block_values(blocks[torch.arange(4), freqs - 1], freqs, rows, p)  # [3, p, 4]
    coeffs = F.fourier_transform_2d(g - g.mean((0, 1)), method="dense")
    basis = F.fourier_basis(p)
    for n, k in enumerate(freqs.tolist()):
        block = F.project_block(coeffs[:, :, n], k)
        block[0, 0] = 0
        torch.testing.assert_close(values[:, :, n], (basis.T @ block @ basis)[rows], atol=1e-10, rtol=0)


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


def grid_residues(p: int) -> torch.Tensor:
    return (torch.arange(p).repeat_interleave(p) + torch.arange(p).repeat(p)) % p


@pytest.mark.parametrize("p", [12, 13])
def test_residue_readout_equals_the_grid_definitions(p):
    """Restricted/excluded logits and the sum-direction energy from R match the paper's grid formulas."""
    logits = torch.randn(p * p, p, dtype=torch.float64)
    s = grid_residues(p)
    residues = R.residue_sums(logits, s, p) / p
    freqs = [2, p // 2]
    u = F.sum_directions(p, freqs)  # [p*p, 2K] unit grid directions
    restricted = logits.mean(0) + u @ (u.T @ logits)
    excluded = logits - u @ (u.T @ logits)
    torch.testing.assert_close(R.residue_projection(residues, freqs, const=True)[s], restricted)
    torch.testing.assert_close(logits - R.residue_projection(residues, freqs)[s], excluded)
    centered = logits - logits.mean(-1, keepdim=True)
    u_all = F.sum_directions(p, range(1, p // 2 + 1))
    energy = ((u_all.T @ centered) ** 2).sum(-1).reshape(-1, 2).sum(-1)
    torch.testing.assert_close(R.sum_direction_energy(residues), energy)
    with pytest.raises(ValueError, match="frequencies"):
        R.residue_projection(residues, [p // 2 + 1])


def test_residue_measurement_and_chunked_sums_equal_the_whole_grid():
    task = ModularTask(p=11, frac_train=0.4)
    residue_logits = torch.randn(11, 11, dtype=torch.float64)
    expanded = residue_logits[task.labels]
    whole = R.Measurement.of(expanded, task)
    assert R.residue_measurement(residue_logits, task.grid).to_dict() == pytest.approx(whole.to_dict(), rel=1e-12)
    logits = torch.randn(121, 11, dtype=torch.float64)
    total = R.MeasurementSum()
    for rows in (slice(0, 50), slice(50, 121)):
        total.add(logits[rows], task.labels[rows], task.train_mask[rows])
    expected = R.Measurement(
        train_loss=R.cross_entropy(logits, task.labels, task.train_mask),
        test_loss=R.cross_entropy(logits, task.labels, task.test_mask), loss=R.cross_entropy(logits, task.labels),
        accuracy=R.accuracy(logits, task.labels), train_accuracy=R.accuracy(logits, task.labels, task.train_mask),
        test_accuracy=R.accuracy(logits, task.labels, task.test_mask))
    assert total.result().to_dict() == pytest.approx(expected.to_dict(), rel=1e-12)


@pytest.mark.parametrize("sharpness", [0.5, 5.0, 30.0])
def test_excluded_loss_bounds_hold_and_are_tight_for_confident_logits(sharpness):
    """The bound is >= the exact excluded-loss rise for every frequency, and close when the model is sure."""
    p = 13
    task = ModularTask(p=p, frac_train=0.5)
    s = grid_residues(p)
    gen = torch.Generator().manual_seed(0)
    c = torch.arange(p, dtype=torch.float64)
    clean = sum(torch.cos(2 * math.pi * k * (s[:, None] - c) / p) for k in (2, 5))
    logits = sharpness * clean + 0.3 * torch.randn(p * p, p, generator=gen, dtype=torch.float64)
    residues = R.residue_sums(logits, s, p) / p
    train = task.train_mask
    base = R.cross_entropy(logits, task.labels, train)
    exact = torch.tensor([R.cross_entropy(logits - R.residue_projection(residues, [k])[s], task.labels, train) - base
                          for k in range(1, p // 2 + 1)])
    miss = torch.zeros(p, dtype=torch.float64).index_add_(
        0, task.labels[train], -torch.expm1(R.label_logprobs(logits[train], task.labels[train])))
    count = torch.bincount(task.labels[train], minlength=p)
    bound = R.excluded_loss_bounds(residues, range(1, p // 2 + 1), miss, count)
    assert bool((exact <= bound + 1e-12).all()), (exact, bound)
    if sharpness == 30.0:  # nearly certain: the unused frequencies' rises and bounds are both tiny
        unused = [k - 1 for k in range(1, p // 2 + 1) if k not in (2, 5)]
        assert float(bound[unused].max()) < 1e-6


def test_block_spectrum_blocks_of_some_frequencies_are_those_of_every_frequency():
    """``blocks(freqs)`` takes the DFT at those frequencies alone: the same blocks as ``blocks()`` at them (odd and
    even p, the Nyquist frequency included), and a frequency outside 1..p//2 is refused."""
    for p, freqs in ((11, [1, 4, 5]), (12, [6, 2])):
        grid = torch.randn(p, p, 3, dtype=torch.float64)
        spectrum = F.BlockSpectrum(p, 3)
        spectrum.add(grid, torch.arange(p))
        every = spectrum.blocks()
        assert torch.allclose(spectrum.blocks(freqs), every[:, [k - 1 for k in freqs]], rtol=0, atol=1e-12)
        with pytest.raises(ValueError, match="frequencies must be in"):
            spectrum.blocks([p // 2 + 1])
