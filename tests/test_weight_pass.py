"""The weight pass records what the model's own hooks record, and stands in for the model only when they agree."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from conftest import random_weights, refuses_attention_rate, small_config

import modadd_interp as mi
from modadd_interp import tl_adapter
from modadd_interp.config import ModelConfig
from modadd_interp.hook_names import hook_name
from modadd_interp.probes import cache as cache_module
from modadd_interp.probes.cache import grid_cache, grid_recorder, pass_hooks
from modadd_interp.probes.weight_pass import WeightPass

pytestmark = pytest.mark.adapter

ROOT = Path(__file__).resolve().parents[1]
PIZZA = ROOT.parent / "shared" / "fixtures" / "clock-and-pizza"

ARCHITECTURES = {
    "paper 1 layer": dict(),
    "causal 2 layers, rate 0.5": dict(n_layers=2, attn_rate=0.5),
    "bidirectional 3 layers, rate 0, GeLU": dict(n_layers=3, attn_rate=0.0, attention_dir="bidirectional",
                                                 act_fn="gelu"),
    "(a, p + b), no '='": dict(n_ctx=2, has_eq=False, separate_b_tokens=True),
}


def _model_records(model, pairs):
    cfg = tl_adapter.model_config(model)
    with grid_recorder(model, pass_hooks(cfg)) as rec:
        return {name: torch.cat([acts[name] for _, _, acts in rec.chunks(pairs, 64)]) for name in rec.names}


def _assert_same_records(model, pairs):
    cfg = tl_adapter.model_config(model)
    theirs = _model_records(model, pairs)
    ours = WeightPass(cfg, tl_adapter.canonical_weights(model), list(theirs)).run(cfg.encode(pairs))
    assert ours.keys() == theirs.keys()
    for name in theirs:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-4, atol=2e-5, msg=name)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_weight_pass_records_what_the_model_records(backend, arch):
    """Every recorded activation (patterns, earlier layers' neurons, the readout layer's z and resid_mid) equals the
    model's own, on random weights with random biases: causal and bidirectional masks, attention rates, layouts."""
    kw = dict(ARCHITECTURES[arch])
    cfg = small_config(13, **kw) if "has_eq" not in kw else ModelConfig.paper(13, d_model=16, n_heads=2, d_head=8,
                                                                             d_mlp=32, **kw)
    if refuses_attention_rate(backend, cfg.attn_rate):
        pytest.skip("TL 3.9's bridge cannot run attention rates (tested in test_family)")
    model = tl_adapter.build_model(cfg, random_weights(cfg, seed=3), backend=backend)
    _assert_same_records(model, mi.ModularTask(13).grid.pairs)


