"""The singular-learning-theory lens: LLC estimates (devinterp's SGLD) and degeneracy measures."""

from __future__ import annotations

import json
import random
import warnings

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
    for column in ("llc_mean", "llc_std", "llc_healthy", "dead_neurons", "nearly_dead_neurons", "erank_wl",
                   "erank_we", "weights_needed"):
        assert column in frame.columns and frame[column].notna().all()
    assert frame["step"].tolist() == [100, 200]
    assert "llc_mean" not in mi.progress_measures(fitted_run, progress=False).columns
    fig = llc_figure(frame)
    assert len(fig.data) == 6


def test_report_gets_the_llc_panel(fitted_run, tmp_path):
    model, task = mi.load(fitted_run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        page = mi.render_report(model, task, tmp_path, run=fitted_run, llc=QUICK)
    html = page.read_text()
    assert "Local learning coefficient" in html and "Progress over training" in html
