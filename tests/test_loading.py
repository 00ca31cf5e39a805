"""mi.load: every checkpoint format reproduces an independent forward pass from the raw weights."""

from __future__ import annotations

import pickle

import pytest
import torch
from conftest import PAPER_FILES, random_weights, small_config
from reference import canonical_forward, paper_forward, to_bridge_state
from safetensors.torch import save_file

import modadd_interp as mi
from modadd_interp import tl_adapter
from modadd_interp.checkpoints import read_checkpoint
from modadd_interp.grid import evaluate
from modadd_interp.storage import save_tensors

pytestmark = pytest.mark.adapter


def _grid_tokens(p: int) -> torch.Tensor:
    return mi.ModularTask(p=p).inputs


def _assert_reproduces(model, expected_logits: torch.Tensor, tokens: torch.Tensor) -> None:
    with torch.no_grad():
        got = model(tokens)
    torch.testing.assert_close(got, expected_logits, rtol=1e-4, atol=1e-4)


def test_own_format_round_trip(tmp_path, backend):
    cfg = small_config()
    w = random_weights(cfg)
    task = mi.ModularTask(p=13, frac_train=0.5, seed=3, split="randperm")
    save_tensors(tmp_path / "m.safetensors", w, {"config": cfg.to_dict(), "task": task.to_dict()})
    model, loaded_task = mi.load(tmp_path / "m.safetensors", backend=backend)
    assert loaded_task == task
    tokens = _grid_tokens(13)
    _assert_reproduces(model, canonical_forward(w, tokens), tokens)
    assert not model.training


def test_own_format_with_json_sidecar(tmp_path):
    import json

    cfg = small_config()
    w = random_weights(cfg)
    save_file(w, tmp_path / "m.safetensors")
    (tmp_path / "m.json").write_text(json.dumps({"config": cfg.to_dict(), "task": {"p": 13, "seed": 2}}))
    model, task = mi.load(tmp_path / "m.safetensors")
    assert task.seed == 2
    tokens = _grid_tokens(13)
    _assert_reproduces(model, canonical_forward(w, tokens), tokens)


def test_hooked_transformer_state_dict(tmp_path, backend):
    """Format 3: keys and shapes of HookedTransformer.state_dict(), mask/IGNORE buffers included."""
    cfg = small_config()
    w = random_weights(cfg)
    sd = dict(w)
    sd["blocks.0.attn.mask"] = torch.ones(3, 3).tril().bool()
    sd["blocks.0.attn.IGNORE"] = torch.tensor(-1e5)
    torch.save(sd, tmp_path / "ht.pt")
    model, task = mi.load(tmp_path / "ht.pt", backend=backend, op="add")
    assert task.p == 13 and task.op_source == "given" and not task.split_known
    tokens = _grid_tokens(13)
    _assert_reproduces(model, canonical_forward(w, tokens), tokens)


@pytest.mark.adapter  # runs in the TL 3.9 suite
@pytest.mark.skipif(not tl_adapter.HAS_HOOKED_TRANSFORMER, reason="HookedTransformer needs TL <= 3")
def test_real_hooked_transformer_state_dict(tmp_path):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=1, d_model=16, d_head=8, n_heads=2, d_mlp=32, d_vocab=14,
                                  d_vocab_out=13, n_ctx=3, act_fn="relu", normalization_type=None, seed=5)
    ht = HookedTransformer(cfg)
    torch.save(ht.state_dict(), tmp_path / "ht.pt")
    model, _ = mi.load(tmp_path / "ht.pt", op="add")
    tokens = _grid_tokens(13)
    with torch.no_grad():
        _assert_reproduces(model, ht(tokens), tokens)
    loaded, _ = mi.load(ht, p=13, op="add")
    assert loaded is ht


