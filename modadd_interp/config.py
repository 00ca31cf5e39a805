"""The architecture we analyse, and its weights in one canonical layout.

Canonical weights use TransformerLens ``HookedTransformer`` names and shapes
(``embed.W_E`` is ``[d_vocab, d_model]``, ``blocks.0.attn.W_Q`` is
``[n_heads, d_model, d_head]``, ...). Every checkpoint format is converted to
this layout, and :mod:`modadd_interp.tl_adapter` builds a live model from it.

Examples:
    >>> cfg = ModelConfig.paper(p=113)
    >>> weights = paper_init(cfg, seed=0)
    >>> weights["embed.W_E"].shape
    torch.Size([114, 128])
"""

from __future__ import annotations

import dataclasses
import math

import torch

from .errors import ArchitectureError, InvalidWeightsError


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A one-block, attention + ReLU-MLP transformer without LayerNorm.

    ``d_vocab`` counts the input tokens (``p`` numbers and ``'='``). ``d_vocab_out``
    is ``p``, or ``p + 1`` for models (like the paper's) with an ``'='`` output.
    """

    d_vocab: int
    d_vocab_out: int
    n_ctx: int = 3
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    n_layers: int = 1
    act_fn: str = "relu"

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name != "act_fn" and (not isinstance(value, int) or value < 1):
                raise ArchitectureError(f"{field.name} must be a positive integer, got {value!r}.")
        if self.act_fn != "relu":
            raise ArchitectureError(
                f"act_fn {self.act_fn!r} is not supported; the probes assume ReLU neurons."
            )

    @classmethod
    def paper(cls, p: int, **overrides: int) -> ModelConfig:
        """The paper's architecture for modulus ``p`` (d_model 128, 4 heads, d_mlp 512)."""
        return cls(d_vocab=p + 1, d_vocab_out=p, **overrides)

    @property
    def p(self) -> int:
        """The modulus implied by the vocabulary (inputs are ``0..p-1`` and ``'='``)."""
        return self.d_vocab - 1

    def to_dict(self) -> dict:
        """JSON-safe description."""
        return dataclasses.asdict(self)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The canonical weight names and their shapes."""
        h, dm, dh, dmlp = self.n_heads, self.d_model, self.d_head, self.d_mlp
        shapes: dict[str, tuple[int, ...]] = {
            "embed.W_E": (self.d_vocab, dm),
            "pos_embed.W_pos": (self.n_ctx, dm),
        }
        for layer in range(self.n_layers):
            b = f"blocks.{layer}"
            for x in "QKV":
                shapes[f"{b}.attn.W_{x}"] = (h, dm, dh)
                shapes[f"{b}.attn.b_{x}"] = (h, dh)
            shapes[f"{b}.attn.W_O"] = (h, dh, dm)
            shapes[f"{b}.attn.b_O"] = (dm,)
            shapes[f"{b}.mlp.W_in"] = (dm, dmlp)
            shapes[f"{b}.mlp.b_in"] = (dmlp,)
            shapes[f"{b}.mlp.W_out"] = (dmlp, dm)
            shapes[f"{b}.mlp.b_out"] = (dm,)
        shapes["unembed.W_U"] = (dm, self.d_vocab_out)
        shapes["unembed.b_U"] = (self.d_vocab_out,)
        return shapes


def check_weights(cfg: ModelConfig, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Validate canonical ``weights`` against ``cfg``; return them as float32 tensors.

    Raises:
        InvalidWeightsError: a key is missing or extra, a shape is wrong, or a value is NaN/inf.
    """
    expected = cfg.shapes()
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise InvalidWeightsError(
            f"the weights do not match the architecture: missing keys {missing}, "
            f"unexpected keys {extra}."
        )
    out = {}
    for name, shape in expected.items():
        tensor = weights[name]
        if tuple(tensor.shape) != shape:
            raise InvalidWeightsError(
                f"{name} has shape {tuple(tensor.shape)}, expected {shape} for {cfg}."
            )
        if not torch.is_floating_point(tensor):
            raise InvalidWeightsError(f"{name} has dtype {tensor.dtype}; weights must be floats.")
        if not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor)).sum())
            raise InvalidWeightsError(
                f"{name} has {bad} NaN/inf values; the checkpoint is corrupt or training diverged."
            )
        out[name] = tensor.detach().to(torch.float32).contiguous()
    return out


def paper_init(cfg: ModelConfig, seed: int) -> dict[str, torch.Tensor]:
    """The paper's initialisation, in canonical layout.

    Every matrix is ``randn / sqrt(d_model)``, except ``W_U``, which is
    ``randn / sqrt(d_vocab)``; every bias is zero. Deterministic for a given seed.
    """
    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for name, shape in cfg.shapes().items():
        if ".b_" in name:
            weights[name] = torch.zeros(shape)
        else:
            scale = math.sqrt(cfg.d_vocab if name == "unembed.W_U" else cfg.d_model)
            weights[name] = torch.randn(shape, generator=generator) / scale
    return weights


def frozen_biases(cfg: ModelConfig) -> list[str]:
    """The canonical biases the paper's model does not have: they stay zero in training."""
    names = [f"blocks.{i}.attn.b_{x}" for i in range(cfg.n_layers) for x in "QKVO"]
    return names + ["unembed.b_U"]
