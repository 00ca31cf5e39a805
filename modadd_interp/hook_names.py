"""The TransformerLens hook points the package reads and writes, named in one place.

TL 3.9's ``HookedTransformer`` and TL 4's ``TransformerBridge`` both answer to these (the bridge keeps the legacy
names as aliases; inside a hook, ``hook.name`` is the bridge's own canonical name, so never key results on it).

Examples:
    >>> hook_name("post", 1)
    'blocks.1.mlp.hook_post'
    >>> hook_name("pattern")
    'blocks.0.attn.hook_pattern'
"""

from __future__ import annotations

EMBED = "hook_embed"
"""The token embedding (before the positional embedding is added)."""

IN_BLOCK = {
    "z": "attn.hook_z",  # each head's output before W_O: [batch, pos, head, d_head]
    "pattern": "attn.hook_pattern",  # after the model's attention rate, if any: [batch, head, query, key]
    "attn_out": "hook_attn_out",
    "resid_pre": "hook_resid_pre",
    "resid_mid": "hook_resid_mid",  # read only: on a TL 4 bridge an edit here does not reach the residual sum
    "post": "mlp.hook_post",  # the MLP neurons after the activation function: [batch, pos, d_mlp]
    "mlp_out": "hook_mlp_out",
}
"""The kinds of hook inside a block, by the name this package uses for them."""


def hook_name(kind: str, layer: int = 0) -> str:
    """The hook of ``kind`` (a key of :data:`IN_BLOCK`) in block ``layer``."""
    if kind not in IN_BLOCK:
        raise ValueError(f"unknown hook kind {kind!r}; one of {sorted(IN_BLOCK)}")
    return f"blocks.{layer}.{IN_BLOCK[kind]}"
