"""Checkpoint formats as a registry: one module per format, tried in a documented order.

Every reader of the package (``mi.load``, ``mi.load_run``, :func:`modadd_interp.checkpoints.read_checkpoint`,
``from_object``, ``from_state_dict``) goes through :func:`registry.read`: the formats below are asked in turn
whether a path or object looks like theirs (``sniff``), and the first that says yes reads it (``read``) into a
:class:`Checkpoint` (or a :class:`Series` of them). The order, and why:

1. ``run_directory`` (:mod:`.run_dir`): a directory with ``run.json``; nothing else reads directories.
2. ``modadd_interp`` (:mod:`.ours`): a safetensors file whose metadata describes it: self-describing, so it
   is believed before anything is guessed from names or keys.
3. ``chughtai`` (:mod:`.chughtai`): Chughtai et al.'s run directory (``cfg.json`` and ``model.pt``), a file with
   their ``cfg.json`` beside it, or their keys (``W_x``/``W_y``/``W``; a transformer's ``x_embed``/``y_embed``).
   Before the bare layouts: their transformer's weights alone are a HookedTransformer state dict.
4. ``clock_and_pizza_mlp`` (:mod:`.pizza_mlp`): Zhong et al.'s MLP-only models (``l1.weight``, no ``blocks.*``),
   by their keys, whatever the file's name; a second hidden layer is refused.
5. ``clock_and_pizza`` (:mod:`.clock_and_pizza`): ``model_<id>.pt`` with ``config_<id>.json`` beside it (its
   weights alone are the paper's layout, so the file name must be asked before the keys).
6. ``paper`` (:mod:`.paper`): a ``"state_dicts"`` series, a ``"model"`` entry (whose state dict may be in any
   layout: it is read through the registry again), or the paper's 2-D ``W_O`` layout. Before the bare layouts,
   because its containers wrap them.
7. ``bridge`` (:mod:`.bridge`): ``blocks.0.attn.q.weight``.
8. ``hooked_transformer`` (:mod:`.hooked_transformer`): ``blocks.0.attn.W_O``; last, as the canonical layout and
   the catch-all for a ``W_O`` of another rank (refused with the two ranks it could have).

A format registered from outside (:func:`register`) goes last unless it names a place (``before=``/``after=``).
Nothing claims a file that cannot be loaded: its loading error is raised. Every load is ``weights_only=True`` or
safetensors (:mod:`.source`).

Adding a format is adding one module with ``NAME``, ``sniff(src) -> bool`` and ``read(src, options)``, then one
line in :data:`BUILTIN_ORDER` (in this package) or ``register(module)`` (outside it). The shape checks of every
format are one engine (:mod:`.layout`); a format that cannot read a field of the architecture says so by
returning ``Checkpoint(..., assumed=Assumed(fields, reason))``, and the registry turns that into one notice per
load.

Examples:
    >>> from modadd_interp import formats
    >>> [fmt.NAME for fmt in formats.formats()][:5]
    ['run_directory', 'modadd_interp', 'chughtai', 'clock_and_pizza_mlp', 'clock_and_pizza']
    >>> [fmt.NAME for fmt in formats.formats()][5:]
    ['paper', 'bridge', 'hooked_transformer']
"""

from __future__ import annotations

from . import bridge, chughtai, clock_and_pizza, hooked_transformer, ours, paper, pizza_mlp, registry, run_dir
from .checkpoint import Assumed, Checkpoint, Series, assumption_notice
from .layout import Layout
from .registry import Format, ReadOptions, formats, register, unregister
from .source import Source

BUILTIN_ORDER = (run_dir, ours, chughtai, pizza_mlp, clock_and_pizza, paper, bridge, hooked_transformer)
"""The built-in formats in the order they are tried (see the module docstring for why)."""

for _fmt in BUILTIN_ORDER:
    register(_fmt)

__all__ = [
    "Assumed", "BUILTIN_ORDER", "Checkpoint", "Format", "Layout", "ReadOptions", "Series", "Source",
    "assumption_notice", "formats", "register", "registry", "unregister",
]
