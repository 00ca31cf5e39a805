"""Fuzz the loaders: corrupt files and random state dicts end in a clean load or a ModAddError.

Nothing else may escape (KeyError, RuntimeError, ...). The default ``ci`` profile is
derandomized and small; ``HYPOTHESIS_PROFILE=deep`` runs many random examples.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import pytest
import torch
from conftest import PAPER_FILES, random_weights
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import modadd_interp as mi
from modadd_interp import tl_adapter
from modadd_interp.checkpoints import read_checkpoint
from modadd_interp.config import ModelConfig
from modadd_interp.storage import save_tensors

pytestmark = pytest.mark.adapter

settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("deep", max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
fuzz = settings.get_profile(PROFILE)

TINY = ModelConfig(d_vocab=6, d_vocab_out=5, d_model=4, n_heads=2, d_head=2, d_mlp=6)
TINY_WEIGHTS = random_weights(TINY)
TINY_TASK = {"p": 5, "frac_train": 0.5, "seed": 3, "split": "randperm"}
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int8, torch.uint8,
          torch.bool]


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory) -> Path:
    """One directory per module: hypothesis runs many examples per test function."""
    return tmp_path_factory.mktemp("fuzz")


def load_outcome(path: Path, **kwargs) -> object:
    """``mi.load(path)``; returns the model, or the ModAddError. Anything else fails the test."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, task = mi.load(path, **{"op": "add", **kwargs})  # random weights compute no operation
    except mi.ModAddError as e:
        assert str(e).strip(), f"{type(e).__name__} without a message"
        event(type(e).__name__)
        return e
    event("loaded")
    cfg = tl_adapter.model_config(model)
    assert task.p == cfg.p and cfg.d_vocab == cfg.p + int(cfg.has_eq)
    for name, weight in tl_adapter.canonical_weights(model).items():
        assert torch.isfinite(weight).all(), f"{name} loaded with NaN/inf"
    return model


# ----------------------------------------------------------- corrupt files
@pytest.fixture(scope="module")
def own_file_bytes(work_dir) -> bytes:
    path = work_dir / "tiny.safetensors"
    save_tensors(path, TINY_WEIGHTS, {"config": TINY.to_dict(), "task": TINY_TASK, "step": 7})
    return path.read_bytes()


PAPER_BYTES = {name: path.read_bytes() for name, path in PAPER_FILES.items()}
SUFFIXES = [".pth", ".safetensors", ".bin", ""]
PREFIXES = [b"", b"PK\x03\x04", b"\x80\x02", b"\x80\x04\x95", b"\x10\x00\x00\x00\x00\x00\x00\x00{",
            b"\x89PNG\r\n\x1a\n"]


@fuzz
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=2048), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes(work_dir, prefix, body, suffix):
    path = work_dir / f"random{suffix}"
    path.write_bytes(prefix + body)
    assert isinstance(load_outcome(path), mi.ModAddError)


def _flip(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for position, value in flips:
        out[position % len(out)] = value
    return bytes(out)


@fuzz
@given(name=st.sampled_from(sorted(PAPER_BYTES)), cut=st.floats(0, 1, exclude_max=True),
       suffix=st.sampled_from([".pth", ".safetensors"]))
def test_truncated_paper_files(work_dir, name, cut, suffix):
    data = PAPER_BYTES[name]
    path = work_dir / f"truncated{suffix}"
    path.write_bytes(data[: int(cut * len(data))])
    assert isinstance(load_outcome(path), mi.ModAddError)


@fuzz
@given(name=st.sampled_from(sorted(PAPER_BYTES)),
       flips=st.lists(st.tuples(st.integers(0, 2**32), st.integers(0, 255)), min_size=1, max_size=4),
       near_end=st.booleans())
def test_byte_flips_in_paper_files(work_dir, name, flips, near_end):
    data = PAPER_BYTES[name]
    if near_end:  # the zip directory and the pickle live at the end and start; tensors fill the middle
        flips = [(len(data) - 1 - (pos % 4096), value) for pos, value in flips]
    path = work_dir / "flipped.pth"
    path.write_bytes(_flip(data, flips))
    load_outcome(path)


@fuzz
@given(cut=st.integers(0, 10**6))
def test_truncated_own_file(work_dir, own_file_bytes, cut):
    path = work_dir / "truncated_own.safetensors"
    path.write_bytes(own_file_bytes[: cut % len(own_file_bytes)])
    assert isinstance(load_outcome(path), mi.ModAddError)


@fuzz
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4))
def test_byte_flips_in_own_file_never_change_what_loads(work_dir, own_file_bytes, flips):
    """Every file save_tensors writes carries a checksum: a flip is an error or changes nothing."""
    path = work_dir / "flipped_own.safetensors"
    path.write_bytes(_flip(own_file_bytes, flips))
    outcome = load_outcome(path)
    if not isinstance(outcome, mi.ModAddError):
        ckpt = read_checkpoint(path)
        assert ckpt.task == mi.ModularTask(**TINY_TASK) and ckpt.step == 7 and ckpt.config == TINY
        for name, weight in TINY_WEIGHTS.items():
            assert torch.equal(ckpt.weights[name], weight), f"{name} changed without an error"


