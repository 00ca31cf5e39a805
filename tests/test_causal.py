"""Interventions against an independent forward pass; no leaks; claims that can pass and fail."""

from __future__ import annotations

import pytest
import torch
from conftest import PAPER_FILES, assert_unchanged, model_snapshot, random_weights, small_config
from reference import canonical_forward

import modadd_interp as mi
from modadd_interp import tl_adapter
from modadd_interp.causal import (
    ablate_heads,
    ablate_mlp,
    ablate_neurons,
    ablate_skip,
    activation_means,
    measure,
    project,
    remove_embedding_frequencies,
    replace_activations,
    verify_circuit,
)
from modadd_interp.config import ModelConfig, paper_init
from modadd_interp.fourier import fourier_basis, freq_rows
from modadd_interp.grid import grid_logits

pytestmark = pytest.mark.adapter

P = 13


@pytest.fixture()
def small(backend):
    cfg = small_config(P)
    w = random_weights(cfg, seed=4)
    return tl_adapter.build_model(cfg, w, backend=backend), w, mi.ModularTask(P)


def _set(index, value):
    def edit(act, *_):
        act = act.clone()
        act[index] = value
        return act
    return edit


def _check(model, w, task, context, edits):
    with context:
        got = grid_logits(model, task)
    expected = canonical_forward(w, task.inputs, edits)[:, -1]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(got, canonical_forward(w, task.inputs)[:, -1], atol=1e-3), "no effect"


def test_ablate_heads_matches_reference(small):
    model, w, task = small
    _check(model, w, task, ablate_heads(model, [1]), {"z": _set((slice(None), slice(None), 1), 0.0)})


def test_mean_ablate_neurons_matches_reference(small):
    model, w, task = small
    mean = activation_means(model, task, ["blocks.0.mlp.hook_post"])["blocks.0.mlp.hook_post"]
    reference_acts = torch.relu(_resid_mid(w, task.inputs) @ w["blocks.0.mlp.W_in"] + w["blocks.0.mlp.b_in"])
    torch.testing.assert_close(mean.float(), reference_acts.mean(0), rtol=1e-4, atol=1e-5)
    neurons = [0, 5, 9]

    def edit(act, *_):
        act = act.clone()
        act[:, :, neurons] = reference_acts.mean(0)[:, neurons]
        return act

    _check(model, w, task, ablate_neurons(model, neurons, mode="mean", mean=mean), {"post": edit})


def test_ablate_mlp_and_skips_match_reference(small):
    model, w, task = small
    _check(model, w, task, ablate_mlp(model), {"mlp_out": lambda a, *_: torch.zeros_like(a)})
    _check(model, w, task, ablate_skip(model, "attn"), {"attn_out": lambda a, resid: a - resid})
    _check(model, w, task, ablate_skip(model, "mlp"), {"mlp_out": lambda a, resid: a - resid})


def test_projection_matches_reference(small):
    model, w, task = small
    directions = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    q, _ = torch.linalg.qr(directions)
    onto = q @ q.T

    def kept(act, *_):
        act = act.clone()
        act[:, -1] = act[:, -1] @ onto
        return act

    def removed(act, *_):
        act = act.clone()
        act[:, -1] = act[:, -1] - act[:, -1] @ onto
        return act

    _check(model, w, task, project(model, "blocks.0.mlp.hook_post", directions), {"post": kept})
    _check(model, w, task, project(model, "blocks.0.mlp.hook_post", directions, complement=True), {"post": removed})


def test_remove_embedding_frequency_matches_reference(small):
    model, w, task = small
    basis = fourier_basis(P).float()
    rows = freq_rows(P, 2) + freq_rows(P, 5)
    edited = w["embed.W_E"].clone()
    edited[:P] -= basis[rows].T @ (basis[rows] @ edited[:P])
    _check(model, w, task, remove_embedding_frequencies(model, [2, 5], task),
           {"embed": lambda *_: edited[task.inputs]})


def test_replace_activations_consumes_rows_in_order(small):
    model, w, task = small
    values = torch.randn(task.n_inputs, 32, generator=torch.Generator().manual_seed(1))

    def edit(act, *_):
        act = act.clone()
        act[:, -1] = values
        return act

    _check(model, w, task, replace_activations(model, "blocks.0.mlp.hook_post", values), {"post": edit})


def test_resample_is_seeded_and_leaves_global_rng(small):
    model, _, task = small
    state = torch.get_rng_state()
    with ablate_heads(model, [0, 1], mode="resample", seed=3):
        first = grid_logits(model, task)
    with ablate_heads(model, [0, 1], mode="resample", seed=3):
        second = grid_logits(model, task)
    assert torch.equal(first, second)
    assert torch.equal(torch.get_rng_state(), state)


