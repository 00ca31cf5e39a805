"""The singular-learning-theory lens: LLC estimates (devinterp's SGLD) and degeneracy measures."""

from __future__ import annotations

import json
import math
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_unchanged, model_snapshot, small_config

import modadd_interp as mi
from modadd_interp import slt, tl_adapter
from modadd_interp.probes.cache import grid_cache
from modadd_interp.viz.figures import llc_figure

pytest.importorskip("devinterp")

TASK = mi.ModularTask(p=13, frac_train=0.8, seed=0)
# cold, strongly localised chains that equilibrate within the burn-in on these small models
SMALL = dict(lr=3e-5, n_beta=1000.0, localization=1000.0, num_chains=2, num_draws=100, num_burnin_steps=100,
             batch_size=64)
QUICK = dict(SMALL, num_draws=20, num_burnin_steps=10)
# lr="auto" with the default ladder, pull and n_beta (n / log n), short chains
AUTO_QUICK = dict(num_chains=2, num_draws=20, batch_size=64)


@pytest.fixture(scope="module")
def fitted_run(tmp_path_factory):
    """A d_mlp=16 model trained to fit TASK's training split (checkpoints at steps 100 and 200)."""
    out = tmp_path_factory.mktemp("slt_run")
    mi.train(TASK, out, config=small_config(p=13, d_mlp=16), progress=False, steps=200, checkpoint_every=100,
             eval_every=1000, lr=1e-2)
    return out


@pytest.fixture(scope="module")
def fitted(fitted_run):
    return mi.load_run(fitted_run).weights[-1]


def widened(weights: dict[str, torch.Tensor], copies: int, dead: bool) -> dict[str, torch.Tensor]:
    """The same function with ``copies`` times the neurons: extra neurons planted dead, or every neuron split
    into ``copies`` alive copies that share its output."""
    w = dict(weights)
    w_in, b_in, w_out = w["blocks.0.mlp.W_in"], w["blocks.0.mlp.b_in"], w["blocks.0.mlp.W_out"]
    if dead:
        w["blocks.0.mlp.W_in"] = torch.cat([w_in] + [torch.zeros_like(w_in)] * (copies - 1), 1)
        w["blocks.0.mlp.b_in"] = torch.cat([b_in] + [torch.full_like(b_in, -10.0)] * (copies - 1))
        w["blocks.0.mlp.W_out"] = torch.cat([w_out] + [torch.zeros_like(w_out)] * (copies - 1), 0)
    else:
        w["blocks.0.mlp.W_in"] = torch.cat([w_in] * copies, 1)
        w["blocks.0.mlp.b_in"] = torch.cat([b_in] * copies)
        w["blocks.0.mlp.W_out"] = torch.cat([w_out] * copies, 0) / copies
    return w


def test_planted_dead_units_lower_the_llc(fitted):
    cfg = small_config(p=13, d_mlp=64)
    dead = tl_adapter.build_model(cfg, widened(fitted, 4, dead=True))
    alive = tl_adapter.build_model(cfg, widened(fitted, 4, dead=False))
    with torch.no_grad():  # the same function: the same training loss
        assert TASK.loss(dead(TASK.inputs), "train") == pytest.approx(TASK.loss(alive(TASK.inputs), "train"), rel=1e-5)
    est_dead, est_alive = slt.llc(dead, TASK, **SMALL), slt.llc(alive, TASK, **SMALL)
    assert est_dead.healthy and est_alive.healthy, (est_dead.reasons, est_alive.reasons)
    assert est_dead.mean > 0
    assert est_dead.mean < est_alive.mean, (est_dead.per_chain, est_alive.per_chain)
    deg = slt.degeneracy_measures(tl_adapter.canonical_weights(dead), _active(dead), TASK.p)
    assert deg["dead_neurons"] >= 48 and deg["nearly_dead_neurons"] >= deg["dead_neurons"]
    assert slt.degeneracy_measures(tl_adapter.canonical_weights(alive), _active(alive), TASK.p)["dead_neurons"] < 48


def _active(model) -> torch.Tensor:
    return grid_cache(model, TASK).neuron_active


@pytest.mark.adapter
def test_reproducible_and_leaves_the_model_unchanged(fitted, backend):
    model = tl_adapter.build_model(small_config(p=13, d_mlp=16), fitted, backend=backend)
    model.train()  # any mode the user left it in is kept
    before = model_snapshot(model)
    np_state, py_state = np.random.get_state(), random.getstate()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 20 draws: the stationarity check may fail; not the point here
        first = slt.llc(model, TASK, **QUICK, seed=3)
        second = slt.llc(model, TASK, **QUICK, seed=3)
        other = slt.llc(model, TASK, **QUICK, seed=4)
    assert_unchanged(model, before)
    assert random.getstate() == py_state
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_state, strict=True))
    assert first.to_dict(trace=True) == second.to_dict(trace=True)
    assert len(first.per_chain) == 2 and len(first.loss_trace[0]) == 30
    assert other.per_chain != first.per_chain
    json.dumps(first.to_dict(trace=True))