# ------------------------------------------------------ random state dicts
def to_paper_state(w: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """Canonical weights in the paper's layout (no attention or unembed biases)."""
    out = {"embed.W_E": w["embed.W_E"].T, "pos_embed.W_pos": w["pos_embed.W_pos"], "unembed.W_U": w["unembed.W_U"]}
    for i in range(n_layers):
        b = f"blocks.{i}"
        h, dh, dm = w[f"{b}.attn.W_O"].shape
        out.update({f"{b}.attn.W_{x}": w[f"{b}.attn.W_{x}"].transpose(1, 2) for x in "QKV"})
        out[f"{b}.attn.W_O"] = w[f"{b}.attn.W_O"].reshape(h * dh, dm).T
        out[f"{b}.mlp.W_in"], out[f"{b}.mlp.W_out"] = w[f"{b}.mlp.W_in"].T, w[f"{b}.mlp.W_out"].T
        out[f"{b}.mlp.b_in"], out[f"{b}.mlp.b_out"] = w[f"{b}.mlp.b_in"], w[f"{b}.mlp.b_out"]
    return {k: v.contiguous() for k, v in out.items()}


EXTRA_KEYS = ["foo", "blocks.0.ln1.w", "ln_final.weight", "blocks.5.attn.W_Q", "blocks.x.attn.W_O",
              "blocks.0.attn.mask", "blocks.0.attn.IGNORE", "unembed.b_U", "blocks.0.attn.q.weight", "model"]
NON_TENSORS = [1, 2.5, "x", None, [1.0, 2.0], {"a": 1}, True]


@st.composite
def state_dicts(draw) -> tuple[dict, bool, dict]:
    """A valid state dict of a random tiny model and format, then 0-4 random mutations.

    Returns ``(state, mutated, load_kwargs)``: a bridge state dict needs ``n_heads``.
    """
    p = draw(st.sampled_from([2, 3, 5]))
    n_layers = draw(st.sampled_from([1, 1, 2]))
    cfg = ModelConfig(d_vocab=p + 1, d_vocab_out=draw(st.sampled_from([p, p + 1])), d_model=4,
                      n_heads=draw(st.sampled_from([1, 2])), d_head=2, d_mlp=3, n_layers=n_layers)
    weights = random_weights(cfg, seed=draw(st.integers(0, 100)))
    fmt = draw(st.sampled_from(["hooked_transformer", "paper", "bridge"]))
    if fmt == "paper":
        state = to_paper_state(weights, n_layers)
    elif fmt == "bridge":
        state = tl_adapter.canonical_to_bridge(cfg, weights)
    else:
        state = dict(weights)
    mutations = draw(st.lists(st.sampled_from(["drop", "extra", "shape", "dtype", "nan", "transpose", "non_tensor"]),
                              max_size=4))
    for mutation in mutations:
        if not state:
            break
        key = draw(st.sampled_from(sorted(state)))
        value = state[key]
        if mutation == "drop":
            del state[key]
        elif mutation == "extra":
            shape = draw(st.lists(st.integers(0, 5), max_size=3))
            state[draw(st.sampled_from(EXTRA_KEYS))] = torch.randn(shape)
        elif mutation == "shape":
            state[key] = torch.randn(draw(st.lists(st.integers(0, 6), max_size=4)))
        elif mutation == "dtype" and isinstance(value, torch.Tensor):
            state[key] = value.to(draw(st.sampled_from(DTYPES)))
        elif mutation == "nan" and isinstance(value, torch.Tensor) and value.numel() and value.is_floating_point():
            value = value.clone()
            value.view(-1)[draw(st.integers(0, value.numel() - 1))] = draw(st.sampled_from([math.nan, math.inf]))
            state[key] = value
        elif mutation == "transpose" and isinstance(value, torch.Tensor) and value.ndim >= 2:
            state[key] = value.transpose(0, 1).contiguous()
        elif mutation == "non_tensor":
            state[key] = draw(st.sampled_from(NON_TENSORS))
    return state, bool(mutations), {"n_heads": cfg.n_heads} if fmt == "bridge" else {}


def _assert_valid_loads(outcome: object, mutated: bool) -> None:
    assert mutated or not isinstance(outcome, mi.ModAddError), f"a valid state dict was refused: {outcome}"


@fuzz
@given(sample=state_dicts(), wrap=st.sampled_from(["bare", "model", "series"]))
def test_random_state_dicts_in_torch_files(work_dir, sample, wrap):
    state, mutated, kwargs = sample
    obj = {"bare": state, "model": {"model": state, "epoch": 3}, "series": {"state_dicts": [state], "epochs": [3]}}
    path = work_dir / "state.pt"
    torch.save(obj[wrap], path)
    _assert_valid_loads(load_outcome(path, **kwargs), mutated)


@fuzz
@given(sample=state_dicts(), with_metadata=st.booleans())
def test_random_state_dicts_in_safetensors(work_dir, sample, with_metadata):
    state, mutated, kwargs = sample
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    mutated = mutated or len(tensors) < len(state)
    path = work_dir / "state.safetensors"
    if with_metadata:  # our format; the config claims the tiny architecture, right or wrong
        save_tensors(path, tensors, {"config": TINY.to_dict()})
        mutated = True  # the metadata may not describe these weights
    else:
        save_tensors(path, tensors, {})
    _assert_valid_loads(load_outcome(path, **kwargs), mutated)


@fuzz
@given(
    config=st.dictionaries(
        st.sampled_from(["d_vocab", "d_vocab_out", "n_ctx", "d_model", "n_heads", "d_head", "d_mlp", "n_layers",
                         "act_fn", "bogus"]),
        st.one_of(st.integers(-2, 8), st.sampled_from(["relu", "gelu", None, 1.5, [], True])),
        max_size=10,
    ),
    task=st.one_of(st.none(), st.dictionaries(
        st.sampled_from(["p", "op", "frac_train", "seed", "split", "extra"]),
        st.one_of(st.integers(-1, 7), st.floats(allow_nan=True), st.sampled_from(["add", "mul", "paper", "x", None])),
        max_size=5,
    )),
    step=st.one_of(st.none(), st.integers(-5, 5), st.sampled_from(["1", 1.5, [], True])),
)
def test_random_metadata(work_dir, config, task, step):
    info = {"config": {**TINY.to_dict(), **config}, "step": step}
    if task is not None:
        info["task"] = task
    path = work_dir / "meta.safetensors"
    save_tensors(path, TINY_WEIGHTS, info)
    load_outcome(path)


@fuzz
@given(
    samples=st.lists(state_dicts(), min_size=0, max_size=3),
    epochs=st.one_of(st.none(), st.lists(st.one_of(st.integers(-3, 300), st.sampled_from(["a", 1.5, None])),
                                         max_size=4)),
    config=st.one_of(st.none(), st.fixed_dictionaries(
        {}, optional={"p": st.sampled_from([2, 3, 5, 113, "5"]), "fn_name": st.sampled_from(["add", "sub"]),
                      "frac_train": st.sampled_from([0.3, 0.0, 2.0, "x"]), "seed": st.sampled_from([0, 1, -1, "s"])})),
)
def test_random_series(work_dir, samples, epochs, config):
    obj: dict = {"state_dicts": [state for state, _, _ in samples]}
    if epochs is not None:
        obj["epochs"] = epochs
    if config is not None:
        obj["config"] = config
    path = work_dir / "series.pth"
    torch.save(obj, path)
    load_outcome(path)
