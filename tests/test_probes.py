"""The probes on planted, random and real models; and that they leave the model untouched."""

from __future__ import annotations

import pytest
import torch
from conftest import PAPER_FILES, assert_unchanged, model_snapshot
from synthetic import planted_model

import modadd_interp as mi
from modadd_interp import tl_adapter
from modadd_interp.config import ModelConfig, paper_init
from modadd_interp.grid import grid_run
from modadd_interp.probes import (
    grid_cache,
    key_frequencies,
    probe_attention,
    probe_embedding,
    probe_logits,
    probe_neurons,
)

pytestmark = pytest.mark.adapter

PROBES = [key_frequencies, probe_embedding, probe_neurons, probe_attention, probe_logits]


@pytest.fixture(scope="module")
def planted():
    cfg, w = planted_model(31, [3, 7, 11], embed_only=5, stray=13)
    return cfg, w, mi.ModularTask(31)


def test_key_frequencies_finds_exactly_the_planted_ones(planted, backend):
    cfg, w, task = planted
    model = tl_adapter.build_model(cfg, w, backend=backend)
    kf = key_frequencies(model, task)
    assert kf.freqs == (3, 7, 11)
    assert kf.confidence == "high"
    frame = kf.to_frame().set_index("freq")
    # the distractors are visible in the evidence but not reported
    assert frame.loc[5, "embed_share"] > 0.1 and not frame.loc[5, "is_key"]
    assert frame.loc[13, "cluster_size"] == 3 and not frame.loc[13, "is_key"]


def test_probes_on_the_planted_model(planted):
    cfg, w, task = planted
    model = tl_adapter.build_model(cfg, w)
    cache = grid_cache(model, task)
    neurons = probe_neurons(model, task, cache=cache)
    assert neurons.cluster_sizes() == {"3": 8, "7": 8, "11": 8, "13": 3, "unclustered": 0}
    # neuron 0 is ReLU(cos 3a + cos 3b): its best frequency is 3 and the fit's a/b terms are symmetric
    coefs = neurons.trig_coefs[0]
    assert int(neurons.best_freq[0]) == 3
    assert coefs[1] == pytest.approx(float(coefs[3]), rel=1e-6)
    emb = probe_embedding(model, task, cache=cache)
    assert emb.key_freqs == (3, 7, 11)
    assert emb.fraction_in_key == pytest.approx(0.6, abs=1e-6)  # 3 of 5 equal-norm circles
    logits = probe_logits(model, task, cache=cache)
    assert logits.fve > 0.75 and logits.wl_fraction_in_key > 0.99  # ReLU features approximate the trig terms
    assert all(a > 0 for a in logits.alpha.tolist())


def test_no_structure_on_random_init(backend):
    cfg = ModelConfig.paper(113)
    model = tl_adapter.build_model(cfg, paper_init(cfg, seed=7), backend=backend)
    kf = key_frequencies(model, mi.ModularTask(113))
    assert kf.freqs == ()
    assert kf.confidence == "none"
    assert "no Fourier structure" in kf.reason


def test_real_checkpoint_key_frequencies_agree_with_clusters_and_ablation():
    model, task = mi.load(PAPER_FILES["wd"])
    cache = grid_cache(model, task)
    kf = key_frequencies(model, task, cache=cache)
    assert kf.confidence == "high" and 3 <= len(kf.freqs) <= 8
    frame = kf.to_frame().set_index("freq")
    key, rest = frame[frame.is_key], frame[~frame.is_key]
    assert key.excluded_delta.min() > 100 * max(rest.excluded_bound.max(), 1e-12)
    assert set(probe_neurons(model, task, cache=cache).clusters()) <= set(kf.freqs)
    assert probe_embedding(model, task, key_freqs=kf.freqs, cache=cache).fraction_in_key > 0.7


@pytest.mark.parametrize("name", sorted(PAPER_FILES))
def test_bounded_search_gives_the_verdicts_of_evaluating_every_frequency(name):
    """The rule evaluates few non-candidates exactly; evaluating all of them, on both splits, changes no verdict."""
    from modadd_interp.probes.key_frequencies import NECESSITY_RATIO, excluded_losses

    model, task = mi.load(PAPER_FILES[name])
    cache = grid_cache(model, task)
    kf = key_frequencies(model, task, cache=cache)
    n = task.p // 2
    every = excluded_losses(cache, list(range(1, n + 1)))
    considered = set(kf.considered)
    assert set(kf.candidates) <= considered
    kept = []
    for split, delta_name, bound_name, base in (
            ("train", "excluded_delta", "excluded_bound", kf.base_train_loss),
            ("held_out", "excluded_delta_held_out", "excluded_bound_held_out", kf.base_held_out_loss)):
        rise = torch.tensor([every[k][split] - base for k in range(1, n + 1)], dtype=torch.float64)
        assert bool((rise <= kf.evidence[bound_name] + 1e-12).all()), split  # the bounds hold
        computed = ~kf.evidence[delta_name].isnan()
        assert int(computed.sum()) < n / 2  # the point of the bound
        torch.testing.assert_close(kf.evidence[delta_name][computed], rise[computed], rtol=1e-12, atol=1e-15)
        floor = max(0.0, max(float(rise[k - 1]) for k in range(1, n + 1) if k not in considered))
        kept.append({k for k in considered if float(rise[k - 1]) > NECESSITY_RATIO * floor and float(rise[k - 1]) > 0})
    assert set(kf.candidates) == kept[0] | kept[1] and kf.candidates


def test_frequency_with_no_cluster_is_still_found():
    """The low-precision checkpoint uses a frequency that no neuron passes the threshold for."""
    model, task = mi.load(PAPER_FILES["low_precision"])
    kf = key_frequencies(model, task)
    frame = kf.to_frame().set_index("freq")
    unclustered_keys = [k for k in kf.freqs if frame.loc[k, "cluster_size"] == 0]
    assert unclustered_keys, "expected a key frequency without a neuron cluster"
    for k in unclustered_keys:
        assert frame.loc[k, "wl_share"] > 0.05 and frame.loc[k, "excluded_delta"] > 0.1


@pytest.mark.parametrize("probe", PROBES, ids=lambda f: f.__name__)
def test_probe_leaves_model_untouched(probe, backend):
    model, task = mi.load(PAPER_FILES["no_wd"], backend=backend)
    model.train()  # a user's model in training mode must stay in training mode
    with torch.no_grad():
        model(task.inputs[:2])  # the bridge wires its internal hooks on the first pass
    before = model_snapshot(model)
    result = probe(model, task)
    assert_unchanged(model, before)
    assert isinstance(result.to_dict(), dict)
    assert len(result.to_frame()) > 0
    assert result.plot() is not None


def test_no_hook_left_when_a_forward_pass_raises(backend):
    model, task = mi.load(PAPER_FILES["no_wd"], backend=backend)
    with torch.no_grad():
        model(task.inputs[:2])
    before = model_snapshot(model)

    def explode(_activation):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        grid_run(model, task, ["blocks.0.mlp.hook_post"], fwd_hooks=[("blocks.0.attn.hook_z", explode)])
    assert_unchanged(model, before)


def test_threshold_outside_unit_interval_is_refused():
    model, task = mi.load(PAPER_FILES["no_wd"])
    with pytest.raises(mi.ModAddError, match=r"threshold must be in \[0, 1\]"):
        probe_neurons(model, task, threshold=1.5)