@pytest.mark.adapter
def test_a_huge_step_size_is_flagged(fitted, backend):
    model = tl_adapter.build_model(small_config(p=13, d_mlp=16), fitted, backend=backend)
    with pytest.warns(UserWarning, match="unhealthy"):
        est = slt.llc(model, TASK, **dict(QUICK, lr=1.0))
    assert not est.healthy and est.reasons
    assert est.to_dict()["healthy"] is False


def test_health_rules():
    hyper = {}
    flat = np.full((2, 40), 0.01)
    assert slt._estimate(flat, 0.0, 100.0, 10, 13, [], hyper).healthy
    drifting = np.tile(np.linspace(0.0, 0.02, 40), (2, 1))
    assert any("stationary" in r for r in slt._estimate(drifting, 0.0, 100.0, 10, 13, [], hyper).reasons)
    # halves that differ by 100% of the LLC, but not consistently over the chains (1 standard error): noise
    halves = [(0.0, 0.03), (0.01, 0.0), (0.0, 0.01)]
    noisy = np.array([[0.0] * 10 + [a] * 15 + [b] * 15 for a, b in halves])
    assert slt._estimate(noisy, 0.0, 100.0, 10, 13, [], hyper).healthy
    assert not slt._estimate(noisy[:1], 0.0, 100.0, 10, 13, [], hyper).healthy  # one chain: the plain rule
    diverged = flat.copy()
    diverged[1, -1] = 50.0
    assert any("diverged" in r for r in slt._estimate(diverged, 0.0, 100.0, 10, 13, [], hyper).reasons)
    assert any("negative" in r for r in slt._estimate(flat, 0.02, 100.0, 10, 13, [], hyper).reasons)
    nan = flat.copy()
    nan[0, 5] = np.nan
    assert any("NaN" in r for r in slt._estimate(nan, 0.0, 100.0, 10, 13, [], hyper).reasons)


def test_degeneracy_measures_by_hand():
    cfg = small_config(p=13, d_mlp=8)
    w = {k: torch.zeros(s) for k, s in cfg.shapes().items()}
    w["embed.W_E"][:13, 0] = 1.0  # rank-1 number embedding
    w["blocks.0.mlp.W_out"][0, :2] = 1.0
    w["unembed.W_U"][:2, :2] = torch.eye(2)
    neurons = torch.zeros(169, 8)
    neurons[:, 0] = 1.0  # always active
    neurons[0, 1] = 1.0  # active on 1 of 169 inputs (< 1%): nearly dead
    deg = slt.degeneracy_measures(w, (neurons > 0).double().mean(0), 13)
    assert deg["dead_neurons"] == 6 and deg["nearly_dead_neurons"] == 7
    assert deg["erank_we"] == pytest.approx(1.0) and deg["erank_wl"] == pytest.approx(1.0)
    assert deg["weights_needed"] == 17 and deg["n_params"] == sum(v.numel() for v in w.values())
    assert slt.weights_needed({"a": torch.tensor([10.0, 1.0, 0.1])}) == 1
    assert slt.weights_needed({"a": torch.tensor([1.0, 1.0, 1.0])}) == 3
    assert slt.weights_needed({"a": torch.zeros(3)}) == 0


def test_progress_measures_with_llc(fitted_run):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an early checkpoint may be flagged unhealthy
        frame = mi.progress_measures(fitted_run, progress=False, llc=QUICK)
        auto = mi.progress_measures(fitted_run, progress=False, llc=AUTO_QUICK)
    for column in ("llc_mean", "llc_std", "llc_healthy", "llc_reasons", "llc_lr", "llc_at_lr", "llc_localization",
                   "llc_n_beta", "llc_tries", "llc_extrapolated", "dead_neurons", "nearly_dead_neurons", "erank_wl",
                   "erank_we", "weights_needed"):
        assert column in frame.columns and frame[column].notna().all()
        assert column in auto.columns and auto[column].notna().all()
    assert frame["step"].tolist() == [100, 200]
    # a fixed step: one run, no pair
    assert (frame["llc_lr"] == QUICK["lr"]).all() and frame["llc_lr2"].isna().all() and (frame["llc_tries"] == 1).all()
    assert (frame["llc_at_lr"] == frame["llc_mean"]).all() and not frame["llc_extrapolated"].any()
    # calibrated: a pair of neighbouring ladder steps, at the common pull and n_beta = n / log n
    assert (auto["llc_lr2"] == auto["llc_lr"] / 2).all() and (auto["llc_tries"] >= 3).all()
    assert set(auto["llc_lr"]) <= set(slt.LR_LADDER)
    n = int(TASK.train_mask.sum())
    assert (auto["llc_localization"] == slt.DEFAULT_LOCALIZATION).all()
    assert auto["llc_n_beta"].tolist() == pytest.approx([n / math.log(n)] * 2)
    assert ((auto["llc_reasons"] == "") == auto["llc_healthy"]).all()
    assert "llc_mean" not in mi.progress_measures(fitted_run, progress=False).columns
    assert len(llc_figure(frame).data) == 6
    fig = llc_figure(auto)  # plus the single-step curves, hidden until clicked in the legend
    assert len(fig.data) == 8 and [d.visible for d in fig.data[1:3]] == ["legendonly", "legendonly"]


