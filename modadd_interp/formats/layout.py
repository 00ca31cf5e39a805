"""The shape engine: every format's weights as dimension names per axis, checked in one place.

A :class:`Layout` is a table ``{key: axes}``: ``"{b}"`` in a key stands for every block (``blocks.0``,
``blocks.1``, ...), and an axis is a dimension name (``"d_model"``) or a product of names
(``"n_heads*d_head"``). :meth:`Layout.read` checks a state dict against it before anything is converted:
the keys (missing, unexpected), then every tensor's rank and sizes, reading each dimension from the first
tensor that shows it, so a malformed tensor is named (with the dimension that disagrees) instead of crashing
a reshape. The helpers below it validate a state dict's values and build the config its dimensions imply.

Examples:
    >>> table = Layout("toy", {"embed.W_E": ("d_vocab", "d_model"), "{b}.attn.W_O": ("d_model", "n_heads*d_head")})
    >>> table.dims({"embed.W_E": torch.zeros(14, 16), "blocks.0.attn.W_O": torch.zeros(16, 16)},
    ...            known={"n_heads": 2})
    {'n_heads': 2, 'd_vocab': 14, 'd_model': 16, 'n_heads*d_head': 16}
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping

import torch

from ..config import ModelConfig
from ..errors import ArchitectureError, CheckpointError, InvalidWeightsError

BLOCK = "{b}"
_LAYERNORM_KEY = re.compile(r"(^|\.)(ln\d+|ln_final)\.")


@dataclasses.dataclass(frozen=True)
class Layout:
    """A format's weights: key -> axis names, with the keys it may lack or may carry unused.

    Attributes:
        fmt: the format's name in messages (``"paper"``, ``"HookedTransformer"``).
        axes: ``{key: (axis, ...)}`` in the order dimensions are read (the first tensor showing a dimension sets it).
        optional: keys that may be missing (``"{b}"`` allowed).
        ignored: keys that may be present and are not weights (buffers such as ``"{b}.attn.mask"``).
    """

    fmt: str
    axes: Mapping[str, tuple[str, ...]]
    optional: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()

    def expand(self, blocks: list[str]) -> dict[str, tuple[str, ...]]:
        """The table with ``"{b}"`` replaced by every block, in table order."""
        return expand(self.axes, blocks)

    def read(self, state: Mapping[str, torch.Tensor], known: Mapping[str, int] | None = None,
             against: str = "the other weights") -> tuple[list[str], dict[str, int]]:
        """Check ``state``'s keys and shapes; return its blocks and every dimension.

        Args:
            state: a state dict of tensors (:func:`tensor_dict`).
            known: dimensions already known (from a recorded config, or ``n_heads`` given by the caller).
            against: what ``known`` comes from, for the message when a tensor disagrees with it.

        Raises:
            InvalidWeightsError: no block, blocks not numbered from 0, keys missing or unexpected, a tensor of
                the wrong rank, or a dimension that two tensors disagree on (each named).
        """
        blocks = block_names(state)
        table = self.expand(blocks)
        optional = set(expand({k: () for k in self.optional}, blocks))
        ignored = set(expand({k: () for k in self.ignored}, blocks))
        require_keys(state, set(table) - optional, optional | ignored, self.fmt)
        return blocks, unify_dims(state, table, self.fmt, known, against)

    def dims(self, state: Mapping[str, torch.Tensor], known: Mapping[str, int] | None = None,
             against: str = "the other weights", blocks: list[str] | None = None) -> dict[str, int]:
        """Every dimension the present tensors of ``blocks`` show (default: the blocks the keys name); missing or
        extra keys are not checked here."""
        blocks = block_names(state, required=False) if blocks is None else blocks
        return unify_dims(state, self.expand(blocks), self.fmt, known, against)


def expand(table: Mapping[str, tuple[str, ...]], blocks: list[str]) -> dict[str, tuple[str, ...]]:
    """A layout table with ``"{b}"`` replaced by every block, in table order."""
    out = {}
    for key, axes in table.items():
        for b in blocks if BLOCK in key else [""]:
            out[key.replace(BLOCK, b)] = axes
    return out


def block_names(state: Mapping, required: bool = True) -> list[str]:
    """``["blocks.0", "blocks.1", ...]``: the blocks the keys name, which must be numbered from 0 without gaps."""
    indices = sorted({int(k.split(".")[1]) for k in state if isinstance(k, str) and k.startswith("blocks.")
                      and k.split(".")[1].isdecimal()})
    if not indices and required:
        raise InvalidWeightsError("the state dict has no 'blocks.N.*' keys: no transformer block.")
    if indices != list(range(len(indices))):
        raise InvalidWeightsError(f"the block indices {indices} are not contiguous from 0.")
    return [f"blocks.{i}" for i in indices]


def unify_dims(
    state: Mapping[str, torch.Tensor], table: Mapping[str, tuple[str, ...]], fmt: str,
    known: Mapping[str, int] | None = None, against: str = "the other weights",
) -> dict[str, int]:
    """Read every named dimension from the tensors present; raise if two tensors disagree.

    Example: with ``embed.W_E`` ``[d_model=128, d_vocab=114]`` first, a ``pos_embed.W_pos``
    of shape ``[3, 64]`` raises, naming ``d_model=128``.
    """
    dims = dict(known or {})
    source = {name: against for name in dims}
    for key, names in table.items():
        if key not in state:
            continue
        shape = tuple(state[key].shape)
        if len(shape) != len(names):
            raise InvalidWeightsError(
                f"{key} has shape {shape} ({len(shape)}-D), but a {fmt} state dict stores it as "
                f"[{', '.join(names)}] ({len(names)}-D)."
            )
        for name, size in zip(names, shape, strict=True):
            factors = name.split("*")
            if name in dims:
                expected, why = dims[name], source.get(name, "the other weights")
            elif all(f in dims for f in factors):
                expected = math.prod(dims[f] for f in factors)
                why = against if any(source.get(f) == against for f in factors) else "the other weights"
            else:
                expected, why = None, ""
            if expected is None:
                dims[name] = size
            elif expected != size:
                tail = ("; the file mixes tensors of different models." if why == "the other weights"
                        else "; the weights do not fit it.")
                raise InvalidWeightsError(
                    f"{key} has shape {shape}, but its {name} should be {expected} to match {why} "
                    f"({fmt} layout [{', '.join(names)}]){tail}"
                )
    return dims


def require_keys(state: Mapping, required: set[str], optional: set[str], fmt: str) -> None:
    """Raise naming every missing and every unexpected key."""
    missing = sorted(required - set(state))
    extra = sorted(set(state) - required - optional)
    if missing or extra:
        raise InvalidWeightsError(
            f"this looks like a {fmt} state dict, but keys are "
            + (f"missing: {missing}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"unexpected: {extra}" if extra else "")
            + ". Check that the file is a complete modular-arithmetic model."
        )


def tensor_dict(state: object) -> dict[str, torch.Tensor]:
    """``state`` as a dict of dense tensors keyed by strings, or a clear error; LayerNorm weights are refused."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"expected a state dict (a mapping of names to tensors), got a {type(state).__name__}.")
    if not state:
        raise CheckpointError("the state dict is empty: it holds no weights.")
    bad_keys = [k for k in state if not isinstance(k, str)]
    if bad_keys:
        raise CheckpointError(f"state dict keys must be strings; got {[repr(k) for k in bad_keys[:5]]}.")
    not_tensors = {k: type(v).__name__ for k, v in state.items() if not isinstance(v, torch.Tensor)}
    if not_tensors:
        shown = ", ".join(f"{k!r} ({t})" for k, t in sorted(not_tensors.items())[:5])
        raise CheckpointError(
            f"expected a state dict of tensors, but {len(not_tensors)} values are not tensors: {shown}. "
            "Save model.state_dict(), not the model or other objects."
        )
    not_dense = sorted(k for k, v in state.items() if v.layout != torch.strided)
    if not_dense:
        raise InvalidWeightsError(f"weights must be dense tensors; {not_dense[:5]} are sparse or quantized.")
    refuse_layernorm(state)
    return dict(state)


