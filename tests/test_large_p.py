"""Figures at large p: heatmaps reduced to at most MAX_HEATMAP_SIDE² cells (grid maps strided, spectra
max-pooled), saying so in their titles; small p untouched."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import small_config

import modadd_interp as mi
from modadd_interp import tl_adapter
from modadd_interp.config import paper_init
from modadd_interp.probes import grid_cache
from modadd_interp.probes.attention import AttentionProbe
from modadd_interp.probes.neurons import NeuronProbe
from modadd_interp.viz import figures as F

N = 1009


def heatmap_shapes(fig) -> list[tuple[int, ...]]:
    return [tuple(trace.z.shape) for trace in fig.data if trace.type == "heatmap"]


def test_striding_keeps_a_clock_map_where_block_averaging_flattens_it():
    """Why maps over the grid are strided: cos(w_k(x + y)) at a high key frequency stays a full-amplitude function
    of i + j when strided; averaging 4x4 blocks multiplies it by ~0 (the docstring's formula)."""
    k, x = 256, torch.arange(N, dtype=torch.float64)
    clock = torch.cos(2 * math.pi * k * (x[:, None] + x[None, :]) / N)
    strided, s = F.stride_grid(clock)
    assert s == 4 and strided.shape == (253, 253)
    assert torch.equal(strided, clock[::4, ::4])  # exact values at the cells shown
    assert torch.allclose(strided[1:, :-1], strided[:-1, 1:])  # still a function of i + j: constant anti-diagonals
    assert float(strided.std()) > 0.7  # full amplitude (a cosine's std is 1/sqrt(2))
    blocks = clock[:1008, :1008].reshape(252, 4, 252, 4).mean((1, 3))
    factor = abs(math.sin(math.pi * k * 4 / N) / (4 * math.sin(math.pi * k / N)))
    assert factor < 0.02 and float(blocks.std()) < 0.02


def test_max_pooling_keeps_every_peak_of_a_spectrum():
    spectrum = torch.rand(N, N, generator=torch.Generator().manual_seed(0)) * 0.01
    peaks = [(0, 57), (511, 511), (1008, 3)]
    for i, j in peaks:
        spectrum[i, j] = 25.0
    rows, cols = F.pool_factors(tuple(spectrum.shape))
    pooled = F.max_pool(spectrum, rows, cols)
    assert (rows, cols) == (4, 4) and pooled.shape == (253, 253)
    for i, j in peaks:
        assert pooled[i // 4, j // 4] == 25.0
    assert int((pooled == 25.0).sum()) == len(peaks)
    assert F.pool_factors((113, 512)) == (1, 1)  # 57,856 cells: drawn whole


def test_pooled_labels_cover_every_row():
    names = [f"r{i}" for i in range(10)]
    labels = F.pooled_labels(names, 4)
    assert labels == ["r0 – r3", "r4 – r7", "r8 – r9"]


def test_figures_at_p_1009_draw_at_most_256_by_256_cells_and_say_so():
    gen = torch.Generator().manual_seed(1)
    to_a = torch.rand(4, N, N, generator=gen, dtype=torch.float64)
    attention = AttentionProbe(N, to_a, 1 - to_a, torch.rand(4, N // 2, generator=gen))
    fig = F.attention_figure(attention)
    assert heatmap_shapes(fig) == [(253, 253)] * 4
    assert "[display: every 4th row and column of 1009]" in fig.layout.title.text
    assert fig.data[0].x[1] == 4 and float(fig.data[0].z[1, 1]) == float(to_a[0, 4, 4].float())  # true coordinates
    neurons = NeuronProbe(N, torch.rand(512, N // 2, generator=gen), torch.zeros(512, 9), torch.ones(512))
    fig = F.neuron_heatmap_figure(neurons)
    assert heatmap_shapes(fig) == [(252, 256)]
    assert "[display: max over blocks of 2×2 cells]" in fig.layout.title.text
    for fig in (F.attention_figure(attention), F.neuron_heatmap_figure(neurons)):
        assert all(r * c <= F.MAX_HEATMAP_SIDE**2 for r, c in heatmap_shapes(fig))
        assert all(trace.z.dtype.name == "float32" for trace in fig.data if trace.type == "heatmap")


def test_figures_at_small_p_are_drawn_whole():
    gen = torch.Generator().manual_seed(2)
    to_a = torch.rand(4, 113, 113, generator=gen, dtype=torch.float64)
    fig = F.attention_figure(AttentionProbe(113, to_a, 1 - to_a, torch.rand(4, 56, generator=gen)))
    assert heatmap_shapes(fig) == [(113, 113)] * 4 and "[display:" not in fig.layout.title.text
    fig = F.neuron_heatmap_figure(NeuronProbe(113, torch.rand(512, 56, generator=gen), torch.zeros(512, 9),
                                              torch.ones(512)))
    assert heatmap_shapes(fig) == [(56, 512)] and "[display:" not in fig.layout.title.text


def test_render_report_refuses_analysis_of_another_task(tmp_path):
    cfg = small_config(13)
    model, task = tl_adapter.build_model(cfg, paper_init(cfg, seed=0)), mi.ModularTask(13)
    cache = grid_cache(model, task)
    with pytest.raises(mi.ModAddError, match="the grid cache is of p = 13, the task of p = 17"):
        mi.render_report(model, mi.ModularTask(17), tmp_path, cache=cache)
    circuit = mi.verify_circuit(model, task, cache=cache)
    with pytest.raises(mi.ModAddError, match="circuit= needs the cache="):
        mi.render_report(model, task, tmp_path, circuit=circuit)
    assert not (tmp_path / "index.html").exists()
    # analyze takes the same analysis objects, with the same checks
    with pytest.raises(mi.ModAddError, match="circuit= needs the cache="):
        mi.analyze(model, task, circuit=circuit)
    with pytest.raises(mi.ModAddError, match="the grid cache is of p = 13, the task of p = 17"):
        mi.analyze(model, mi.ModularTask(17), cache=cache)
    given = json.dumps(mi.analyze(model, task, cache=cache, circuit=circuit), sort_keys=True)
    assert given == json.dumps(mi.analyze(model, task), sort_keys=True)