def test_report_gets_the_llc_panel(fitted_run, tmp_path):
    model, task = mi.load(fitted_run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        page = mi.render_report(model, task, tmp_path, run=fitted_run, llc=QUICK)
    html = page.read_text()
    assert "Local learning coefficient" in html and "Progress over training" in html


# ------------------------------------------------------------------ step-size calibration (lr="auto")
def _fake(lr: float, mean: float, healthy: bool = True, chains: tuple[float, ...] = ()) -> slt.LLCEstimate:
    """A stand-in sampling run at step ``lr`` (chains: the per-chain LLCs, default ``mean -+ 1``)."""
    per_chain = chains or (mean - 1.0, mean + 1.0)
    return slt.LLCEstimate(mean=float(np.mean(per_chain)), std=float(np.std(per_chain, ddof=1)), per_chain=per_chain,
                           init_loss=0.0, healthy=healthy, reasons=() if healthy else (f"a chain diverged at {lr}",),
                           hyperparameters={"lr": lr, "n_beta": 1000.0, "localization": 1000.0})


def test_extrapolation_by_hand():
    est = slt.extrapolate(_fake(1e-4, 0.0, chains=(120.0, 100.0)), _fake(5e-5, 0.0, chains=(85.0, 75.0)))
    assert est.per_chain == pytest.approx((50.0, 50.0)) and est.mean == pytest.approx(50.0) and est.std == 0.0
    assert est.healthy and est.hyperparameters["lr_pair"] == [1e-4, 5e-5]
    third = slt.extrapolate(_fake(3e-4, 30.0), _fake(1e-4, 20.0))  # q = 3: (3 * 20 - 30) / 2
    assert third.mean == pytest.approx(15.0)
    # a step-size dependence below the noise (mean difference < 2 standard errors) is not extrapolated
    flat = slt.extrapolate(_fake(1e-4, 0.0, chains=(1.0, 3.0, 2.0)), _fake(5e-5, 0.0, chains=(2.0, 1.0, 2.5)))
    assert flat.per_chain == (2.0, 1.0, 2.5) and flat.mean == pytest.approx(11 / 6) and flat.healthy
    assert flat.hyperparameters["extrapolated"] is False and est.hyperparameters["extrapolated"] is True
    assert flat.hyperparameters["step_difference"] == pytest.approx(1 / 6)
    too_big = slt.extrapolate(_fake(1e-4, 300.0), _fake(5e-5, 100.0))  # correction 200 > 50% of 100
    assert not too_big.healthy and any("small-step regime" in r for r in too_big.reasons)
    assert any("negative" in r for r in too_big.reasons)


def test_calibrate_pilots_then_a_pair_below_the_largest_stable_step():
    calls = []
    values = {1e-3: float("nan"), 5e-4: 60.0, 2.5e-4: 40.0, 1.25e-4: 30.0, 6.25e-5: 26.0}

    def sample(lr, chains):
        calls.append((lr, chains))
        return _fake(lr, values[lr], healthy=lr < 1e-3)

    est = slt.calibrate(sample, (1e-3, 5e-4, 2.5e-4, 1.25e-4, 6.25e-5))
    # pilots (one chain) until a stable step (5e-4); the pair starts one rung below it; each step sampled once
    assert calls == [(1e-3, 1), (5e-4, 1), (2.5e-4, None), (1.25e-4, None)]
    assert est.healthy and est.mean == pytest.approx(20.0)  # 2 * 30 - 40
    assert est.hyperparameters["lr"] == 2.5e-4 and est.hyperparameters["lr_pair"] == [2.5e-4, 1.25e-4]
    assert est.hyperparameters["tries"] == 4 and len(est.tries) == 4
    # a pair whose correction is too large (2 * 30 - 100 < 0) is skipped for the next pair down
    values[2.5e-4] = 100.0
    calls.clear()
    est = slt.calibrate(sample, (1e-3, 5e-4, 2.5e-4, 1.25e-4, 6.25e-5))
    assert est.healthy and est.hyperparameters["lr_pair"] == [1.25e-4, 6.25e-5] and est.mean == pytest.approx(22.0)
    assert calls[-1] == (6.25e-5, None) and len(calls) == 5


def test_calibration_failure_says_so():
    est = slt.calibrate(lambda lr, _chains: _fake(lr, float("nan"), healthy=False), (1e-3, 5e-4, 1e-4))
    assert not est.healthy and est.hyperparameters["lr_pair"] is None and est.hyperparameters["tries"] == 3
    assert est.reasons[0].startswith("calibration failed: no step size in") and "was stable" in est.reasons[0]
    assert any("diverged at 0.001" in r for r in est.reasons)
    # stable only at the last rung: no pair below it
    est = slt.calibrate(lambda lr, _chains: _fake(lr, 5.0, healthy=lr < 2e-4), (1e-3, 5e-4, 1e-4))
    assert not est.healthy and "leaves no pair" in est.reasons[0]
    # a pair that is healthy but not in the small-step regime is named too
    est = slt.calibrate(lambda lr, _chains: _fake(lr, {1e-3: 5.0, 5e-4: 50.0, 2.5e-4: 10.0}[lr]), (1e-3, 5e-4, 2.5e-4),
                        margin=0)
    assert not est.healthy and any("small-step regime" in r for r in est.reasons)
    with pytest.raises(slt.SamplerSettingsError):
        slt.calibrate(lambda lr, _chains: _fake(lr, 1.0), (1e-3, 5e-4))


def test_watch_stops_at_the_first_divergent_step():
    watch = slt._Watch(p=13, steps_per_chain=10)
    with torch.no_grad():
        watch(torch.full((4, 1), 0.5))  # an init-loss batch
    with torch.enable_grad():
        watch(torch.full((4, 1), 0.5 + math.log(13) - 1e-3))
        with pytest.raises(slt._Stopped, match="chain 0 stopped at step 1"):
            watch(torch.full((4, 1), 0.5 + math.log(13) + 1e-3))
        with pytest.raises(slt._Stopped, match="not finite"):
            watch(torch.tensor([[float("nan")]]))
    assert watch.init_loss == pytest.approx(0.5)


@pytest.mark.parametrize("bad", [dict(lr=0.0), dict(lr="fast"), dict(lr=float("nan")), dict(ladder=(1e-4, 5e-5)),
                                 dict(ladder=(1e-5, 1e-4, 1e-6)),
                                 dict(ladder=(1e-4, 5e-5, -1e-5)), dict(localization=0.0), dict(n_beta=0.0),
                                 dict(localization=-1.0), dict(num_chains=0), dict(num_draws=1),
                                 dict(num_burnin_steps=-1), dict(batch_size=0)])
def test_bad_settings_are_refused(fitted, bad):
    model = tl_adapter.build_model(small_config(p=13, d_mlp=16), fitted)
    with pytest.raises(slt.SamplerSettingsError):
        slt.llc(model, TASK, **bad)
    assert issubclass(slt.SamplerSettingsError, mi.ModAddError)


@pytest.mark.adapter
def test_calibration_is_reproducible_and_leaves_the_model_unchanged(fitted, backend):
    model = tl_adapter.build_model(small_config(p=13, d_mlp=16), fitted, backend=backend)
    model.train()
    before = model_snapshot(model)
    np_state, py_state = np.random.get_state(), random.getstate()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 20 draws: not the point here
        first = slt.llc(model, TASK, **AUTO_QUICK, seed=3)
        second = slt.llc(model, TASK, **AUTO_QUICK, seed=3)
    assert_unchanged(model, before)
    assert random.getstate() == py_state
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_state, strict=True))
    assert first.to_dict(trace=True) == second.to_dict(trace=True)
    assert first.tries and first.tries[0].hyperparameters["num_chains"] == 1  # a pilot
    assert len(first.tries[0].loss_trace[0]) == first.tries[0].hyperparameters["num_burnin_steps"] + 20
    json.dumps(first.to_dict(trace=True))


