"""Format 2: the progress-measures paper's checkpoints (Nanda et al. 2023), in three containers.

* **bare**: a state dict in the paper's layout (:data:`LAYOUT`): ``embed.W_E`` ``[d_model, d_vocab]``,
  ``blocks.{i}.attn.W_Q/W_K/W_V`` ``[n_heads, d_head, d_model]``, ``W_O`` ``[d_model, n_heads*d_head]`` (2-D),
  ``mlp.W_in`` ``[d_mlp, d_model]``, ``mlp.W_out`` ``[d_model, d_mlp]``, ``unembed.W_U`` ``[d_model, d_vocab_out]``;
  no attention or unembed biases; an optional ``attn.mask`` buffer;
* **under** ``"model"``, beside ``train_losses``, ``test_losses``, ``epoch`` and optionally ``config`` (the task:
  ``fn_name``, ``p``, ``frac_train``, ``seed``);
* **a series** under ``"state_dicts"`` with ``epochs``, as the paper's ``full_run_data.pth``.

The state dicts inside a container may be in any layout the registry reads (this module passes them back to
:func:`modadd_interp.formats.registry.read`). With 3 positions the layout is the paper's own architecture
(ReLU, causal attention, attention rate 1, ``(a, b, '=')``); with 2 positions it is a Clock-and-Pizza model whose
``config_<id>.json`` is missing: the same defaults, with a notice.

Examples:
    A small model in the paper's layout, under ``"model"`` with the paper's ``config`` (p = 7 and ``'='``):

    >>> dims = {"d_model": 16, "d_vocab": 8, "d_vocab_out": 8, "n_ctx": 3, "n_heads": 2, "d_head": 8,
    ...         "n_heads*d_head": 16, "d_mlp": 32}
    >>> state = {key.replace("{b}", "blocks.0"): torch.zeros([dims[a] for a in axes])
    ...          for key, axes in LAYOUT.axes.items()}
    >>> obj = {"model": state, "epoch": 500, "config": {"fn_name": "add", "p": 7, "frac_train": 0.3, "seed": 1}}
    >>> ckpt = read(Source.of_object(obj, "the dict"), ReadOptions())
    >>> ckpt.format, ckpt.config.p, ckpt.config.n_heads, ckpt.step, ckpt.task.seed
    ('paper', 7, 2, 500, 1)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from ..config import check_weights
from ..errors import ArchitectureError, CheckpointError, ModAddError, TaskMismatchError
from ..task import ModularTask
from . import registry
from .checkpoint import Assumed, Checkpoint, Series
from .layout import Layout, config_of_dims, fill_missing_biases, tensor_dict
from .registry import ReadOptions
from .source import Source
from .values import as_int

NAME = "paper"

LAYOUT = Layout("paper", {
    "embed.W_E": ("d_model", "d_vocab"),
    "pos_embed.W_pos": ("n_ctx", "d_model"),
    "{b}.attn.W_Q": ("n_heads", "d_head", "d_model"),
    "{b}.attn.W_K": ("n_heads", "d_head", "d_model"),
    "{b}.attn.W_V": ("n_heads", "d_head", "d_model"),
    "{b}.attn.W_O": ("d_model", "n_heads*d_head"),
    "{b}.mlp.W_in": ("d_mlp", "d_model"),
    "{b}.mlp.b_in": ("d_mlp",),
    "{b}.mlp.W_out": ("d_model", "d_mlp"),
    "{b}.mlp.b_out": ("d_model",),
    "unembed.W_U": ("d_model", "d_vocab_out"),
}, ignored=("{b}.attn.mask",))

FN_NAMES = {"add": "add", "subtract": "sub"}
"""The paper's ``fn_name`` values for operations we read (its ``x2xyy2`` and ``rand`` are not binary group
operations)."""

TWO_POSITIONS = ("attn_rate", "act_fn", "attention_dir", "has_eq", "separate_b_tokens")
"""What the paper's layout with 2 positions (a Clock-and-Pizza model without its config) does not record."""


def sniff(src: Source) -> bool:
    """A mapping with ``"state_dicts"`` or ``"model"``, or a state dict whose ``blocks.0.attn.W_O`` is 2-D."""
    obj = src.content
    if not isinstance(obj, Mapping):
        return False
    return "state_dicts" in obj or "model" in obj or getattr(obj.get("blocks.0.attn.W_O"), "ndim", None) == 2


