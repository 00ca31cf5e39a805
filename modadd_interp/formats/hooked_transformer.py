"""Format 3: a TransformerLens <= 3 ``HookedTransformer.state_dict()``, which is also our canonical layout.

Keys and shapes are :data:`CANONICAL` (``config.shapes()``'s names): ``embed.W_E`` ``[d_vocab, d_model]``,
``blocks.{i}.attn.W_Q`` ``[n_heads, d_model, d_head]``, ``W_O`` ``[n_heads, d_head, d_model]`` (3-D), ...
Biases may be missing (zeros); the ``mask``/``IGNORE`` buffers are ignored. The head count is read from the
shapes; the activation, attention direction, attention rate and token layout are not recorded: assumed ReLU,
causal, 1 and ``(a, b, '=')`` (``(a, b)`` with 2 positions), with a notice. Stored with ``torch.save`` or as
safetensors without our metadata.

It is tried last: it claims any state dict with ``blocks.0.attn.W_O`` that no format before it claimed, and
refuses a ``W_O`` that is neither the paper's 2-D nor its own 3-D.

Examples:
    >>> from modadd_interp.config import ModelConfig, paper_init
    >>> cfg = ModelConfig.paper(7, d_model=8, n_heads=2, d_head=4, d_mlp=16)
    >>> ckpt = read(Source.of_object(paper_init(cfg, 0)), ReadOptions())
    >>> ckpt.format, ckpt.config.n_heads, ckpt.assumed.fields
    ('hooked_transformer', 2, ('attn_rate', 'act_fn', 'attention_dir', 'has_eq', 'separate_b_tokens'))
"""

from __future__ import annotations

from collections.abc import Mapping

from ..config import check_weights
from ..errors import InvalidWeightsError
from .checkpoint import Assumed, Checkpoint
from .layout import Layout, config_of_dims, fill_missing_biases, tensor_dict
from .registry import ReadOptions
from .source import Source

NAME = "hooked_transformer"

CANONICAL = Layout("HookedTransformer", {
    "embed.W_E": ("d_vocab", "d_model"),
    "pos_embed.W_pos": ("n_ctx", "d_model"),
    "{b}.attn.W_Q": ("n_heads", "d_model", "d_head"),
    "{b}.attn.W_K": ("n_heads", "d_model", "d_head"),
    "{b}.attn.W_V": ("n_heads", "d_model", "d_head"),
    "{b}.attn.W_O": ("n_heads", "d_head", "d_model"),
    "{b}.attn.b_Q": ("n_heads", "d_head"),
    "{b}.attn.b_K": ("n_heads", "d_head"),
    "{b}.attn.b_V": ("n_heads", "d_head"),
    "{b}.attn.b_O": ("d_model",),
    "{b}.mlp.W_in": ("d_model", "d_mlp"),
    "{b}.mlp.b_in": ("d_mlp",),
    "{b}.mlp.W_out": ("d_mlp", "d_model"),
    "{b}.mlp.b_out": ("d_model",),
    "unembed.W_U": ("d_model", "d_vocab_out"),
    "unembed.b_U": ("d_vocab_out",),
}, optional=("{b}.attn.b_Q", "{b}.attn.b_K", "{b}.attn.b_V", "{b}.attn.b_O", "{b}.mlp.b_in", "{b}.mlp.b_out",
             "unembed.b_U"),
   ignored=("{b}.attn.mask", "{b}.attn.IGNORE"))
"""The canonical layout (TransformerLens ``HookedTransformer``'s names and shapes)."""

UNRECORDED = ("attn_rate", "act_fn", "attention_dir", "has_eq", "separate_b_tokens")
"""What a state dict in this layout does not record (read as ModelConfig's defaults, with a notice)."""


def sniff(src: Source) -> bool:
    """A state dict with ``blocks.0.attn.W_O`` (of any rank: this format is the last that could claim one)."""
    obj = src.content
    return isinstance(obj, Mapping) and "blocks.0.attn.W_O" in obj


def read(src: Source, options: ReadOptions) -> Checkpoint:  # noqa: ARG001 - the format protocol
    """The canonical weights and the config their shapes show (see the module docstring).

    Raises:
        InvalidWeightsError: ``W_O`` is neither 2-D nor 3-D, keys are missing or unexpected, shapes disagree, NaN.
        ArchitectureError: the shapes fit no modular-arithmetic model, or LayerNorm weights.
    """
    state = tensor_dict(src.content)
    w_o = state["blocks.0.attn.W_O"]
    if w_o.ndim != 3:
        raise InvalidWeightsError(
            f"blocks.0.attn.W_O has shape {tuple(w_o.shape)}: expected 2-D [d_model, n_heads*d_head] "
            "(the paper's layout) or 3-D [n_heads, d_head, d_model] (HookedTransformer's)."
        )
    blocks, dims = CANONICAL.read(state)
    config = config_of_dims(dims, len(blocks))
    weights = {k: v for k, v in state.items() if not k.endswith((".mask", ".IGNORE"))}
    weights = check_weights(config, fill_missing_biases(config, weights))
    return Checkpoint(config, weights, None, None, NAME, assumed=Assumed(
        UNRECORDED, "is a HookedTransformer state dict, which records no configuration"))
