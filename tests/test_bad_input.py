"""The bad-input matrix: every row ends in a ModAddError subclass with a message naming the problem."""

from __future__ import annotations

import json
import math
import os
import pickle
import struct
import warnings

import pytest
import torch
from conftest import PAPER_FILES, random_weights, small_config
from reference import to_bridge_state

import modadd_interp as mi
from modadd_interp import tl_adapter
from modadd_interp.checkpoints import from_state_dict, read_checkpoint, read_paper_series
from modadd_interp.errors import RecipeError
from modadd_interp.grid import check_compatible
from modadd_interp.storage import save_tensors
from modadd_interp.train import Recipe

pytestmark = pytest.mark.adapter

P = 13
CFG = small_config(P)
PNG = bytes.fromhex(  # a valid 1x1 PNG
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a2dd3c2c0000000049454e44ae426082"
)


@pytest.fixture
def weights() -> dict[str, torch.Tensor]:
    """Canonical (HookedTransformer-layout) weights of a small p=13 model."""
    return random_weights(CFG)


def to_paper_state(w: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Canonical weights in the progress-measures paper's layout (no attention/unembed biases)."""
    h, dh, dm = w["blocks.0.attn.W_O"].shape
    out = {"embed.W_E": w["embed.W_E"].T, "pos_embed.W_pos": w["pos_embed.W_pos"]}
    for x in "QKV":
        out[f"blocks.0.attn.W_{x}"] = w[f"blocks.0.attn.W_{x}"].transpose(1, 2)
    out["blocks.0.attn.W_O"] = w["blocks.0.attn.W_O"].reshape(h * dh, dm).T
    out["blocks.0.mlp.W_in"] = w["blocks.0.mlp.W_in"].T
    out["blocks.0.mlp.b_in"] = w["blocks.0.mlp.b_in"]
    out["blocks.0.mlp.W_out"] = w["blocks.0.mlp.W_out"].T
    out["blocks.0.mlp.b_out"] = w["blocks.0.mlp.b_out"]
    out["unembed.W_U"] = w["unembed.W_U"]
    return {k: v.contiguous() for k, v in out.items()}


def _save(obj, path):
    torch.save(obj, path)
    return path


def _own_file(path, tensors, **info):
    save_tensors(path, tensors, {"config": CFG.to_dict(), **info})
    return path


# ------------------------------------------------------------------ files
def test_sanity_good_files_load(tmp_path, weights):
    """The helpers above produce loadable files, so the rows below fail for the stated reason only."""
    paper = read_checkpoint(_save({"model": to_paper_state(weights), "config": {"p": P, "seed": 4}},
                                  tmp_path / "paper.pth"))
    assert paper.format == "paper" and paper.task.seed == 4
    for name in ("blocks.0.attn.W_Q", "blocks.0.attn.W_O", "blocks.0.mlp.W_in", "unembed.W_U"):
        assert torch.equal(paper.weights[name], weights[name])
    own = read_checkpoint(_own_file(tmp_path / "own.safetensors", weights, task={"p": P, "seed": 2}))
    assert own.format == "modadd_interp" and own.task.seed == 2
    assert read_checkpoint(_save(weights, tmp_path / "ht.pt")).format == "hooked_transformer"


def test_truncated_pth(tmp_path):
    raw = PAPER_FILES["low_precision"].read_bytes()
    path = tmp_path / "half.pth"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(mi.CheckpointError, match=r"half\.pth is not a readable torch checkpoint \(truncated"):
        mi.load(path)


def test_truncated_safetensors(tmp_path, weights):
    raw = _own_file(tmp_path / "m.safetensors", weights).read_bytes()
    path = tmp_path / "half.safetensors"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(mi.CheckpointError, match=r"half\.safetensors is not a valid safetensors file \(truncated"):
        mi.load(path)


@pytest.mark.parametrize("name", ["empty.pth", "empty.safetensors"])
def test_empty_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(mi.CheckpointError, match=r"empty \(0 bytes\)|header too small"):
        mi.load(path)


@pytest.mark.parametrize("name", ["image.png", "image.pth"])
def test_png_is_not_a_checkpoint_and_not_called_unsafe(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(PNG)
    with pytest.raises(mi.CheckpointError, match="is not a readable torch checkpoint") as info:
        mi.load(path)
    assert type(info.value) is mi.CheckpointError  # not UnsafeCheckpointError: it holds no pickle


@pytest.mark.parametrize("text", ["hello world\n", "class Foo:\n    pass\n", "{\"a\": 1}"])
def test_text_file_is_not_a_checkpoint(tmp_path, text):
    path = tmp_path / "notes.pth"
    path.write_text(text)
    with pytest.raises(mi.CheckpointError, match="not a readable torch checkpoint|not a valid safetensors"):
        mi.load(path)


def test_raw_protocol_4_pickle_is_explained(tmp_path, weights):
    path = tmp_path / "pickled.pkl"
    with open(path, "wb") as f:
        pickle.dump(weights, f, protocol=4)
    with pytest.raises(mi.CheckpointError, match=r"raw pickle .*re-save its state dict with torch\.save"):
        mi.load(path)


def test_directory_without_a_run(tmp_path):
    with pytest.raises(mi.CheckpointError, match=r"not a modadd_interp run \(no run\.json\)"):
        mi.load(tmp_path)


def test_run_directory_without_checkpoints(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps(
        {"format": "modadd_interp.run/1", "task": {"p": P}, "config": CFG.to_dict(), "recipe": {}}))
    with pytest.raises(mi.CheckpointError, match="has no checkpoints yet"):
        mi.load(tmp_path)


def test_run_directory_with_only_corrupt_checkpoints(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps(
        {"format": "modadd_interp.run/1", "task": {"p": P}, "config": CFG.to_dict(), "recipe": {}}))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step_0000010.safetensors").write_bytes(b"\x00" * 40)
    with pytest.warns(UserWarning, match="skipping corrupt checkpoint step_0000010"):
        with pytest.raises(mi.CheckpointError, match="every checkpoint of the run .* is unreadable"):
            mi.load(tmp_path)


@pytest.mark.parametrize("content", ["[1, 2]", "{\"format\": \"other\"}", "not json"])
def test_run_json_that_is_not_a_run(tmp_path, content):
    (tmp_path / "run.json").write_text(content)
    with pytest.raises(mi.CheckpointError, match="not a modadd_interp run|not valid JSON"):
        mi.load(tmp_path)


def test_missing_path(tmp_path):
    with pytest.raises(mi.CheckpointError, match=r"nope\.pth does not exist"):
        mi.load(tmp_path / "nope.pth")


# ------------------------------------------------------------ state dicts
def test_missing_keys_are_named(tmp_path, weights):
    del weights["embed.W_E"], weights["blocks.0.mlp.W_out"]
    with pytest.raises(mi.InvalidWeightsError, match=r"missing: \['blocks\.0\.mlp\.W_out', 'embed\.W_E'\]"):
        mi.load(_save(weights, tmp_path / "m.pt"))


def test_extra_keys_are_named(tmp_path, weights):
    weights["blocks.0.attn.rotary"] = torch.zeros(3)
    with pytest.raises(mi.InvalidWeightsError, match=r"unexpected: \['blocks\.0\.attn\.rotary'\]"):
        mi.load(_save(weights, tmp_path / "m.pt"))


def test_missing_key_in_paper_format_is_named(tmp_path, weights):
    state = to_paper_state(weights)
    del state["blocks.0.mlp.b_in"]
    match = r"paper state dict, but keys are missing: \['blocks\.0\.mlp\.b_in'\]"
    with pytest.raises(mi.InvalidWeightsError, match=match):
        mi.load(_save({"model": state}, tmp_path / "m.pth"))


def test_missing_and_extra_keys_in_own_format_are_named(tmp_path, weights):
    del weights["blocks.0.mlp.W_in"]
    weights["extra.W"] = torch.zeros(2)
    match = r"missing keys \['blocks\.0\.mlp\.W_in'\], unexpected keys \['extra\.W'\]"
    with pytest.raises(mi.InvalidWeightsError, match=match):
        mi.load(_own_file(tmp_path / "m.safetensors", weights))


def test_nan_weights_in_pth(tmp_path, weights):
    weights["blocks.0.attn.W_Q"][0, 1, 2] = math.nan
    with pytest.raises(mi.InvalidWeightsError, match=r"blocks\.0\.attn\.W_Q has 1 NaN/inf values"):
        mi.load(_save(weights, tmp_path / "m.pt"))


def test_inf_weights_in_safetensors(tmp_path, weights):
    weights["unembed.W_U"][3, 4] = -math.inf
    weights["unembed.W_U"][5, 6] = math.inf
    with pytest.raises(mi.InvalidWeightsError, match=r"unembed\.W_U has 2 NaN/inf values"):
        mi.load(_own_file(tmp_path / "m.safetensors", weights))


def test_nan_weights_in_paper_format(tmp_path, weights):
    state = to_paper_state(weights)
    state["embed.W_E"][0, 0] = math.nan
    with pytest.raises(mi.InvalidWeightsError, match=r"embed\.W_E has 1 NaN/inf values"):
        mi.load(_save({"model": state}, tmp_path / "m.pth"))


def test_non_tensor_values_are_named(tmp_path, weights):
    weights["blocks.0.mlp.W_in"] = 3
    weights["blocks.0.mlp.b_in"] = [0.0] * 32
    match = r"2 values are not tensors: 'blocks\.0\.mlp\.W_in' \(int\), 'blocks\.0\.mlp\.b_in' \(list\)"
    with pytest.raises(mi.CheckpointError, match=match):
        mi.load(_save(weights, tmp_path / "m.pt"))


def test_non_string_keys(tmp_path, weights):
    weights[7] = torch.zeros(1)
    with pytest.raises(mi.CheckpointError, match=r"keys must be strings; got \['7'\]"):
        mi.load(_save(weights, tmp_path / "m.pt"))


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("blocks.0.attn.W_Q", torch.zeros(16),
         r"blocks\.0\.attn\.W_Q has shape \(16,\) \(1-D\).*\[n_heads, d_model, d_head\]"),
        ("embed.W_E", torch.zeros(14, 16, 1), r"embed\.W_E has shape \(14, 16, 1\) \(3-D\)"),
        ("blocks.0.mlp.b_in", torch.zeros(()), r"blocks\.0\.mlp\.b_in has shape \(\) \(0-D\)"),
        ("pos_embed.W_pos", torch.zeros(3, 20), r"pos_embed\.W_pos has shape \(3, 20\), but its d_model should be 16"),
        ("blocks.0.attn.W_O", torch.zeros(16), r"blocks\.0\.attn\.W_O has shape \(16,\): expected 2-D .* or 3-D"),
    ],
)
def test_wrong_shapes_are_named(tmp_path, weights, key, value, match):
    weights[key] = value
    with pytest.raises(mi.InvalidWeightsError, match=match):
        mi.load(_save(weights, tmp_path / "m.pt"))


