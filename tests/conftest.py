"""Shared fixtures: the paper's checkpoints (copied from ../shared into tests/data) and small models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from modadd_interp import tl_adapter
from modadd_interp.config import ModelConfig, paper_init

PAPER_DIR = Path(__file__).parent / "data" / "paper"
PAPER_FILES = {
    "wd": PAPER_DIR / "wd_10-1_mod_addition_loss_curve.pth",
    "low_precision": PAPER_DIR / "low_precision_mod_addition.pth",
    "no_wd": PAPER_DIR / "mod_addition_no_wd.pth",
}


def small_config(p: int = 13, **kw) -> ModelConfig:
    """A small paper-shaped architecture for fast tests."""
    defaults = dict(d_model=16, n_heads=2, d_head=8, d_mlp=32)
    defaults.update(kw)
    return ModelConfig(d_vocab=p + 1, d_vocab_out=p, **defaults)


def random_weights(cfg: ModelConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Paper-init weights with every bias set to random values too (to test bias handling)."""
    w = paper_init(cfg, seed)
    g = torch.Generator().manual_seed(seed + 1)
    return {k: (torch.randn(v.shape, generator=g) * 0.1 if ".b_" in k else v) for k, v in w.items()}


@pytest.fixture(params=["bridge"] + (["hooked_transformer"] if tl_adapter.HAS_HOOKED_TRANSFORMER else []))
def backend(request) -> str:
    """Every backend the installed TransformerLens offers."""
    return request.param


def refuses_attention_rate(backend: str, rate: float) -> bool:
    """True where building a model of attention rate ``rate`` must fail: TL 3.9's bridge only observes
    ``hook_pattern``. The test then checks the refusal instead of the forward pass."""
    return backend == "bridge" and rate != 1.0 and not tl_adapter._bridge_pattern_hook_is_live()


def model_snapshot(model) -> dict:
    """Everything an analysis must leave unchanged: weights, mode, requires_grad, hooks, RNG, grad mode."""
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "hooks": tl_adapter.hook_count(model),
        "rng": torch.get_rng_state(),
        "grad_enabled": torch.is_grad_enabled(),
    }


def assert_unchanged(model, before: dict) -> None:
    """Assert :func:`model_snapshot` is bit-identical to ``before``."""
    after = model_snapshot(model)
    assert after["hooks"] == before["hooks"], "a hook was left on the model"
    assert after["training"] == before["training"], "train/eval mode changed"
    assert after["requires_grad"] == before["requires_grad"], "requires_grad changed"
    assert after["state"].keys() == before["state"].keys()
    for k, v in before["state"].items():
        assert torch.equal(after["state"][k], v), f"weight {k} changed"
    assert torch.equal(after["rng"], before["rng"]), "the global torch RNG state changed"
    assert after["grad_enabled"] == before["grad_enabled"], "grad mode changed"
