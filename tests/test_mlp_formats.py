"""Zhong et al.'s MLP-only models (``code/train-linear.py``: types A, D, X load; B, C refused): their forward pass on
the whole grid, the config beside the file, and bad input. The fixture is ours, written in their layout
(scripts/make_chughtai_fixtures.py)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from forward_bounds import check_within, gamma_typical, pizza_mlp

import modadd_interp as mi
from modadd_interp import tl_adapter
from modadd_interp.checkpoints import from_state_dict, read_checkpoint

DATA = Path(__file__).parent / "data" / "clock_and_pizza_mlp"
FIXTURE = DATA / "model_fixtured.pt"
N = 31


def _state(path: Path = FIXTURE) -> dict:
    return torch.load(path, weights_only=True, map_location="cpu")


def _random_state(kind: str, n: int = 11, e: int = 8, h: int = 16, seed: int = 0) -> dict:
    """A random member of their MyModel{kind} (train-linear.py's names and shapes)."""
    g = torch.Generator().manual_seed(seed)
    state = {"unembed.weight": torch.randn(n, h, generator=g), "l1.bias": torch.randn(h, generator=g)}
    if kind == "X":
        state["embed1.weight"], state["embed2.weight"] = torch.randn(n, e, generator=g), torch.randn(n, e, generator=g)
        state["l1.weight"] = torch.randn(h, e, generator=g)
    else:
        state["embed.weight"] = torch.randn(n, e, generator=g)
        state["l1.weight"] = torch.randn(h, 2 * e if kind == "D" else e, generator=g)
    return state


def _logits(model, task) -> torch.Tensor:
    with torch.no_grad():
        return model(tl_adapter.model_config(model).encode(task.pairs))[:, -1]


def _grid(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.arange(n).repeat_interleave(n), torch.arange(n).repeat(n)


def test_the_fixture_loads_with_its_config_and_computes_their_forward_pass():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model, task = mi.load(FIXTURE)
    cfg = tl_adapter.model_config(model)
    assert (cfg.arch, cfg.embed, cfg.shared_embed, cfg.act_fn, cfg.d_embed, cfg.d_mlp) == ("mlp", "concat", True,
                                                                                          "relu", 64, 128)
    assert (task.op, task.op_source, task.split, task.frac_train) == ("add", "recorded", "unknown", 0.8)
    assert [str(w.message) for w in record if "split" in str(w.message)], "the unknown split is said"
    reference, bound = pizza_mlp(_state(), *_grid(N))
    logits = _logits(model, task)
    check_within(logits, reference, bound)
    check_within(logits, *pizza_mlp(_state(), *_grid(N), g=gamma_typical))
    assert task.accuracy(logits) == 1.0


@pytest.mark.parametrize("kind", ["A", "D", "X"])
def test_every_one_layer_type_computes_their_forward_pass(kind):
    state = _random_state(kind)
    with pytest.warns(UserWarning, match=f"Clock-and-Pizza MLP-only model \\(type {kind}\\) without its config"):
        ckpt = from_state_dict(state)
    cfg = ckpt.config
    assert (cfg.embed, cfg.shared_embed) == {"A": ("sum", True), "D": ("concat", True), "X": ("sum", False)}[kind]
    model = tl_adapter.build_model(cfg, ckpt.weights)
    reference, bound = pizza_mlp(state, *_grid(11))
    with torch.no_grad():
        logits = model(cfg.encode(mi.ModularTask(p=11).pairs))[:, -1]
    check_within(logits, reference, bound)
    check_within(logits, *pizza_mlp(state, *_grid(11), g=gamma_typical))


def test_the_type_is_checked_against_the_config(tmp_path):
    shutil.copy(FIXTURE, tmp_path / "model_m.pt")
    config = json.loads(FIXTURE.with_name("config_fixtured.json").read_text())
    (tmp_path / "config_m.json").write_text(json.dumps({**config, "model_type": "A"}))
    with pytest.raises(mi.ArchitectureError, match=r"config_m.json says model_type 'A', but the weights are type D's"):
        mi.load(tmp_path / "model_m.pt")
    (tmp_path / "config_m.json").write_text(json.dumps({**config, "C": 59, "n_vocab": 59}))
    with pytest.raises(mi.ArchitectureError, match=r"says C=59, but the weights have 31 tokens"):
        mi.load(tmp_path / "model_m.pt")


def test_a_second_hidden_layer_is_refused_in_one_line(tmp_path):
    state = {**_random_state("A"), "l2.weight": torch.zeros(16, 16), "l2.bias": torch.zeros(16)}
    torch.save(state, tmp_path / "model_b.pt")
    with pytest.raises(mi.ArchitectureError, match=r"model_b.pt is a Clock-and-Pizza MLP-only model with two hidden "
                                                   r"layers \(l1 and l2: model_type B or C\)") as err:
        mi.load(tmp_path / "model_b.pt")
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_b.pt"]


def test_missing_tensors_are_named(tmp_path):
    state = _state()
    del state["unembed.weight"]
    torch.save(state, tmp_path / "model_m.pt")
    with pytest.raises(mi.InvalidWeightsError, match=r"MLP-only \(model_type A or D\) state dict, but keys are "
                                                     r"missing: \['unembed.weight'\]"):
        mi.load(tmp_path / "model_m.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_m.pt"]


def test_an_l1_that_fits_neither_sum_nor_concat_is_named():
    state = _random_state("A")
    state["l1.weight"] = torch.zeros(16, 5)
    with pytest.raises(mi.InvalidWeightsError, match=r"input width 5 is neither the embedding's 8 .* nor twice it"):
        from_state_dict(state)


def test_read_checkpoint_names_the_format():
    ckpt = read_checkpoint(FIXTURE)
    assert ckpt.format == "clock_and_pizza_mlp" and ckpt.step == 3000