def read(src: Source, options: ReadOptions) -> Checkpoint | Series:
    """The container's checkpoint (a series' final one, or all of them with ``options.series``)."""
    obj = src.content
    if "state_dicts" in obj:
        series = Series(tuple(read_series(obj, options, src.file)))
        return series if options.series else series.checkpoints[-1]
    if "model" in obj:
        if not isinstance(obj["model"], Mapping):
            raise CheckpointError(
                f"the 'model' entry of {src.origin} is a {type(obj['model']).__name__}, not a state dict; "
                "save {'model': model.state_dict(), ...} instead."
            )
        inner = Source.of_object(obj["model"], f"the 'model' entry of {src.origin}", src.file)
        ckpt = registry.read_final(inner, options)
        return dataclasses.replace(ckpt, task=paper_task(obj.get("config"), ckpt.config),
                                   step=as_int(obj.get("epoch"), "the 'epoch' entry"),
                                   recorded_train_loss=final_loss(obj))
    return read_state(obj, in_a_file=src.file is not None)


def read_state(state: Mapping, in_a_file: bool = False) -> Checkpoint:
    """A bare state dict in the paper's layout -> canonical weights (``in_a_file``: it was read from a file, which
    a notice about a missing ``config_<id>.json`` then mentions).

    Raises:
        InvalidWeightsError: keys missing or unexpected, shapes that disagree, NaN/inf.
        ArchitectureError: the shapes fit no modular-arithmetic model, or LayerNorm weights.
    """
    state = tensor_dict(state)
    blocks, dims = LAYOUT.read(state)
    heads, d_head, d_model = dims["n_heads"], dims["d_head"], dims["d_model"]
    config = config_of_dims(dims, len(blocks))
    w = {"embed.W_E": state["embed.W_E"].T, "pos_embed.W_pos": state["pos_embed.W_pos"]}
    for b in blocks:
        for x in "QKV":  # paper [heads, d_head, d_model] -> TL [heads, d_model, d_head]
            w[f"{b}.attn.W_{x}"] = state[f"{b}.attn.W_{x}"].transpose(1, 2)
        # paper W_O [d_model, heads*d_head], heads major -> TL [heads, d_head, d_model]
        w[f"{b}.attn.W_O"] = state[f"{b}.attn.W_O"].T.reshape(heads, d_head, d_model)
        w[f"{b}.mlp.W_in"] = state[f"{b}.mlp.W_in"].T
        w[f"{b}.mlp.b_in"] = state[f"{b}.mlp.b_in"]
        w[f"{b}.mlp.W_out"] = state[f"{b}.mlp.W_out"].T
        w[f"{b}.mlp.b_out"] = state[f"{b}.mlp.b_out"]
    w["unembed.W_U"] = state["unembed.W_U"]
    weights = check_weights(config, fill_missing_biases(config, w))
    assumed = None
    if not config.has_eq:
        where = "but no config_<id>.json beside it" if in_a_file else "without its config_<id>.json"
        assumed = Assumed(TWO_POSITIONS, f"has the progress-measures layout with 2 positions, like a Clock-and-Pizza "
                          f"model, {where}", "load its model_<id>.pt with its config_<id>.json beside it")
    return Checkpoint(config, weights, None, None, NAME, assumed=assumed)


def read_series(obj: Mapping, options: ReadOptions | None = None, file: Path | None = None) -> list[Checkpoint]:
    """The checkpoints of a paper-style series dict (``state_dicts``, ``epochs``, ...), oldest first; raw (the
    registry's :func:`~modadd_interp.formats.registry.finish` turns assumptions into notes).

    Raises:
        CheckpointError: ``state_dicts`` is not a non-empty list, or ``epochs`` does not match it.
        TaskMismatchError: the state dicts are for different moduli p.
        ArchitectureError: the state dicts have different architectures.
    """
    options = options or ReadOptions()
    state_dicts = obj.get("state_dicts")
    if not isinstance(state_dicts, Sequence) or isinstance(state_dicts, (str, bytes)):
        raise CheckpointError(
            f"'state_dicts' must be a list of state dicts, got a {type(state_dicts).__name__}."
        )
    if not state_dicts:
        raise CheckpointError("the 'state_dicts' series is empty; there is no model to load.")
    epochs = _series_epochs(obj.get("epochs"), len(state_dicts))
    out = []
    for index, (epoch, state) in enumerate(zip(epochs, state_dicts, strict=True)):
        try:
            if not isinstance(state, Mapping):
                raise CheckpointError(f"expected a state dict (a mapping of names to tensors), got a "
                                      f"{type(state).__name__}.")
            ckpt = registry.read_final(Source.of_object(state, f"state_dicts[{index}]", file), options)
        except ModAddError as e:
            raise type(e)(f"state_dicts[{index}] (epoch {epoch}): {e}") from e
        if out:
            check_same_run(out[0], ckpt, index)
        out.append(dataclasses.replace(ckpt, step=epoch))
    task = paper_task(obj.get("config"), out[0].config)
    return [dataclasses.replace(c, task=task) for c in out]