def refuse_layernorm(state: Mapping) -> None:
    """Raise :class:`ArchitectureError` naming the LayerNorm weights of ``state``, if any."""
    norms = sorted(k for k in state if isinstance(k, str) and _LAYERNORM_KEY.search(k))
    if norms:
        raise ArchitectureError(
            f"this state dict has LayerNorm weights ({norms[:4]}); modadd_interp analyses attention + MLP "
            "(ReLU or GeLU) transformers of 1 or more blocks without LayerNorm (normalization_type=None)."
        )


def config_of_dims(dims: Mapping[str, int], n_layers: int, **fields: object) -> ModelConfig:
    """The :class:`ModelConfig` of weights read without a config: ``(a, b, '=')`` when ``n_ctx >= 3``, else
    ``(a, b)``; ``fields`` set the rest. An ArchitectureError names the shapes if they fit no model."""
    names = ("d_vocab", "d_vocab_out", "n_ctx", "d_model", "n_heads", "d_head", "d_mlp")
    try:
        return ModelConfig(**{k: dims[k] for k in names}, n_layers=n_layers,
                           **{"has_eq": dims["n_ctx"] >= 3, **fields})
    except ArchitectureError as e:
        raise ArchitectureError(
            f"the weights (d_vocab={dims['d_vocab']}, d_vocab_out={dims['d_vocab_out']}, n_ctx={dims['n_ctx']}) "
            f"are not a modular-arithmetic model's: {e} A model has p number tokens (+ '=') and >= p outputs."
        ) from e


def fill_missing_biases(config: ModelConfig, weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Zeros for the canonical biases a format does not have (the paper has no attention or unembed bias)."""
    out = dict(weights)
    for name, shape in config.shapes().items():
        if ".b_" in name and name not in out:
            out[name] = torch.zeros(shape)
    return out


def known_dims(config: ModelConfig) -> dict[str, int]:
    """The dimensions a recorded config fixes, to check tensors against (:meth:`Layout.read`'s ``known``)."""
    return {k: getattr(config, k) for k in ("d_vocab", "d_vocab_out", "n_ctx", "d_model", "n_heads", "d_head",
                                            "d_mlp")}
