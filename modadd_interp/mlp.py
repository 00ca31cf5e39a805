"""One-hidden-layer MLPs on two operands, hookable the TransformerLens way (a ``HookedRootModule`` with
``HookPoint``s), as the universality literature trains them.

``logits = act(embed(x, y) @ W_in + b_in) @ W_U + b_U`` with ``embed(x, y)`` the concatenation ``[E_x[x], E_y[y]]``
(Chughtai et al. 2023: ``relu(hstack(W_x[x], W_y[y]) @ W) @ W_U``) or the sum ``E_x[x] + E_y[y]``; the two tables
may be one (``shared_embed``); the activation is ReLU, GeLU or the square (Gromov 2023; Doshi et al. 2024); biases
are optional.

**Its residual stream.** The analysis reads every model as its readout layer (:mod:`modadd_interp.probes.cache`):
``logits = unembed(resid_mid + MLP(resid_mid))``. An MLP is that layer with no attention before it, on a residual
stream of ``d_model = d_in + d_mlp`` dimensions: the input slot (``[E_x[x], E_y[y]]``, or their sum) and the MLP's
output slot, where ``W_out`` writes the neurons as they are (the identity) and from which alone ``W_U`` reads. So its
canonical weights (:meth:`HookedMLP.canonical`) are the transformer's, zero outside those slots, and every probe,
intervention and hypothesis reads it unchanged; the claims that need attention are not applicable. Its hook points
carry the same names (``hook_embed``: ``[batch, 2, d_model]`` each operand in its slot; ``blocks.0.hook_resid_mid``;
``blocks.0.mlp.hook_pre``/``hook_post``; ``blocks.0.hook_mlp_out``; ``blocks.0.hook_resid_post``), with the logits
at the last (the only) position: ``[batch, 1, d_vocab_out]``.

Examples:
    >>> cfg = MLPConfig(n=24, d_embed=32, d_mlp=64)
    >>> model = HookedMLP(cfg)
    >>> model(torch.tensor([[1, 24 + 2], [3, 24 + 4]])).shape     # tokens (x, n + y)
    torch.Size([2, 1, 24])
    >>> sorted(model.hook_dict)[:3]
    ['blocks.0.attn.hook_pattern', 'blocks.0.attn.hook_z', 'blocks.0.hook_mlp_out']
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn
from transformer_lens import HookedRootModule  # public on TL 3.x and 4.x alike (ECOSYSTEM.md)
from transformer_lens.hook_points import HookPoint

from .errors import ArchitectureError

EMBEDS = ("concat", "sum")
MLP_ACTS = ("relu", "gelu", "quad")


@dataclasses.dataclass(frozen=True)
class MLPConfig:
    """A one-hidden-layer MLP on two operands.

    Attributes:
        n: tokens per operand (the group's order); ``d_vocab_out``: outputs (default ``n``).
        d_embed: each operand's embedding width; ``d_mlp``: hidden neurons.
        embed: ``"concat"`` (``d_in = 2 d_embed``) or ``"sum"`` (``d_in = d_embed``).
        shared_embed: one table for both operands.
        act_fn: ``"relu"``, ``"gelu"`` or ``"quad"`` (the square).
        bias: ``b_in`` and ``b_U`` train (else they stay zero).
    """

    n: int
    d_embed: int = 256
    d_mlp: int = 128
    d_vocab_out: int | None = None
    embed: str = "concat"
    shared_embed: bool = False
    act_fn: str = "relu"
    bias: bool = False

    def __post_init__(self) -> None:
        for name in ("n", "d_embed", "d_mlp"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ArchitectureError(f"{name} must be a positive integer, got {value!r}.")
        if self.d_vocab_out is None:
            object.__setattr__(self, "d_vocab_out", self.n)
        if self.d_vocab_out < self.n:
            raise ArchitectureError(f"d_vocab_out={self.d_vocab_out} is smaller than n={self.n}.")
        if self.embed not in EMBEDS:
            raise ArchitectureError(f"embed must be one of {EMBEDS}, got {self.embed!r}.")
        if self.act_fn not in MLP_ACTS:
            raise ArchitectureError(f"act_fn must be one of {MLP_ACTS}, got {self.act_fn!r}.")

    @property
    def d_in(self) -> int:
        """The hidden layer's input width."""
        return self.d_embed * (2 if self.embed == "concat" else 1)

    @property
    def d_model(self) -> int:
        """The residual stream's width: the input slot and the MLP's output slot."""
        return self.d_in + self.d_mlp


def activation(name: str, x: torch.Tensor) -> torch.Tensor:
    """``relu``, ``gelu`` (exact, erf) or ``quad`` (``x²``)."""
    if name == "relu":
        return torch.relu(x)
    if name == "gelu":
        return torch.nn.functional.gelu(x)
    return x * x


class HookedMLP(HookedRootModule):
    """A one-hidden-layer MLP with TransformerLens hook points (module docstring).

    Parameters (its own names; :meth:`canonical` gives the transformer layout): ``embed_x`` ``[n, d_embed]``,
    ``embed_y`` (the same tensor when shared), ``W_in`` ``[d_in, d_mlp]``, ``b_in`` ``[d_mlp]``, ``W_U``
    ``[d_mlp, d_vocab_out]``, ``b_U``.
    """

    def __init__(self, cfg: MLPConfig, seed: int = 0) -> None:
        super().__init__()
        self.mlp_cfg = cfg
        g = torch.Generator().manual_seed(seed)
        # Chughtai et al.'s initialisation: every matrix randn / sqrt(its input width)
        self.embed_x = nn.Parameter(torch.randn(cfg.n, cfg.d_embed, generator=g) / math.sqrt(cfg.d_embed))
        self.embed_y = self.embed_x if cfg.shared_embed else nn.Parameter(
            torch.randn(cfg.n, cfg.d_embed, generator=g) / math.sqrt(cfg.d_embed))
        self.W_in = nn.Parameter(torch.randn(cfg.d_in, cfg.d_mlp, generator=g) / math.sqrt(cfg.d_in))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_U = nn.Parameter(torch.randn(cfg.d_mlp, cfg.d_vocab_out, generator=g) / math.sqrt(cfg.d_mlp))
        self.b_U = nn.Parameter(torch.zeros(cfg.d_vocab_out))
        self.hook_embed = HookPoint()
        self.blocks = nn.ModuleList([_Block()])
        super().setup()

    def forward(self, tokens: torch.Tensor, return_type: str | None = "logits") -> torch.Tensor | None:
        """``[batch, 1, d_vocab_out]`` logits of tokens ``[batch, 2]`` in the layout ``(x, n + y)`` (the two operands'
        tokens are distinct, as the Clock-and-Pizza ``diff_vocab``: :meth:`modadd_interp.config.ModelConfig.encode`).

        ``return_type`` is TransformerLens's: ``"logits"`` (the default) or ``None`` (run the hooks, return nothing).
        """
        if return_type not in ("logits", None):
            raise ArchitectureError(f"an MLP returns return_type='logits' or None, got {return_type!r}.")
        cfg, block = self.mlp_cfg, self.blocks[0]
        if tokens.ndim != 2 or tokens.shape[1] != 2:
            raise ArchitectureError(f"an MLP reads [batch, 2] tokens (x, n + y), got {tuple(tokens.shape)}.")
        x, y = tokens[:, 0], tokens[:, 1] - cfg.n
        batch = len(tokens)
        embedded = torch.zeros(batch, 2, cfg.d_model, dtype=self.W_in.dtype, device=self.W_in.device)
        embedded[:, 0, : cfg.d_embed] = self.embed_x[x]
        y_slot = slice(cfg.d_embed, 2 * cfg.d_embed) if cfg.embed == "concat" else slice(0, cfg.d_embed)
        embedded[:, 1, y_slot] = self.embed_y[y]
        embedded = self.hook_embed(embedded)
        # the attention's hook points fire where a transformer's would, before resid_mid (a pass stopped there
        # has recorded them)
        block.attn.hook_pattern(embedded.new_zeros(batch, 0, 1, 2))
        block.attn.hook_z(embedded.new_zeros(batch, 1, 0, 0))
        resid_mid = block.hook_resid_mid(embedded.sum(1, keepdim=True))  # [batch, 1, d_model]
        pre = block.mlp.hook_pre(resid_mid[..., : cfg.d_in] @ self.W_in + self.b_in)
        post = block.mlp.hook_post(activation(cfg.act_fn, pre))
        mlp_out = block.hook_mlp_out(torch.cat([resid_mid.new_zeros(batch, 1, cfg.d_in), post], dim=-1))
        resid_post = block.hook_resid_post(resid_mid + mlp_out)
        return None if return_type is None else resid_post[..., cfg.d_in :] @ self.W_U + self.b_U

    def canonical(self) -> dict[str, torch.Tensor]:
        """The transformer-layout weights of this MLP (module docstring), float32, detached."""
        return to_canonical(self.mlp_cfg, {name: p.detach() for name, p in self.own_weights().items()})

    def own_weights(self) -> dict[str, nn.Parameter]:
        """``{name: parameter}`` in this MLP's own names (``embed_y`` left out when shared)."""
        names = ["embed_x"] + ([] if self.mlp_cfg.shared_embed else ["embed_y"]) + ["W_in", "b_in", "W_U", "b_U"]
        return {name: getattr(self, name) for name in names}


class _Attention(nn.Module):
    """No attention: its hook points exist (zero heads) so that a pass recording them needs no special case."""

    def __init__(self) -> None:
        super().__init__()
        self.hook_z, self.hook_pattern = HookPoint(), HookPoint()


class _MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hook_pre, self.hook_post = HookPoint(), HookPoint()


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn, self.mlp = _Attention(), _MLP()
        self.hook_resid_mid, self.hook_mlp_out, self.hook_resid_post = HookPoint(), HookPoint(), HookPoint()


def to_canonical(cfg: MLPConfig, own: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The transformer-layout weights (``embed.W_E`` ``[2n, d_model]``: x's tokens then y's, each in its slot;
    ``blocks.0.mlp.W_in`` zero outside the input slot, ``W_out`` the identity into the output slot, ``W_U`` reading
    that slot only; no attention) of an MLP's own weights."""
    d_in, d_model, n, e = cfg.d_in, cfg.d_model, cfg.n, cfg.d_embed
    embed_y = own["embed_x"] if cfg.shared_embed else own["embed_y"]
    w_e = torch.zeros(2 * n, d_model)
    w_e[:n, :e] = own["embed_x"]
    w_e[n:, (e if cfg.embed == "concat" else 0) : (2 * e if cfg.embed == "concat" else e)] = embed_y
    w_in = torch.zeros(d_model, cfg.d_mlp)
    w_in[:d_in] = own["W_in"]
    w_out = torch.zeros(cfg.d_mlp, d_model)
    w_out[:, d_in:] = torch.eye(cfg.d_mlp)
    w_u = torch.zeros(d_model, cfg.d_vocab_out)
    w_u[d_in:] = own["W_U"]
    return {"embed.W_E": w_e, "pos_embed.W_pos": torch.zeros(2, d_model),
            "blocks.0.attn.W_Q": torch.zeros(0, d_model, 0), "blocks.0.attn.W_K": torch.zeros(0, d_model, 0),
            "blocks.0.attn.W_V": torch.zeros(0, d_model, 0), "blocks.0.attn.b_Q": torch.zeros(0, 0),
            "blocks.0.attn.b_K": torch.zeros(0, 0), "blocks.0.attn.b_V": torch.zeros(0, 0),
            "blocks.0.attn.W_O": torch.zeros(0, 0, d_model), "blocks.0.attn.b_O": torch.zeros(d_model),
            "blocks.0.mlp.W_in": w_in, "blocks.0.mlp.b_in": own["b_in"].clone().float(),
            "blocks.0.mlp.W_out": w_out, "blocks.0.mlp.b_out": torch.zeros(d_model),
            "unembed.W_U": w_u, "unembed.b_U": own["b_U"].clone().float()}


def from_canonical(cfg: MLPConfig, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An MLP's own weights from its transformer-layout ones (:func:`to_canonical`'s inverse)."""
    d_in, n, e = cfg.d_in, cfg.n, cfg.d_embed
    w_e = weights["embed.W_E"]
    y_slot = slice(e, 2 * e) if cfg.embed == "concat" else slice(0, e)
    own = {"embed_x": w_e[:n, :e], "W_in": weights["blocks.0.mlp.W_in"][:d_in],
           "b_in": weights["blocks.0.mlp.b_in"], "W_U": weights["unembed.W_U"][d_in:], "b_U": weights["unembed.b_U"]}
    if not cfg.shared_embed:
        own["embed_y"] = w_e[n:, y_slot]
    return {name: t.detach().clone().float() for name, t in own.items()}


def build(cfg: MLPConfig, weights: dict[str, torch.Tensor]) -> HookedMLP:
    """A :class:`HookedMLP` holding the transformer-layout ``weights`` (in eval mode)."""
    model = HookedMLP(cfg)
    with torch.no_grad():
        for name, value in from_canonical(cfg, weights).items():
            getattr(model, name).copy_(value)
    return model.eval()