def test_paper_w_o_of_the_wrong_width(tmp_path, weights):
    state = to_paper_state(weights)
    state["blocks.0.attn.W_O"] = torch.zeros(16, 12)
    with pytest.raises(mi.InvalidWeightsError, match=r"W_O has shape \(16, 12\), but its n_heads\*d_head should be 16"):
        mi.load(_save({"model": state}, tmp_path / "m.pth"))


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64])
def test_non_float_weights(tmp_path, weights, dtype):
    weights = {k: v.to(dtype) for k, v in weights.items()}
    with pytest.raises(mi.InvalidWeightsError, match=rf"has dtype {dtype}; weights must be floats"):
        mi.load(_save(weights, tmp_path / "m.pt"))


def test_non_contiguous_block_indices(tmp_path, weights):
    weights.update({k.replace("blocks.0", "blocks.2"): v for k, v in weights.items() if k.startswith("blocks.0")})
    with pytest.raises(mi.InvalidWeightsError, match=r"block indices \[0, 2\] are not contiguous"):
        mi.load(_save(weights, tmp_path / "m.pt"))


def test_bridge_head_count_must_divide_the_width(tmp_path, weights):
    path = _save(to_bridge_state(weights), tmp_path / "bridge.pt")
    with pytest.raises(mi.ArchitectureError, match="n_heads=3 does not divide the attention width 16"):
        mi.load(path, n_heads=3)