def test_mean_mode_without_mean_is_refused(small):
    model, _, _ = small
    with pytest.raises(mi.ModAddError, match="mean ablation needs"), ablate_heads(model, [0], mode="mean"):
        pass


def _resid_mid(w, tokens):
    captured = {}

    def grab(a, resid):
        captured["mid"] = resid + a
        return a

    canonical_forward(w, tokens, {"attn_out": grab})
    return captured["mid"]


INTERVENTIONS = {
    "heads": lambda m: ablate_heads(m, [0]),
    "neurons": lambda m: ablate_neurons(m, [1, 2], mode="resample"),
    "mlp": lambda m: ablate_mlp(m),
    "skip_attn": lambda m: ablate_skip(m, "attn"),
    "skip_mlp": lambda m: ablate_skip(m, "mlp", mode="resample"),
    "project": lambda m: project(m, "blocks.0.mlp.hook_post", torch.ones(32, 3).cumsum(0), complement=True),
    "embed_freq": lambda m: remove_embedding_frequencies(m, [1], mi.ModularTask(p=P)),
    "replace": lambda m: replace_activations(m, "blocks.0.mlp.hook_post", torch.zeros(P * P, 32)),
}


@pytest.mark.parametrize("name", list(INTERVENTIONS))
@pytest.mark.parametrize("raise_inside", [False, True])
def test_intervention_leaves_nothing_behind(small, name, raise_inside):
    model, _, task = small
    model.train()
    grid_logits(model, task)  # the bridge wires its internal hooks on the first pass
    before = model_snapshot(model)
    if raise_inside:
        with pytest.raises(RuntimeError, match="inside"), INTERVENTIONS[name](model):
            grid_logits(model, task)
            raise RuntimeError("raised inside the intervention")
    else:
        with INTERVENTIONS[name](model):
            grid_logits(model, task)
    assert_unchanged(model, before)


@pytest.mark.slow
def test_grokked_checkpoint_confirms_the_circuit():
    model, task = mi.load(PAPER_FILES["wd"])
    model.train()
    with torch.no_grad():
        model(task.inputs[:2])
    before = model_snapshot(model)
    report = verify_circuit(model, task)
    assert_unchanged(model, before)
    assert report.passed, report.failed
    losses = report.losses
    assert losses.restricted.test_loss <= losses.full.test_loss  # the paper's qualitative results
    assert losses.excluded_all.train_loss > 1000 * losses.full.train_loss
    nullspace = report.table.rows["neurons onto W_L key nullspace"].test_loss
    assert nullspace > report.table.uniform_loss


@pytest.mark.slow
def test_random_init_fails_the_claims_by_name():
    cfg = ModelConfig.paper(113)
    model = tl_adapter.build_model(cfg, paper_init(cfg, seed=11))
    report = verify_circuit(model, mi.ModularTask(113))
    assert not report.passed and report.algorithm == "none"
    assert report.verdict.line.startswith("not confirmed: no frequency stands out in the logits")
    assert "the embedding is sparse in the Fourier basis" in report.failed
    assert "minimality: each key frequency is necessary" in report.failed
    assert {c.name for c in report.claims if c.decides} <= set(report.failed)
    named = ("the key frequencies suffice (restricted loss)", "the neurons cluster by the key frequencies")
    assert all(c.detail == "no key frequencies were found" for c in report.claims if c.name in named)


def test_cache_readout_equals_hook_interventions(small):
    """Neuron interventions evaluated from the grid's chunks match the same interventions run through hooks."""
    from modadd_interp.probes import grid_cache

    model, _, task = small
    cache = grid_cache(model, task)
    neurons = [1, 4, 7]
    mean = activation_means(model, task, ["blocks.0.mlp.hook_post"])["blocks.0.mlp.hook_post"]
    # two float32 forward paths (the model's hooks, the cache's weight pass): activations <= 1.2 differ by about
    # sqrt(d_model = 16) * 2^-24 = 2.4e-7 of themselves, and so do their means (measured 2.6e-8); was the default 1e-7
    torch.testing.assert_close(mean[-1].double(), cache.neuron_mean, rtol=0, atol=5e-7)

    def ablated(piece):
        acts = piece.neurons.clone()
        acts[:, neurons] = cache.neuron_mean[neurons].float()
        return cache.logits_with_neurons(piece, acts)

    with ablate_neurons(model, neurons, mode="mean", mean=mean):
        hooked = task.final_logits(grid_logits(model, task))
    torch.testing.assert_close(torch.cat([ablated(c) for c in cache.chunks()]).double(), hooked, rtol=1e-5, atol=1e-4)
    directions = torch.ones(32, 2).cumsum(0)
    q, _ = torch.linalg.qr(directions.double())
    with project(model, "blocks.0.mlp.hook_post", directions, complement=True):
        hooked = task.final_logits(grid_logits(model, task))
    projected = [cache.logits_with_neurons(c, c.neurons.double() @ (torch.eye(32) - q @ q.T)) for c in cache.chunks()]
    torch.testing.assert_close(torch.cat(projected).double(), hooked, rtol=1e-5, atol=1e-4)


