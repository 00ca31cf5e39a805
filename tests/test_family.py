"""The Clock-and-Pizza family: their file format, their forward pass, and deeper / GeLU / constant-attention models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import assert_unchanged, model_snapshot, refuses_attention_rate
from reference import pizza_forward, pizza_tokens
from typer.testing import CliRunner

import modadd_interp as mi
from modadd_interp import tl_adapter
from modadd_interp.causal import ablate_heads, ablate_mlp, ablate_skip, ablation_table
from modadd_interp.cli import app
from modadd_interp.config import ModelConfig
from modadd_interp.probes import grid_cache

DATA = Path(__file__).parent / "data"
PIZZA = {"A": DATA / "clock_and_pizza" / "model_p99zdpze5l.pt", "B": DATA / "clock_and_pizza" / "model_l8k1hzciux.pt"}
TRAINED = DATA / "trained"
FAMILY = {name: TRAINED / f"family_{name}.safetensors" for name in ("2layer", "3layer", "gelu")}


def _config_of(path: Path) -> dict:
    return json.loads(path.with_name(path.name.replace("model_", "config_").replace(".pt", ".json")).read_text())


def _their_state(path: Path) -> dict:
    return torch.load(path, weights_only=True, map_location="cpu")


@pytest.mark.adapter
@pytest.mark.parametrize("name", ["A", "B"])
def test_fixture_forward_pass_equals_the_authors(name, backend):
    if refuses_attention_rate(backend, _config_of(PIZZA[name])["attn_coeff"]):
        with pytest.raises(mi.ArchitectureError, match="only reports the pattern after computing the output"):
            mi.load(PIZZA[name], backend=backend)
        return
    model, task = mi.load(PIZZA[name], backend=backend)
    config = _config_of(PIZZA[name])
    tokens = pizza_tokens(config)
    with torch.no_grad():
        ours = model(tokens)[:, -1]
        theirs = pizza_forward(_their_state(PIZZA[name]), config, tokens)[:, -1]
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-4)
    assert bool((ours[:, : task.p].argmax(-1) == task.labels).all())  # accuracy 1.0 on the full grid
    cfg = tl_adapter.model_config(model)
    assert (cfg.attn_rate, cfg.has_eq, cfg.attention_dir) == ({"A": 0.0, "B": 1.0}[name], False, "bidirectional")
    assert (task.p, task.op, task.op_source, task.split_known, task.frac_train) == (59, "add", "recorded", False, 0.8)


def _random_family_member(tmp_path: Path, seed: int, **overrides) -> tuple[Path, dict, dict]:
    """Random weights in their layout, saved as ``model_<id>.pt`` + ``config_<id>.json``."""
    config = {"C": 11, "n_heads": 4, "d_model": 32, "n_layers": 1, "act_fn": "ReLU", "attn_coeff": 1.0,
              "diff_vocab": 0, "eqn_sign": 0, "frac": 0.8, "funcs": "lambda x: (x[0]+x[1])%11", **overrides}
    c, dm, heads = config["C"], config["d_model"], config["n_heads"]
    dh, vocab = dm // heads, c * (2 if config["diff_vocab"] else 1) + int(bool(config["eqn_sign"]))
    n_ctx = 2 + int(bool(config["eqn_sign"]))
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g) / dm**0.5

    sd = {"embed.W_E": rand(dm, vocab), "pos_embed.W_pos": rand(n_ctx, dm), "unembed.W_U": rand(dm, vocab)}
    for layer in range(config["n_layers"]):
        b = f"blocks.{layer}"
        sd.update({f"{b}.attn.W_K": rand(heads, dh, dm), f"{b}.attn.W_Q": rand(heads, dh, dm),
                   f"{b}.attn.W_V": rand(heads, dh, dm), f"{b}.attn.W_O": rand(dm, dh * heads),
                   f"{b}.attn.mask": torch.ones(n_ctx, n_ctx).tril(), f"{b}.mlp.W_in": rand(4 * dm, dm),
                   f"{b}.mlp.b_in": rand(4 * dm), f"{b}.mlp.W_out": rand(dm, 4 * dm), f"{b}.mlp.b_out": rand(dm)})
    path = tmp_path / f"model_r{seed}.pt"
    torch.save(sd, path)
    (tmp_path / f"config_r{seed}.json").write_text(json.dumps(config))
    return path, sd, config


@pytest.mark.adapter
@pytest.mark.parametrize("variant", [
    dict(n_layers=2, attn_coeff=0.3),
    dict(n_layers=3, act_fn="GeLU", attn_coeff=0.0),
    dict(diff_vocab=1, eqn_sign=1, attn_coeff=0.7),
    dict(d_model=86, eqn_sign=1),  # d_head 21: heads * d_head != d_model
    dict(n_layers=4, diff_vocab=1, attn_coeff=0.01, act_fn="GeLU"),
], ids=["2-layer", "3-layer-gelu-constant", "diff-vocab-eq", "d-model-86", "4-layer-diff-vocab"])
def test_every_member_of_the_family_runs_the_authors_forward_pass(tmp_path, backend, variant):
    path, sd, config = _random_family_member(tmp_path, seed=len(str(variant)), **variant)
    if refuses_attention_rate(backend, config["attn_coeff"]):
        with pytest.raises(mi.ArchitectureError, match="use backend='hooked_transformer'"):
            mi.load(path, backend=backend)
        return
    model, task = mi.load(path, backend=backend)  # funcs names the op; the split is unknown
    tokens = pizza_tokens(config)
    with torch.no_grad():
        torch.testing.assert_close(model(tokens)[:, -1], pizza_forward(sd, config, tokens)[:, -1], rtol=0, atol=1e-4)
    assert task.op == "add" and tl_adapter.model_config(model).n_layers == config["n_layers"]


def test_two_layer_mlp_only_models_are_refused_in_one_line(tmp_path):
    """Their one-hidden-layer MLPs load (tests/test_mlp_formats.py); types B and C have a second hidden layer."""
    torch.save({"l1.weight": torch.zeros(4, 4), "l2.weight": torch.zeros(4, 4)}, tmp_path / "model_m.pt")
    (tmp_path / "config_m.json").write_text(json.dumps({"C": 59, "model_type": "B"}))
    match = r"model_m.pt is a Clock-and-Pizza MLP-only model with two hidden layers \(l1 and l2"
    with pytest.raises(mi.ArchitectureError, match=match):
        mi.load(tmp_path / "model_m.pt")


def test_a_config_that_does_not_fit_is_refused(tmp_path):
    path, _, _ = _random_family_member(tmp_path, 1, act_fn="Tanh")
    with pytest.raises(mi.ArchitectureError, match="act_fn 'Tanh' is not supported"):
        mi.load(path)
    path, _, config = _random_family_member(tmp_path, 2)
    path.with_name("config_r2.json").write_text(json.dumps({**config, "diff_vocab": 1}))
    with pytest.raises(mi.ArchitectureError, match="the config does not belong to these weights"):
        mi.load(path)


def test_an_unreadable_funcs_is_read_from_the_model_instead(tmp_path):
    shutil.copy(PIZZA["B"], tmp_path / "model_b.pt")
    (tmp_path / "config_b.json").write_text(json.dumps({**_config_of(PIZZA["B"]), "funcs": "lambda x: f(x)"}))
    with pytest.warns(UserWarning, match=r"op inferred: 'add' .* answers 100.0% of the grid"):
        _, task = mi.load(tmp_path / "model_b.pt")
    assert (task.op, task.op_source) == ("add", "inferred")


def test_without_its_config_a_family_model_says_what_was_assumed(tmp_path):
    shutil.copy(PIZZA["A"], tmp_path / "model_a.pt")
    match = r"no config_<id>.json beside it: its attention rate.*assumed attention rate 1"
    with pytest.warns(UserWarning, match=match):
        model, _ = mi.load(tmp_path / "model_a.pt")
    assert tl_adapter.model_config(model).attn_rate == 1.0


@pytest.mark.parametrize("name", ["A", "B"])
def test_cli_analyze_json_on_the_fixtures(name):
    result = CliRunner().invoke(app, ["analyze", str(PIZZA[name]), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("{"):])
    for key in ("p", "op", "op_source", "accuracy", "key_frequencies", "neuron_clusters", "restricted_loss",
                "excluded_loss", "claims", "circuit_confirmed", "n_layers"):
        assert key in out
    assert out["accuracy"] == 1.0 and out["p"] == 59 and out["op"] == "add" and out["op_source"] == "recorded"
    assert out["train_loss"] is None and "train_loss" in out["unavailable"]


def test_the_attention_rate_is_part_of_the_model_and_analyses_leave_only_it():
    model, task = mi.load(PIZZA["A"])
    plain = tl_adapter.build_model(tl_adapter.model_config(model).__class__(
        **{**tl_adapter.model_config(model).to_dict(), "attn_rate": 1.0}), tl_adapter.canonical_weights(model))
    assert tl_adapter.hook_count(model) > tl_adapter.hook_count(plain)  # the permanent hook_pattern hooks
    tokens = task.pairs[:50]
    with torch.no_grad():
        before = model(tokens)
        model.reset_hooks()  # a user's reset keeps the model's own attention
        torch.testing.assert_close(model(tokens), before, rtol=0, atol=0)
    snapshot = model_snapshot(model)
    mi.analyze(model, task)
    assert_unchanged(model, snapshot)


@pytest.mark.parametrize("name", sorted(FAMILY))
def test_trained_family_models_are_analysed_layer_by_layer(name):
    model, task = mi.load(FAMILY[name])
    cfg = tl_adapter.model_config(model)
    result = mi.analyze(model, task)
    assert result["accuracy"] >= 0.995 and result["n_layers"] == cfg.n_layers
    assert sorted(result["neurons"]["per_layer"]) == [str(layer) for layer in range(cfg.n_layers)]
    heads = {row["layer"] for row in result["attention"]["heads"]}
    assert heads == set(range(cfg.n_layers))
    rows = result["ablation_table"]
    claims = {c["name"]: c for c in result["claims"]}
    patch = claims["patching each component on the path restores the answer"]
    if cfg.n_layers > 1:
        assert {f"L{layer} MLP zero-ablated" for layer in range(cfg.n_layers)} <= set(rows)
        assert patch["applicable"] is False and patch["passed"] is None
    else:
        assert "MLP skip zero-ablated" in rows and patch["applicable"] is True
    if cfg.attn_rate == 0.0:
        assert all(row["constant"] for row in result["attention"]["heads"])


@pytest.mark.adapter
def test_replayed_last_layer_ablations_equal_hooked_ones_in_a_deeper_model(backend):
    model, task = mi.load(FAMILY["2layer"], backend=backend)
    cache = grid_cache(model, task)
    table = ablation_table(model, task, cache=cache)
    hooked = {
        "L1 head 2 zero-ablated": ablate_heads(model, [2], layer=1),
        "L1 MLP zero-ablated": ablate_mlp(model, layer=1),
        "L1 attention skip zero-ablated": ablate_skip(model, "attn", layer=1),
        "L1 MLP skip zero-ablated": ablate_skip(model, "mlp", layer=1),
    }
    for row, intervention in hooked.items():
        with intervention:
            measured = cache.measure_hooked(())
        assert measured.loss == pytest.approx(table.rows[row].loss, rel=1e-4, abs=1e-6), row
        assert measured.accuracy == pytest.approx(table.rows[row].accuracy, abs=1e-3), row


@pytest.mark.adapter
def test_our_trainer_makes_the_family_with_the_authors_semantics(tmp_path, backend):
    config = ModelConfig.paper(7, has_eq=False, attention_dir="bidirectional", n_layers=2, act_fn="gelu",
                               attn_rate=0.25, d_model=8, n_heads=2, d_head=4, d_mlp=32)
    if refuses_attention_rate(backend, config.attn_rate):
        with pytest.raises(mi.ArchitectureError, match="hook_pattern"):
            mi.train(mi.ModularTask(p=7, frac_train=0.8), tmp_path / "run", config=config, steps=3, progress=False,
                     backend=backend)
        assert not (tmp_path / "run").exists()  # refused before anything is written
        return
    run = mi.train(mi.ModularTask(p=7, frac_train=0.8), tmp_path / "run", config=config, steps=3, progress=False,
                   backend=backend)
    model, task = mi.load(run, backend=backend)
    assert tl_adapter.model_config(model) == config and task.op_source == "recorded"
    w = tl_adapter.canonical_weights(model)  # biases of attention and unembedding stay zero, as in their model
    sd = {"embed.W_E": w["embed.W_E"].T, "pos_embed.W_pos": w["pos_embed.W_pos"], "unembed.W_U": w["unembed.W_U"]}
    for layer in range(2):
        b = f"blocks.{layer}"
        sd.update({f"{b}.attn.W_{x}": w[f"{b}.attn.W_{x}"].transpose(1, 2) for x in "QKV"})
        sd[f"{b}.attn.W_O"] = w[f"{b}.attn.W_O"].reshape(-1, 8).T
        sd.update({f"{b}.mlp.W_in": w[f"{b}.mlp.W_in"].T, f"{b}.mlp.b_in": w[f"{b}.mlp.b_in"],
                   f"{b}.mlp.W_out": w[f"{b}.mlp.W_out"].T, f"{b}.mlp.b_out": w[f"{b}.mlp.b_out"]})
    theirs = {"C": 7, "n_layers": 2, "attn_coeff": 0.25, "act_fn": "GeLU"}
    tokens = pizza_tokens(theirs)
    with torch.no_grad():
        torch.testing.assert_close(model(tokens), pizza_forward(sd, theirs, tokens), rtol=0, atol=1e-5)


def test_cli_trains_the_family(tmp_path):
    args = ["train", str(tmp_path / "r"), "--p", "7", "--steps", "2", "--attn-rate", "0", "--n-layers", "2",
            "--no-eq", "--bidirectional", "--act-fn", "gelu", "--d-model", "8", "--d-mlp", "16", "--n-heads", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    model, _ = mi.load(tmp_path / "r")
    cfg = tl_adapter.model_config(model)
    assert (cfg.attn_rate, cfg.n_layers, cfg.has_eq, cfg.act_fn, cfg.attention_dir) == (
        0.0, 2, False, "gelu", "bidirectional")