@pytest.mark.parametrize("path", [
    *sorted((ROOT / "tests" / "data" / "trained").glob("*.safetensors")),
    *sorted((ROOT / "tests" / "data" / "trained").glob("op_*.pt")),
    *sorted(PIZZA.glob("model_*.pt")),
], ids=lambda p: p.name)
def test_weight_pass_on_trained_models(path):
    """The same on the trained fixtures: the Clock-and-Pizza models A and B, the deeper and GeLU family members
    and every operation's model (a sample of each grid)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # inferred op / split: not what this test is about
        model, task = mi.load(path)
    if refuses_attention_rate("bridge", tl_adapter.model_config(model).attn_rate):
        pytest.skip("TL 3.9's bridge cannot run attention rates")
    _assert_same_records(model, task.grid.pairs[:: max(1, task.grid.n_inputs // 600)])


def test_grid_cache_is_the_same_with_the_weight_pass_or_the_model(backend):
    """The cache's statistics from the weight pass equal those of a pass of the model itself (forced by a user's
    no-op hook, which must run): losses, residue means, neuron spectra, attention."""
    cfg = small_config(13, n_layers=2)
    model = tl_adapter.build_model(cfg, random_weights(cfg, seed=5), backend=backend)
    task = mi.ModularTask(13)
    fast = grid_cache(model, task)
    with tl_adapter.hooked(model, [("blocks.0.hook_resid_pre", lambda act: None)]):
        slow = grid_cache(model, task)
    for field in ("train_loss", "test_loss", "accuracy"):
        assert getattr(fast.full, field) == pytest.approx(getattr(slow.full, field), rel=1e-5, abs=1e-7)
    torch.testing.assert_close(fast.residue_logits, slow.residue_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast.neuron_blocks, slow.neuron_blocks, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast.attention, slow.attention, rtol=1e-4, atol=1e-6)
    assert tl_adapter.foreign_hook_count(model) == 0


def test_a_model_that_disagrees_runs_itself(monkeypatch):
    """When the model's logits differ from the weight pass's on the sample, the cache says so and runs the model:
    its results are the model's, not the weight pass's."""
    model, task = mi.load()
    expected = grid_cache(model, task).full
    original = WeightPass.run

    def skewed(self, tokens):
        out = original(self, tokens)
        resid = hook_name("resid_mid", self.cfg.n_layers - 1)
        if resid in out:
            out[resid] = out[resid] * 1.5
        return out

    monkeypatch.setattr(WeightPass, "run", skewed)
    with pytest.warns(UserWarning, match="differs from the computation of its architecture"):
        got = grid_cache(model, task)
    assert got.full.test_loss == pytest.approx(expected.test_loss, rel=1e-5)
    assert cache_module.AGREEMENT_TOLERANCE < 0.01


def test_weight_pass_refuses_what_it_does_not_record():
    cfg = small_config(13, n_layers=2)
    with pytest.raises(ValueError, match="records only"):
        WeightPass(cfg, random_weights(cfg), ["blocks.1.mlp.hook_post"])


def test_a_cache_of_weights_alone_equals_the_models_and_refuses_hooked_passes():
    """GridCache.of_weights (no model; the progress measures' per-checkpoint cache) gives the model's statistics
    and sweeps; what needs the model says so."""
    from modadd_interp.probes.cache import GridCache

    model, task = mi.load()
    cfg = tl_adapter.model_config(model)
    with_model = grid_cache(model, task)
    alone = GridCache.of_weights(cfg, tl_adapter.canonical_weights(model), task, keep="logits")
    assert with_model.computed_from_weights and alone.computed_from_weights
    assert alone.full == with_model.full
    torch.testing.assert_close(alone.residue_logits, with_model.residue_logits, rtol=0, atol=0)
    torch.testing.assert_close(alone.neuron_blocks, with_model.neuron_blocks, rtol=0, atol=0)
    excluded = {"excluded": with_model.excluding([1, 5])}
    assert alone.measure({"excluded": alone.excluding([1, 5])}) == with_model.measure(excluded)
    with pytest.raises(ValueError, match="needs the model"):
        alone.measure_hooked([])
    with pytest.raises(ValueError, match="p = 113"):
        GridCache.of_weights(cfg, tl_adapter.canonical_weights(model), mi.ModularTask(13))


def test_statistics_computed_when_read_equal_those_of_the_first_pass():
    """The logits' moments (from the kept logits, or during the pass when none are kept) and the active fractions
    (one sweep when first read, re-running the pass when only logits are kept) are the same in every keep mode;
    a cache of weights alone leaves the attention out when asked."""
    from modadd_interp.probes.cache import GridCache

    cfg = small_config(17, n_layers=2)
    model = tl_adapter.build_model(cfg, random_weights(cfg, seed=3))
    task = mi.ModularTask(17)
    caches = {keep: grid_cache(model, task, keep=keep) for keep in ("full", "replay", "rerun", "logits")}
    full = caches["full"]
    neurons = model.run_with_cache(cfg.encode(task.grid.pairs), names_filter="blocks.1.mlp.hook_post")[1]
    expected_active = (neurons["blocks.1.mlp.hook_post"][:, -1] > 0).double().mean(0)
    for keep, cache in caches.items():
        assert cache.centered_sq == full.centered_sq, keep
        assert torch.equal(cache.train_miss, full.train_miss), keep
        assert torch.equal(cache.correct_logits, full.correct_logits), keep
        # exact across paths: the smallest |pre-activation| here is 1.6e-4, far above float32 rounding (~1e-6)
        torch.testing.assert_close(cache.neuron_active, expected_active, rtol=0, atol=0, msg=keep)
    alone = GridCache.of_weights(cfg, tl_adapter.canonical_weights(model), task, keep="logits", attention=False)
    assert alone.attention is None and full.attention is not None
    assert torch.equal(alone.neuron_active, full.neuron_active)


def test_measuring_the_training_inputs_alone():
    """measure(split="train") gives the training fields of the whole measurement and NaN test fields."""
    model, task = mi.load()
    cache = grid_cache(model, task)
    edit = {"excluded": cache.excluding([1, 5])}
    whole, train = cache.measure(edit)["excluded"], cache.measure(edit, split="train")["excluded"]
    assert train.train_loss == pytest.approx(whole.train_loss, rel=1e-12)
    assert train.train_accuracy == whole.train_accuracy
    assert train.test_loss != train.test_loss  # NaN
    with pytest.raises(ValueError, match="split"):
        cache.measure(edit, split="test")


def test_a_new_statistic_is_one_accumulator_summed_in_the_first_pass():
    """A statistic written outside the package rides the first pass beside the built-in ones, which do not change."""
    class AnswerLogitSum:
        name = "answer logit sum"

        def __init__(self):
            self.total, self.chunks = 0.0, 0

        def add(self, chunk):
            self.total += float(chunk.piece.logits.gather(1, chunk.piece.labels[:, None]).double().sum())
            self.chunks += 1

        def result(self):
            return self.total, self.chunks

    model, task = mi.load()
    plain = grid_cache(model, task)
    cache = grid_cache(model, task, statistics=[AnswerLogitSum()])
    total, chunks = cache.statistics["answer logit sum"]
    assert chunks >= 2 and total == pytest.approx(float(cache.correct_logits.sum()), rel=1e-6)
    assert set(cache.statistics) == set(plain.statistics) | {"answer logit sum"}
    assert torch.equal(cache.residue_logits, plain.residue_logits) and cache.full == plain.full
    with pytest.raises(ValueError, match="distinct names"):
        grid_cache(model, task, statistics=[type("Clash", (), {"name": "layers"})()])