@pytest.mark.adapter
def test_ablation_table_rows_equal_the_hooked_interventions(backend):
    """Head and skip rows are replayed from resid_mid at '='; running the ablations through hooks agrees."""
    from modadd_interp.causal import ablation_table

    model, task = mi.load(PAPER_FILES["low_precision"], backend=backend)
    table = ablation_table(model, task)
    hooked = {}
    for h in range(4):
        with ablate_heads(model, [h]):
            hooked[f"head {h} zero-ablated"] = measure(model, task)
    with ablate_heads(model, [0, 1, 2, 3]):
        hooked["all heads zero-ablated"] = measure(model, task)
    with ablate_skip(model, "attn"):
        hooked["attention skip zero-ablated"] = measure(model, task)
    for name, expected in hooked.items():
        assert table.rows[name].to_dict() == pytest.approx(expected.to_dict(), rel=1e-5, abs=1e-7), name


@pytest.mark.adapter
@pytest.mark.parametrize("keep", ["replay", "rerun"])
def test_replayed_and_streamed_caches_equal_the_kept_cache(backend, keep):
    """A cache that replays the last layer from resid_mid, or re-runs the grid per sweep, gives the same statistics,
    verdicts and numbers as one that keeps everything, and leaves no hook behind."""
    from modadd_interp.probes.cache import grid_cache

    model, task = mi.load(PAPER_FILES["wd"], backend=backend)
    kept = verify_circuit(model, task, cache=grid_cache(model, task, keep="full"))
    hooks = tl_adapter.hook_count(model)
    other_cache = grid_cache(model, task, chunk=1000, keep=keep)  # 8 rows per chunk: 15 chunks
    assert (other_cache._kept is None) == (keep == "rerun")
    other = verify_circuit(model, task, cache=other_cache)
    assert tl_adapter.hook_count(model) == hooks
    assert other.key_freqs == kept.key_freqs and other.failed == kept.failed
    assert other.verdict.line == kept.verdict.line
    for a, b in zip(kept.claims, other.claims, strict=True):
        assert b.after == pytest.approx(a.after, rel=1e-5, abs=1e-9), a.name
    assert _flat(other.losses.to_dict()) == pytest.approx(_flat(kept.losses.to_dict()), rel=1e-5, abs=1e-9)
    assert _flat(other.table.to_dict()) == pytest.approx(_flat(kept.table.to_dict()), rel=1e-5, abs=1e-9)


def test_the_keep_mode_follows_the_memory_budget():
    from modadd_interp.config import ModelConfig
    from modadd_interp.probes.cache import keep_budget, keep_mode

    cfg = ModelConfig.paper(1009)
    inputs = 1009 * 1009
    assert keep_mode(inputs, cfg, 1009, budget=8 * 2**30) == "full"  # 7.2 GB
    assert keep_mode(inputs, cfg, 1009, budget=2 * 2**30) == "replay"  # 1.0 GB of resid_mid and z
    assert keep_mode(inputs, cfg, 1009, budget=2**29) == "rerun"
    assert 0 < keep_budget() <= 2 * 2**30


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        elif isinstance(value, float | int):
            out[f"{prefix}{key}"] = value
    return out


def test_the_embedding_row_lookup_is_exact_and_falls_back_to_the_nearest_row():
    from modadd_interp.causal.interventions import _RowLookup

    g = torch.Generator().manual_seed(3)
    table = torch.randn(1010, 128, generator=g)
    tokens = torch.randint(0, 1010, (5000,), generator=g)
    lookup = _RowLookup(table)
    assert torch.equal(lookup(table[tokens]), tokens)
    near = table[tokens[:7]] + 1e-3 * torch.randn(7, 128, generator=g)  # not rows of the table: the nearest one
    assert torch.equal(lookup(near), tokens[:7])
