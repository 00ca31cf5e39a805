"""Zhong et al.'s MLP-only models (2023, the public repository ``fjzzq2002/pizza``, ``code/train-linear.py``).

Their ``train-linear.py`` trains five one- or two-hidden-layer MLPs on ``(i + j) mod n`` (``n = n_vocab``; the
``func`` of its config is unused) and saves ``model_<id>.pt`` (a state dict) with ``config_<id>.json`` (``C``,
``model_type``, ``n_vocab``, ``d_hidden``, ``frac``, ...). Both operands are tokens ``0 .. n-1``; the unembedding is
an ``nn.Embedding`` read transposed (``logits = h @ unembed.weight.T``, no bias); ReLU throughout:

========  ==============================================  ==================================================
type      state dict                                      forward
========  ==============================================  ==================================================
``A``     ``embed.weight [n, E]``, ``l1 [H, E]``           ``relu(l1(E[x] + E[y]))``: summed, one table
``D``     ``embed.weight [n, E]``, ``l1 [H, 2E]``          ``relu(l1(cat(E[x], E[y])))``: concatenated, one table
``X``     ``embed1``, ``embed2`` ``[n, E]``, ``l1 [H, E]``  ``relu(l1(E1[x] + E2[y]))``: summed, two tables
``B, C``  ... and ``l2 [H, H]``                           a second hidden layer: **refused**
========  ==============================================  ==================================================

``l1`` is ``nn.Linear`` (``weight [H, d_in]``, ``bias [H]``). A, D and X are :meth:`ModelConfig.mlp` with
``embed="sum"``/``"concat"``, ``shared_embed`` for A and D, ReLU and a hidden bias (``b_in = l1.bias``, ``b_U = 0``):
the type is read from the keys and shapes, and checked against ``model_type`` when the config is beside the file.
Their split is an unseeded ``random_split``: unknown (``frac`` recorded). Without the config, the operation is read
from the model, with a notice.

Examples:
    >>> ckpt = read(Source.of_path("code/save/model_7r4zst7evs.pt"), ReadOptions())   # doctest: +SKIP
    >>> ckpt.config.embed, ckpt.config.shared_embed, ckpt.task.op, ckpt.task.split   # doctest: +SKIP
    ('concat', True, 'add', 'unknown')
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch

from ..config import ModelConfig, check_weights
from ..errors import ArchitectureError, CheckpointError, InvalidWeightsError
from ..mlp import to_canonical
from ..task import ModularTask
from .checkpoint import Checkpoint
from .clock_and_pizza import FILE_NAME
from .layout import Layout, require_keys, tensor_dict
from .registry import ReadOptions
from .source import Source

NAME = "clock_and_pizza_mlp"
SECOND_LAYER = ("l2.weight", "l2.bias")

SHARED = Layout("Clock-and-Pizza MLP-only (model_type A or D)", {
    "embed.weight": ("n", "d_embed"), "l1.weight": ("d_mlp", "d_in"), "l1.bias": ("d_mlp",),
    "unembed.weight": ("n", "d_mlp")})
"""Types A (``d_in = E``, summed) and D (``d_in = 2E``, concatenated): one embedding table."""

SEPARATE = Layout("Clock-and-Pizza MLP-only (model_type X)", {
    "embed1.weight": ("n", "d_embed"), "embed2.weight": ("n", "d_embed"), "l1.weight": ("d_mlp", "d_embed"),
    "l1.bias": ("d_mlp",), "unembed.weight": ("n", "d_mlp")})
"""Type X: two tables, summed."""


def is_mlp_only(state: object) -> bool:
    """True for their MLP-only models: ``l1.weight`` (or ``l2.weight``) and no ``blocks.*``."""
    return (isinstance(state, Mapping) and any(k in state for k in ("l1.weight", *SECOND_LAYER))
            and not any(str(k).startswith("blocks.") for k in state))


def sniff(src: Source) -> bool:
    """A state dict of their MLP-only models (whatever the file's name)."""
    return is_mlp_only(src.content)


def config_of(path: Path | None) -> tuple[Path | None, dict | None]:
    """``config_<id>.json`` beside ``model_<id>.pt`` and its content, or ``(None, None)``."""
    if path is None:
        return None, None
    match = FILE_NAME.match(Path(path).name)
    candidate = Path(path).with_name(f"config_{match.group('id')}.json") if match else None
    if candidate is None or not candidate.is_file():
        return None, None
    try:
        raw = json.loads(candidate.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"cannot read the Clock-and-Pizza config {candidate}: {e}.") from e
    if not isinstance(raw, dict):
        raise CheckpointError(f"the Clock-and-Pizza config {candidate} must be a JSON object.")
    return candidate, raw


def read(src: Source, options: ReadOptions) -> Checkpoint:  # noqa: ARG001 - the format protocol
    """Their MLP as :meth:`ModelConfig.mlp` and canonical weights (module docstring).

    Raises:
        ArchitectureError: a second hidden layer (types B, C); a config whose ``model_type`` or ``C`` does not fit
            the weights.
        InvalidWeightsError: tensors missing, unexpected or of the wrong shape (each named).
    """
    state = tensor_dict(src.load())
    origin = src.origin
    if any(k in state for k in SECOND_LAYER):
        raise ArchitectureError(
            f"{origin} is a Clock-and-Pizza MLP-only model with two hidden layers (l1 and l2: model_type B or C); "
            "modadd_interp's MLPs have one hidden layer (model_type A, D or X).")
    cfg_file, raw = config_of(src.file)
    kind, config, own = _read_state(state, origin)
    notes: list[str] = []
    task = None
    if raw is not None:
        _check_config(raw, cfg_file, kind, config.p)
        frac = raw.get("frac", 0.8)
        frac = float(frac) if isinstance(frac, (int, float)) and not isinstance(frac, bool) and 0 < frac <= 1 else 0.8
        task = ModularTask(p=config.p, op="add", frac_train=frac, split="unknown", op_source="recorded",
                           split_source="recorded")
    else:
        notes.append(f"{origin} is a Clock-and-Pizza MLP-only model (type {kind}) without its config_<id>.json: "
                     "the operation will be read from the model")
    weights = check_weights(config, to_canonical(config.mlp_config(), own))
    epochs = raw.get("epoch") if raw else None
    step = epochs if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 0 else None
    return Checkpoint(config, weights, task, step, NAME, notes=tuple(notes))


def _read_state(state: dict, origin: str) -> tuple[str, ModelConfig, dict[str, torch.Tensor]]:
    separate = "embed1.weight" in state or "embed2.weight" in state
    layout = SEPARATE if separate else SHARED
    require_keys(state, set(layout.axes), set(), layout.fmt)
    dims = layout.dims(state, blocks=[])
    n, e, h = dims["n"], dims["d_embed"], dims["d_mlp"]
    if separate:
        kind, embed = "X", "sum"
        tables = {"embed_x": state["embed1.weight"], "embed_y": state["embed2.weight"]}
    else:
        d_in = dims["d_in"]
        if d_in not in (e, 2 * e):
            raise InvalidWeightsError(
                f"{origin}: l1.weight has shape {tuple(state['l1.weight'].shape)}: its input width {d_in} is neither "
                f"the embedding's {e} (summed, type A) nor twice it, {2 * e} (concatenated, type D).")
        kind, embed = ("A", "sum") if d_in == e else ("D", "concat")
        tables = {"embed_x": state["embed.weight"]}
    config = ModelConfig.mlp(n, d_embed=e, d_mlp=h, embed=embed, shared_embed=not separate, mlp_bias=True)
    own = {**tables, "W_in": state["l1.weight"].T, "b_in": state["l1.bias"], "W_U": state["unembed.weight"].T,
           "b_U": torch.zeros(n)}
    return kind, config, {k: v.float() for k, v in own.items()}


def _check_config(raw: dict, path: Path, kind: str, n: int) -> None:
    model_type = raw.get("model_type")
    if model_type is not None and model_type != kind:
        raise ArchitectureError(f"{path} says model_type {model_type!r}, but the weights are type {kind}'s: the "
                                "config does not belong to these weights.")
    for key in ("C", "n_vocab"):
        value = raw.get(key)
        if value is not None and value != n:
            raise ArchitectureError(f"{path} says {key}={value!r}, but the weights have {n} tokens: the config does "
                                    "not belong to these weights.")