@pytest.fixture(scope="module")
def memorizing():
    """The shipped run at the end of memorization (step 200): the sharpest checkpoint of the run."""
    run = mi.shipped_run()
    return tl_adapter.build_model(run.config, run.weights[run.steps.index(200)]), run.task


def test_calibration_finds_a_healthy_step_where_larger_ones_fail(memorizing):
    model, task = memorizing
    with pytest.warns(UserWarning, match="unhealthy"):  # the former fixed defaults diverge here
        former = slt.llc(model, task, lr=1e-4, n_beta=1000.0, localization=300.0, num_chains=2, num_draws=30,
                         num_burnin_steps=20)
    assert not former.healthy and any("diverged" in r for r in former.reasons)
    est = slt.llc(model, task, num_chains=2, num_draws=30)
    assert est.healthy, est.reasons
    pilots = [t for t in est.tries if t.hyperparameters["num_chains"] == 1]
    assert pilots[0].hyperparameters["lr"] == slt.LR_LADDER[0] and not slt.stable(pilots[0])
    assert "stopped at step" in pilots[0].reasons[0]  # the pilot ended at its first divergent step
    assert slt.stable(pilots[-1])
    lr, lr2 = est.hyperparameters["lr_pair"]
    assert lr == pilots[-1].hyperparameters["lr"] / 2 and lr2 == lr / 2  # one rung below the largest stable step
    assert est.hyperparameters["tries"] == len(est.tries) == len(pilots) + 2
    at = {t.hyperparameters["lr"]: t.mean for t in est.tries if t.hyperparameters["num_chains"] == 2}
    expected = 2 * at[lr2] - at[lr] if est.hyperparameters["extrapolated"] else at[lr2]
    assert est.mean == pytest.approx(expected)
    assert 0 < est.mean <= at[lr2] < at[lr]  # the estimate grows with the step size; the extrapolation removes that