@pytest.mark.parametrize("n_heads", [0, -1, 2.0, True])
def test_invalid_n_heads(tmp_path, weights, n_heads):
    with pytest.raises(mi.ArchitectureError, match="n_heads must be a positive integer"):
        mi.load(_save(weights, tmp_path / "m.pt"), n_heads=n_heads)


def test_n_heads_that_contradicts_the_file(tmp_path, weights):
    with pytest.raises(mi.ArchitectureError, match=r"the file has 2 heads, but n_heads=4 was given"):
        mi.load(_save(weights, tmp_path / "m.pt"), n_heads=4)


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ([1, 2], "holds a list, not a state dict"),
        (torch.zeros(3), "holds a Tensor, not a state dict"),
        ({}, "the state dict is empty"),
        ({"model": torch.zeros(3)}, "the 'model' entry of .* is a Tensor, not a state dict"),
        ({"x": torch.zeros(2)}, r"unrecognised state dict: .*got \['x'\]"),
    ],
)
def test_torch_files_that_hold_no_state_dict(tmp_path, obj, match):
    with pytest.raises(mi.CheckpointError, match=match):
        mi.load(_save(obj, tmp_path / "m.pth"))


# ------------------------------------------------------------- unsafe pickles
class _Exploit:
    """Unpickling this opens (creates) a marker file: a harmless stand-in for running code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize(
    "how",
    ["torch.save: model", "torch.save: model.W_E", "torch.save: state_dicts", "torch.save legacy",
     "pickle.dump protocol 2", "pickle.dump protocol 5"],
)
def test_code_executing_pickles_are_refused(tmp_path, weights, how):
    marker = tmp_path / "pwned"
    evil = _Exploit(marker)
    nested = {**to_paper_state(weights), "embed.W_E": evil}
    obj = {"torch.save: model": {"model": evil}, "torch.save: model.W_E": {"model": nested},
           "torch.save: state_dicts": {"state_dicts": [to_paper_state(weights), evil]}}.get(how, {"model": nested})
    path = tmp_path / "evil.pth"
    if how.startswith("pickle.dump"):
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=int(how[-1]))
    else:
        torch.save(obj, path, _use_new_zipfile_serialization=how != "torch.save legacy")
    assert not marker.exists()
    match = r"needs arbitrary unpickling .*imports .*open.* nothing in it was executed"
    with pytest.raises(mi.UnsafeCheckpointError, match=match):
        mi.load(path)
    assert not marker.exists()


# --------------------------------------------------------------- series
def _series(states, epochs=None, **extra):
    obj = {"state_dicts": states, **extra}
    if epochs is not None:
        obj["epochs"] = epochs
    return obj


def test_series_with_mixed_p_names_both(weights):
    other = random_weights(small_config(11))
    match = r"mixes moduli: state_dicts\[0\] is for p=13 but state_dicts\[2\] is for p=11"
    with pytest.raises(mi.TaskMismatchError, match=match):
        read_paper_series(_series([weights, weights, other], [0, 10, 20]))


def test_series_with_mixed_architectures(weights):
    other = random_weights(small_config(P, d_mlp=64))
    with pytest.raises(mi.ArchitectureError, match=r"mixes architectures: state_dicts\[1\].*'d_mlp': \(32, 64\)"):
        read_paper_series(_series([weights, other]))


@pytest.mark.parametrize(
    ("epochs", "match"),
    [
        ([0], "has 2 state_dicts but 1 epochs"),
        ([0, 1, 2], "has 2 state_dicts but 3 epochs"),
        (["a", "b"], r"epochs\[0\] must be an integer, got 'a'"),
        ([5, 5], "must be strictly increasing"),
        ("01", "'epochs' must be a list of integers, got a str"),
    ],
)
def test_series_epochs_that_do_not_fit(tmp_path, weights, epochs, match):
    with pytest.raises(mi.CheckpointError, match=match):
        mi.load(_save(_series([weights, weights], epochs), tmp_path / "run.pth"))


def test_series_epochs_may_be_a_tensor(weights):
    assert [c.step for c in read_paper_series(_series([weights, weights], torch.tensor([0, 100])))] == [0, 100]


@pytest.mark.parametrize(
    ("states", "match"), [([], "series is empty"), ("abc", "must be a list of state dicts, got a str")]
)
def test_series_without_state_dicts(tmp_path, states, match):
    with pytest.raises(mi.CheckpointError, match=match):
        mi.load(_save(_series(states), tmp_path / "run.pth"))


def test_series_error_names_the_bad_entry(weights):
    broken = dict(weights)
    broken["blocks.0.attn.W_V"] = broken["blocks.0.attn.W_V"].clone()
    broken["blocks.0.attn.W_V"][0, 0, 0] = math.nan
    with pytest.raises(mi.InvalidWeightsError, match=r"state_dicts\[1\] \(epoch 7\): blocks\.0\.attn\.W_V has 1 NaN"):
        read_paper_series(_series([weights, broken], [3, 7]))


# ----------------------------------------------------------- safetensors
def _raw_safetensors(path, header: bytes):
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    return path


@pytest.mark.parametrize(
    "header",
    [b"{not json", b"[1, 2]", b'{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}'],  # no data
)
def test_safetensors_header_with_bogus_json(tmp_path, header):
    with pytest.raises(mi.CheckpointError, match="not a valid safetensors file"):
        mi.load(_raw_safetensors(tmp_path / "m.safetensors", header))


def test_safetensors_metadata_that_is_not_json(tmp_path):
    header = json.dumps({"__metadata__": {"modadd_interp": "{bad"}}).encode()
    with pytest.raises(mi.CheckpointError, match="metadata of .* is not valid JSON"):
        mi.load(_raw_safetensors(tmp_path / "m.safetensors", header))


@pytest.mark.parametrize(
    ("info", "match"),
    [
        ({"config": {**CFG.to_dict(), "rotary_dim": 4}}, r"metadata 'config' has unknown fields \['rotary_dim'\]"),
        ({"config": CFG.to_dict(), "task": {"p": P, "modulus": 13}},
         r"metadata 'task' has unknown fields \['modulus'\]"),
        ({"config": "paper"}, "metadata 'config' must be a JSON object, got 'paper'"),
        ({"config": {"d_model": 16}}, r"metadata 'config' is malformed: .*missing .* 'd_vocab'"),
        ({"config": CFG.to_dict(), "task": {"p": P, "frac_train": "half"}}, "metadata 'task' is malformed"),
        ({"config": CFG.to_dict(), "step": "last"}, "'step' must be an integer, got 'last'"),
    ],
)
def test_safetensors_metadata_that_is_malformed(tmp_path, weights, info, match):
    save_tensors(tmp_path / "m.safetensors", weights, info)
    with pytest.raises(mi.CheckpointError, match=match):
        mi.load(tmp_path / "m.safetensors")


def test_safetensors_metadata_config_with_a_bad_value(tmp_path, weights):
    save_tensors(tmp_path / "m.safetensors", weights, {"config": {**CFG.to_dict(), "d_model": 16.5}})
    with pytest.raises(mi.ArchitectureError, match="d_model must be a positive integer, got 16.5"):
        mi.load(tmp_path / "m.safetensors")


def test_safetensors_flipped_byte_fails_the_checksum(tmp_path, weights):
    path = _own_file(tmp_path / "m.safetensors", weights)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(mi.CheckpointError, match="fails its checksum"):
        mi.load(path)


# ----------------------------------------------------------- p and the task
def test_vocabulary_that_fits_no_p(tmp_path, weights):
    weights["embed.W_E"] = torch.zeros(20, 16)
    match = r"d_vocab=20, d_vocab_out=13.*d_vocab_out=13 is smaller than p=19"
    with pytest.raises(mi.ArchitectureError, match=match):
        mi.load(_save(weights, tmp_path / "m.pt"))


def test_vocabulary_too_small_for_any_p(tmp_path):
    w = random_weights(small_config(2))
    w["embed.W_E"], w["unembed.W_U"] = w["embed.W_E"][:2], w["unembed.W_U"][:, :1]
    w["unembed.b_U"] = w["unembed.b_U"][:1]
    with pytest.raises(mi.ArchitectureError, match=r"d_vocab=2 leaves p=1 numbers; a task needs p >= 2"):
        mi.load(_save(w, tmp_path / "m.pt"))


def test_p_argument_that_does_not_match_the_model(tmp_path, weights):
    match = r"p=11 was given, but the model's vocabulary \(14 tokens, layout \(a, b, '='\)\) is for p=13"
    with pytest.raises(mi.TaskMismatchError, match=match):
        mi.load(_save(weights, tmp_path / "m.pt"), p=11)


def test_task_argument_that_does_not_match_the_model(tmp_path, weights):
    match = r"the task has p=17, but the model's vocabulary \(14 tokens, layout \(a, b, '='\)\) is for p=13"
    with pytest.raises(mi.TaskMismatchError, match=match):
        mi.load(_save(weights, tmp_path / "m.pt"), task=mi.ModularTask(p=17))


def test_paper_config_whose_p_disagrees_with_the_weights(tmp_path, weights):
    path = _save({"model": to_paper_state(weights), "config": {"p": 97, "seed": 1}}, tmp_path / "m.pth")
    with pytest.raises(mi.TaskMismatchError, match=r"config says p=97, but its weights \(d_vocab=14\) are for p=13"):
        mi.load(path)


def test_paper_config_of_another_operation(tmp_path, weights):
    path = _save({"model": to_paper_state(weights), "config": {"p": P, "fn_name": "mult"}}, tmp_path / "m.pth")
    with pytest.raises(mi.TaskMismatchError, match=r"fn_name='mult'; supported: \['add', 'subtract'\]"):
        mi.load(path)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"config": "p=13"}, "'config' entry must be a dict, got a str"),
        ({"config": {"p": "thirteen"}}, "config's 'p' must be an integer, got 'thirteen'"),
        ({"config": {"p": P, "frac_train": "0.3"}}, "'frac_train' must be a number"),
        ({"epoch": "last"}, "'epoch' entry must be an integer, got 'last'"),
    ],
)
def test_paper_file_with_malformed_entries(tmp_path, weights, extra, match):
    with pytest.raises(mi.CheckpointError, match=match):
        mi.load(_save({"model": to_paper_state(weights), **extra}, tmp_path / "m.pth"))


def test_metadata_task_that_does_not_match_the_architecture(tmp_path, weights):
    path = _own_file(tmp_path / "m.safetensors", weights, task={"p": 11})
    match = r"records a task with p=11, but its architecture \(d_vocab=14\) is for p=13"
    with pytest.raises(mi.TaskMismatchError, match=match):
        mi.load(path)


def test_grid_refuses_a_task_of_another_p(tmp_path, weights):
    model, _ = mi.load(_save(weights, tmp_path / "m.pt"), task=mi.ModularTask(p=P))
    with pytest.raises(mi.TaskMismatchError, match=r"\(d_vocab=14, .*\) is for p=13, but the task has p=11"):
        check_compatible(model, mi.ModularTask(p=11))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(p=13, op="pow"), r"op 'pow' is not supported; supported ops: add, sub, mul, div"),
        (dict(p=12, op="mul"), r"op 'mul' needs a prime p .*; p=12 is not prime"),
        (dict(p=15, op="div"), r"op 'div' needs a prime p"),
        (dict(p=1), r"p must be an integer >= 2, got 1"),
        (dict(p=-5), r"p must be an integer >= 2, got -5"),
        (dict(p=13.0), r"p must be an integer >= 2, got 13\.0"),
        (dict(p="13"), r"p must be an integer >= 2, got '13'"),
        (dict(p=True), r"p must be an integer >= 2, got True"),
        (dict(p=13, frac_train=0.0), r"frac_train must be in \(0, 1\], got 0\.0"),
        (dict(p=13, frac_train=-0.1), r"frac_train must be in \(0, 1\]"),
        (dict(p=13, frac_train=1.5), r"frac_train must be in \(0, 1\], got 1\.5"),
        (dict(p=13, frac_train=math.nan), r"frac_train must be in \(0, 1\], got nan"),
        (dict(p=13, split="random"), r"split 'random' is unknown; use one of paper, randperm"),
    ],
)
def test_invalid_task(kwargs, match):
    with pytest.raises(mi.TaskMismatchError, match=match):
        mi.ModularTask(**kwargs)


# ------------------------------------------------------------ architecture
def test_two_layer_state_dict_loads_and_is_analysed_per_layer(tmp_path):
    cfg = small_config(P, n_layers=2)
    model, task = mi.load(_save(random_weights(cfg), tmp_path / "m.pt"), task=mi.ModularTask(p=P))
    assert check_compatible(model, task).n_layers == 2
    assert mi.probe_neurons(model, task).layers == [0, 1]


def test_two_position_state_dict_reads_as_a_b_without_eq(tmp_path):
    w = random_weights(small_config(P))
    w["pos_embed.W_pos"], w["embed.W_E"] = w["pos_embed.W_pos"][:2], w["embed.W_E"][:P]
    model, task = mi.load(_save(w, tmp_path / "m.pt"), task=mi.ModularTask(p=P))
    cfg = check_compatible(model, task)
    assert (cfg.n_ctx, cfg.has_eq, cfg.d_vocab) == (2, False, P)


def test_model_whose_answers_fit_no_operation_is_refused_with_the_agreements(tmp_path, weights):
    match = r"m.pt does not record its operation, and the model computes none of them on >= 99% .*agreement: "
    with pytest.raises(mi.TaskMismatchError, match=match):
        mi.load(_save(weights, tmp_path / "m.pt"))


def test_split_options_together_with_a_task_are_refused(tmp_path, weights):
    with pytest.raises(mi.TaskMismatchError, match="pass either task= or op/frac_train/seed/split"):
        mi.load(_save(weights, tmp_path / "m.pt"), task=mi.ModularTask(p=P), seed=3)


def _bridge_with_layernorm(normalization_type: str):
    import transformer_lens.model_bridge.sources.native  # noqa: F401  (registers boot_native)
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    cfg = TransformerBridgeConfig(
        n_layers=1, n_heads=2, d_model=16, d_head=8, d_mlp=32, act_fn="relu", d_vocab=P + 1,
        d_vocab_out=P, n_ctx=3, seed=0, normalization_type=normalization_type,
    )
    return TransformerBridge.boot_native(cfg)


@pytest.mark.parametrize("norm", ["LN", "RMS"])
def test_live_bridge_with_layernorm(norm):
    model = _bridge_with_layernorm(norm)
    assert model.cfg.normalization_type == norm
    with pytest.raises(mi.ArchitectureError, match=rf"normalization_type='{norm}' \(LayerNorm is not supported\)"):
        mi.load(model)


def test_layernorm_state_dict_file(tmp_path):
    path = _save(_bridge_with_layernorm("LN").state_dict(), tmp_path / "ln.pt")
    with pytest.raises(mi.ArchitectureError, match=r"has LayerNorm weights \(\['blocks\.0\.ln1\.bias'"):
        mi.load(path)


@pytest.mark.adapter  # runs in the TL 3.9 suite
@pytest.mark.skipif(not tl_adapter.HAS_HOOKED_TRANSFORMER, reason="HookedTransformer needs TL <= 3")
def test_live_hooked_transformer_with_layernorm(tmp_path):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    model = HookedTransformer(HookedTransformerConfig(
        n_layers=1, d_model=16, d_head=8, n_heads=2, d_mlp=32, d_vocab=P + 1, d_vocab_out=P, n_ctx=3,
        act_fn="relu", normalization_type="LN", seed=0))
    with pytest.raises(mi.ArchitectureError, match=r"normalization_type='LN' \(LayerNorm is not supported\)"):
        mi.load(model)
    with pytest.raises(mi.ArchitectureError, match=r"LayerNorm weights \(\['blocks\.0\.ln1\.b'"):
        mi.load(_save(model.state_dict(), tmp_path / "ht_ln.pt"))


def test_not_a_model_at_all():
    match = "expected a TransformerLens HookedTransformer or TransformerBridge, or a modadd_interp HookedMLP, got dict"
    with pytest.raises(mi.ArchitectureError, match=match):
        mi.load({"embed.W_E": torch.zeros(2, 2)})


def test_from_state_dict_rejects_non_mappings():
    with pytest.raises(mi.CheckpointError, match="expected a state dict .*got a list"):
        from_state_dict([torch.zeros(2)])


# ------------------------------------------------- what a state dict does not record, and config=
ASSUMED = (r"is a HookedTransformer state dict, which records no configuration: its attention rate, activation, "
           r"attention direction and token layout are unknown; assumed attention rate 1, ReLU, causal attention and "
           r"inputs \(a, b, '='\)\. If any differs, give it: config=\{'attn_rate': 1\.0, 'act_fn': 'relu', ")


def test_a_state_dict_file_says_what_was_assumed(tmp_path, weights):
    with pytest.warns(UserWarning, match=r"m\.pt " + ASSUMED):
        mi.load(_save(weights, tmp_path / "m.pt"), op="add")


def test_pairs_of_state_dicts_say_once_what_was_assumed(weights):
    with pytest.warns(UserWarning, match=ASSUMED) as caught:
        mi.load_run([(0, weights), (10, weights), (20, weights)])
    assert len([c for c in caught if "records no configuration" in str(c.message)]) == 1


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"rotary_dim": 4}, r"config has unknown fields \['rotary_dim'\]; ModelConfig's fields are"),
        ("relu", "config must be a ModelConfig or a dict of its fields, got a str"),
        ({"d_model": 32}, r"config gives d_model=32, but m\.pt records \(or its weights show\) d_model=16; drop"),
        ({"attn_rate": 2.0}, r"config does not fit m\.pt: attn_rate must be a number in \[0, 1\], got 2\.0"),
        ({"act_fn": "tanh"}, r"config does not fit m\.pt: act_fn 'tanh' is not supported"),
        ({"separate_b_tokens": True}, r"config does not fit m\.pt: d_vocab=14 does not fit separate a and b tokens"),
    ],
)
def test_config_that_does_not_fit_the_state_dict(tmp_path, weights, config, match):
    with pytest.raises(mi.ArchitectureError, match=match):
        mi.load(_save(weights, tmp_path / "m.pt"), config=config, op="add")


def test_config_that_contradicts_what_the_file_records(tmp_path, weights):
    path = _own_file(tmp_path / "own.safetensors", weights, task={"p": P})
    match = r"config gives attn_rate=0\.5, but own\.safetensors records \(or its weights show\) attn_rate=1\.0"
    with pytest.raises(mi.ArchitectureError, match=match):
        mi.load(path, config={"attn_rate": 0.5})
    with pytest.raises(mi.ArchitectureError, match=r"config gives act_fn='gelu', but own\.safetensors records"):
        read_checkpoint(path, config={"act_fn": "gelu"})


def test_config_with_a_live_model(tmp_path, weights):
    model, _ = mi.load(_save(weights, tmp_path / "m.pt"), op="add")
    with pytest.raises(mi.ArchitectureError, match="config= describes a checkpoint file; a live model's architecture"):
        mi.load(model, config={"attn_rate": 0.5})


def test_own_file_whose_weights_disagree_with_its_config_names_the_dimension(tmp_path, weights):
    weights["pos_embed.W_pos"] = torch.zeros(3, 20)
    match = (r"pos_embed\.W_pos has shape \(3, 20\), but its d_model should be 16 to match the config in the file's "
             r"metadata")
    with pytest.raises(mi.InvalidWeightsError, match=match):
        mi.load(_own_file(tmp_path / "m.safetensors", weights))


# ------------------------------------------------------------------- runs: pairs and series files
@pytest.mark.parametrize(
    ("pairs", "error", "match"),
    [
        ([(0,)], mi.CheckpointError, r"must hold \(step, model or state dict\) pairs; item 0 is a tuple"),
        ([("a", None)], mi.CheckpointError, r"the step of pair 0 must be an integer, got 'a'"),
        ([(1.5, None)], mi.CheckpointError, r"the step of pair 0 must be an integer, got 1\.5"),
        ([], mi.CheckpointError, "the run has no checkpoints"),
        ([(0, {})], mi.CheckpointError, r"pair 0 \(step 0\): the state dict is empty"),
        ([(0, {"x": torch.zeros(2)})], mi.CheckpointError, r"pair 0 \(step 0\): unrecognised state dict"),
        ([(0, torch.zeros(2))], mi.ArchitectureError, "expected a TransformerLens HookedTransformer or "),
    ],
)
def test_run_pairs_that_are_not_a_run(pairs, error, match):
    with pytest.raises(error, match=match):
        mi.load_run(pairs)


def test_run_pairs_name_the_bad_pair_and_the_order(weights):
    broken = {**weights, "blocks.0.attn.W_V": weights["blocks.0.attn.W_V"].clone()}
    broken["blocks.0.attn.W_V"][0, 0, 0] = math.nan
    with pytest.raises(mi.InvalidWeightsError, match=r"pair 1 \(step 10\): blocks\.0\.attn\.W_V has 1 NaN/inf"):
        mi.load_run([(0, weights), (10, broken)])
    with warnings.catch_warnings(), pytest.raises(mi.CheckpointError, match=r"steps must increase strictly, got "
                                                                             r"\[10, 10\]"):
        warnings.simplefilter("ignore")
        mi.load_run([(10, weights), (10, weights)])


def test_load_run_of_a_single_model(tmp_path, weights):
    with pytest.raises(mi.CheckpointError, match=r"m\.pt holds a single model, not a series; progress measures need"):
        mi.load_run(_save(weights, tmp_path / "m.pt"))
    with pytest.raises(mi.CheckpointError, match="the series dict holds a single model, not a series"):
        mi.load_run({"model": to_paper_state(weights)})
    with pytest.raises(mi.CheckpointError, match="cannot read a run from a int"):
        mi.load_run(42)


@pytest.mark.parametrize(
    ("info", "error", "match"),
    [
        ({"steps": "all"}, mi.CheckpointError, r"must list its 'steps' in its metadata, got 'all'"),
        ({"steps": []}, mi.CheckpointError, r"must list its 'steps' in its metadata, got \[\]"),
        ({"steps": ["x"]}, mi.CheckpointError, "a step of the series must be an integer, got 'x'"),
        ({"steps": [5]}, mi.InvalidWeightsError, r"the weights do not match the architecture: missing keys"),
        ({"steps": [0], "config": "small"}, mi.CheckpointError, "metadata 'config' must be a JSON object"),
        ({"steps": [0], "task": {"q": 1}}, mi.CheckpointError, r"metadata 'task' has unknown fields \['q'\]"),
    ],
)
def test_series_file_with_bad_metadata(tmp_path, weights, info, error, match):
    tensors = {f"{0:08d}.{k}": v for k, v in weights.items()}
    save_tensors(tmp_path / "s.safetensors", tensors, {"format": "modadd_interp.series/1", "config": CFG.to_dict(),
                                                        "task": None, **info})
    for read in (mi.load_run, mi.load):
        with pytest.raises(error, match=match):
            read(tmp_path / "s.safetensors")


# ----------------------------------------------------------------- recipe
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(steps=0), "steps must be a positive integer, got 0"),
        (dict(eval_every=0), "eval_every must be a positive integer, got 0"),
        (dict(checkpoint_every=2.5), r"checkpoint_every must be a positive integer, got 2\.5"),
        (dict(lr=-1e-3), "lr must be a positive number"),
        (dict(lr=math.inf), "lr must be a positive number"),
        (dict(weight_decay=-1), "weight_decay must be a non-negative number"),
        (dict(betas=(0.9,)), r"betas must be two numbers in \[0, 1\)"),
        (dict(betas=(0.9, 1.0)), r"betas must be two numbers in \[0, 1\)"),
        (dict(warmup_steps=-1), "warmup_steps must be a non-negative integer"),
    ],
)
def test_invalid_recipe(kwargs, match):
    with pytest.raises(RecipeError, match=match):
        Recipe(**kwargs)


def test_unknown_recipe_field_is_named(tmp_path):
    with pytest.raises(RecipeError, match=r"unknown recipe fields \['stpes'\]"):
        mi.train(mi.ModularTask(p=P), tmp_path / "run", config=CFG, stpes=10)
    assert not os.path.exists(tmp_path / "run")
