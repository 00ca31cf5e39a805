"""The format registry: its documented order, formats added from outside the package by one module, the one table
of bridge names, and the notice that says what a state dict's reader assumed."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_weights, small_config
from reference import canonical_forward

import modadd_interp as mi
from modadd_interp import formats, tl_adapter
from modadd_interp.checkpoints import from_state_dict, read_checkpoint
from modadd_interp.config import ModelConfig
from modadd_interp.formats import Assumed, Checkpoint, Series
from modadd_interp.formats.hooked_transformer import CANONICAL, UNRECORDED
from modadd_interp.formats.layout import Layout, config_of_dims, tensor_dict
from modadd_interp.loading import SHIPPED_MODEL, data_path
from modadd_interp.runs import write_series
from modadd_interp.storage import save_tensors

pytestmark = pytest.mark.adapter

DOCS = Path(__file__).resolve().parents[1] / "docs" / "formats.md"
DATA = Path(__file__).parent / "data"
PIZZA_A = DATA / "clock_and_pizza" / "model_p99zdpze5l.pt"
FAMILY_2LAYER = DATA / "trained" / "family_2layer.safetensors"
DOCUMENTED_ORDER = ["run_directory", "modadd_interp", "chughtai", "clock_and_pizza_mlp", "clock_and_pizza", "paper",
                    "bridge", "hooked_transformer"]
P = 13
CFG = small_config(P)


# --------------------------------------------------- formats defined here, one module (class) each
class ToyRenamed:
    """A format added by one class: canonical weights under ``toy/`` names (an object-level format)."""

    NAME = "toy_renamed"
    PREFIX = "toy/"

    @staticmethod
    def sniff(src) -> bool:
        obj = src.content
        return isinstance(obj, dict) and any(isinstance(k, str) and k.startswith(ToyRenamed.PREFIX) for k in obj)

    @staticmethod
    def read(src, options) -> Checkpoint:  # noqa: ARG004 - the format protocol
        state = {k.removeprefix(ToyRenamed.PREFIX): v for k, v in tensor_dict(src.content).items()}
        blocks, dims = CANONICAL.read(state)  # the shared shape engine
        config = config_of_dims(dims, len(blocks))
        return Checkpoint(config, state, None, None, ToyRenamed.NAME,
                          assumed=Assumed(UNRECORDED, "is a toy state dict, which records no configuration"))


class ToyNpz:
    """A format added by one class: ``<name>.npz`` of ``{step}/{canonical name}`` arrays with ``<name>.json`` beside
    it (``config``, ``steps``); a series (a path-level format)."""

    NAME = "toy_npz"

    @staticmethod
    def sniff(src) -> bool:
        return src.path is not None and src.path.suffix == ".npz" and src.path.with_suffix(".json").is_file()

    @staticmethod
    def read(src, options) -> Checkpoint | Series:
        info = json.loads(src.path.with_suffix(".json").read_text())
        config = ModelConfig(**info["config"])
        arrays = np.load(src.path, allow_pickle=False)
        checkpoints = []
        for step in info["steps"]:
            weights = {k.split("/", 1)[1]: torch.from_numpy(arrays[k]) for k in arrays.files
                       if k.startswith(f"{step}/")}
            checkpoints.append(Checkpoint(config, weights, None, step, ToyNpz.NAME))
        series = Series(tuple(checkpoints))
        return series if options.series else series.checkpoints[-1]


@pytest.fixture
def toy_formats():
    """Register the two toy formats (last, as a plugin's would be) for one test."""
    formats.register(ToyRenamed)
    formats.register(ToyNpz)
    yield
    formats.unregister(ToyRenamed.NAME)
    formats.unregister(ToyNpz.NAME)


def _toy_state(w: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {ToyRenamed.PREFIX + k: v for k, v in w.items()}


# ----------------------------------------------------------------------------- the order
def test_the_registry_order_is_the_documented_one():
    assert [f.NAME for f in formats.formats()] == DOCUMENTED_ORDER
    assert [m.NAME for m in formats.BUILTIN_ORDER] == DOCUMENTED_ORDER
    section = DOCS.read_text().split("## The registry", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\d+\. \*\*`(\w+)`\*\*", section, flags=re.M)
    assert listed == DOCUMENTED_ORDER, "docs/formats.md lists another order"


def test_a_safetensors_file_of_ours_named_like_clock_and_pizza_goes_to_ours(tmp_path):
    """Both ours (its metadata) and Clock-and-Pizza (its name, its config beside it) could claim it: ours is first."""
    w = random_weights(CFG)
    save_tensors(tmp_path / "model_x.pt", w, {"config": CFG.to_dict(), "task": {"p": P}})
    (tmp_path / "config_x.json").write_text(json.dumps({"C": P, "attn_coeff": 0.0}))
    ckpt = read_checkpoint(tmp_path / "model_x.pt")
    assert ckpt.format == "modadd_interp" and ckpt.config == CFG


def test_a_dict_with_a_series_and_a_model_is_read_as_the_series():
    """The paper module owns both containers and reads ``state_dicts`` first: the series' last state dict."""
    first, last = random_weights(CFG, seed=1), random_weights(CFG, seed=2)
    obj = {"model": first, "state_dicts": [first, last], "epochs": [0, 50]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ckpt = formats.registry.read_final(formats.Source.of_object(obj), formats.ReadOptions())
    assert ckpt.step == 50 and torch.equal(ckpt.weights["embed.W_E"], last["embed.W_E"])


def test_bridge_keys_go_to_the_bridge_before_the_canonical_layout():
    state = tl_adapter.canonical_to_bridge(CFG, random_weights(CFG))
    state["blocks.0.attn.W_O"] = torch.zeros(2, 8, 16)  # a HookedTransformer key: the bridge claims first
    with pytest.raises(mi.InvalidWeightsError, match=r"TransformerBridge state dict, but keys are unexpected: "
                                                     r"\['blocks\.0\.attn\.W_O'\]"):
        from_state_dict(state, n_heads=2)


def test_a_registered_format_takes_its_place_in_the_order():
    """Registered last, a format sees only what no built-in claims; registered before one, it comes first."""

    class ClaimsCanonical:
        NAME = "claims_canonical"
        sniff = staticmethod(lambda src: isinstance(src.content, dict) and "embed.W_E" in src.content)
        read = staticmethod(lambda src, options: Checkpoint(CFG, random_weights(CFG), None, 7, "claims_canonical"))

    state = random_weights(CFG)
    try:
        formats.register(ClaimsCanonical)
        with pytest.warns(UserWarning, match="HookedTransformer state dict"):
            assert from_state_dict(state).format == "hooked_transformer"
        formats.unregister(ClaimsCanonical.NAME)
        formats.register(ClaimsCanonical, before="hooked_transformer")
        assert [f.NAME for f in formats.formats()][-2:] == ["claims_canonical", "hooked_transformer"]
        assert from_state_dict(state).format == "claims_canonical"
    finally:
        formats.unregister(ClaimsCanonical.NAME)
    assert [f.NAME for f in formats.formats()] == DOCUMENTED_ORDER


# --------------------------------------------------------------- a format added by one module
@pytest.mark.usefixtures("toy_formats")
def test_a_format_added_outside_the_package_is_read_by_load(tmp_path):
    w = random_weights(CFG)
    torch.save(_toy_state(w), tmp_path / "toy.pt")
    with pytest.warns(UserWarning, match=r"toy\.pt is a toy state dict.*assumed attention rate 1"):
        model, task = mi.load(tmp_path / "toy.pt", op="add")
    tokens = task.inputs
    with torch.no_grad():
        torch.testing.assert_close(model(tokens), canonical_forward(w, tokens), rtol=1e-4, atol=1e-4)
    assert read_checkpoint(tmp_path / "toy.pt", config={"attn_rate": 1.0, "act_fn": "relu", "attention_dir": "causal",
                                                        "has_eq": True, "separate_b_tokens": False}).notes == ()


@pytest.mark.usefixtures("toy_formats")
def test_a_format_added_outside_the_package_is_read_by_load_run(tmp_path):
    a, b = random_weights(CFG, seed=3), random_weights(CFG, seed=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = mi.load_run([(10, _toy_state(a)), (20, _toy_state(b))])
    assert run.steps == (10, 20) and torch.equal(run.weights[1]["unembed.W_U"], b["unembed.W_U"])
    assert len([c for c in caught if "toy state dict" in str(c.message)]) == 1  # one notice per load
    # inside the paper's series container: the registry reads the nested state dicts too
    torch.save({"state_dicts": [_toy_state(a), _toy_state(b)], "epochs": [1, 2]}, tmp_path / "series.pth")
    with pytest.warns(UserWarning, match="toy state dict"):
        assert mi.load_run(tmp_path / "series.pth").steps == (1, 2)


@pytest.mark.usefixtures("toy_formats")
def test_a_path_format_added_outside_the_package_is_read_by_load_and_load_run(tmp_path):
    steps = [100, 200, 300]
    weights = [random_weights(CFG, seed=s) for s in steps]
    np.savez(tmp_path / "run.npz", **{f"{s}/{k}": v.numpy() for s, w in zip(steps, weights, strict=True)
                                      for k, v in w.items()})
    (tmp_path / "run.json").write_text(json.dumps({"config": CFG.to_dict(), "steps": steps}))
    run = mi.load_run(tmp_path / "run.npz", task=mi.ModularTask(p=P))
    assert run.steps == tuple(steps)
    assert all(torch.equal(run.weights[i][k], weights[i][k]) for i in range(3) for k in weights[i])
    model, task = mi.load(tmp_path / "run.npz", op="add")
    assert torch.equal(tl_adapter.canonical_weights(model)["embed.W_E"], weights[-1]["embed.W_E"])


# ------------------------------------------------------------------- the bridge-name table
def _round_trip_cases():
    cases = {"2-layer family": FAMILY_2LAYER}
    if data_path(SHIPPED_MODEL).exists():
        cases["shipped"] = data_path(SHIPPED_MODEL)
    return cases


@pytest.mark.adapter  # runs in the TL 3.9 suite
@pytest.mark.parametrize("name", sorted(_round_trip_cases()))
def test_the_bridge_name_table_round_trips_bit_exactly(name):
    ckpt = read_checkpoint(_round_trip_cases()[name])
    cfg, w = ckpt.config, ckpt.weights
    assert cfg.attn_rate == 1.0  # buildable as a bridge on TL 3.9 too
    state = tl_adapter.canonical_to_bridge(cfg, w)
    assert sorted(state) == sorted(tl_adapter.bridge_names(cfg.n_layers).values())
    again_cfg, again = tl_adapter.bridge_to_canonical(state, cfg.n_heads, act_fn=cfg.act_fn,
                                                      attention_dir=cfg.attention_dir, has_eq=cfg.has_eq)
    assert again_cfg == cfg and again.keys() == w.keys()
    assert all(torch.equal(again[k], w[k]) for k in w)
    # through a live bridge: its own state dict is the table's, and reads back bit-exactly
    bridge = tl_adapter.build_model(cfg, w, backend="bridge")
    live = bridge.state_dict()
    assert all(torch.equal(live[k], v) for k, v in state.items())
    read_back = tl_adapter.canonical_weights(bridge)
    assert all(torch.equal(read_back[k], w[k]) for k in w)
    trained = set(tl_adapter.canonical_parameters(bridge))
    assert set(w) - {"unembed.b_U"} <= trained <= set(w)  # the unembed bias may be a buffer
    tl_adapter.set_weights(bridge, cfg, {k: v * 2 for k, v in w.items()})
    assert torch.equal(tl_adapter.canonical_weights(bridge)["blocks.0.attn.W_O"], w["blocks.0.attn.W_O"] * 2)
    if tl_adapter.HAS_HOOKED_TRANSFORMER:
        hooked = tl_adapter.build_model(cfg, w, backend="hooked_transformer")
        assert all(torch.equal(tl_adapter.canonical_weights(hooked)[k], w[k]) for k in w)


def test_the_bridge_format_checks_shapes_with_the_table():
    from modadd_interp.formats.bridge import LAYOUT

    assert isinstance(LAYOUT, Layout)
    assert set(LAYOUT.expand(["blocks.0"])) == set(tl_adapter.bridge_names(1).values())
    state = tl_adapter.canonical_to_bridge(CFG, random_weights(CFG))
    state["blocks.0.attn.o.weight"] = torch.zeros(16, 12)
    with pytest.raises(mi.InvalidWeightsError, match=r"o\.weight has shape \(16, 12\), but its n_heads\*d_head should "
                                                     r"be 16"):
        from_state_dict(state, n_heads=2)


# -------------------------------------------------------------------- no silent guesses
def test_from_state_dict_says_what_it_assumed_and_config_gives_it():
    w = random_weights(CFG)
    fields = r"its attention rate, activation, attention direction and token layout are unknown"
    assumed = r"assumed attention rate 1, ReLU, causal attention and inputs \(a, b, '='\)\..*config="
    with pytest.warns(UserWarning, match=rf"this state dict is a HookedTransformer state dict.*{fields}; {assumed}"):
        ckpt = from_state_dict(w)
    assert len(ckpt.notes) == 1 and ckpt.config.attn_rate == 1.0
    partial = from_state_dict(w, config={"attn_rate": 0.25, "act_fn": "gelu"})
    assert (partial.config.attn_rate, partial.config.act_fn) == (0.25, "gelu")
    assert "attention direction and token layout are unknown" in partial.notes[0] and "attention rate" not in \
        partial.notes[0].split(":")[1]
    full = from_state_dict(w, config={"attn_rate": 0.25, "act_fn": "gelu", "attention_dir": "bidirectional",
                                      "has_eq": True, "separate_b_tokens": False})
    assert full.notes == () and full.config.attention_dir == "bidirectional"
    assert from_state_dict(w, config=full.config).config == full.config  # a whole ModelConfig is a config too


def test_a_bridge_state_dict_names_the_head_count_it_assumed():
    state = tl_adapter.canonical_to_bridge(small_config(P, n_heads=4, d_head=4), random_weights(
        small_config(P, n_heads=4, d_head=4)))
    with pytest.warns(UserWarning, match=r"its head count, attention rate, .* assumed 4 heads of d_head 4, .*n_heads="):
        from_state_dict(state)
    with pytest.warns(UserWarning) as caught:
        from_state_dict(state, n_heads=4)
    assert all("head count" not in str(c.message) for c in caught)


def test_clock_and_pizza_weights_given_as_pairs_say_what_was_assumed():
    """The case that computed an attention-rate-1 frame in silence: Model A's state dict passed as (step, dict)."""
    state = torch.load(PIZZA_A, weights_only=True, map_location="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = mi.load_run([(20000, state)])
    notices = [str(c.message) for c in caught]
    assert len(notices) == 1 and "like a Clock-and-Pizza model, without its config_<id>.json" in notices[0]
    assert "assumed attention rate 1" in notices[0] and run.config.attn_rate == 1.0
    given = {"attn_rate": 0.0, "attention_dir": "bidirectional", "has_eq": False, "act_fn": "relu",
             "separate_b_tokens": False}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        right = mi.load_run([(20000, state)], config=given)
    loaded, _ = mi.load(PIZZA_A)
    assert right.config == tl_adapter.model_config(loaded)


def test_a_run_directory_and_a_series_file_assume_nothing(tmp_path):
    run = mi.train(mi.ModularTask(p=7, frac_train=0.5), tmp_path / "run", steps=4, checkpoint_every=2, progress=False,
                   config=ModelConfig.paper(7, d_model=8, n_heads=2, d_head=4, d_mlp=16, attn_rate=1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        series = mi.load_run(run)
        write_series(series, tmp_path / "series.safetensors")
        again = mi.load_run(tmp_path / "series.safetensors")
        final = read_checkpoint(tmp_path / "series.safetensors")  # a series file loads as its last checkpoint
    assert again.steps == series.steps == (2, 4) and final.step == 4 and final.config == series.config


def test_the_clock_and_pizza_file_still_names_its_missing_config(tmp_path):
    shutil.copy(PIZZA_A, tmp_path / "model_a.pt")
    match = (r"model_a\.pt has the progress-measures layout with 2 positions, like a Clock-and-Pizza model, but no "
             r"config_<id>\.json beside it: its attention rate")
    with pytest.warns(UserWarning, match=match):
        ckpt = read_checkpoint(tmp_path / "model_a.pt")
    assert len(ckpt.notes) == 1


def test_register_refuses_what_is_not_a_format():
    with pytest.raises(ValueError, match=r"is not a format: it needs a NAME \(str\), sniff\(src\) and read"):
        formats.register(object())
    with pytest.raises(ValueError, match="a format named 'paper' is already registered"):
        formats.register(formats.paper)
    with pytest.raises(ValueError, match=r"no registered format is named 'nope'; the formats are \['run_directory'"):
        formats.register(ToyRenamed, before="nope")
    assert [f.NAME for f in formats.formats()] == DOCUMENTED_ORDER


def test_config_may_give_a_bridge_state_dicts_head_count():
    cfg = small_config(P, n_heads=4, d_head=4)
    state = tl_adapter.canonical_to_bridge(cfg, random_weights(cfg))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert from_state_dict(state, config={"n_heads": 2}).config.n_heads == 2
        with pytest.raises(mi.ArchitectureError, match="n_heads must be a positive integer, got True"):
            from_state_dict(state, config={"n_heads": True})
