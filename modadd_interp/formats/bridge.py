"""Format 4: a TransformerLens 4 ``TransformerBridge`` (``boot_native``) state dict.

``nn.Linear`` layout, named by :data:`modadd_interp.tl_adapter.BRIDGE_NAMES` (the one table that also builds and
reads live bridges): ``embed.weight`` ``[d_vocab, d_model]``, ``blocks.{i}.attn.q.weight``
``[n_heads*d_head, d_model]``, ``blocks.{i}.attn.o.weight`` ``[d_model, n_heads*d_head]``,
``blocks.{i}.mlp.in.weight`` ``[d_mlp, d_model]``, ``unembed.weight`` ``[d_vocab_out, d_model]``, their biases
(``unembed.bias`` optional). Such a state dict does not record its head count: the caller's ``n_heads``, else the
paper's 4 (:data:`DEFAULT_N_HEADS`), with a notice; nor its activation, attention direction, attention rate or
token layout (as :mod:`~modadd_interp.formats.hooked_transformer`).

Examples:
    >>> from modadd_interp import tl_adapter
    >>> from modadd_interp.config import ModelConfig, paper_init
    >>> cfg = ModelConfig.paper(7, d_model=8, n_heads=2, d_head=4, d_mlp=16)
    >>> state = tl_adapter.canonical_to_bridge(cfg, paper_init(cfg, 0))
    >>> read(Source.of_object(state), ReadOptions(n_heads=2)).config == cfg
    True
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import tl_adapter
from ..config import check_weights
from ..errors import ArchitectureError
from .checkpoint import Assumed, Checkpoint
from .hooked_transformer import UNRECORDED
from .layout import Layout, tensor_dict
from .registry import ReadOptions
from .source import Source

NAME = "bridge"
DEFAULT_N_HEADS = 4
"""The paper's head count, assumed for a bridge state dict (which does not record it) unless the caller gives one."""

LAYOUT = Layout("TransformerBridge", {row.bridge: row.axes for row in tl_adapter.BRIDGE_NAMES},
                optional=tuple(row.bridge for row in tl_adapter.BRIDGE_NAMES if row.optional))


def sniff(src: Source) -> bool:
    """A state dict with ``blocks.0.attn.q.weight``."""
    obj = src.content
    return isinstance(obj, Mapping) and "blocks.0.attn.q.weight" in obj


def read(src: Source, options: ReadOptions) -> Checkpoint:
    """The canonical weights (:func:`modadd_interp.tl_adapter.bridge_to_canonical`) after the shapes are checked.

    Raises:
        InvalidWeightsError: keys missing or unexpected, shapes that disagree, NaN/inf.
        ArchitectureError: the head count does not divide the attention width, LayerNorm weights, or the shapes
            fit no modular-arithmetic model.
    """
    state = tensor_dict(src.content)
    heads = options.n_heads or DEFAULT_N_HEADS
    _, dims = LAYOUT.read(state)
    width = dims["n_heads*d_head"]
    if width % heads:
        raise ArchitectureError(
            f"n_heads={heads} does not divide the attention width {width} of this TransformerBridge "
            "state dict (which does not record its head count); pass the right n_heads, one of "
            f"{[h for h in range(1, width + 1) if width % h == 0][:12]}."
        )
    try:
        config, weights = tl_adapter.bridge_to_canonical(state, heads)
    except ArchitectureError as e:
        raise ArchitectureError(f"this TransformerBridge state dict is not a modular-arithmetic model: {e}") from e
    unrecorded = UNRECORDED if options.n_heads else ("n_heads", *UNRECORDED)
    return Checkpoint(config, check_weights(config, weights), None, None, NAME, assumed=Assumed(
        unrecorded, "is a TransformerBridge state dict, which records no configuration"))
