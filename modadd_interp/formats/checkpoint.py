"""What every format reads into: :class:`Checkpoint` (one model), :class:`Series` (a run), and :class:`Assumed`
(what a format could not read, said once per load by :func:`assumption_notice`).

Examples:
    >>> from modadd_interp.config import ModelConfig, paper_init
    >>> cfg = ModelConfig.paper(7, d_model=8, n_heads=2, d_head=4, d_mlp=16)
    >>> ckpt = Checkpoint(cfg, paper_init(cfg, 0), None, 100, "hooked_transformer",
    ...                   assumed=Assumed(("attn_rate", "act_fn"), "is a HookedTransformer state dict"))
    >>> assumption_notice("m.pt", ckpt)[:73]
    'm.pt is a HookedTransformer state dict: its attention rate and activation'
"""

from __future__ import annotations

import dataclasses

import torch

from ..config import ModelConfig
from ..task import ModularTask

ASSUMABLE = ("n_heads", "attn_rate", "act_fn", "attention_dir", "has_eq", "separate_b_tokens")
"""The architecture fields a format may be unable to read from its weights, in the order a notice names them."""

_WORDS = {"n_heads": "head count", "attn_rate": "attention rate", "act_fn": "activation",
          "attention_dir": "attention direction", "has_eq": "token layout", "separate_b_tokens": "token layout"}


@dataclasses.dataclass(frozen=True)
class Assumed:
    """What a reader had to assume because its format does not record it.

    Attributes:
        fields: :class:`~modadd_interp.config.ModelConfig` fields whose values were assumed (a subset of
            :data:`ASSUMABLE`); the values are the checkpoint's ``config``'s.
        reason: why, as a predicate of the source's name: ``"is a HookedTransformer state dict, which records
            no configuration"``.
        remedy: a format's own way to give them, put first in the notice (``"put its config_<id>.json beside
            it"``), or ``""``.
    """

    fields: tuple[str, ...]
    reason: str
    remedy: str = ""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One model's weights as read from a file or an object.

    Attributes:
        config: the architecture.
        weights: canonical float32 weights (see :mod:`modadd_interp.config`): ``embed.W_E`` ``[d_vocab, d_model]``,
            ``blocks.{i}.attn.W_Q`` ``[n_heads, d_model, d_head]``, ... (``config.shapes()``).
        task: the task and split when the source records them, else None (a task with
            ``split="unknown"`` when it records the operation but not the split).
        step: the training step when known.
        format: the name of the format that read it (``"modadd_interp"``, ``"paper"``, ``"hooked_transformer"``,
            ``"bridge"``, ``"clock_and_pizza"``, or a registered format's ``NAME``).
        notes: what the reader had to assume or could not read, one line each, for the user (the public readers
            warn them).
        recorded_train_loss: the final training loss the file's own training loop recorded, if any
            (used to recognise the split; see :func:`modadd_interp.inference.infer_split`).
        assumed: the architecture fields the format does not record, or None; turned into one of ``notes`` by
            the registry (:func:`assumption_notice`) after a caller's ``config=`` is applied.
    """

    config: ModelConfig
    weights: dict[str, torch.Tensor]
    task: ModularTask | None
    step: int | None
    format: str
    notes: tuple[str, ...] = ()
    recorded_train_loss: float | None = None
    assumed: Assumed | None = None


@dataclasses.dataclass(frozen=True)
class Series:
    """A run's checkpoints as a format holds them, oldest first (:class:`modadd_interp.runs.Run` is built from it).

    Attributes:
        checkpoints: one :class:`Checkpoint` per step, every one of the same architecture.
        history: the loss history the run recorded (``train_loss`` per step, ``test_loss`` at ``test_step``), or None.
    """

    checkpoints: tuple[Checkpoint, ...]
    history: dict[str, torch.Tensor] | None = None


def assumption_notice(origin: str, ckpt: Checkpoint) -> str:
    """The one-line notice naming every field ``ckpt.assumed`` lists, its assumed value and how to give it.

    Example (a HookedTransformer state dict, ``origin="m.pt"``): ``m.pt is a HookedTransformer state dict, which
    records no configuration: its attention rate, activation, attention direction and token layout are unknown;
    assumed attention rate 1, ReLU, causal attention and inputs (a, b, '='). If any differs, give it:
    config={'attn_rate': 1.0, 'act_fn': 'relu', 'attention_dir': 'causal', 'has_eq': True, 'separate_b_tokens':
    False} (mi.load, mi.load_run, from_state_dict); or load a form that records it (a run directory or series file
    of ours, live models).``
    """
    assert ckpt.assumed is not None
    cfg, fields = ckpt.config, [f for f in ASSUMABLE if f in ckpt.assumed.fields]
    words = list(dict.fromkeys(_WORDS[f] for f in fields))
    values = list(dict.fromkeys(_value_words(cfg, f) for f in fields))
    given = {f: getattr(cfg, f) for f in fields if f != "n_heads"}
    ways = [ckpt.assumed.remedy] if ckpt.assumed.remedy else []
    if given:
        ways.append(f"give it: config={given!r} (mi.load, mi.load_run, from_state_dict)")
    if "n_heads" in fields:
        ways.append("give the head count: n_heads= (--n-heads)")
    ways.append("load a form that records it (a run directory or series file of ours, live models)")
    return (f"{origin} {ckpt.assumed.reason}: its {_join(words)} {'is' if len(words) == 1 else 'are'} unknown; "
            f"assumed {_join(values)}. If any differs, {'; or '.join(ways)}.")


def _value_words(cfg: ModelConfig, field: str) -> str:
    if field == "n_heads":
        return f"{cfg.n_heads} heads of d_head {cfg.d_head}"
    if field == "attn_rate":
        return f"attention rate {cfg.attn_rate:g}"
    if field == "act_fn":
        return {"relu": "ReLU", "gelu": "GeLU"}[cfg.act_fn]
    if field == "attention_dir":
        return f"{cfg.attention_dir} attention"
    return f"inputs {cfg.layout}"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