# ------------------------------------------------------------------ helpers
def _series_epochs(epochs: object, count: int) -> list[int]:
    if epochs is None:
        return list(range(count))
    if isinstance(epochs, torch.Tensor):
        epochs = epochs.tolist() if epochs.ndim == 1 else epochs
    if not isinstance(epochs, Sequence) or isinstance(epochs, (str, bytes)):
        raise CheckpointError(f"'epochs' must be a list of integers, got a {type(epochs).__name__}.")
    if len(epochs) != count:
        raise CheckpointError(
            f"the series has {count} state_dicts but {len(epochs)} epochs; each state dict needs its epoch."
        )
    out = [as_int(e, f"epochs[{i}]") for i, e in enumerate(epochs)]
    if any(b <= a for a, b in zip(out, out[1:], strict=False)):
        raise CheckpointError(f"'epochs' must be strictly increasing, got {out[:10]}.")
    return out


def check_same_run(first: Checkpoint, other: Checkpoint, index: int) -> None:
    """Raise unless ``other`` (``state_dicts[index]``) has the architecture of ``state_dicts[0]``."""
    if other.config.p != first.config.p:
        raise TaskMismatchError(
            f"the series mixes moduli: state_dicts[0] is for p={first.config.p} but "
            f"state_dicts[{index}] is for p={other.config.p}; a series must hold checkpoints of one run."
        )
    if other.config != first.config:
        diff = {k: (v, getattr(other.config, k)) for k, v in first.config.to_dict().items()
                if getattr(other.config, k) != v}
        raise ArchitectureError(
            f"the series mixes architectures: state_dicts[{index}] differs from state_dicts[0] in "
            f"{diff}; a series must hold checkpoints of one run."
        )


def paper_task(config: object, model_config) -> ModularTask | None:
    """The task a paper config records (its split: seed + frac_train, ``random.shuffle``)."""
    if config is None or (isinstance(config, Mapping) and not config):
        return None
    if not isinstance(config, Mapping):
        raise CheckpointError(f"the file's 'config' entry must be a dict, got a {type(config).__name__}.")
    fn = config.get("fn_name", "add")
    if fn not in FN_NAMES:
        raise TaskMismatchError(
            f"the file's config names fn_name={fn!r}; supported: {sorted(FN_NAMES)} (the paper's names)."
        )
    p = as_int(config.get("p", model_config.p), "the config's 'p'")
    if p != model_config.p:
        raise TaskMismatchError(
            f"the file's config says p={p}, but its weights (d_vocab={model_config.d_vocab}) are for "
            f"p={model_config.p}: the config does not belong to these weights. Fix or drop the config."
        )
    frac = config.get("frac_train", 0.3)
    if isinstance(frac, bool) or not isinstance(frac, (int, float)):
        raise CheckpointError(f"the config's 'frac_train' must be a number, got {frac!r}.")
    seed = as_int(config.get("seed", 0), "the config's 'seed'")
    return ModularTask(p=p, op=FN_NAMES[fn], frac_train=float(frac), seed=seed, split="paper",
                       op_source="recorded", split_source="recorded")


def final_loss(obj: Mapping) -> float | None:
    """The last training loss a paper-style dict recorded (``train_loss`` or ``train_losses[-1]``)."""
    losses = obj.get("train_losses")
    last = losses[-1] if isinstance(losses, (Sequence, torch.Tensor)) and len(losses) else None
    for value in (obj.get("train_loss"), last):
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
            return float(value)
    return None