# ------------------------------------------------------------------ the LLC per component
def _perturbed(weights: dict[str, torch.Tensor], selection) -> dict[str, torch.Tensor]:
    """``weights`` with every entry a component selects (``(canonical weight, head or None)`` pairs) moved."""
    w = {k: v.clone() for k, v in weights.items()}
    for name, head in selection:
        target = w[name] if head is None else w[name][head]
        target += 1.0 + torch.rand_like(target)
    return w


@pytest.mark.adapter
@pytest.mark.parametrize("n_layers", [1, 2])
def test_component_masks_select_exactly_the_components_weights(backend, n_layers):
    """A component's masks cover exactly the live parameter entries that its canonical weights (a head: its
    slices) hold, on either TL version's layout: moving those weights moves those entries and no others."""
    from conftest import random_weights

    cfg = small_config(p=13, d_mlp=16, n_layers=n_layers)
    weights = random_weights(cfg)
    model = tl_adapter.build_model(cfg, weights, backend=backend)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    table = tl_adapter.component_parameters(model)
    expected = ["embed", "pos_embed"] + [c for layer in range(n_layers) for c in
                                         [f"l{layer} attn", f"l{layer}h0", f"l{layer}h1", f"l{layer} mlp"]]
    assert list(table) == expected + ["unembed"]
    coverage = {k: torch.zeros_like(v, dtype=torch.int64) for k, v in before.items()}
    for component, selection in tl_adapter.component_weights(cfg).items():
        moved = tl_adapter.build_model(cfg, _perturbed(weights, selection), backend=backend)
        changed = {k: (v.detach() != before[k]) for k, v in moved.named_parameters()}
        masks = table[component]
        for name, diff in changed.items():
            mask = masks.get(name, False)
            selected = torch.ones_like(diff) if mask is None else (mask if name in masks else torch.zeros_like(diff))
            assert torch.equal(diff, selected), (component, name)
            if slt._kind(component)[0] != "head":
                coverage[name] += selected.long()
    # the components without the single heads partition the parameters: every entry sampled exactly once
    assert all(bool((c == 1).all()) for c in coverage.values()), {k: c.unique().tolist() for k, c in coverage.items()}
    # per-head sizes: 4 d_model d_head weights and 3 d_head biases
    head = table["l0h1"]
    assert sum(int(m.sum()) for m in head.values()) == 4 * cfg.d_model * cfg.d_head + 3 * cfg.d_head
    assert list(slt.component_masks(model, "coarse")) == [c for c in table if slt._kind(c)[0] != "head"]
    assert list(slt.component_masks(model, ["heads", "full"]))[-1] == "full"
    with pytest.raises(slt.SamplerSettingsError, match="unknown component"):
        slt.component_masks(model, ["l7 mlp"])


@pytest.mark.adapter
def test_biases_the_recipe_never_trains_are_in_no_component_while_zero(backend):
    """The paper's recipe keeps the attention's and the unembedding's biases at zero (config.frozen_biases): zero,
    they are in no component (not weights of the trained model); nonzero (a model that trained them), they are."""
    from conftest import random_weights

    from modadd_interp.config import frozen_biases

    cfg = small_config(p=13, d_mlp=16)
    trained = random_weights(cfg)
    untrained = {k: torch.zeros_like(v) if k in frozen_biases(cfg) else v for k, v in trained.items()}
    head_weights = 4 * cfg.d_model * cfg.d_head

    def size(masks, model):
        params = dict(model.named_parameters())
        return sum(params[k].numel() if m is None else int(m.sum()) for k, m in masks.items())

    for weights, bias_entries in ((untrained, 0), (trained, 3 * cfg.d_head)):
        model = tl_adapter.build_model(cfg, weights, backend=backend)
        table = tl_adapter.component_parameters(model)
        assert size(table["l0h1"], model) == head_weights + bias_entries
        attn = 4 * cfg.d_model * cfg.n_heads * cfg.d_head + (4 * cfg.d_model if bias_entries else 0)
        assert size(table["l0 attn"], model) == attn
        # the whole model (and "full") still samples every parameter: frozen biases included
        full = slt.component_masks(model, slt.FULL)[slt.FULL]
        assert size(full, model) == sum(p.numel() for p in model.parameters())
        # the recipe trains the MLP's biases: they stay in
        assert size(table["l0 mlp"], model) == 2 * cfg.d_model * cfg.d_mlp + cfg.d_mlp + cfg.d_model