def test_bridge_state_dict(tmp_path, backend):
    """Format 4: a boot_native TransformerBridge state dict (head count given or defaulted)."""
    cfg = small_config(n_heads=4, d_head=4)
    w = random_weights(cfg)
    torch.save(to_bridge_state(w), tmp_path / "bridge.pt")
    model, _ = mi.load(tmp_path / "bridge.pt", n_heads=4, backend=backend, op="add")
    tokens = _grid_tokens(13)
    _assert_reproduces(model, canonical_forward(w, tokens), tokens)
    # the default head count is the paper's 4
    default_model, _ = mi.load(tmp_path / "bridge.pt", backend=backend, op="add")
    _assert_reproduces(default_model, canonical_forward(w, tokens), tokens)


def test_real_bridge_state_dict_and_object(tmp_path):
    model, _ = mi.load(PAPER_FILES["wd"], backend="bridge")
    torch.save(model.state_dict(), tmp_path / "bridge.pt")
    again, task = mi.load(tmp_path / "bridge.pt", p=113)
    tokens = task.inputs[:500]
    with torch.no_grad():
        _assert_reproduces(again, model(tokens), tokens)
    same, _ = mi.load(model)
    assert same is model


@pytest.mark.parametrize("name", list(PAPER_FILES))
def test_paper_fixtures_load_and_are_accurate(name, backend):
    path = PAPER_FILES[name]
    model, task = mi.load(path, backend=backend)
    raw = torch.load(path, weights_only=True, map_location="cpu")["model"]
    tokens = task.inputs[::7]
    _assert_reproduces(model, paper_forward(raw, tokens), tokens)
    assert evaluate(model, task)["accuracy"] >= 0.999


def test_paper_config_split_reproduces_recorded_losses():
    """The wd fixture records seed 1: our split gives the file's own final train/test losses."""
    model, task = mi.load(PAPER_FILES["wd"])
    assert (task.seed, task.frac_train, task.split) == (1, 0.3, "paper")
    raw = torch.load(PAPER_FILES["wd"], weights_only=True, map_location="cpu")
    result = evaluate(model, task)
    assert result["train_loss"] == pytest.approx(raw["train_losses"][-1], rel=2e-3)
    assert result["test_loss"] == pytest.approx(raw["test_losses"][-1], rel=2e-2)
    wrong = evaluate(model, mi.ModularTask(p=113, seed=0))
    assert wrong["train_loss"] != pytest.approx(raw["train_losses"][-1], rel=0.05)


def test_paper_series(tmp_path):
    raw = torch.load(PAPER_FILES["wd"], weights_only=True, map_location="cpu")
    first = {k: v * 0.5 for k, v in raw["model"].items()}
    series = {"state_dicts": [first, raw["model"]], "epochs": [0, 100], "train_losses": [1.0, 0.1],
              "test_losses": [1.0, 0.2], "config": raw["config"]}
    torch.save(series, tmp_path / "full_run_data.pth")
    ckpt = read_checkpoint(tmp_path / "full_run_data.pth")
    assert ckpt.step == 100 and ckpt.task.seed == 1
    model, _ = mi.load(tmp_path / "full_run_data.pth")
    tokens = _grid_tokens(113)[:300]
    _assert_reproduces(model, paper_forward(raw["model"], tokens), tokens)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_code_executing_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"model": _Exploit(marker)}, f)
    torch.save({"model": _Exploit(marker)}, tmp_path / "evil2.pth")
    marker.unlink(missing_ok=True)
    for candidate in (path, tmp_path / "evil2.pth"):
        with pytest.raises(mi.UnsafeCheckpointError, match="arbitrary unpickling"):
            mi.load(candidate)
        assert not marker.exists()


def test_p_mismatch_is_refused():
    with pytest.raises(mi.TaskMismatchError, match="p=97"):
        mi.load(PAPER_FILES["wd"], p=97)
    with pytest.raises(mi.TaskMismatchError, match="p=7"):
        mi.load(PAPER_FILES["wd"], task=mi.ModularTask(p=7))
