"""Format 5: the Clock-and-Pizza format (Zhong et al. 2023, the public repository ``fjzzq2002/pizza``).

Their ``code/train-main.py`` saves ``model_<id>.pt`` (a state dict in the progress-measures paper's
layout, :data:`modadd_interp.formats.paper.LAYOUT`, with an unused ``attn.mask`` buffer per block) and
``config_<id>.json`` beside it. The config holds what the weights do not: the attention rate ``attn_coeff``,
``act_fn`` (``ReLU``/``GeLU``; ``Tanh`` exists there too), ``eqn_sign`` (an ``'='`` token), ``diff_vocab`` (``b``
as token ``p + b``), ``C`` (= p), ``frac`` (the training fraction of an *unseeded* ``random_split``, so the split
itself is unknown) and ``funcs``, the operation as Python source (read here by pattern, never evaluated).

How their forward pass differs from TransformerLens's defaults (read from their code; reproduced by
:func:`modadd_interp.tl_adapter.build_model` from the :class:`ModelConfig` built here):

* the attention pattern is ``attn_coeff * softmax(QK^T / sqrt(d_head)) + (1 - attn_coeff)`` with an
  all-ones constant (rows sum to ``attn_coeff + (1 - attn_coeff) * n_ctx``, not 1);
* the ``mask`` buffer is never applied: attention is bidirectional (this matters from 2 layers on);
* the unembedding has ``d_vocab`` outputs (the answers are the first ``p``); no biases except the MLP's.

This format claims a file named ``model_<id>.pt`` with its ``config_<id>.json`` beside it (without the config,
the file reads as the paper's layout, with a notice). Their MLP-only models (``l1.weight``, ...; no attention) are
:mod:`.pizza_mlp`'s.

Examples:
    Skipped when the examples run: it reads a model of theirs (``code/save`` in their repository), which is not
    shipped here.

    >>> ckpt = read(Source.of_path("code/save/model_p99zdpze5l.pt"), ReadOptions())   # doctest: +SKIP
    >>> ckpt.format, ckpt.config.attn_rate, ckpt.task.split                           # doctest: +SKIP
    ('clock_and_pizza', 0.0, 'unknown')
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from ..config import ModelConfig
from ..errors import ArchitectureError, CheckpointError
from ..task import ModularTask
from . import registry
from .checkpoint import Checkpoint
from .registry import ReadOptions
from .source import Source

NAME = "clock_and_pizza"
FILE_NAME = re.compile(r"^model_(?P<id>[^/\\]+)\.pt$")
ACT_FNS = {"ReLU": "relu", "relu": "relu", "GeLU": "gelu", "gelu": "gelu"}
_OPS = {"+": "add", "-": "sub", "*": "mul"}
_FUNCS = re.compile(r"^\s*lambda\s+x\s*:\s*\(\s*x\[0\]\s*([-+*])\s*x\[1\]\s*\)\s*%\s*(\d+)\s*$")


def sniff(src: Source) -> bool:
    """``model_<id>.pt`` with ``config_<id>.json`` beside it (their MLP-only models are claimed before, by
    :mod:`.pizza_mlp`)."""
    return src.path is not None and config_path(src.path) is not None


def read(src: Source, options: ReadOptions) -> Checkpoint:
    """Their weights (read as the paper's layout) with their config applied (:func:`apply_config`).

    Raises:
        ArchitectureError: an activation we cannot read (``Tanh``), an attention rate outside [0, 1], or a config
            that does not fit the weights.
        CheckpointError: the config is not a JSON object, or a malformed field.
    """
    obj = src.load()
    ckpt = registry.read_final(Source.of_object(obj, src.origin, src.file), options)
    config, task, notes = apply_config(ckpt.config, read_config(config_path(src.path)), src.name)
    return dataclasses.replace(ckpt, config=config, task=task, format=NAME, notes=ckpt.notes + tuple(notes),
                               assumed=None)


def config_path(path: Path) -> Path | None:
    """``config_<id>.json`` beside ``model_<id>.pt``, when the name fits the format and the file exists."""
    match = FILE_NAME.match(Path(path).name)
    if match is None:
        return None
    candidate = Path(path).with_name(f"config_{match.group('id')}.json")
    return candidate if candidate.is_file() else None


def read_config(path: Path) -> dict:
    """The parsed ``config_<id>.json``; a clear error if it is not a JSON object."""
    try:
        config = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read the Clock-and-Pizza config {path}: {e}.") from e
    if not isinstance(config, dict):
        raise CheckpointError(f"the Clock-and-Pizza config {path} must be a JSON object.")
    return config


def parse_op(funcs: object, p: int) -> str | None:
    """The operation of a ``funcs`` string like ``"lambda x: (x[0]+x[1])%59"``, or None when it has another form.

    Examples:
        >>> parse_op("lambda x: (x[0]-x[1])%59", 59), parse_op("lambda x: (x[0]**2+x[1])%59", 59)
        ('sub', None)
    """
    match = _FUNCS.match(funcs) if isinstance(funcs, str) else None
    if match is None or int(match.group(2)) != p:
        return None
    return _OPS[match.group(1)]


def apply_config(config: ModelConfig, raw: dict, origin: str) -> tuple[ModelConfig, ModularTask | None, list[str]]:
    """Their config applied to the architecture read from the weights.

    Returns:
        ``(config, task, notes)``: the architecture with activation, attention rate, bidirectional
        attention and token layout set; the task when ``funcs`` names an operation (split
        ``"unknown"``, their ``frac`` recorded); notes for the user.

    Raises:
        ArchitectureError: an activation we cannot read (``Tanh``), an attention rate outside [0, 1],
            or weights that do not fit the config's ``C``/``diff_vocab``/``eqn_sign``.
        CheckpointError: a malformed field.
    """
    notes: list[str] = []
    act = raw.get("act_fn", "ReLU")
    if act not in ACT_FNS:
        raise ArchitectureError(f"{origin}: act_fn {act!r} is not supported (the probes read ReLU or GeLU neurons).")
    rate = raw.get("attn_coeff", 1.0)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise ArchitectureError(f"{origin}: attn_coeff must be a number in [0, 1], got {rate!r}.")
    p = raw.get("C")
    if isinstance(p, bool) or not isinstance(p, int) or p < 2:
        raise CheckpointError(f"{origin}: the config's 'C' (the modulus) must be an integer >= 2, got {p!r}.")
    has_eq, separate = bool(raw.get("eqn_sign", False)), bool(raw.get("diff_vocab", False))
    expected = p * (2 if separate else 1) + int(has_eq)
    if config.d_vocab != expected:
        raise ArchitectureError(
            f"{origin}: the config says C={p}, diff_vocab={separate}, eqn_sign={has_eq} (a vocabulary of {expected}), "
            f"but the weights have {config.d_vocab} tokens: the config does not belong to these weights."
        )
    new = dataclasses.replace(config, act_fn=ACT_FNS[act], attn_rate=float(rate), attention_dir="bidirectional",
                              has_eq=has_eq, separate_b_tokens=separate)
    op = parse_op(raw.get("funcs"), p)
    frac = raw.get("frac", 0.8)
    frac = float(frac) if isinstance(frac, (int, float)) and not isinstance(frac, bool) and 0 < frac <= 1 else 0.8
    task = None
    if op is not None:
        task = ModularTask(p=p, op=op, frac_train=frac, split="unknown", op_source="recorded",
                           split_source="recorded")
    else:
        notes.append(f"{origin}: the config's funcs {raw.get('funcs')!r} is not of the form "
                     "'lambda x: (x[0] op x[1])%C'; the operation will be read from the model")
    return new, task, notes