@pytest.mark.adapter
def test_component_masks_match_devinterps_on_a_hooked_transformer():
    """On a TL 3 HookedTransformer, which devinterp's create_param_masks understands, ours are the same."""
    if not tl_adapter.HAS_HOOKED_TRANSFORMER:
        pytest.skip("needs TL <= 3 (HookedTransformer)")
    from conftest import random_weights
    from devinterp.slt.weight_restrictions import create_param_masks

    cfg = small_config(p=13, d_mlp=16, n_layers=2)
    model = tl_adapter.build_model(cfg, random_weights(cfg), backend="hooked_transformer")
    ours = tl_adapter.component_parameters(model)
    for component in ("embed", "unembed", "l0 attn", "l1 mlp", "l0h1", "l1h0"):
        theirs = create_param_masks(model, component)
        assert set(theirs) == set(ours[component]), component
        for name, mask in theirs.items():
            assert (mask is None and ours[component][name] is None) or torch.equal(mask, ours[component][name])


def test_llc_per_component_frame(fitted):
    model = tl_adapter.build_model(small_config(p=13, d_mlp=16), fitted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 20 draws: the stationarity check may fail; not the point here
        frame = slt.llc(model, TASK, components=["pos_embed", "l0h1", "l0 mlp", "full"], **QUICK)
        whole = slt.llc(model, TASK, **QUICK)
    assert tuple(frame.columns) == slt.COMPONENT_COLUMNS
    assert frame["component"].tolist() == ["pos_embed", "l0h1", "l0 mlp", "full"]
    assert frame["kind"].tolist() == ["pos_embed", "head", "mlp", "full"]
    assert frame["layer"].tolist()[1:3] == [0, 0] and frame["head"].tolist()[1] == 1
    n_all = sum(p.numel() for p in model.parameters())
    # trained by the recipe, its attention biases are zero: a head is its 4 weight slices alone
    assert frame["n_params"].tolist() == [3 * 16, 4 * 16 * 8, 2 * 16 * 16 + 16 + 16, n_all]
    assert (frame["lr"] == QUICK["lr"]).all() and frame["lr2"].isna().all() and (frame["tries"] == 1).all()
    assert (frame["n_beta"] == QUICK["n_beta"]).all() and (frame["num_draws"] == QUICK["num_draws"]).all()
    # the whole model as a component is the whole-model estimate, to the bit (the same masks, seeds and batches)
    full = frame.set_index("component").loc["full"]
    assert full["llc_mean"] == whole.mean and frame.attrs["estimates"]["full"].per_chain == whole.per_chain
    # the restriction is real: 48 positional weights cannot hold what the whole model's 2,000 do
    assert 0 < frame["llc_mean"].iloc[0] < 0.5 * full["llc_mean"], frame[["component", "llc_mean"]]
    assert ((frame["reasons"] == "") == frame["healthy"]).all()
    assert frame.attrs["settings"]["n_beta"] == QUICK["n_beta"]


def test_an_unhealthy_component_says_why(fitted):
    model = tl_adapter.build_model(small_config(p=13, d_mlp=16), fitted)
    with pytest.warns(UserWarning, match=r"component\(s\) \['l0h0'.* is unhealthy"):
        frame = slt.llc(model, TASK, components=["l0h0", "pos_embed"], **dict(QUICK, lr=1.0))
    row = frame.set_index("component").loc["l0h0"]
    assert not row["healthy"] and ("diverged" in row["reasons"] or "NaN" in row["reasons"]), row["reasons"]


@pytest.mark.adapter
def test_component_llcs_on_a_two_layer_model(backend):
    """The components of a 2-layer Clock-and-Pizza family model (tokens (a, b), no '='), on either TL version."""
    model, task = mi.load(Path(__file__).parent / "data" / "trained" / "family_2layer.safetensors")
    model = tl_adapter.build_model(tl_adapter.model_config(model), tl_adapter.canonical_weights(model),
                                   backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = slt.llc(model, task, components="coarse", **dict(QUICK, num_chains=1))
    assert frame["component"].tolist() == ["embed", "pos_embed", "l0 attn", "l0 mlp", "l1 attn", "l1 mlp", "unembed"]
    assert frame["llc_mean"].notna().all() and (frame["n_params"] > 0).all()


def test_degeneracy_reads_the_readout_layer_of_a_two_layer_model():
    """W_L is the readout (last) layer's W_out @ W_U, the layer whose neurons ``active`` counts: by hand (layer 0
    planted rank 1, layer 1 rank 2), and on a trained 2-layer model of the Clock-and-Pizza family."""
    from modadd_interp.fourier import effective_rank

    cfg = small_config(p=13, d_mlp=8, n_layers=2)
    w = {k: torch.zeros(s) for k, s in cfg.shapes().items()}
    w["embed.W_E"][:13, 0] = 1.0
    w["unembed.W_U"][:3, :3] = torch.eye(3)
    w["blocks.0.mlp.W_out"][0, 0] = 1.0  # rank 1
    w["blocks.1.mlp.W_out"][0, 0] = w["blocks.1.mlp.W_out"][1, 1] = 1.0  # rank 2
    assert slt.degeneracy_measures(w, torch.ones(8), 13)["erank_wl"] == pytest.approx(2.0)

    model, task = mi.load(Path(__file__).parent / "data" / "trained" / "family_2layer.safetensors")
    weights = tl_adapter.canonical_weights(model)
    ranks = [effective_rank(weights[f"blocks.{i}.mlp.W_out"].double() @ weights["unembed.W_U"].double()[:, :task.p])
             for i in (0, 1)]
    assert abs(ranks[0] - ranks[1]) > 0.3  # the layers differ enough for the test to tell them apart
    deg = slt.degeneracy_measures(weights, grid_cache(model, task).neuron_active, task.p)
    assert deg["erank_wl"] == pytest.approx(ranks[1], rel=1e-12)


def test_progress_measures_with_component_llcs(fitted_run, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an early checkpoint may be flagged unhealthy
        frame = mi.progress_measures(fitted_run, progress=False, llc=dict(QUICK, components=["l0h0", "l0 mlp"]))
    assert frame.attrs["llc_components"] == ["l0h0", "l0 mlp"]
    for column in ("llc_l0h0", "llc_l0h0_std", "llc_l0h0_healthy", "llc_l0h0_reasons", "llc_l0h0_lr",
                   "llc_l0_mlp", "llc_l0_mlp_healthy", "dead_neurons", "erank_wl"):
        assert column in frame.columns and frame[column].notna().all(), column
    assert frame["llc_l0h0_lr2"].isna().all() and (frame["llc_l0h0_lr"] == QUICK["lr"]).all()  # a fixed step
    assert "llc_mean" not in frame.columns  # the whole model is not estimated (it is the component "full")
    assert ((frame["llc_l0_mlp_reasons"] == "") == frame["llc_l0_mlp_healthy"]).all()
    fig = llc_figure(frame)
    assert [d.name for d in fig.data[:2]] == ["l0h0", "l0 mlp"] and fig.data[0].line.dash == "dash"
    with pytest.raises(ValueError, match="components"):
        mi.progress_measures(fitted_run, progress=False, llc="heads")
    model, task = mi.load(fitted_run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        page = mi.render_report(model, task, tmp_path, run=fitted_run,
                                llc=dict(QUICK, components=["l0 mlp"]))
    html = page.read_text()
    assert "The LLC of each component" in html and "The loss kernel" in html


def test_cli_progress_llc_takes_model_or_components(fitted_run, monkeypatch):
    from typer.testing import CliRunner

    from modadd_interp import progress as progress_module
    from modadd_interp.cli import app

    seen = []

    def fake(series, task=None, progress=True, llc=False):  # noqa: ARG001 - the CLI's translation of --llc, not the measurement
        seen.append(llc)
        frame = mi.progress_measures(series, task=task, progress=False)
        frame.attrs["llc_components"] = ["l0 mlp"] if llc == "components" else []
        return frame

    monkeypatch.setattr(progress_module, "progress_measures", fake)
    for flag, expected in ((["--llc", "components"], "components"), (["--llc", "model"], True), ([], False)):
        result = CliRunner().invoke(app, ["progress", str(fitted_run), *flag, "--json"])
        assert result.exit_code == 0, result.output
        assert seen[-1] == expected
    assert json.loads(result.output)["llc_components"] == []
    result = CliRunner().invoke(app, ["progress", str(fitted_run), "--llc", "heads"])
    assert result.exit_code != 0 and "model' or 'components'" in result.output


# ------------------------------------------------------------------ the loss kernel
KERNEL_QUICK = dict(num_chains=2, num_draws=60, num_steps_bw_draws=5)


@pytest.mark.parametrize(("planted", "other"), [(3, 5), (5, 3)])
def test_the_loss_kernel_finds_the_planted_frequency(planted, other):
    """A model that computes (a + b) mod 17 at one planted frequency: its loss kernel's top eigenvectors lie at that
    frequency of a + b, far above random subspaces and twice any other frequency (the softmax's harmonics, 2k and 3k,
    come next); the other model's frequency is not there. Either statistic."""
    from synthetic import planted_model

    cfg, weights = planted_model(17, [planted])
    model, task = tl_adapter.build_model(cfg, weights), mi.ModularTask(p=17, frac_train=0.8, seed=0)
    kernel = slt.loss_kernel(model, task, (planted,), **KERNEL_QUICK)
    assert kernel.n_draws == 120 and kernel.top == 3
    assert kernel.eigenvectors.shape == (289, slt.kernel.KEPT_EIGENVECTORS)
    assert kernel.random_share == pytest.approx(2 / 289, rel=0.3)  # its expectation: 2 |key| / N
    for reading in kernel.readings.values():
        shares = reading.frequency_shares
        assert int(np.argmax(shares)) + 1 == planted, (reading.statistic, shares)
        assert shares[planted - 1] > 2 * np.delete(shares, planted - 1).max(), (reading.statistic, shares)
        assert reading.fourier_share > 8 * reading.random_share, reading.to_dict()
        assert shares[other - 1] < shares[planted - 1] / 5, (reading.statistic, shares)
    json.dumps(kernel.to_dict())
    frame = kernel.to_frame()
    assert frame["key"].sum() == 1 and set(frame.columns) == {"k", "pearson", "spearman", "key", "random"}


def test_the_loss_kernel_is_devinterps_bif_factored(fitted):
    """Our kernel Z Z^T is devinterp's bif (sequence-level Pearson correlation) on the same draws; the Spearman
    reading is the same correlation of the ranks; the eigen-readings are those of the dense matrix."""
    from devinterp.slt.bif import bif

    from modadd_interp.slt import kernel as K

    cfg = small_config(p=13, d_mlp=16)
    model = tl_adapter.build_model(cfg, fitted)
    settings = dict(lr=3e-5, num_chains=2, num_draws=30, num_steps_bw_draws=2, num_burnin_steps=10, batch_size=64)
    ours = slt.loss_kernel(model, TASK, (1, 2), keep_losses=True, **settings)
    sampled = slt._Sampled(cfg, tl_adapter.canonical_weights(model), tl_adapter.backend_name(model))
    observed, rows = K._grid_observable(TASK, cfg, 64)
    n_train = int(TASK.train_mask.sum())
    with slt._preserved_global_state(), slt._quiet_sampler(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = bif(sampled, slt.training_dataset(TASK, cfg), {"grid": (observed, len(rows) // 64)}, lr=3e-5,
                     n_beta=n_train / math.log(n_train), num_chains=2, num_draws=30, num_steps_bw_draws=2,
                     num_burnin_steps=10, batch_size=64, localization=slt.DEFAULT_LOCALIZATION, init_seed=0,
                     num_init_loss_batches=n_train // 64, device="cpu", loss_fn=slt.make_loss_fn(TASK),
                     correlation_method="sequence", bif_device="cpu")
    order = K._grid_order(torch.from_numpy(theirs["input_ids"].values), TASK, rows)
    dense = torch.from_numpy(np.asarray(theirs["influences"].values, dtype=np.float64))[order][:, order]
    z = K.standardized(torch.from_numpy(ours.losses))
    constant = z.abs().sum(1) == 0  # no correlation: NaN in bif's, zero rows in ours
    both = ~constant
    np.testing.assert_allclose((z @ z.T)[both][:, both].numpy(), dense[both][:, both].numpy(), atol=2e-5)
    # the eigenvalues of the dense kernel are the readings' (the nonzero ones)
    eig = torch.linalg.eigvalsh(torch.nan_to_num(dense[both][:, both]).double()).flip(0)[:10] / 169
    assert eig.numpy() == pytest.approx(ours.readings["pearson"].eigenvalues[:10], rel=1e-3, abs=1e-6)
    ranks = K.average_ranks(torch.tensor([[3.0, 1.0, 1.0, 2.0], [5.0, 5.0, 5.0, 5.0]]))
    assert ranks.tolist() == [[3.0, 0.5, 0.5, 2.0], [1.5, 1.5, 1.5, 1.5]]


def test_the_report_command_takes_llc_as_the_progress_command_does(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from modadd_interp import report as report_module
    from modadd_interp.cli import app

    seen = []

    def fake(model, task, out, run=None, llc=False, **kwargs):  # noqa: ARG001 - only the translation of --llc
        seen.append(llc)
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "index.html").write_text("<html></html>")
        return Path(out) / "index.html"

    monkeypatch.setattr(report_module, "render_report", fake)
    for flag, expected in ((["--llc", "components"], "components"), (["--llc", "model"], True), ([], False)):
        result = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "r"), *flag])
        assert result.exit_code == 0, result.output
        assert seen[-1] == expected
    result = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "r"), "--llc"])
    assert result.exit_code != 0
    result = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "r"), "--llc", "heads"])
    assert result.exit_code != 0 and "model' or 'components'" in result.output
